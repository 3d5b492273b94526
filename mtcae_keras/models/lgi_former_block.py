"""One LGI-Former block: local (intra-region), global (inter-region) and local-global attention."""

import keras
from keras import ops

from mtcae_keras.models.lgi_former_attention import LGIFormerAttention
from mtcae_keras.models.videomae_layers import MEMORY_SAVING
from mtcae_keras.models.videomae_layers import drop_path_layer
from mtcae_keras.models.videomae_layers import rematerialized_sublayers


@keras.saving.register_keras_serializable(package="mtcae_keras")
class LGIFormerBlock(keras.layers.Layer):
    """MAE-DFER's `LGBlock` (`first_attn_type='self'`, `third_attn_type='cross'`).

    The tokens arrive grouped by region, `(batch, regions, 1 + region_tokens, width)`, each
    region's representative token first. With `x` one region's tokens, `r` the
    representative tokens and `l` the local tokens of one clip::

        x = x + DropPath(first_attn(first_attn_norm0(x)))             # inside each region
        r = r + DropPath(second_attn(second_attn_norm0(r)))           # among the regions
        l = l + DropPath(third_attn(third_attn_norm0(l),              # every local token
                                    context=third_attn_norm1(r)))     #   reads all regions
        x = x + DropPath(Dropout(mlp_fc2(GELU(mlp_fc1(norm2(x))))))   # all tokens

    Stochastic depth drops per (clip, region) in the first and last step and per clip in
    the two others, as the reference's `(b n) s c` layout does. The MLP has dropout after
    `fc2` only (the reference comments out the other). Sublayer names mirror the checkpoint
    keys (`blocks.i.first_attn.q`, `blocks.i.third_attn_norm1`, `blocks.i.mlp.fc1` ->
    `mlp_fc1`, ...).

    Args:
        hidden_dim: int. Token width.
        num_heads: int. Attention heads of all three attentions.
        intermediate_dim: int. Hidden width of the GELU MLP.
        layer_norm_epsilon: float. LayerNorm epsilon (1e-6 in MAE-DFER).
        qv_bias: bool. Learn query and value biases.
        drop_path_rate: float. Stochastic depth rate of this block.
        dropout_rate: float. Dropout after each attention projection and after the MLP.
        attention_dropout_rate: float. Dropout on attention probabilities.
        memory_saving: True, False or `"full"`. In training, keep only the sublayers' inputs
            for the backward pass and recompute the rest (`keras.remat`), as
            `VideoMAEEncoderBlock` does: the three attention sublayers (their LayerNorms,
            projections and probabilities; not where they have dropout, whose mask would be
            drawn again), `norm2` and the GELU; `"full"` also the MLP's fc1. The same
            outputs and gradients either way; False keeps everything.
        **kwargs: base layer arguments.
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        intermediate_dim,
        layer_norm_epsilon=1e-6,
        qv_bias=True,
        drop_path_rate=0.0,
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        memory_saving=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if memory_saving not in MEMORY_SAVING:
            raise ValueError(f"memory_saving={memory_saving!r}: choose True, False or 'full'.")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.layer_norm_epsilon = layer_norm_epsilon
        self.qv_bias = qv_bias
        self.drop_path_rate = drop_path_rate
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        self.memory_saving = memory_saving

    def build(self, input_shape):
        _, regions, size, width = input_shape
        if width != self.hidden_dim:
            raise ValueError(f"Token width {width} != hidden_dim {self.hidden_dim}.")
        shapes = {
            "first": (None, size, width),  # one region: its representative + local tokens
            "second": (None, regions, width),  # the representative tokens of one clip
            "third": (None, regions * (size - 1), width),  # the local tokens of one clip
        }

        def norm(name, shape):
            layer = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
            )
            layer.build(shape)
            return layer

        def attention(name, shape):
            layer = LGIFormerAttention(
                self.hidden_dim,
                self.num_heads,
                qv_bias=self.qv_bias,
                attention_dropout_rate=self.attention_dropout_rate,
                dropout_rate=self.dropout_rate,
                dtype=self.dtype_policy,
                name=name,
            )
            layer.build(shape)
            return layer

        self.first_attn_norm0 = norm("first_attn_norm0", shapes["first"])
        self.first_attn = attention("first_attn", shapes["first"])
        self.second_attn_norm0 = norm("second_attn_norm0", shapes["second"])
        self.second_attn = attention("second_attn", shapes["second"])
        self.third_attn_norm0 = norm("third_attn_norm0", shapes["third"])
        self.third_attn_norm1 = norm("third_attn_norm1", shapes["second"])
        self.third_attn = attention("third_attn", shapes["third"])
        self.norm2 = norm("norm2", shapes["first"])
        self.mlp_fc1 = keras.layers.Dense(
            self.intermediate_dim, dtype=self.dtype_policy, name="mlp_fc1"
        )
        self.mlp_fc1.build(shapes["first"])
        self.mlp_fc2 = keras.layers.Dense(self.hidden_dim, dtype=self.dtype_policy, name="mlp_fc2")
        self.mlp_fc2.build((None, size, self.intermediate_dim))
        self.mlp_dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=self.dtype_policy, name="mlp_dropout"
        )
        self.drop_path = drop_path_layer(self.drop_path_rate, self.dtype_policy)
        self.built = True

    def call(self, inputs, training=None):
        _, regions, size, width = inputs.shape

        def residual(x, update):
            return x + self.drop_path(update, training=training)

        def local_attend(x):
            return self.first_attn(self.first_attn_norm0(x), training=training)

        def global_attend(region):
            return self.second_attn(self.second_attn_norm0(region), training=training)

        def local_global_attend(local, region):
            context = self.third_attn_norm1(region)
            return self.third_attn(self.third_attn_norm0(local), context, training=training)

        # What VideoMAEEncoderBlock recomputes, for the same reasons (see there).
        attentions, mlp_input = rematerialized_sublayers(
            self.memory_saving if training else False,
            self.dropout_rate or self.attention_dropout_rate,
            [local_attend, global_attend, local_global_attend],
            self.norm2,
            self.mlp_fc1,
        )
        local_attend, global_attend, local_global_attend = attentions

        # (1) Local: self-attention inside each region, its representative token included.
        x = ops.reshape(inputs, (-1, size, width))
        x = residual(x, local_attend(x))
        x = ops.reshape(x, (-1, regions, size, width))
        # (2) Global: self-attention among the clip's representative tokens.
        region = x[:, :, 0]
        region = residual(region, global_attend(region))
        # (3) Local-global: every local token attends to the updated representative tokens.
        local = ops.reshape(x[:, :, 1:], (-1, regions * (size - 1), width))
        local = residual(local, local_global_attend(local, region))
        x = ops.concatenate(
            [region[:, :, None], ops.reshape(local, (-1, regions, size - 1, width))], axis=2
        )
        # (4) MLP on every token.
        x = ops.reshape(x, (-1, size, width))
        y = self.mlp_dropout(self.mlp_fc2(mlp_input(x)), training=training)
        return ops.reshape(residual(x, y), (-1, regions, size, width))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "qv_bias": self.qv_bias,
                "drop_path_rate": self.drop_path_rate,
                "dropout_rate": self.dropout_rate,
                "attention_dropout_rate": self.attention_dropout_rate,
                "memory_saving": self.memory_saving,
            }
        )
        return config
