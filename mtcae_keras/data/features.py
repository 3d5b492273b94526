"""The TFDS features every builder shares (design.md, "Dataset features")."""

import numpy as np
import tensorflow_datasets as tfds


def multitask_features(num_frames, image_size, class_names, **metadata):
    """`FeaturesDict` of video, boxes, landmarks, face_found, label, actor, clip_id + metadata.

    Args:
        num_frames: int. Frames per clip.
        image_size: int. Frame side.
        class_names: list of str for the `label` ClassLabel.
        **metadata: extra per-example features of the dataset (name -> feature).
    """
    return tfds.features.FeaturesDict(
        {
            "video": tfds.features.Video(
                shape=(num_frames, image_size, image_size, 3), encoding_format="jpeg"
            ),
            "boxes": tfds.features.Tensor(shape=(num_frames, 4), dtype=np.float32),
            "landmarks": tfds.features.Tensor(shape=(num_frames, 10), dtype=np.float32),
            "face_found": tfds.features.Tensor(shape=(num_frames,), dtype=np.bool_),
            "label": tfds.features.ClassLabel(names=class_names),
            "actor": tfds.features.Text(),
            "clip_id": tfds.features.Text(),
            **metadata,
        }
    )
