"""One post-norm Transformer encoder layer, as PyTorch's `nn.TransformerEncoderLayer` (the
layer of the ABAW4 system's temporal encoder)."""

import keras
from keras import ops

from mtcae_keras.models.videomae_layers import multi_head_attention


@keras.saving.register_keras_serializable(package="mtcae_keras")
class TemporalTransformerLayer(keras.layers.Layer):
    """Self-attention over time steps, then a ReLU feed-forward block, each followed by
    dropout, a residual sum and a LayerNorm (post-norm)::

        x = norm1(x + dropout(self_attn(x)))
        x = norm2(x + dropout(linear2(dropout(relu(linear1(x))))))

    PyTorch's `nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout)` with its
    defaults (ReLU, `norm_first=False`, LayerNorm epsilon 1e-5), which AIM3-RUC/ABAW4 stacks.
    Sublayer names mirror its state dict: `self_attn` (`query`, `key`, `value` from
    `in_proj_weight`, `out_proj`), `linear1`, `linear2`, `norm1`, `norm2`.

    Args:
        hidden_dim: int. Width of the time steps.
        num_heads: int. Attention heads (`hidden_dim` divisible by it).
        intermediate_dim: int. Width of the feed-forward block.
        dropout_rate: float. Dropout on the attention probabilities, after the attention, in
            and after the feed-forward block (PyTorch uses one rate for all four).
        layer_norm_epsilon: float.
        **kwargs: base layer arguments.

    Call arguments:
        x: `(batch, steps, hidden_dim)`.
    """

    def __init__(self, hidden_dim, num_heads, intermediate_dim, dropout_rate=0.1,
                 layer_norm_epsilon=1e-5, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}.")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon

    def _dense(self, name, units, input_dim):
        layer = keras.layers.Dense(units, dtype=self.dtype_policy, name=name)
        layer.build((None, None, input_dim))
        return layer

    def build(self, input_shape):
        d = self.hidden_dim
        if input_shape[-1] != d:
            raise ValueError(f"Input width {input_shape[-1]} != hidden_dim={d}.")
        self.query = self._dense("self_attn_query", d, d)
        self.key = self._dense("self_attn_key", d, d)
        self.value = self._dense("self_attn_value", d, d)
        self.out_proj = self._dense("self_attn_out_proj", d, d)
        self.linear1 = self._dense("linear1", self.intermediate_dim, d)
        self.linear2 = self._dense("linear2", d, self.intermediate_dim)
        self.norm1 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm1"
        )
        self.norm1.build(input_shape)
        self.norm2 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm2"
        )
        self.norm2.build(input_shape)
        self.dropout = keras.layers.Dropout(self.dropout_rate, dtype=self.dtype_policy)
        super().build(input_shape)

    def _heads(self, x):
        batch, steps = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (batch, steps, self.num_heads, self.hidden_dim // self.num_heads))

    def call(self, x, training=None):
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scale = 1.0 / (self.hidden_dim // self.num_heads) ** 0.5
        context = multi_head_attention(q, k, v, scale, self.dropout, training=training)
        x = self.norm1(x + self.dropout(self.out_proj(ops.reshape(context, ops.shape(x))),
                                        training=training))  # fmt: skip
        hidden = self.dropout(ops.relu(self.linear1(x)), training=training)
        return self.norm2(x + self.dropout(self.linear2(hidden), training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout_rate": self.dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
