"""The ABAW4 system's per-frame task head (AIM3-RUC/ABAW4's `FcRegressor` / `FcClassifier`)."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="mtcae_keras")
class TemporalTaskHead(keras.layers.Layer):
    """Dropout, then `Dense + ReLU + Dropout` per hidden width, then `fc_out`; per time step.

    Returns the outputs and the last hidden features (what the feature-feedback framework
    passes, gradient stopped, to another task).

    Args:
        hidden_dims: tuple of int. Widths of the hidden layers (the code's `regress_layers`).
        output_dim: int. Outputs per step (1 for valence or arousal, classes, action units).
        dropout_rate: float. Dropout on the input and after each hidden layer.
        output_offset: None or nested list broadcastable to `(steps, output_dim)`: with
            `output_scale`, the outputs are `fc_out(x) * output_scale + output_offset` (the
            head predicts standardised targets, as `TaskHead`'s).
        output_scale: None or nested list, with `output_offset`.
        **kwargs: base layer arguments.

    Call arguments:
        x: `(batch, steps, width)`.

    Returns:
        `(outputs (batch, steps, output_dim), features (batch, steps, hidden_dims[-1]))`.
    """

    def __init__(self, hidden_dims=(256, 128), output_dim=1, dropout_rate=0.3,
                 output_offset=None, output_scale=None, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if not hidden_dims:
            raise ValueError("hidden_dims needs at least one width (the code's regress_layers).")
        if (output_offset is None) != (output_scale is None):
            raise ValueError("Pass both output_offset and output_scale, or neither.")
        self.output_offset = None if output_offset is None else np.asarray(output_offset).tolist()
        self.output_scale = None if output_scale is None else np.asarray(output_scale).tolist()
        self.hidden_dims = tuple(hidden_dims)
        self.output_dim = output_dim
        self.dropout_rate = dropout_rate

    def build(self, input_shape):
        width = input_shape[-1]
        self.hidden_layers = []
        for i, units in enumerate(self.hidden_dims):
            layer = keras.layers.Dense(units, activation="relu", dtype=self.dtype_policy,
                                       name=f"module_{i}")  # fmt: skip
            layer.build((None, None, width))
            self.hidden_layers.append(layer)
            width = units
        self.fc_out = keras.layers.Dense(self.output_dim, dtype=self.dtype_policy, name="fc_out")
        self.fc_out.build((None, None, width))
        self.dropout = keras.layers.Dropout(self.dropout_rate, dtype=self.dtype_policy)
        super().build(input_shape)

    def call(self, x, training=None):
        x = self.dropout(x, training=training)
        for layer in self.hidden_layers:
            x = self.dropout(layer(x), training=training)
        out = self.fc_out(x)
        if self.output_offset is not None:
            scale = ops.cast(np.asarray(self.output_scale, np.float32), out.dtype)
            out = out * scale + ops.cast(np.asarray(self.output_offset, np.float32), out.dtype)
        return out, x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim), (*input_shape[:-1], self.hidden_dims[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dims": list(self.hidden_dims), "output_dim": self.output_dim,
                       "dropout_rate": self.dropout_rate, "output_offset": self.output_offset,
                       "output_scale": self.output_scale})  # fmt: skip
        return config
