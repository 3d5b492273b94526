"""mead: the DatasetBuilderTestCase, and labels, folds, the quirk and the report."""

import json

import pytest
import tensorflow_datasets as tfds

from tfds_builders.mead import mead_dataset_builder
from tfds_builders.mead.mead_dataset_builder_test import *  # noqa: F401,F403
from tfds_builders.mead.mead_dataset_builder_test import write_dummy_data


def test_folds_dealt_from_sorted_actor_ids():
    folds = mead_dataset_builder.actor_folds(["W014", "M003", "W011", "M007", "W009", "M005"])
    assert folds == {"M003": 0, "M005": 1, "M007": 2, "W009": 3, "W011": 4, "W014": 0}


def test_front_view_labels_quirk_and_report(tmp_path):
    write_dummy_data(str(tmp_path / "manual"))
    builder = mead_dataset_builder.Builder(data_dir=str(tmp_path / "tfds"), config="front")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "manual"))
    )
    names = builder.info.features["label"].names
    examples = {}
    for split in builder.info.splits:
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            examples[example["clip_id"].decode()] = (split, example)
    assert sorted(examples) == [
        "M003_front_happy_level1_001", "M005_front_angry_level3_002",
        "M007_front_sad_level2_001", "W009_front_contempt_level1_003",
        "W011_front_surprised_level3_001", "W014_front_fear_level2_001",
        "W014_front_neutral_level1_001"]  # fmt: skip
    split, nested = examples["W011_front_surprised_level3_001"]  # video/video/front/...
    assert split == "fold4" and names[nested["label"]] == "surprised"
    assert nested["actor"] == b"W011" and nested["intensity"] == b"3"
    split, from_tar = examples["M005_front_angry_level3_002"]
    assert split == "fold1" and names[from_tar["label"]] == "angry"
    report = json.load(open(builder._report_path()))
    assert report["fold_actors"]["fold0"] == ["M003", "W014"]
    assert report["other_views"] == 1
    assert report["unexpected_files"] == ["W014/video/front/bored/level_1/001.mp4"]
    skipped = report["fold0"]["skipped"]
    assert skipped["W014_front_neutral_level1_002"] == "empty file (0 bytes)"
    assert sorted(skipped) == ["W014_front_neutral_level1_002", "W014_front_neutral_level1_003",
                               "W014_front_neutral_level1_004"]  # fmt: skip
    assert all(skipped.values())  # each with its reason
    assert report["fold0"]["kept"] == 3


def test_build_tool_builds_another_view(tmp_path, capsys):
    from tools import build_dataset

    write_dummy_data(str(tmp_path / "manual"))
    assert build_dataset.main(["mead", "--manual_dir", str(tmp_path / "manual"), "--config",
                               "left_30", "--data_dir", str(tmp_path / "tfds")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "built mead/left_30 1.0.0" in out and "fold0: 1 examples" in out
    report = json.load(open(tmp_path / "tfds" / "mead" / "left_30" / "1.0.0_report.json"))
    assert report["fold_actors"]["fold0"] == ["M003"] and report["other_views"] == 10


def test_missing_or_empty_folder_says_where_to_download(tmp_path):
    builder = mead_dataset_builder.Builder(data_dir=str(tmp_path / "tfds"))
    (tmp_path / "no_clips").mkdir()
    (tmp_path / "no_clips" / "notes.txt").write_text("no clip here")
    for manual in (tmp_path / "nope", tmp_path / "no_clips"):  # TFDS's check, then ours
        config = tfds.download.DownloadConfig(manual_dir=str(manual))
        with pytest.raises((AssertionError, FileNotFoundError), match="projects/MEAD"):
            builder.download_and_prepare(download_config=config)
