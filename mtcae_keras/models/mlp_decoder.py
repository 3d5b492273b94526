"""The MLP decoder of the paper's ablation strategies (no attention)."""

import keras


def check_mlp_dims(mlp_dims, hidden_dim):
    """The MLP of a residual decoder layer must end at the stream width."""
    mlp_dims = tuple(mlp_dims)
    if mlp_dims[-1] != hidden_dim:
        raise ValueError(
            f"The MLP must end at hidden_dim={hidden_dim} for the residual; got mlp_dims="
            f"{mlp_dims}."
        )
    return mlp_dims


def build_gelu_mlp(dims, input_shape, dtype_policy, prefix):
    """Built `Dense(units, gelu)` layers of widths `dims` (shared by both decoders).

    Args:
        dims: tuple of int. Widths.
        input_shape: tuple. Shape of the MLP's input.
        dtype_policy: dtype policy of the layers.
        prefix: str. Layer names are `{prefix}_{j}`.
    """
    layers, shape = [], tuple(input_shape)
    for j, units in enumerate(dims):
        dense = keras.layers.Dense(
            units, activation="gelu", dtype=dtype_policy, name=f"{prefix}_{j}"
        )
        dense.build(shape)
        shape = shape[:-1] + (units,)
        layers.append(dense)
    return layers


@keras.saving.register_keras_serializable(package="mtcae_keras")
class MLPDecoder(keras.layers.Layer):
    """The `ViTDecoder` with its cross-attention removed: `Y = MLP(Norm(Y)) + Y` per layer.

    Same depth, width, MLP, norms and dropout as the ViT decoder it replaces, so an ablation
    against it isolates the cross-attention. It never sees the encoder tokens except through
    its input.

    Args:
        hidden_dim: int. Width of the stream.
        num_layers: int. Layers.
        mlp_dims: tuple of int. MLP widths (GELU after each); the last must be `hidden_dim`.
        dropout_rate: float. Dropout after each MLP layer.
        layer_norm_epsilon: float. LayerNorm epsilon.
        **kwargs: base layer arguments.
    """

    def __init__(
        self,
        hidden_dim,
        num_layers,
        mlp_dims=(512, 256),
        dropout_rate=0.1,
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        mlp_dims = check_mlp_dims(mlp_dims, hidden_dim)
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.mlp_dims = mlp_dims
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if input_shape[-1] != self.hidden_dim:
            raise ValueError(f"Input width {input_shape[-1]} != hidden_dim {self.hidden_dim}.")
        self.norms, self.mlps = [], []
        for i in range(self.num_layers):
            norm = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=f"layer_{i}_norm"
            )
            norm.build(input_shape)
            self.norms.append(norm)
            self.mlps.append(
                build_gelu_mlp(self.mlp_dims, input_shape, self.dtype_policy, f"layer_{i}_mlp")
            )
        self.dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=self.dtype_policy, name="mlp_dropout"
        )
        self.built = True

    def call(self, inputs, training=None):
        y = inputs
        for norm, mlp in zip(self.norms, self.mlps, strict=True):
            z = norm(y)
            for dense in mlp:
                z = self.dropout(dense(z), training=training)
            y = y + z
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "mlp_dims": list(self.mlp_dims),
                "dropout_rate": self.dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
