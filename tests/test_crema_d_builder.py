"""Builds crema_d from the six real clips of shared/data (MTCAE_CREMA_D_DIR)."""

import json
import os

import pytest
import tensorflow_datasets as tfds

from tests.test_video_reader import crema_d_clips
from tfds_builders.crema_d import crema_d_dataset_builder


def test_build_from_the_real_clips(tmp_path):
    clips = crema_d_clips()
    manual = tmp_path / "manual" / "VideoFlash"
    manual.mkdir(parents=True)
    for clip in clips:
        os.symlink(clip, manual / os.path.basename(clip))
    (manual / "notes.flv").write_bytes(b"not a clip name")  # unexpected name: reported
    (manual / "1002_DFA_ANG_XX.flv").write_bytes(b"")  # empty file: skipped and reported
    builder = crema_d_dataset_builder.Builder(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))
    )
    assert set(builder.info.splits) == {"fold0"}
    examples = list(tfds.as_numpy(builder.as_dataset(split="fold0")))
    assert len(examples) == 6
    names = builder.info.features["label"].names
    labels = sorted(names[e["label"]] for e in examples)
    assert labels == ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
    for example in examples:
        clip_id = example["clip_id"].decode()
        assert names[example["label"]] == clip_id.split("_")[2]
        assert example["actor"].decode() == "1001" and example["video"].shape == (16, 224, 224, 3)
        assert example["face_found"].sum() >= 15
        boxes = example["boxes"][example["face_found"]]
        points = example["landmarks"][example["face_found"]].reshape(-1, 5, 2)
        assert (boxes >= 0).all() and (boxes[:, :2] + boxes[:, 2:] <= 1 + 1e-6).all()
        inside = (points[:, :3, 0] >= boxes[:, None, 0]) & (
            points[:, :3, 0] <= boxes[:, None, 0] + boxes[:, None, 2])  # fmt: skip
        assert inside.all()
    report = json.load(open(builder._report_path()))
    assert report["unexpected_files"] == ["VideoFlash/notes.flv"]
    assert report["fold0"]["found"] == 7 and report["fold0"]["kept"] == 6
    assert report["fold0"]["skipped"] == {"1002_DFA_ANG_XX": "empty file (0 bytes)"}


def test_missing_folder_names_the_download_page(tmp_path):
    builder = crema_d_dataset_builder.Builder(data_dir=str(tmp_path / "tfds"))
    config = tfds.download.DownloadConfig(manual_dir=str(tmp_path / "nope"))
    with pytest.raises(Exception, match="CheyneyComputerScience/CREMA-D"):
        builder.download_and_prepare(download_config=config)
