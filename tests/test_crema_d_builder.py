"""Builds crema_d from the six real clips of shared/data (MTCAE_CREMA_D_DIR)."""

import json
import os

import pytest
import tensorflow_datasets as tfds

from mtcae_keras.data.clip_labelling_pool import ClipLabellingPool
from tests.test_video_reader import crema_d_clips
from tfds_builders.crema_d import crema_d_dataset_builder


def _manual_dir(tmp_path):
    manual = tmp_path / "manual" / "VideoFlash"
    manual.mkdir(parents=True)
    for clip in crema_d_clips():
        os.symlink(clip, manual / os.path.basename(clip))
    (manual / "notes.flv").write_bytes(b"not a clip name")  # unexpected name: reported
    (manual / "1002_DFA_ANG_XX.flv").write_bytes(b"")  # empty file: skipped and reported
    return tmp_path / "manual"


def _build(manual, data_dir, workers, monkeypatch):
    monkeypatch.setenv("MTCAE_LABEL_WORKERS", str(workers))
    builder = crema_d_dataset_builder.Builder(data_dir=str(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    return builder


def test_build_from_the_real_clips(tmp_path, monkeypatch):
    builder = _build(_manual_dir(tmp_path), tmp_path / "tfds", 2, monkeypatch)
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


def test_two_builds_write_identical_records(tmp_path, monkeypatch):
    """Keys and records do not depend on the build or on the number of labelling workers."""
    manual = _manual_dir(tmp_path)
    monkeypatch.setattr(ClipLabellingPool, "MIN_CLIPS_PER_WORKER", 1)  # 2 workers for 7 clips
    builds = [_build(manual, tmp_path / f"tfds{n}", n, monkeypatch) for n in (1, 2)]
    files = []
    for builder in builds:
        folder = builder.data_dir
        names = sorted(n for n in os.listdir(folder) if "tfrecord" in n)
        files.append({n: open(os.path.join(folder, n), "rb").read() for n in names})
    assert files[0].keys() == files[1].keys() and files[0]
    assert files[0] == files[1]
    keys = [[e["clip_id"] for e in tfds.as_numpy(b.as_dataset(split="fold0"))] for b in builds]
    assert keys[0] == keys[1] and len(keys[0]) == 6


def test_missing_folder_names_the_download_page(tmp_path):
    builder = crema_d_dataset_builder.Builder(data_dir=str(tmp_path / "tfds"))
    config = tfds.download.DownloadConfig(manual_dir=str(tmp_path / "nope"))
    with pytest.raises(Exception, match="CheyneyComputerScience/CREMA-D"):
        builder.download_and_prepare(download_config=config)


def test_archives_and_capital_extensions_are_found(tmp_path, monkeypatch):
    """The shared clip discovery: clips inside a .zip, `.FLV` in capitals, and a clip that is
    both in the archive and in a folder kept once; the report is written whole."""
    import zipfile

    clips = crema_d_clips()
    manual = tmp_path / "manual"
    (manual / "extracted").mkdir(parents=True)
    with zipfile.ZipFile(manual / "VideoFlash.zip", "w") as archive:
        for clip in clips[:2]:
            archive.write(clip, f"VideoFlash/{os.path.basename(clip)}")
    upper = os.path.basename(clips[2])[: -len(".flv")] + ".FLV"
    os.symlink(clips[2], manual / "extracted" / upper)
    os.symlink(clips[0], manual / "extracted" / os.path.basename(clips[0]))  # duplicate
    # A truncated download: its first 40 KB decode 5 of the 56 frames its header declares.
    (manual / "extracted" / "1002_DFA_HAP_XX.flv").write_bytes(open(clips[3], "rb").read(40000))
    # A report left by an earlier build that failed: its sections must not survive.
    stale = crema_d_dataset_builder.Builder(data_dir=str(tmp_path / "tfds"))._report_path()
    os.makedirs(os.path.dirname(stale))
    with open(stale, "w") as file:
        json.dump({"fold3": {"found": 9}, "bad_archives": ["old.zip"]}, file)
    builder = _build(manual, tmp_path / "tfds", 1, monkeypatch)
    examples = list(tfds.as_numpy(builder.as_dataset(split="fold0")))
    expected = sorted([os.path.basename(c)[: -len(".flv")] for c in clips[:3]]
                      + ["1002_DFA_HAP_XX"])  # fmt: skip
    assert sorted(e["clip_id"].decode() for e in examples) == expected
    report = json.load(open(builder._report_path()))
    assert report["unexpected_files"] == [] and report["fold0"]["kept"] == 4
    # Kept, and named: its frames were repeated, and it decodes far less than it declares.
    assert report["fold0"]["repeated_frames"] == {"1002_DFA_HAP_XX": 5}
    assert report["fold0"]["short_decodes"] == {"1002_DFA_HAP_XX": {"decoded": 5, "declared": 56}}
    assert "fold3" not in report and report["bad_archives"] == []


def test_labelling_queue_is_bounded_and_ordered():
    """At most `ahead` clips wait in the pool (executor.map would submit every clip at once)."""
    from concurrent.futures import ThreadPoolExecutor

    from mtcae_keras.data.clip_labelling_pool import _ordered

    submitted = []

    class Recording(ThreadPoolExecutor):
        def submit(self, function, *args):
            submitted.append(args[0])
            return super().submit(function, *args)

    results = []
    with Recording(2) as executor:
        for i, result in enumerate(_ordered(executor, lambda x: 2 * x, range(20), ahead=3)):
            assert len(submitted) <= i + 4
            results.append(result)
    assert results == [2 * x for x in range(20)] and submitted == list(range(20))
