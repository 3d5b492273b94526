"""Groups LGI-Former tokens by region and prepends each region's representative token."""

import keras
from keras import ops


def region_grid(token_grid, region_size):
    """Regions per axis, `(nt, nh, nw)`, for a token grid `(T, H, W)` and a region size.

    Raises:
        ValueError: when an axis of the grid is not a multiple of the region's.
    """
    token_grid, region_size = tuple(token_grid), tuple(region_size)
    if len(region_size) != 3 or any(g % r for g, r in zip(token_grid, region_size, strict=True)):
        raise ValueError(
            f"The token grid {token_grid} (frames / tubelet, height / patch, width / patch) is "
            f"not divisible by region_size={region_size}: choose a region size that divides "
            "it on every axis (MAE-DFER: (2, 5, 10) for the 8x10x10 grid of 16x160x160 clips)."
        )
    return tuple(g // r for g, r in zip(token_grid, region_size, strict=True))


@keras.saving.register_keras_serializable(package="mtcae_keras")
class LGIFormerRegionPartition(keras.layers.Layer):
    """`(B, T*H*W, C)` raster tokens -> `(B, regions, 1 + t*h*w, C)` region groups.

    The reference's `rearrange(x, 'b (nt t nh h nw w) c -> b (nt nh nw) (t h w) c')`, then
    one learnable representative token per region (`lg_region_tokens`, `(regions, C)`,
    truncated-normal std 0.02 as the reference) placed first in its group.

    Args:
        token_grid: `(T, H, W)` tokens per axis.
        region_size: `(t, h, w)` tokens per region and axis; must divide `token_grid`.
        **kwargs: base layer arguments.
    """

    def __init__(self, token_grid, region_size, **kwargs):
        super().__init__(**kwargs)
        self.token_grid = tuple(token_grid)
        self.region_size = tuple(region_size)
        self.region_counts = region_grid(self.token_grid, self.region_size)
        self.num_regions = self.region_counts[0] * self.region_counts[1] * self.region_counts[2]

    def build(self, input_shape):
        self.lg_region_tokens = self.add_weight(
            shape=(self.num_regions, input_shape[-1]),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="lg_region_tokens",
        )
        self.built = True

    def call(self, inputs):
        (nt, nh, nw), (t, h, w) = self.region_counts, self.region_size
        width = inputs.shape[-1]
        x = ops.reshape(inputs, (-1, nt, t, nh, h, nw, w, width))
        x = ops.transpose(x, (0, 1, 3, 5, 2, 4, 6, 7))  # (B, nt, nh, nw, t, h, w, C)
        x = ops.reshape(x, (-1, self.num_regions, t * h * w, width))
        region = ops.cast(self.lg_region_tokens, x.dtype)[None, :, None]
        region = ops.broadcast_to(region, (ops.shape(x)[0], self.num_regions, 1, width))
        return ops.concatenate([region, x], axis=2)

    def compute_output_shape(self, input_shape):
        t, h, w = self.region_size
        return (input_shape[0], self.num_regions, 1 + t * h * w, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"token_grid": list(self.token_grid), "region_size": list(self.region_size)})
        return config
