"""`tfds build tfds_builders/crema_d --beam_pipeline_options=...` (Apache Beam, DirectRunner,
two worker processes) on the real clips gives the records and the report of the in-process
build."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tests.test_video_reader import crema_d_clips
from tfds_builders.crema_d import crema_d_dataset_builder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _examples(data_dir):
    """`{clip_id: tf.train.Example}` of every record the build wrote."""
    folder = os.path.join(data_dir, "crema_d", "1.0.0")
    files = sorted(os.path.join(folder, n) for n in os.listdir(folder) if ".tfrecord" in n)
    examples = {}
    for record in tf.data.TFRecordDataset(files):
        example = tf.train.Example.FromString(record.numpy())
        examples[example.features.feature["clip_id"].bytes_list.value[0].decode()] = example
    return examples


def test_beam_build_equals_the_in_process_build(tmp_path, monkeypatch):
    pytest.importorskip("apache_beam")
    clips = crema_d_clips()
    manual = tmp_path / "manual"
    (manual / "VideoFlash").mkdir(parents=True)
    for clip in clips[1:]:
        shutil.copy(clip, manual / "VideoFlash")
    with zipfile.ZipFile(manual / "more.zip", "w") as archive:  # extracted on the worker
        archive.write(clips[0], f"VideoFlash/{os.path.basename(clips[0])}")
    (manual / "VideoFlash" / "1002_DFA_ANG_XX.flv").write_bytes(b"")  # skipped, reported
    (manual / "VideoFlash" / "1003_DFA_SAD_XX.flv").write_bytes(b"FLV\x01 not a video")

    monkeypatch.setenv("MTCAE_LABEL_WORKERS", "1")
    builder = crema_d_dataset_builder.Builder(data_dir=str(tmp_path / "local"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual))
    )
    # The documented command, from another directory; the workers import our package.
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    tfds_cli = os.path.join(os.path.dirname(sys.executable), "tfds")
    result = subprocess.run(
        [tfds_cli, "build", os.path.join(ROOT, "tfds_builders", "crema_d"),
         "--manual_dir", str(manual), "--data_dir", str(tmp_path / "beam"),
         "--beam_pipeline_options=direct_num_workers=2,direct_running_mode=multi_processing"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]

    local, beam = _examples(str(tmp_path / "local")), _examples(str(tmp_path / "beam"))
    assert len(local) == 6 and sorted(beam) == sorted(local)
    for key, example in local.items():
        assert beam[key] == example, key  # every feature, byte for byte
    reports = [json.load(open(os.path.join(tmp_path, part, "crema_d", "1.0.0_report.json")))
               for part in ("local", "beam")]  # fmt: skip
    assert reports[1] == reports[0]
    assert reports[0]["fold0"]["found"] == 8 and reports[0]["fold0"]["kept"] == 6
    assert sorted(reports[0]["fold0"]["skipped"]) == ["1002_DFA_ANG_XX", "1003_DFA_SAD_XX"]
