"""The attention of MAE-DFER's LGI-Former: self- or cross-attention with q / kv projections."""

import keras
from keras import ops

from mtcae_keras.models.videomae_layers import multi_head_attention


@keras.saving.register_keras_serializable(package="mtcae_keras")
class LGIFormerAttention(keras.layers.Layer):
    """Multi-head attention with separate `q` and `kv` projections and q / v biases.

    MAE-DFER's `GeneralAttention`: `q = x Wq + q_bias`, `[k, v] = c Wkv + [0, v_bias]` (the
    key bias is fixed at zero), scale `head_dim ** -0.5`, softmax in float32, then `proj`.
    Self-attention when `context` is None (`c = x`), cross-attention otherwise; the context
    has the same width as the queries, as in every LGI-Former block. Weight names mirror
    the checkpoints: `q`, `kv`, `q_bias`, `v_bias`, `proj`.

    Args:
        hidden_dim: int. Token width (of the queries, the context and the output).
        num_heads: int. Attention heads; `hidden_dim` must divide evenly.
        qv_bias: bool. Learn the query and value biases (MAE-DFER's `qkv_bias=True`).
        attention_dropout_rate: float. Dropout on the attention probabilities.
        dropout_rate: float. Dropout after the output projection.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `(batch, tokens, hidden_dim)` queries.
        context: optional `(batch, context_tokens, hidden_dim)` keys / values.
        training: bool.
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        qv_bias=True,
        attention_dropout_rate=0.0,
        dropout_rate=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}.")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.qv_bias = qv_bias
        self.attention_dropout_rate = attention_dropout_rate
        self.dropout_rate = dropout_rate
        self.head_dim = hidden_dim // num_heads

    def build(self, input_shape):
        def dense(units, name):
            layer = keras.layers.Dense(
                units, use_bias=name == "proj", dtype=self.dtype_policy, name=name
            )
            layer.build(tuple(input_shape[:-1]) + (self.hidden_dim,))
            return layer

        self.q = dense(self.hidden_dim, "q")
        self.kv = dense(2 * self.hidden_dim, "kv")
        if self.qv_bias:
            self.q_bias = self.add_weight(
                shape=(self.hidden_dim,), initializer="zeros", name="q_bias"
            )
            self.v_bias = self.add_weight(
                shape=(self.hidden_dim,), initializer="zeros", name="v_bias"
            )
        self.attention_dropout = keras.layers.Dropout(
            self.attention_dropout_rate, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.proj = dense(self.hidden_dim, "proj")
        self.proj_dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=self.dtype_policy, name="proj_dropout"
        )
        self.built = True

    def project(self, inputs, context=None):
        """`(query, key, value)`, each `(B, tokens, heads, head_dim)`: the biased projections
        of `inputs` (queries) and `context` (keys and values; `inputs` if None)."""
        context = inputs if context is None else context
        query, kv = self.q(inputs), self.kv(context)
        if self.qv_bias:
            query = query + ops.cast(self.q_bias, query.dtype)
            zero = ops.zeros((self.hidden_dim,), dtype=self.v_bias.dtype)
            kv = kv + ops.cast(ops.concatenate([zero, self.v_bias], axis=0), kv.dtype)
        batch, tokens = ops.shape(inputs)[0], ops.shape(inputs)[1]
        query = ops.reshape(query, (batch, tokens, self.num_heads, self.head_dim))
        kv = ops.reshape(kv, (batch, ops.shape(context)[1], 2, self.num_heads, self.head_dim))
        return query, kv[:, :, 0], kv[:, :, 1]

    def attention_probabilities(self, inputs, context=None):
        """The softmax attention `(B, heads, query tokens, context tokens)`, float32, that
        `call` applies (inference: no dropout): for figures (`mtcae_keras.visualization`)."""
        query, key, _ = self.project(inputs, context)
        logits = ops.einsum("btnh,bsnh->bnts", query * ops.cast(self.head_dim**-0.5, query.dtype),
                            key)  # fmt: skip
        return ops.softmax(ops.cast(logits, "float32"), axis=-1)

    def call(self, inputs, context=None, training=None):
        query, key, value = self.project(inputs, context)
        output = multi_head_attention(
            query, key, value, self.head_dim**-0.5, self.attention_dropout, training
        )
        batch, tokens = ops.shape(inputs)[0], ops.shape(inputs)[1]
        output = self.proj(ops.reshape(output, (batch, tokens, self.hidden_dim)))
        return self.proj_dropout(output, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "qv_bias": self.qv_bias,
                "attention_dropout_rate": self.attention_dropout_rate,
                "dropout_rate": self.dropout_rate,
            }
        )
        return config
