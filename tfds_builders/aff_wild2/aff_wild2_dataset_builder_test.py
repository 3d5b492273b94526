"""aff_wild2 on dummy data generated when the test runs (Aff-Wild2's licence forbids copying
its frames): the TFDS contract, the labels and the bad-input report, and a training step of
every ABAW4 framework on it."""

import json
import os
import tempfile

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
from tfds_builders.aff_wild2 import aff_wild2_dataset_builder as aff_wild2
from tfds_builders.generated_dummy_data import FoundByName
from tfds_builders.generated_dummy_data import GeneratedDummyData

# (video name in Aff-Wild2's naming, synthetic expression, frames, split).
VIDEOS = [
    ("1-30-1280x720", "HAP", 20, "train"),
    ("video10_1", "SAD", 5, "train"),
    ("10-60-1280x720_right", "ANG", 18, "train"),  # one frame missing, one unreadable
    ("118-30-640x480", "FEA", 17, "validation"),
]
CHALLENGE_INDEX = {"NEU": 0, "ANG": 1, "DIS": 2, "FEA": 3, "HAP": 4, "SAD": 5}
MALFORMED = [
    "1-30-1280x720/00099.jpg,0.1,0.2,3,0,0,0",  # too few fields
    "1-30-1280x720/00098.jpg,0.1,0.2,9,0,0,0,0,0,0,0,0,0,0,0,0",  # expression 9
    "1-30-1280x720/frame.png,0.1,0.2,1,0,0,0,0,0,0,0,0,0,0,0,0",  # not a frame name
]


def annotation_rows(name, label, frames):
    """The renderer's exact per-frame labels, with gaps: frame 3 lacks V/A, frame 4 its
    expression, frame 5 its action units."""
    clip = SyntheticFaceRenderer(112, frames, seed=3).render(len(name), label, 0)
    rows = []
    for t in range(frames):
        v, a = (-5.0, -5.0) if t == 3 else (clip["valence"][t], clip["arousal"][t])
        e = -1 if t == 4 else CHALLENGE_INDEX[label]
        units = [-1] * 12 if t == 5 else clip["action_units"][t].astype(int).tolist()
        rows.append((f"{name}/{t + 1:05d}.jpg", v, a, e, units))
    return clip["video"], rows


def write_dummy_data(root):
    for split in ("train", "validation"):
        lines = [",".join(aff_wild2.HEADER)]
        for name, label, frames, video_split in VIDEOS:
            if video_split != split:
                continue
            video, rows = annotation_rows(name, label, frames)
            os.makedirs(os.path.join(root, "cropped_aligned", name))
            for t, (path, v, a, e, units) in enumerate(rows):
                if (name, t) == ("10-60-1280x720_right", 6):
                    pass  # annotated but its image is missing
                elif (name, t) == ("10-60-1280x720_right", 7):
                    with open(os.path.join(root, "cropped_aligned", path), "wb") as file:
                        file.write(b"not a jpeg")
                else:
                    bgr = cv2.cvtColor(video[t], cv2.COLOR_RGB2BGR)
                    cv2.imwrite(os.path.join(root, "cropped_aligned", path), bgr)
                lines.append(",".join([path, f"{v:.6f}", f"{a:.6f}", str(e), *map(str, units)]))
        if split == "train":
            lines += MALFORMED
        with open(os.path.join(root, aff_wild2.ANNOTATIONS[split]), "w") as file:
            file.write("\n".join(lines) + "\n")


class AffWild2Test(FoundByName, GeneratedDummyData, tfds.testing.DatasetBuilderTestCase):
    """16-frame segments: 20 -> 2, 5 -> 1, 18 -> 2 (train); 17 -> 2 (validation)."""

    DATASET_CLASS = aff_wild2.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["mtl_16"]
    SPLITS = {"train": 5, "validation": 2}
    SKIP_CHECKSUMS = True
    EXAMPLE_DIR = tempfile.mkdtemp(prefix="aff_wild2_dummy_")
    write_dummy_data = staticmethod(write_dummy_data)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("aff_wild2")
    write_dummy_data(str(root / "manual"))
    builder = aff_wild2.Builder(config="mtl_16", data_dir=str(root / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root / "manual"))
    )
    return builder


def test_segments_keep_the_annotations_and_pad_the_last(built):
    examples = {e["clip_id"].decode(): e for e in tfds.as_numpy(built.as_dataset(split="train"))}
    first = examples["1-30-1280x720_0000"]
    video, rows = annotation_rows("1-30-1280x720", "HAP", 20)
    assert first["frame_present"].all() and list(first["frame_index"]) == list(range(1, 17))
    np.testing.assert_allclose(first["valence"][:3], [r[1] for r in rows[:3]], atol=1e-6)
    assert first["valence"][3] == -5 and first["arousal"][3] == -5  # missing V/A kept missing
    assert first["expression"][4] == -1 and first["expression"][0] == 4  # HAP = Happiness
    assert (first["action_units"][5] == -1).all()
    np.testing.assert_array_equal(first["action_units"][6], rows[6][4])
    assert np.abs(first["video"][0].astype(int) - video[0]).mean() < 10  # the frame (2x JPEG)
    last = examples["1-30-1280x720_0001"]  # frames 17-20, then padding
    assert list(last["frame_present"]) == [True] * 4 + [False] * 12
    assert (last["valence"][4:] == -5).all() and (last["expression"][4:] == -1).all()
    assert (last["frame_index"][4:] == -1).all() and not last["video"][4:].any()
    broken = examples["10-60-1280x720_right_0000"]
    assert not broken["frame_present"][6] and not broken["frame_present"][7]
    assert broken["expression"][6] == -1 and broken["valence"][7] == -5  # labels dropped too


def test_bad_input_is_reported_not_hidden(built):
    with open(built._report_path()) as file:
        report = json.load(file)
    train = report["train"]
    assert len(train["malformed_lines"]) == 3 and train["videos"] == 3
    assert "expression outside 0-7" in " ".join(train["malformed_lines"])
    assert train["missing_images"] == ["cropped_aligned/10-60-1280x720_right/00007.jpg"]
    assert train["unreadable_images"] == ["cropped_aligned/10-60-1280x720_right/00008.jpg"]
    assert train["segments"] == 5 and report["validation"]["segments"] == 2


def test_every_framework_trains_a_step_on_it(built):
    """Frames -> a tiny VideoMAE's tokens pooled per frame -> each ABAW4 framework, with the
    masked losses on V, A, expression and AUs (the padded and missing labels left out)."""
    import keras

    from mtcae_keras import VideoMAEBackbone
    from mtcae_keras import build_temporal_multitask_model
    from mtcae_keras.models.frame_feature_pooling import FrameFeaturePooling
    from mtcae_keras.models.video_preprocessor import normalize_pixels
    from mtcae_keras.training.affect_losses import affect_losses

    batch = next(iter(tfds.as_numpy(built.as_dataset(split="train").batch(4))))
    keras.utils.set_random_seed(0)
    encoder = VideoMAEBackbone.from_preset("videomae_tiny", image_size=112, num_frames=16)
    pixels = np.asarray(normalize_pixels(batch["video"], "imagenet"))
    features = FrameFeaturePooling(encoder.token_grid, encoder.tubelet_size)(encoder(pixels))
    labels = {task: batch[task] for task in ("valence", "arousal", "expression", "action_units")}
    for framework, kind in (("basic", "gru"), ("share_bottom", "lstm"),
                            ("feedback", "transformer")):  # fmt: skip
        model = build_temporal_multitask_model(
            encoder.hidden_dim, 16, framework, kind, hidden_dim=64, num_layers=2,
            head_dims=(16,), segment_length=8,
        )  # fmt: skip
        model.compile("adam", loss=affect_losses(model.output))
        logs = model.train_on_batch(features, labels, return_dict=True)
        assert np.isfinite(logs["loss"]), (framework, logs)
