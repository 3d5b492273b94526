"""Pixel targets of masked video pre-training: VideoMAE's appearance, MAE-DFER's joint one."""

from keras import ops

TARGETS = ("appearance", "appearance_motion")


def patchify(video, patch_size, tubelet_size):
    """`(B, T, H, W, C)` -> `(B, N, tubelet * patch * patch, C)`, tokens in `(t, h, w)` raster
    order and each token's pixels in `(frame, row, column)` order, as both references cut them
    (`'b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c'`)."""
    _, frames, height, width, channels = video.shape
    t, p = tubelet_size, patch_size
    x = ops.reshape(video, (-1, frames // t, t, height // p, p, width // p, p, channels))
    x = ops.transpose(x, (0, 1, 3, 5, 2, 4, 6, 7))  # (B, T', H', W', t, p, p, C)
    return ops.reshape(x, (-1, (frames // t) * (height // p) * (width // p), t * p * p, channels))


def reconstruction_targets(
    pixels, patch_size, tubelet_size, norm_pix_loss=True, target="appearance"
):
    """What the decoder learns to predict for every token, `(B, N, tubelet * p * p * C)`.

    Args:
        pixels: `(B, T, H, W, C)` clips in [0, 1] (un-normalised, as the references compute
            their targets).
        patch_size: int. Spatial patch side.
        tubelet_size: int. Frames per tubelet.
        norm_pix_loss: bool. Standardise each token's pixels per channel (mean and unbiased
            standard deviation over the tubelet's pixels, `+ 1e-6` after the square root).
        target: `"appearance"` (VideoMAE: the pixels) or `"appearance_motion"` (MAE-DFER's
            `use_frame_diff_as_target`: in each tubelet the first frame as it is and every
            later frame minus the first, after the standardisation).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}; got {target!r}.")
    patches = patchify(ops.cast(pixels, "float32"), patch_size, tubelet_size)
    if norm_pix_loss:
        count = patches.shape[-2]
        mean = ops.mean(patches, axis=-2, keepdims=True)
        variance = ops.sum(ops.square(patches - mean), axis=-2, keepdims=True) / (count - 1)
        patches = (patches - mean) / (ops.sqrt(variance) + 1e-6)
    batch, tokens, size, channels = patches.shape
    if target == "appearance_motion":
        frames = ops.reshape(patches, (-1, tokens, tubelet_size, size // tubelet_size, channels))
        first = frames[:, :, :1]
        frames = ops.concatenate([first, frames[:, :, 1:] - first], axis=2)
        patches = ops.reshape(frames, (-1, tokens, size, channels))
    return ops.reshape(patches, (-1, tokens, size * channels))
