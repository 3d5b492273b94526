"""train.py / evaluate.py / predict.py end to end on the tiny synthetic_faces config."""

import csv
import json
import os

import keras
import pytest

import evaluate
import predict
import train
from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
from mtcae_keras.data.video_reader import write_video


class _Interrupt(Exception):
    pass


def _args(tmp_path, epochs):
    return ["--dataset", "synthetic_faces", "--dataset-config", "tiny", "--fold", "1",
            "--epochs", str(epochs), "--batch-size", "4", "--verbose", "0",
            "--data-dir", str(tmp_path / "tfds"), "--output", str(tmp_path / "run")]  # fmt: skip


@pytest.mark.slow
def test_interrupted_run_resumes_and_the_run_dir_is_complete(tmp_path, monkeypatch, capsys):
    class InterruptingLogger(keras.callbacks.CSVLogger):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if epoch == 1:
                raise _Interrupt()

    monkeypatch.setattr(keras.callbacks, "CSVLogger", InterruptingLogger)
    with pytest.raises(_Interrupt):
        train.main(_args(tmp_path, 3))
    monkeypatch.undo()
    assert train.main(_args(tmp_path, 3) + ["--export"]) == 0
    run = tmp_path / "run"
    with open(run / "log.csv") as file:
        epochs = [int(row["epoch"]) for row in csv.DictReader(file)]
    assert epochs == [0, 1, 2]  # resumed at epoch 2, not restarted
    for name in ("config.json", "metrics.json", "predictions.npz", "confusion_matrix.png",
                 "checkpoints/best.keras", "saved_model/saved_model.pb"):  # fmt: skip
        assert os.path.exists(run / name), name
    config = json.loads((run / "config.json").read_text())
    assert config["fold"] == 1 and config["class_names"][0] == "ANG"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["count"] == 6 and metrics["checkpoint"] == "best"
    assert sum(metrics["support"].values()) == 6

    capsys.readouterr()
    assert evaluate.main([str(run), str(run), "--output", str(tmp_path / "pooled")]) == 0
    pooled = json.loads((tmp_path / "pooled" / "pooled_metrics.json").read_text())
    assert pooled["count"] == 12 and pooled["uar"] == pytest.approx(metrics["uar"])

    clip = SyntheticFaceRenderer(image_size=48, num_frames=20).render(9, "FEA", 0)
    video = write_video(str(tmp_path / "clip.mp4"), clip["video"])
    capsys.readouterr()
    assert predict.main([video, "--run", str(run), "--json",
                         "--annotate", str(tmp_path / "a.png")]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert set(result["probabilities"]) == set(config["class_names"])
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert os.path.exists(tmp_path / "a.png")
