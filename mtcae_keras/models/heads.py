"""Task heads: face boxes, landmarks and expression logits from a decoder's tokens."""

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="mtcae_keras")
class TaskHead(keras.layers.Layer):
    """`FC(Pool(Norm(Y)))` (paper eq. 7-9) or `FC(Dropout(Norm(Pool(Y))))` (notebook).

    Token mean pooling, LayerNorm, dropout and a float32 `Dense`, reshaped to `output_shape`:
    `(frames, 4)` boxes, `(frames, 10)` landmarks or `(num_classes,)` logits. The output is
    float32 under any mixed-precision policy.

    With `output_offset` and `output_scale` (the training targets' mean and standard deviation)
    the `Dense` predicts standardised targets, `output = offset + scale * Dense(x)`, and its
    kernel starts at zero, so the head starts at the training mean. Face boxes and landmarks
    in normalised coordinates vary by a few hundredths around their mean; unstandardised, the
    optimiser's step noise on a freshly initialised `Dense` is larger than that variation
    (issue 4 notes). The loss is unchanged: it is computed on the de-standardised output.

    Args:
        output_shape: tuple of int. Shape of one example's output.
        norm_first: bool. Norm the tokens before pooling (the paper's order) instead of after
            (the notebook's); the parameter count is the same.
        dropout_rate: float. Dropout before the `Dense`.
        layer_norm_epsilon: float. LayerNorm epsilon.
        output_offset: None, float or nested list broadcastable to `output_shape`.
        output_scale: None, float or nested list broadcastable to `output_shape`; needs
            `output_offset` (and vice versa).
        **kwargs: base layer arguments.
    """

    def __init__(
        self,
        output_shape,
        norm_first=False,
        dropout_rate=0.1,
        layer_norm_epsilon=1e-6,
        output_offset=None,
        output_scale=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (output_offset is None) != (output_scale is None):
            raise ValueError("Pass both output_offset and output_scale, or neither.")
        self.head_output_shape = tuple(output_shape)
        self.norm_first = norm_first
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.output_offset = _as_list(output_offset)
        self.output_scale = _as_list(output_scale)
        if self.output_scale is not None:
            for name, value in (("output_offset", self.output_offset),
                                ("output_scale", self.output_scale)):  # fmt: skip
                try:
                    np.broadcast_to(np.asarray(value, np.float32), self.head_output_shape)
                except ValueError:
                    raise ValueError(
                        f"{name} of shape {np.shape(value)} does not broadcast to the output "
                        f"shape {self.head_output_shape}."
                    ) from None

    def build(self, input_shape):
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="norm"
        )
        self.norm.build(input_shape)
        self.dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=self.dtype_policy, name="dropout"
        )
        standardised = self.output_scale is not None
        self.dense = keras.layers.Dense(
            math.prod(self.head_output_shape),
            kernel_initializer="zeros" if standardised else "glorot_uniform",
            dtype="float32",
            name="dense",
        )
        self.dense.build((input_shape[0], input_shape[-1]))
        self.built = True

    def call(self, inputs, training=None):
        if self.norm_first:
            x = ops.mean(self.norm(inputs), axis=1)
        else:
            x = self.norm(ops.mean(inputs, axis=1))
        x = self.dense(self.dropout(x, training=training))
        x = ops.reshape(ops.cast(x, "float32"), (-1,) + self.head_output_shape)
        if self.output_scale is not None:
            x = x * np.asarray(self.output_scale, np.float32) + np.asarray(
                self.output_offset, np.float32
            )
        return x

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
                "output_offset": self.output_offset,
                "output_scale": self.output_scale,
            }
        )
        return config


def _as_list(value):
    """A config-safe (JSON) copy of an array-like, or None."""
    return None if value is None else np.asarray(value, np.float32).tolist()
