"""The video_folder builder (unlabelled videos of any layout) and `pretrain.py --videos`."""

import json
import os

import pytest

from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
from mtcae_keras.data.video_reader import write_video


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """VoxCeleb2's layout (`dev/mp4/<speaker>/<video>/<clip>.mp4`) with bad input mixed in."""
    root = tmp_path_factory.mktemp("videos") / "voxceleb"
    renderer = SyntheticFaceRenderer(image_size=48, num_frames=20)
    for speaker, video, label in (("id001", "v1", "HAP"), ("id001", "v2", "SAD"),
                                  ("id002", "v1", "ANG")):  # fmt: skip
        folder = root / "dev" / "mp4" / speaker / video
        folder.mkdir(parents=True)
        write_video(str(folder / "00001.mp4"), renderer.render(3, label, 0)["video"])
    short = root / "dev" / "mp4" / "id002" / "v2"
    short.mkdir(parents=True)
    write_video(str(short / "00001.MP4"), renderer.render(4, "FEA", 0)["video"][:5])
    (root / "dev" / "mp4" / "id002" / "v2" / "00002.mp4").write_bytes(os.urandom(3000))
    (root / "dev" / "mp4" / "id002" / "v2" / "00003.mp4").write_bytes(b"")
    (root / "dev" / "notes.txt").write_text("not a video")
    return root


def test_video_folder_keeps_good_clips_and_reports_every_bad_one(video_folder, tmp_path):
    import tensorflow_datasets as tfds

    from mtcae_keras.data.input_pipeline import load_builder

    builder = load_builder(
        "video_folder", data_dir=str(tmp_path / "tfds"), config="tiny", prepare=True,
        download_config=tfds.download.DownloadConfig(manual_dir=str(video_folder)),
    )  # fmt: skip
    examples = list(tfds.as_numpy(builder.as_dataset(split="train")))
    assert len(examples) == 4
    assert examples[0]["video"].shape == (16, 32, 32, 3)
    # The speaker is the first folder below the levels every clip shares (dev/mp4).
    assert sorted(e["actor"].decode() for e in examples) == ["id001", "id001", "id002", "id002"]
    assert {e["label"] for e in examples} == {0}  # "unlabelled"
    with open(builder._report_path()) as file:
        report = json.load(file)["train"]
    assert report["found"] == 6 and report["kept"] == 4
    assert set(report["skipped"]) == {"dev/mp4/id002/v2/00002", "dev/mp4/id002/v2/00003"}
    assert "empty file" in report["skipped"]["dev/mp4/id002/v2/00003"]
    assert report["repeated_frames"] == {"dev/mp4/id002/v2/00001": 5}
    assert builder.num_folds is None


@pytest.mark.slow
def test_pretrain_on_a_folder_of_videos(video_folder, tmp_path, capsys):
    import pretrain

    args = ["--videos", str(video_folder), "--dataset-config", "tiny", "--encoder",
            "videomae_tiny", "--epochs", "1", "--batch-size", "2", "--mask-ratio", "0.75",
            "--decoder-hidden-dim", "16", "--decoder-num-layers", "1", "--decoder-num-heads",
            "2", "--verbose", "0", "--data-dir", str(tmp_path / "tfds"), "--jit-compile", "off",
            "--output", str(tmp_path / "run")]  # fmt: skip
    assert pretrain.main(args) == 0
    out = capsys.readouterr().out
    assert "4 of 6 videos kept; skipped 2" in out and "fewer than 16 frames 1" in out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["splits"] == ["train"] and config["dataset"] == "video_folder"
    assert (tmp_path / "run" / "encoder.weights.h5").exists()
