"""uint8 clips -> the model's input: frames resized, pixels normalised (the one place both live).

The tf.data pipeline (`input_pipeline.normalize_video` / `resize_video`), the SavedModel's
serving function (`export_saved_model`) and `MTCAEDFER.predict_video` all go through
`normalize_pixels` and `resize_frames`, so a clip is prepared the same way in training, in
serving and in a notebook.
"""

import keras
import numpy as np
from keras import ops

# Pixel normalisation. ImageNet's (VideoMAE, MAE-DFER) by default; the public notebook's
# copy slip (std 0.225 on all channels) as an option.
NORMALIZATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "notebook": ((0.485, 0.456, 0.406), (0.225, 0.225, 0.225)),
}


def normalization_constants(normalization):
    """`(mean, std)` of a `NORMALIZATIONS` name."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"Unknown normalization {normalization!r}; choose one of {sorted(NORMALIZATIONS)}."
        )
    return NORMALIZATIONS[normalization]


def normalize_pixels(video, normalization="imagenet"):
    """uint8 (or float 0..255) `(..., 3)` -> float32 `(x / 255 - mean) / std`.

    With a known width the per-channel constants are tiled along each row of pixels
    (`(..., W * 3)`): the same values, op for op, but TensorFlow's CPU kernels broadcast a
    `(3,)` constant over the last axis several times slower (19.5 vs 5.3 ms per batch of
    32 16x64x64 clips in the tf.data pipeline, 2 cores; `bench/demo_profile.py`).
    """
    mean, std = (np.asarray(v, np.float32) for v in normalization_constants(normalization))
    video = ops.cast(video, "float32") / 255.0
    try:
        width = video.shape[-2] if len(video.shape) >= 2 else None
    except ValueError:  # a TensorFlow tensor of unknown rank
        width = None
    if width is None:
        return (video - mean) / std
    rows = ops.reshape(video, (-1, width * 3))
    rows = (rows - np.tile(mean, width)) / np.tile(std, width)
    return ops.reshape(rows, ops.shape(video))


def resize_frames(video, image_size):
    """Every frame of `(..., H, W, 3)` clips resized to `image_size` `(height, width)`.

    Bilinear with antialiasing (a 224 -> 160 reduction otherwise aliases), float32 out; clips
    already of that size are returned as they are. Boxes and landmarks are fractions of the
    frame, so they stay valid.
    """
    image_size = tuple(int(v) for v in image_size)
    if tuple(video.shape[-3:-1]) == image_size:
        return video
    shape = ops.shape(video)
    frames = ops.reshape(ops.cast(video, "float32"), (-1, *shape[-3:]))
    resized = ops.image.resize(frames, image_size, interpolation="bilinear", antialias=True)
    return ops.reshape(resized, (*shape[:-3], *image_size, 3))


@keras.saving.register_keras_serializable(package="mtcae_keras")
class VideoPreprocessor(keras.layers.Layer):
    """Decoded uint8 clips `(B, T, H, W, 3)` -> normalised float32 model input.

    Args:
        image_size: `(height, width)` the frames are resized to, or None to keep them.
        normalization: str. A key of `NORMALIZATIONS` (the one the model was trained with).
        **kwargs: `Layer` arguments; the dtype policy is float32 whatever the global one.
    """

    def __init__(self, image_size=None, normalization="imagenet", **kwargs):
        kwargs["dtype"] = "float32"  # pixels stay float32 under mixed precision
        super().__init__(**kwargs)
        normalization_constants(normalization)  # a clear error at construction
        self.image_size = None if image_size is None else tuple(int(v) for v in image_size)
        self.normalization = normalization

    def call(self, video):
        if self.image_size is not None:
            video = resize_frames(video, self.image_size)
        return normalize_pixels(video, self.normalization)

    def compute_output_shape(self, input_shape):
        if self.image_size is None:
            return tuple(input_shape)
        return (*input_shape[:-3], *self.image_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)  # always float32
        image_size = None if self.image_size is None else list(self.image_size)
        return {**config, "image_size": image_size, "normalization": self.normalization}
