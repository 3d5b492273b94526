"""`[<config>_]frames<N>` configs: real builders storing more than 16 frames per clip."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from mtcae_keras.data.input_pipeline import build_command
from mtcae_keras.data.input_pipeline import load_builder
from mtcae_keras.data.video_reader import read_video
from mtcae_keras.data.video_reader import sample_frame_indices
from tests.test_video_reader import crema_d_clips


def test_variant_names_keep_their_config(tmp_path):
    data_dir = str(tmp_path)
    default = load_builder("crema_d", data_dir=data_dir)
    assert default.builder_config is None and default.num_frames == 16
    assert default.data_dir == os.path.join(data_dir, "crema_d", "1.0.0")  # unchanged
    crema = load_builder("crema_d/frames32", data_dir=data_dir)
    assert crema.builder_config.name == "frames32" and crema.num_frames == 32
    assert crema.info.features["video"].shape == (32, 224, 224, 3)
    assert crema.info.features["boxes"].shape == (32, 4)
    assert crema.data_dir == os.path.join(data_dir, "crema_d", "frames32", "1.0.0")
    assert "--config frames32" in build_command(crema) and "--config" not in build_command(default)
    # A config's variant keeps its class map and folds; `frames<N>` alone is the default's.
    ravdess = load_builder("ravdess/mae_dfer_frames24", data_dir=data_dir)
    assert ravdess.builder_config.name == "mae_dfer_frames24" and ravdess.num_frames == 24
    assert ravdess.num_folds == 6 and len(ravdess.info.features["label"].names) == 8
    paper = load_builder("ravdess", config="frames32", data_dir=data_dir)
    assert paper.builder_config.name == "paper_frames32" and paper.num_folds == 5
    assert load_builder("ravdess", data_dir=data_dir).num_frames == 16
    folder = load_builder("video_folder/mae_dfer_frames32", data_dir=data_dir)
    assert folder.info.features["video"].shape == (32, 160, 160, 3)
    mead = load_builder("mead/left_30_frames20", data_dir=data_dir)
    assert mead.builder_config.name == "left_30_frames20" and mead.num_frames == 20


@pytest.mark.parametrize(
    "name, message",
    [
        ("crema_d/frames16", "stores more than the 16"),
        ("crema_d/frames8", "asks for 8 frames"),
        ("ravdess/calm_frames32", "no config 'calm'"),
        ("crema_d/default", r"no config 'default'; configs: none, or `\[<config>_\]frames<N>`"),
    ],
)
def test_bad_variant_names_are_refused(tmp_path, name, message):
    with pytest.raises(ValueError, match=message):
        load_builder(name, data_dir=str(tmp_path))


def test_real_clips_at_32_frames(tmp_path, monkeypatch):
    """The 32-frame build of the real clips: each frame is the clip's frame at
    `sample_frame_indices(n, 32)`, and where the 16-frame build took the same frame, its
    record (JPEG frame, MTCNN box and landmarks) is the same."""
    monkeypatch.setenv("MTCAE_LABEL_WORKERS", "2")
    manual = tmp_path / "manual"
    manual.mkdir()
    clips = crema_d_clips()
    for clip in clips:
        os.symlink(clip, manual / os.path.basename(clip))
    download = tfds.download.DownloadConfig(manual_dir=str(manual))
    examples = {}
    for config in (None, "frames32"):
        builder = load_builder("crema_d", data_dir=str(tmp_path / "tfds"), config=config)
        builder.download_and_prepare(download_config=download)
        examples[config] = {e["clip_id"].decode(): e for e in
                            tfds.as_numpy(builder.as_dataset(split="fold0"))}  # fmt: skip
    report = json.load(open(builder._report_path()))
    assert report["fold0"]["kept"] == 6 and report["fold0"]["repeated_frames"] == {}
    assert builder._report_path().endswith(os.path.join("crema_d", "frames32", "1.0.0_report.json"))
    for clip in clips:
        key = os.path.basename(clip)[: -len(".flv")]
        short, long = examples[None][key], examples["frames32"][key]
        assert long["video"].shape == (32, 224, 224, 3) and long["face_found"].sum() >= 30
        raw, info = read_video(clip, 32, 224)
        count = info["frame_count"]
        assert count > 32  # 32 distinct frames: a real variant, not repeats
        # Exactly the clip's frames at those 32 time points, as the Video feature stores them.
        stored = builder.info.features["video"].encode_example(raw)
        expected = np.stack([tf.io.decode_jpeg(frame).numpy() for frame in stored])
        assert np.array_equal(long["video"], expected)
        indices16, indices32 = (
            sample_frame_indices(count, 16),
            list(sample_frame_indices(count, 32)),
        )
        shared = [(i, indices32.index(t)) for i, t in enumerate(indices16) if t in indices32]
        assert len(shared) >= 2  # first and last frames at least
        for i, j in shared:
            assert np.array_equal(short["video"][i], long["video"][j])
            assert short["face_found"][i] == long["face_found"][j]
            np.testing.assert_allclose(short["boxes"][i], long["boxes"][j], atol=1e-4)
            np.testing.assert_allclose(short["landmarks"][i], long["landmarks"][j], atol=1e-4)
