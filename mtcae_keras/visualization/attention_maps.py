"""Where the decoders look: their cross-attention over the encoder's tokens, on the frames.

Each ViT decoder's query is the previous task's stream (the cascade) and its keys / values the
encoder's tokens. `decoder_attention` runs a trained model's decoders on a clip with their
attention scores returned; `tokens_to_frames` maps a weight per token back to the pixels of
its tubelet (`tubelet_size` frames x `patch_size` x `patch_size` pixels; the tokens in
`(t, h, w)` raster order, as both encoders give them); `plot_attention` overlays the maps on
the frames, one row per decoder.
"""

import numpy as np

from mtcae_keras.models.backbone import Backbone
from mtcae_keras.models.vit_decoder import ViTDecoder
from mtcae_keras.visualization.figures import pyplot
from mtcae_keras.visualization.figures import save_figure


def decoder_attention(model, pixels, layer=-1):
    """`{decoder name: (B, heads, queries, tokens)}` attention of each ViT decoder of `model`.

    The decoders are called on the very query and memory tensors the model feeds them (an
    intermediate model of the trained graph gives both), with `return_attention_scores`, in
    inference mode. Each row (a head and query) sums to one over the memory tokens.

    Args:
        model: a `build_mtcae_model` model or an `MTCAEDFER` with ViT decoders (not `stl` or
            the MLP strategies, which have no cross-attention).
        pixels: normalised clips `(B, frames, H, W, 3)`, the model's input.
        layer: int. Which decoder layer's attention (the last by default).

    Raises:
        ValueError: the model has no ViT decoder.
    """
    import keras

    decoders = [item for item in model.layers if isinstance(item, ViTDecoder)]
    if not decoders:
        raise ValueError(f"{model.name} has no ViT decoder (stl and MLP strategies attend to"
                         " nothing): no attention to show.")  # fmt: skip
    inputs = keras.Model(model.input, [list(decoder.input) for decoder in decoders])
    fed = inputs(pixels, training=False)
    scores = {}
    for decoder, (query, memory) in zip(decoders, fed, strict=True):
        _, per_layer = decoder(query, memory, training=False, return_attention_scores=True)
        scores[decoder.name] = np.asarray(per_layer[layer], np.float32)
    return scores


def encoder_of(model):
    """The model's encoder (its `Backbone` layer)."""
    return next(item for item in model.layers if isinstance(item, Backbone))


def tokens_to_frames(weights, num_frames, image_size, patch_size=16, tubelet_size=2):
    """A weight per token `(B, tokens)` -> per pixel `(B, num_frames, H, W)`: every pixel of a
    token's tubelet gets its weight.

    Args:
        weights: `(B, tokens)` with tokens in `(t, h, w)` raster order.
        num_frames: int. Frames of the clip (tokens in time: num_frames / tubelet_size).
        image_size: int or `(H, W)`.
        patch_size: int. Pixels per token side.
        tubelet_size: int. Frames per token.
    """
    height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
    grid = (num_frames // tubelet_size, height // patch_size, width // patch_size)
    weights = np.asarray(weights)
    if weights.shape[-1] != grid[0] * grid[1] * grid[2]:
        tubelet = f"{tubelet_size}x{patch_size}x{patch_size}"
        raise ValueError(f"{weights.shape[-1]} tokens do not tile a {num_frames}x{height}x"
                         f"{width} clip in {tubelet} tubelets.")  # fmt: skip
    volume = weights.reshape(weights.shape[0], *grid)
    volume = volume.repeat(tubelet_size, axis=1).repeat(patch_size, axis=2)
    return volume.repeat(patch_size, axis=3)


def attention_maps(model, pixels, layer=-1):
    """`{decoder name: (B, frames, H, W)}`: each decoder's attention, averaged over heads and
    queries, on the pixels of the clip; with an LGI-Former encoder also
    `representative_tokens` (`region_attention` of its last block)."""
    from mtcae_keras.models.lgi_former_backbone import LGIFormerBackbone

    encoder = encoder_of(model)
    frames, height, width = pixels.shape[1:4]

    def on_pixels(per_token):
        return tokens_to_frames(per_token, frames, (height, width), encoder.patch_size,
                                encoder.tubelet_size)  # fmt: skip

    maps = {name: on_pixels(scores.mean(axis=(1, 2)))  # heads and queries
            for name, scores in decoder_attention(model, pixels, layer).items()}  # fmt: skip
    if isinstance(encoder, LGIFormerBackbone):
        maps["representative_tokens"] = on_pixels(region_attention(encoder, pixels))
    return maps


def region_attention(backbone, pixels, block=-1):
    """An LGI-Former's representative tokens looking at their regions, on the token grid.

    In each block's first (local) attention, a region's representative token attends to
    the region's local tokens (and itself). This returns that row, averaged over heads, for
    every region, each local token's weight put back at its place in the `(t, h, w)` grid:
    `(B, T*H*W)` in raster order, ready for `tokens_to_frames`. Each region's weights sum to
    one less the representative token's weight on itself.

    Args:
        backbone: an `LGIFormerBackbone` (alone, or `encoder_of` a model).
        pixels: normalised clips `(B, frames, H, W, 3)`.
        block: int. Which block's local attention (the last by default).
    """
    import keras

    from mtcae_keras.models.lgi_former_backbone import LGIFormerBackbone

    if not isinstance(backbone, LGIFormerBackbone):
        raise ValueError(f"{type(backbone).__name__} has no representative tokens: region"
                         " attention is an LGI-Former's.")  # fmt: skip
    layer = backbone.get_layer(f"blocks_{range(backbone.num_layers)[block]}")
    grouped = keras.Model(backbone.input, layer.input)(pixels)  # (B, regions, 1 + r, C)
    _, regions, size, width = grouped.shape
    local = keras.ops.reshape(grouped, (-1, size, width))
    probabilities = layer.first_attn.attention_probabilities(layer.first_attn_norm0(local))
    weights = np.asarray(probabilities)[:, :, 0, 1:].mean(axis=1)  # representative row
    return regions_to_raster(weights, backbone)


def regions_to_raster(values, backbone):
    """Per-region values `(B * regions, tokens per region)`, in the order the LGI-Former's
    `regions` layer groups the tokens, -> `(B, T*H*W)` in raster order (its inverse)."""
    partition = backbone.get_layer("regions")
    (nt, nh, nw), (t, h, w) = partition.region_counts, partition.region_size
    values = np.asarray(values).reshape(-1, nt, nh, nw, t, h, w).transpose(0, 1, 4, 2, 5, 3, 6)
    return values.reshape(values.shape[0], nt * t * nh * h * nw * w)


def plot_attention(frames, maps, path, title=None, columns=8):
    """Writes the frames with each map overlaid as a heat map: one row per decoder.

    Args:
        frames: uint8 `(T, H, W, 3)`: the clip as the model saw it.
        maps: `{row name: (T, H, W)}` (`attention_maps` of one clip).
        path: str. The PNG to write.
        title: str. The figure's title (e.g. the predicted class).
        columns: int. Evenly spaced frames shown.
    """
    plt = pyplot()
    shown = np.round(np.linspace(0, len(frames) - 1, min(columns, len(frames)))).astype(int)
    figure, axes = plt.subplots(len(maps), len(shown), squeeze=False,
                                figsize=(1.6 * len(shown), 1.7 * len(maps) + 0.4))  # fmt: skip
    for row, (name, volume) in enumerate(maps.items()):
        scale = float(volume.max()) or 1.0
        for column, t in enumerate(shown):
            axis = axes[row, column]
            axis.imshow(frames[t])
            axis.imshow(volume[t] / scale, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                axis.set_ylabel(name.removesuffix("_decoder"), fontsize=9)
            if row == 0:
                axis.set_title(f"frame {t}", fontsize=8)
    return save_figure(figure, path, title)
