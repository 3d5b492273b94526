"""Tests of the synthetic_faces builder and its renderer's labels."""

import hashlib
import os

import numpy as np
import tensorflow_datasets as tfds

from mtcae_keras.data.synthetic_face_renderer import CLASS_NAMES
from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
from tfds_builders.generated_dummy_data import FoundByName
from tfds_builders.synthetic_faces import synthetic_faces_dataset_builder


class SyntheticFacesDatasetBuilderTest(FoundByName, tfds.testing.DatasetBuilderTestCase):
    """The TFDS contract: 5 folds of 6 clips (one actor each) in the `tiny` config."""

    DATASET_CLASS = synthetic_faces_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["tiny"]
    SPLITS = {f"fold{k}": 6 for k in range(5)}
    SKIP_CHECKSUMS = True


def test_renderer_labels_fall_on_the_drawn_features():
    renderer = SyntheticFaceRenderer(image_size=224, nuisance=False)
    identity = renderer.identity(3)
    for label in CLASS_NAMES:
        clip = renderer.render(3, label, 0, return_masks=True)
        for t in (0, 15):
            frame = clip["video"][t].astype(int)
            points = np.round(clip["landmarks"][t].reshape(5, 2) * 224).astype(int)
            for eye in points[:2]:  # the iris colour at each eye centre
                assert np.abs(frame[eye[1], eye[0]] - identity["iris"]).max() <= 3
            nose = frame[points[2][1], points[2][0]]
            assert np.abs(nose - identity["skin"] * 0.6).max() <= 3
            for corner in points[3:]:  # a mouth corner is on the lip line, not on skin
                patch = frame[corner[1] - 1 : corner[1] + 2, corner[0] - 1 : corner[0] + 2]
                lips = np.abs(patch - identity["lips"]).max(-1).min()
                assert lips <= 30, (label, t, lips)
            assert points[0][0] < points[1][0] and points[3][0] < points[4][0]

            mask = clip["face_mask"][t]
            x, y, w, h = clip["boxes"][t] * 224
            ys, xs = np.nonzero(mask)
            assert xs.min() >= x - 1 and xs.max() <= x + w + 1
            assert ys.min() >= y - 1 and ys.max() <= y + h + 1
            # tight: the head touches each side of its box
            assert xs.min() - x < 2 and x + w - xs.max() < 2
            assert ys.min() - y < 2 and y + h - ys.max() < 2


def test_expression_unfolds_from_neutral():
    renderer = SyntheticFaceRenderer(image_size=64)
    happy = renderer.render(1, "HAP", 0)["landmarks"]

    # mouth corners rise (y falls) relative to the eyes between the first and last frame
    def corner_height(points):
        points = points.reshape(5, 2)
        return points[3:, 1].mean() - points[:2, 1].mean()

    assert corner_height(happy[-1]) < corner_height(happy[0]) - 0.02
    sad = renderer.render(1, "SAD", 0)["landmarks"]
    assert corner_height(sad[-1]) > corner_height(sad[0]) + 0.02


def test_generation_is_deterministic(tmp_path):
    digests = []
    for run in ("a", "b"):
        builder = synthetic_faces_dataset_builder.Builder(
            config="tiny", data_dir=str(tmp_path / run)
        )
        builder.download_and_prepare()
        folder = builder.data_dir
        records = sorted(f for f in os.listdir(folder) if ".tfrecord" in f)
        digest = hashlib.sha256()
        for name in records:
            with open(os.path.join(folder, name), "rb") as file:
                digest.update(file.read())
        digests.append((records, digest.hexdigest()))
    assert digests[0] == digests[1]
    assert len(digests[0][0]) == 5


def test_folds_are_subject_independent(tmp_path):
    builder = synthetic_faces_dataset_builder.Builder(config="tiny", data_dir=str(tmp_path))
    builder.download_and_prepare()
    actors = {}
    for k in range(5):
        for example in tfds.as_numpy(builder.as_dataset(split=f"fold{k}")):
            actors.setdefault(example["actor"].decode(), set()).add(k)
            assert example["video"].shape == (16, 32, 32, 3)
            assert example["face_found"].all()
            assert (example["boxes"] >= 0).all() and (example["boxes"][:, :2] < 1).all()
    assert all(len(folds) == 1 for folds in actors.values())
    assert len(actors) == 5
    assert builder.fold_actors() == [[0], [1], [2], [3], [4]]
