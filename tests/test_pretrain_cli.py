"""pretrain.py end to end on the tiny synthetic_faces config: resume, outputs, train.py."""

import csv
import json
import os

import keras
import numpy as np
import pytest

import pretrain
import train
from tests.test_case import Interrupt
from tests.test_case import interrupt_after_epoch


def _args(tmp_path, epochs, *extra):
    return ["--dataset", "synthetic_faces", "--dataset-config", "tiny", "--fold", "1",
            "--encoder", "videomae_tiny", "--epochs", str(epochs), "--batch-size", "4",
            "--mask-ratio", "0.75", "--decoder-hidden-dim", "16", "--decoder-num-layers", "1",
            "--decoder-num-heads", "2", "--verbose", "0", "--data-dir", str(tmp_path / "tfds"),
            "--jit-compile", "off",  # XLA's compile time on CPU would be most of the test
            "--output", str(tmp_path / "pretrain"), *extra]  # fmt: skip


@pytest.mark.slow
def test_interrupted_pretraining_resumes_and_its_encoder_trains_in_train_py(tmp_path, monkeypatch):
    interrupt_after_epoch(monkeypatch, 1)
    with pytest.raises(Interrupt):
        pretrain.main(_args(tmp_path, 3, "--target", "appearance_motion"))
    monkeypatch.undo()
    run = tmp_path / "pretrain"
    with pytest.raises(SystemExit, match=r"other settings.*\n  target: 'appearance_motion' ->"):
        pretrain.main(_args(tmp_path, 3))
    assert pretrain.main(_args(tmp_path, 3, "--target", "appearance_motion")) == 0
    with open(run / "log.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]  # resumed at epoch 2
    config = json.loads((run / "config.json").read_text())
    # Fold 1 is tested and fold 2 validates: only the other folds' videos are seen.
    assert config["splits"] == ["fold0", "fold3", "fold4"] and config["masked_tokens"] == 96
    for name in ("encoder.weights.h5", "encoder.config.json", "reconstruction.png",
                 "checkpoints/pretrainer.keras"):  # fmt: skip
        assert os.path.exists(run / name), name
    assert not (run / "backup").exists()

    # The encoder written is the pre-trained one, and train.py fine-tunes from it.
    pretrainer = keras.saving.load_model(run / "checkpoints" / "pretrainer.keras")
    from mtcae_keras.models.encoders import load_encoder

    encoder = load_encoder(str(run / "encoder.weights.h5"))
    for a, b in zip(encoder.get_weights(), pretrainer.encoder.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    args = ["--dataset", "synthetic_faces", "--dataset-config", "tiny", "--fold", "1",
            "--encoder", str(run / "encoder.weights.h5"), "--epochs", "1", "--batch-size", "4",
            "--verbose", "0", "--data-dir", str(tmp_path / "tfds"), "--jit-compile", "off",
            "--output", str(tmp_path / "finetune")]  # fmt: skip
    assert train.main(args) == 0
    finetune = json.loads((tmp_path / "finetune" / "config.json").read_text())
    assert finetune["encoder_path"] == str(run / "encoder.weights.h5")


def test_settings_the_pretrainer_cannot_honour_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="Refused: motion_weight weighs the joint target"):
        pretrain.main(_args(tmp_path, 1, "--motion-weight", "0.3"))


def test_decoder_sizes_are_refused_when_a_checkpoint_brings_its_decoder(tmp_path):
    from tests.test_case import fixture_path

    args = _args(tmp_path, 1)
    args[args.index("videomae_tiny")] = fixture_path("hf_pretraining")
    with pytest.raises(SystemExit, match="holds a decoder, whose width and depth"):
        pretrain.main(args)
