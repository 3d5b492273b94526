"""Tests of the synthetic_faces builder and its renderer's labels."""

import hashlib
import multiprocessing
import os
from unittest import mock

import numpy as np
import tensorflow_datasets as tfds

from mtcae_keras.data.synthetic_face_renderer import ACTION_UNITS
from mtcae_keras.data.synthetic_face_renderer import AFFECT_PROTOTYPES
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


def test_generation_is_deterministic_in_one_process_or_drawn_by_workers(tmp_path):
    """Two builds give the same bytes: one drawn in this process, one by forked workers."""
    from mtcae_keras.data import rendered_clips as module

    digests, pools = [], []
    for run, min_clips in (("a", 10**9), ("b", 1)):  # b: every split through a pool
        contexts = mock.Mock(wraps=multiprocessing.get_context)
        with (
            mock.patch.object(module, "POOL_MIN_CLIPS", min_clips),
            mock.patch.object(module.os, "sched_getaffinity", return_value={0, 1}),
            mock.patch.object(module.multiprocessing, "get_context", contexts),
        ):
            builder = synthetic_faces_dataset_builder.Builder(
                config="tiny", data_dir=str(tmp_path / run)
            )
            builder.download_and_prepare()
        pools.append([call.args for call in contexts.call_args_list])
        folder = builder.data_dir
        records = sorted(f for f in os.listdir(folder) if ".tfrecord" in f)
        digest = hashlib.sha256()
        for name in records:
            with open(os.path.join(folder, name), "rb") as file:
                digest.update(file.read())
        digests.append((records, digest.hexdigest()))
    assert pools == [[], [("fork",)] * 5]  # one pool of workers per split in run b
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


# sha256 of video, boxes, landmarks, face_found and strength of four clips as renderer 1.2.0
# drew them (before the per-frame affect labels): 1.3.0 keeps every earlier output.
RENDERER_1_2_0_DIGEST = "1eb7849588075eae4ed5843ceeb5e3b995de30a581d13226e4949d2068c6e90f"


def test_affect_labels_leave_the_earlier_outputs_unchanged():
    renderer = SyntheticFaceRenderer(image_size=64, num_frames=16, seed=0)
    digest = hashlib.sha256()
    for actor, label, clip in [(0, "HAP", 0), (3, "DIS", 1), (7, "FEA", 2), (11, "NEU", 0)]:
        example = renderer.render(actor, label, clip)
        for key in ("video", "boxes", "landmarks", "face_found"):
            digest.update(np.ascontiguousarray(example[key]).tobytes())
        digest.update(repr(float(example["strength"])).encode())
    assert digest.hexdigest() == RENDERER_1_2_0_DIGEST


def _exact_colour_pixels(frame, mask, colour):
    return int((np.abs(frame.astype(int) - np.rint(colour)).max(-1)[mask] == 0).sum())


def test_lips_part_and_nose_crease_units_are_on_where_they_are_drawn():
    """AU10 is on exactly in the frames where the disgust creases show (their exact colour
    inside the head, skin x 0.4). AU25 is on wherever the teeth show (their colour) and off
    only where they do not; in a barely open mouth the lip lines still cover the teeth, so
    there AU25 can be on with no tooth pixel."""
    renderer = SyntheticFaceRenderer(image_size=224, nuisance=False)
    au25, au10 = ACTION_UNITS.index("AU25"), ACTION_UNITS.index("AU10")
    seen = {"teeth": set(), "creases": set()}
    for label in ("HAP", "FEA", "DIS", "ANG"):
        clip = renderer.render(5, label, 1, return_masks=True)
        crease = renderer.identity(5)["skin"] * 0.4
        for t in range(16):
            frame, mask = clip["video"][t], clip["face_mask"][t]
            teeth = _exact_colour_pixels(frame, mask, (240, 240, 230)) > 0
            creases = _exact_colour_pixels(frame, mask, crease) > 0
            assert not teeth or clip["action_units"][t, au25], (label, t)
            assert bool(clip["action_units"][t, au10]) == creases, (label, t)
            seen["teeth"].add(teeth)
            seen["creases"].add(creases)
        if label in ("HAP", "FEA"):  # at the apex the teeth show
            assert _exact_colour_pixels(clip["video"][-1], clip["face_mask"][-1],
                                        (240, 240, 230)) > 0  # fmt: skip
        if label == "ANG":  # a pressed mouth: no teeth and no AU25 anywhere
            assert not clip["action_units"][:, au25].any()
    assert seen == {"teeth": {False, True}, "creases": {False, True}}  # both states met


APEX_UNITS = {"NEU": set(), "HAP": {"AU6", "AU7", "AU12", "AU25"}, "SAD": {"AU1", "AU7", "AU15"},
              "ANG": {"AU4", "AU7", "AU23", "AU24"}, "FEA": {"AU2", "AU25", "AU26"},
              "DIS": {"AU4", "AU10", "AU15", "AU25"}}  # fmt: skip


def test_each_expression_draws_its_action_units_and_affect_grows_with_it():
    renderer = SyntheticFaceRenderer(image_size=32)
    for label in CLASS_NAMES:
        for actor in range(6):
            clip = renderer.render(actor, label, actor % 3)
            units = clip["action_units"]
            apex = {ACTION_UNITS[u] for u in np.flatnonzero(units[-1])}
            assert APEX_UNITS[label] <= apex, (label, actor, apex)
            if label == "NEU":
                assert not units.any() and not clip["valence"].any() and not clip["arousal"].any()
                continue
            assert not units[0].any()  # the first frame is neutral
            v, a = clip["valence"], clip["arousal"]
            prototype = np.array(AFFECT_PROTOTYPES[label])
            assert v[0] == 0 and a[0] == 0 and (np.diff(np.abs(v)) >= 0).all()
            # one intensity per frame drives both: (v, a) stays on the prototype's ray
            np.testing.assert_allclose(v * prototype[1], a * prototype[0], atol=1e-6)
            intensity = v[-1] / prototype[0]
            assert 0.7 * 0.99 <= intensity <= 1.0 and np.isclose(intensity, clip["strength"],
                                                                 rtol=1e-5)  # fmt: skip


def test_the_builder_stores_the_per_frame_affect_labels(tmp_path):
    builder = synthetic_faces_dataset_builder.Builder(config="tiny", data_dir=str(tmp_path))
    builder.download_and_prepare()
    assert str(builder.info.version) == "1.3.0"
    renderer = SyntheticFaceRenderer(32, 16, 0)
    for example in tfds.as_numpy(builder.as_dataset(split="fold2").take(2)):
        label = CLASS_NAMES[example["label"]]
        clip = renderer.render(int(example["actor"].decode()[1:]), label,
                               int(example["clip_id"].decode()[-2:]))  # fmt: skip
        np.testing.assert_array_equal(example["valence"], clip["valence"])
        np.testing.assert_array_equal(example["arousal"], clip["arousal"])
        np.testing.assert_array_equal(example["action_units"], clip["action_units"])
        assert example["action_units"].shape == (16, 12)
