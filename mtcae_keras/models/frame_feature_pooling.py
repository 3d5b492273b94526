"""Encoder tokens -> one feature vector per frame (for the temporal frameworks)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtcae_keras")
class FrameFeaturePooling(keras.layers.Layer):
    """Averages the tokens of each time step over space and repeats each step for the
    `tubelet_size` frames it covers, as MAE-DFER brings tubelet tokens back to frames for
    frame-level prediction: `(B, t * h * w, C)` in `(t, h, w)` raster order (VideoMAE and
    LGI-Former local tokens) -> `(B, t * tubelet_size, C)`.

    Args:
        token_grid: tuple `(t, h, w)` of the encoder's token grid.
        tubelet_size: int. Frames per temporal token.
        **kwargs: base layer arguments.
    """

    def __init__(self, token_grid, tubelet_size, **kwargs):
        super().__init__(**kwargs)
        self.token_grid = tuple(int(n) for n in token_grid)
        self.tubelet_size = int(tubelet_size)

    def call(self, tokens):
        t, h, w = self.token_grid
        x = ops.reshape(tokens, (-1, t, h * w, tokens.shape[-1]))
        return ops.repeat(ops.mean(x, axis=2), self.tubelet_size, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.token_grid[0] * self.tubelet_size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "token_grid": list(self.token_grid),
                "tubelet_size": self.tubelet_size}  # fmt: skip
