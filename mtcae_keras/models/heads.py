"""Task heads: face boxes, landmarks and expression logits from a decoder's tokens."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtcae_keras")
class TaskHead(keras.layers.Layer):
    """`FC(Pool(Norm(Y)))` (paper eq. 7-9) or `FC(Dropout(Norm(Pool(Y))))` (notebook).

    Token mean pooling, LayerNorm, dropout and a float32 `Dense`, reshaped to `output_shape`:
    `(frames, 4)` boxes, `(frames, 10)` landmarks or `(num_classes,)` logits. The output is
    float32 under any mixed-precision policy.

    Args:
        output_shape: tuple of int. Shape of one example's output.
        norm_first: bool. Norm the tokens before pooling (the paper's order) instead of after
            (the notebook's); the parameter count is the same.
        dropout_rate: float. Dropout before the `Dense`.
        layer_norm_epsilon: float. LayerNorm epsilon.
        **kwargs: base layer arguments.
    """

    def __init__(
        self, output_shape, norm_first=False, dropout_rate=0.1, layer_norm_epsilon=1e-6, **kwargs
    ):
        super().__init__(**kwargs)
        self.head_output_shape = tuple(output_shape)
        self.norm_first = norm_first
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm"
        )
        self.norm.build(input_shape)
        self.dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=self.dtype_policy, name="dropout"
        )
        self.dense = keras.layers.Dense(
            math.prod(self.head_output_shape), dtype="float32", name="dense"
        )
        self.dense.build((input_shape[0], input_shape[-1]))
        self.built = True

    def call(self, inputs, training=None):
        if self.norm_first:
            x = ops.mean(self.norm(inputs), axis=1)
        else:
            x = self.norm(ops.mean(inputs, axis=1))
        x = self.dense(self.dropout(x, training=training))
        return ops.reshape(ops.cast(x, "float32"), (-1,) + self.head_output_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.head_output_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "output_shape": list(self.head_output_shape),
                "norm_first": self.norm_first,
                "dropout_rate": self.dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
