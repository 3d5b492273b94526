"""ravdess: the DatasetBuilderTestCases, and labels, folds and the report on the dummy data."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfds_builders.ravdess import ravdess_dataset_builder
from tfds_builders.ravdess.ravdess_dataset_builder_test import *  # noqa: F401,F403
from tfds_builders.ravdess.ravdess_dataset_builder_test import GRAYSCALE
from tfds_builders.ravdess.ravdess_dataset_builder_test import NO_FACE
from tfds_builders.ravdess.ravdess_dataset_builder_test import ODD_SIZE
from tfds_builders.ravdess.ravdess_dataset_builder_test import write_dummy_data


def test_contiguous_blocks():
    assert ravdess_dataset_builder.contiguous_blocks(24, 5) == (
        (1, 5), (6, 10), (11, 15), (16, 20), (21, 24))  # fmt: skip
    assert ravdess_dataset_builder.contiguous_blocks(24, 6)[-1] == (21, 24)


def test_labels_metadata_and_report(tmp_path):
    write_dummy_data(str(tmp_path / "manual"))
    builder = ravdess_dataset_builder.Builder(data_dir=str(tmp_path / "tfds"), config="paper")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))
    )
    names = builder.info.features["label"].names
    assert names == ["NEU", "HAP", "SAD", "ANG", "FEA", "DIS", "SUR"]
    examples = {}
    for split in builder.info.splits:
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            examples[example["clip_id"].decode()] = (split, example)
    assert sorted(examples) == sorted([
        "02-01-01-01-01-01-01", "02-01-02-01-01-01-01", "02-01-03-02-01-01-06",
        "02-01-05-01-02-01-11", "02-01-04-01-01-02-16", "02-01-07-01-01-01-18",
        "02-01-06-01-01-01-21", "02-01-08-01-01-01-21", GRAYSCALE, ODD_SIZE,
        NO_FACE])  # fmt: skip
    split, calm = examples["02-01-02-01-01-01-01"]  # from the zip; calm merged into neutral
    assert split == "fold0" and names[calm["label"]] == "NEU"
    assert calm["emotion_code"] == b"02" and calm["actor"] == b"01"
    split, happy = examples["02-01-03-02-01-01-06"]
    assert split == "fold1" and names[happy["label"]] == "HAP"
    assert happy["intensity"] == b"strong" and happy["statement"] == b"Kids are talking by the door"
    short = examples["02-01-08-01-01-01-21"][1]  # 10 frames in the file, 16 in the record
    assert short["video"].shape == (16, 224, 224, 3) and names[short["label"]] == "SUR"
    gray = examples[GRAYSCALE][1]["video"].astype(int)  # three equal channels, 224x224
    assert gray.shape == (16, 224, 224, 3) and np.abs(gray[..., 0] - gray[..., 2]).max() <= 12
    assert examples[ODD_SIZE][1]["video"].shape == (16, 224, 224, 3)
    no_face = examples[NO_FACE][1]
    assert not no_face["face_found"].any() and not no_face["boxes"].any()
    report = json.load(open(builder._report_path()))
    assert NO_FACE in report["fold3"]["no_face_clips"]
    for k in range(5):  # the report lists exactly the records without any face
        faceless = {key for key, (split, e) in examples.items()
                    if split == f"fold{k}" and not e["face_found"].any()}  # fmt: skip
        assert set(report[f"fold{k}"]["no_face_clips"]) == faceless
    assert report["unexpected_files"] == ["Actor_06/notes.mp4"]
    assert report["not_used"] == {"audio-video speech": 1, "video-only song": 1}
    assert report["fold4"]["skipped"] == {"02-01-04-01-01-01-21": "empty file (0 bytes)"}
    assert report["fold4"]["found"] == 3 and report["fold4"]["kept"] == 2
    assert sum(report[f"fold{k}"]["kept"] for k in range(5)) == 11


def test_missing_or_empty_folder_says_where_to_download(tmp_path):
    builder = ravdess_dataset_builder.Builder(data_dir=str(tmp_path / "tfds"))
    (tmp_path / "no_clips").mkdir()
    (tmp_path / "no_clips" / "notes.txt").write_text("no clip here")
    for manual in (tmp_path / "nope", tmp_path / "no_clips"):  # TFDS's check, then ours
        config = tfds.download.DownloadConfig(manual_dir=str(manual))
        with pytest.raises((AssertionError, FileNotFoundError), match="zenodo.org/record/1188976"):
            builder.download_and_prepare(download_config=config)
