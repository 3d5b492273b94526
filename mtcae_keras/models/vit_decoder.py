"""The cross-attention ViT decoder of MTCAE-DFER (the paper's Algorithm 1)."""

import warnings

import keras

from mtcae_keras.models.memory_saving_attention import MemorySavingAttention
from mtcae_keras.models.memory_saving_attention import draw_seed
from mtcae_keras.models.memory_saving_attention import stateless_dropout
from mtcae_keras.models.mlp_decoder import build_gelu_mlp
from mtcae_keras.models.mlp_decoder import check_mlp_dims
from mtcae_keras.models.videomae_layers import MEMORY_SAVING


@keras.saving.register_keras_serializable(package="mtcae_keras")
class ViTDecoder(keras.layers.Layer):
    """Cross-attention decoder: the query stream attends to the encoder's tokens.

    Algorithm 1 of the paper, with `Y` the query stream and `F` the memory::

        K, V = Norm(Dense(F))          # once per decoder, shared by its layers
        repeat num_layers times:
            Z' = MHA(Norm(Y), K, V) + Y
            Y  = MLP(Norm(Z')) + Z'

    With `memory_projection=False` (the public notebook) the `Dense` is not inside the
    decoder: the model projects the encoder tokens once, and the decoder only norms them.
    The MHA's own key / value projections follow either way (Keras `MultiHeadAttention`).

    Args:
        hidden_dim: int. Width of the query stream (and of the output).
        num_layers: int. Decoder layers.
        num_heads: int. Attention heads.
        key_dim: int. Width of each head's query / key / value.
        mlp_dims: tuple of int. MLP widths, GELU after each (the notebook puts GELU on the
            last one too); the last must equal `hidden_dim`.
        attention_dropout_rate: float. Dropout on the attention probabilities.
        dropout_rate: float. Dropout after each MLP layer.
        layer_norm_epsilon: float. Epsilon of every LayerNorm.
        memory_projection: bool. Project the memory with a bias-free `Dense(hidden_dim)`
            inside the decoder (Algorithm 1 read literally).
        memory_saving: True, False or `"full"`. In training, True recomputes each layer's
            attention probabilities (their dropout mask included) in the backward pass
            instead of keeping them (`MemorySavingAttention`); `"full"` keeps only each
            layer's input and recomputes the whole layer (`keras.remat`, the dropout masks
            drawn from seeds taken before it). The same outputs and gradients either way;
            False (the default) keeps everything. TensorFlow backend (stateless dropout).
            Measured at ViT-L, batch 2, 2 CPU cores: True 0.89x the peak memory at 0.78x
            the speed, "full" 0.58x at 0.72x (`bench/cascade_memory.py`).
        **kwargs: base layer arguments.

    Call arguments:
        query: `(batch, query_tokens, hidden_dim)`.
        memory: `(batch, memory_tokens, memory_dim)`; `memory_dim` must be `hidden_dim`
            unless `memory_projection`.
        return_attention_scores: bool. Also return one `(batch, heads, query_tokens,
            memory_tokens)` tensor per layer.
    """

    def __init__(
        self,
        hidden_dim,
        num_layers,
        num_heads,
        key_dim,
        mlp_dims=(512, 256),
        attention_dropout_rate=0.3,
        dropout_rate=0.1,
        layer_norm_epsilon=1e-6,
        memory_projection=False,
        memory_saving=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        mlp_dims = check_mlp_dims(mlp_dims, hidden_dim)
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.mlp_dims = mlp_dims
        self.attention_dropout_rate = attention_dropout_rate
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.memory_projection = memory_projection
        if memory_saving not in MEMORY_SAVING:
            raise ValueError(f"memory_saving={memory_saving!r}: choose True, False or 'full'.")
        self.memory_saving = memory_saving

    def _norm(self, name, shape):
        layer = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        layer.build(shape)
        return layer

    def build(self, query_shape, memory_shape):
        if not self.memory_projection and memory_shape[-1] != self.hidden_dim:
            raise ValueError(
                f"Memory width {memory_shape[-1]} != hidden_dim {self.hidden_dim}: project the "
                "memory first or set memory_projection=True."
            )
        memory_shape = tuple(memory_shape)
        if self.memory_projection:
            self.memory_dense = keras.layers.Dense(
                self.hidden_dim, use_bias=False, dtype=self.dtype_policy, name="memory_dense"
            )
            self.memory_dense.build(memory_shape)
            memory_shape = memory_shape[:-1] + (self.hidden_dim,)
        self.memory_norm = self._norm("memory_norm", memory_shape)
        query_shape = tuple(query_shape)
        self.query_norms, self.attentions, self.mlp_norms, self.mlps = [], [], [], []
        for i in range(self.num_layers):
            self.query_norms.append(self._norm(f"layer_{i}_query_norm", query_shape))
            attention = MemorySavingAttention(
                self.num_heads,
                self.key_dim,
                memory_saving=bool(self.memory_saving),
                dropout=self.attention_dropout_rate,
                dtype=self.dtype_policy,
                name=f"layer_{i}_attention",
            )
            attention.build(query_shape, memory_shape, memory_shape)
            self.attentions.append(attention)
            self.mlp_norms.append(self._norm(f"layer_{i}_mlp_norm", query_shape))
            self.mlps.append(
                build_gelu_mlp(self.mlp_dims, query_shape, self.dtype_policy, f"layer_{i}_mlp")
            )
        self.dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=self.dtype_policy, name="mlp_dropout"
        )
        self.built = True

    def call(self, query, memory, training=None, return_attention_scores=False):
        if self.memory_projection:
            memory = self.memory_dense(memory)
        memory = self.memory_norm(memory)
        if self.memory_saving == "full" and training and not return_attention_scores:
            if keras.backend.backend() == "tensorflow":
                return self._recomputed_layers(query, memory)
            warnings.warn(f"{self.name}: memory_saving='full' needs the TensorFlow backend (its "
                          "stateless dropout); this backend keeps the layers' activations.",
                          stacklevel=2)  # fmt: skip
        y, scores = query, []
        for i in range(self.num_layers):
            outputs = self.attentions[i](
                self.query_norms[i](y),
                memory,
                memory,
                training=training,
                return_attention_scores=return_attention_scores,
            )
            if return_attention_scores:
                z, score = outputs
                scores.append(score)
            else:
                z = outputs
            z = z + y
            y = self.mlp_norms[i](z)
            for dense in self.mlps[i]:
                y = self.dropout(dense(y), training=training)
            y = y + z
        return (y, scores) if return_attention_scores else y

    def _recomputed_layers(self, y, memory):
        """The training layers, each under `keras.remat`: only the layers' inputs are kept.
        The dropout seeds are drawn outside, in the order the plain layers draw them, so the
        recomputed masks are the forward pass's and the plain path's."""
        for i in range(self.num_layers):
            seeds = [draw_seed(self.attentions[i]._dropout_layer)]
            seeds += [draw_seed(self.dropout) for _ in self.mlps[i]]

            def layer(y, memory, i=i, seeds=seeds):
                z = self.attentions[i].call_seeded(self.query_norms[i](y), memory, seeds[0])
                z = z + y
                y = self.mlp_norms[i](z)
                for dense, seed in zip(self.mlps[i], seeds[1:], strict=True):
                    y = stateless_dropout(dense(y), self.dropout_rate, seed)
                return y + z

            y = keras.remat(layer)(y, memory)
        return y

    def compute_output_shape(self, query_shape, memory_shape):
        return tuple(query_shape[:-1]) + (self.hidden_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "mlp_dims": list(self.mlp_dims),
                "attention_dropout_rate": self.attention_dropout_rate,
                "dropout_rate": self.dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "memory_projection": self.memory_projection,
                "memory_saving": self.memory_saving,
            }
        )
        return config
