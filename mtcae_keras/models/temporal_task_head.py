"""The ABAW4 system's per-frame task head (AIM3-RUC/ABAW4's `FcRegressor` / `FcClassifier`)."""

import keras


@keras.saving.register_keras_serializable(package="mtcae_keras")
class TemporalTaskHead(keras.layers.Layer):
    """Dropout, then `Dense + ReLU + Dropout` per hidden width, then `fc_out`; per time step.

    Returns the outputs and the last hidden features (what the feature-feedback framework
    passes, gradient stopped, to another task).

    Args:
        hidden_dims: tuple of int. Widths of the hidden layers (the code's `regress_layers`).
        output_dim: int. Outputs per step (1 for valence or arousal, classes, action units).
        dropout_rate: float. Dropout on the input and after each hidden layer.
        **kwargs: base layer arguments.

    Call arguments:
        x: `(batch, steps, width)`.

    Returns:
        `(outputs (batch, steps, output_dim), features (batch, steps, hidden_dims[-1]))`.
    """

    def __init__(self, hidden_dims=(256, 128), output_dim=1, dropout_rate=0.3, **kwargs):
        super().__init__(**kwargs)
        if not hidden_dims:
            raise ValueError("hidden_dims needs at least one width (the code's regress_layers).")
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
        return self.fc_out(x), x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim), (*input_shape[:-1], self.hidden_dims[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_dims": list(self.hidden_dims), "output_dim": self.output_dim,
                       "dropout_rate": self.dropout_rate})  # fmt: skip
        return config
