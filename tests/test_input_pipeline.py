import numpy as np
import pytest
import tensorflow as tf

from mtcae_keras.data.input_pipeline import fold_splits
from mtcae_keras.data.input_pipeline import normalize_video
from mtcae_keras.data.input_pipeline import random_translate
from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer


def _clip():
    clip = SyntheticFaceRenderer(image_size=96, num_frames=4, nuisance=False).render(2, "FEA", 0)
    return {k: tf.constant(clip[k]) for k in ("video", "boxes", "landmarks")}, clip


@pytest.mark.parametrize("shift", [(5, -7), (-3, 4), (0, 0)])
def test_translation_moves_the_labels_with_the_pixels(shift):
    example, clip = _clip()
    moved = random_translate(example, shift=shift)
    dy, dx = shift
    for t in range(4):
        before = np.round(clip["landmarks"][t].reshape(5, 2) * 96).astype(int)
        after = np.round(moved["landmarks"][t].numpy().reshape(5, 2) * 96).astype(int)
        np.testing.assert_array_equal(after - before, [[dx, dy]] * 5)
        for (x0, y0), (x1, y1) in zip(before, after, strict=True):  # same pixel content
            np.testing.assert_array_equal(clip["video"][t, y0, x0], moved["video"][t, y1, x1])
    np.testing.assert_allclose(
        moved["boxes"][:, :2].numpy(), clip["boxes"][:, :2] + [dx / 96, dy / 96], atol=1e-6
    )
    assert moved["video"].shape == (4, 96, 96, 3)


def test_random_shifts_stay_within_the_limit():
    example, clip = _clip()
    for seed in range(10):
        moved = random_translate(example, max_shift=0.05, seed=seed)
        delta = (moved["landmarks"].numpy() - clip["landmarks"]).reshape(-1, 2) * 96
        assert np.abs(delta).max() <= round(0.05 * 96) + 1e-3


def test_fold_splits_and_normalisation():
    assert fold_splits(5, 4) == {
        "train": ["fold1", "fold2", "fold3"], "validation": ["fold0"], "test": ["fold4"]
    }  # fmt: skip
    with pytest.raises(ValueError, match="fold must be in"):
        fold_splits(5, 5)
    pixels = normalize_video(tf.constant([[[[255, 0, 124]]]], tf.uint8))
    np.testing.assert_allclose(
        pixels.numpy().reshape(3),
        [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (124 / 255 - 0.406) / 0.225], rtol=1e-5
    )  # fmt: skip
