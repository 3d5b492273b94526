"""Undoes the LGI-Former region grouping: local tokens back in raster order."""

import keras
from keras import ops

from mtcae_keras.models.lgi_former_region_partition import region_grid


@keras.saving.register_keras_serializable(package="mtcae_keras")
class LGIFormerRegionMerge(keras.layers.Layer):
    """`(B, regions, 1 + t*h*w, C)` -> local tokens `(B, T*H*W, C)` and region tokens.

    The inverse of `LGIFormerRegionPartition`: the local tokens return to the `(t, h, w)`
    raster order of the tubelet embedding (the `VideoMAEBackbone` contract), the
    representative tokens come out as `(B, regions, C)`.

    Args:
        token_grid: `(T, H, W)` tokens per axis.
        region_size: `(t, h, w)` tokens per region and axis.
        **kwargs: base layer arguments.

    Returns (call):
        `(tokens, region_tokens)`.
    """

    def __init__(self, token_grid, region_size, **kwargs):
        super().__init__(**kwargs)
        self.token_grid = tuple(token_grid)
        self.region_size = tuple(region_size)
        self.region_counts = region_grid(self.token_grid, self.region_size)

    def call(self, inputs):
        (nt, nh, nw), (t, h, w) = self.region_counts, self.region_size
        width = inputs.shape[-1]
        local = ops.reshape(inputs[:, :, 1:], (-1, nt, nh, nw, t, h, w, width))
        local = ops.transpose(local, (0, 1, 4, 2, 5, 3, 6, 7))  # (B, nt, t, nh, h, nw, w, C)
        tokens = ops.reshape(local, (-1, nt * t * nh * h * nw * w, width))
        return tokens, inputs[:, :, 0]

    def compute_output_shape(self, input_shape):
        num_tokens = self.token_grid[0] * self.token_grid[1] * self.token_grid[2]
        return (
            (input_shape[0], num_tokens, input_shape[-1]),
            (input_shape[0], input_shape[1], input_shape[-1]),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"token_grid": list(self.token_grid), "region_size": list(self.region_size)})
        return config
