"""MTCAE-DFER on MAE-DFER's encoder: every strategy builds on LGI-Former tokens, the cascade
trains and exports, and train.py runs on a MAE-DFER checkpoint with frames resized to it."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import predict
import train
from mtcae_keras import STRATEGIES
from mtcae_keras import LGIFormerBackbone
from mtcae_keras import build_mtcae_model
from mtcae_keras.data.input_pipeline import normalize_video
from mtcae_keras.data.input_pipeline import resize_video
from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
from mtcae_keras.data.video_reader import write_video
from mtcae_keras.export import export_saved_model
from mtcae_keras.models.encoders import file_digest
from mtcae_keras.models.encoders import load_encoder
from mtcae_keras.training import compile_mtcae_model
from tests.test_case import LGI_FORMER
from tests.test_export import FRESH_PROCESS
from tests.test_mtcae_model import TINY_DECODER
from tests.test_mtcae_model import batch

CLASSES = 6


def lgi_model(strategy, **backbone_overrides):
    keras.utils.set_random_seed(0)
    backbone = LGIFormerBackbone.from_preset("lgi_former_tiny", **backbone_overrides)
    return build_mtcae_model(
        backbone, strategy, CLASSES, num_frames=4, decoder="notebook", **TINY_DECODER
    )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_builds_on_lgi_former_tokens(strategy):
    model = lgi_model(strategy, return_region_tokens=True)
    x, _, _ = batch(2)
    outputs = model(x)
    assert outputs["expression"].shape == (2, CLASSES)
    if strategy != "stl":
        assert outputs["boxes"].shape == (2, 4, 4) and outputs["landmarks"].shape == (2, 4, 10)


def test_cascade_on_lgi_former_trains_and_serves_in_a_fresh_process(tmp_path):
    model = lgi_model("cascaded_vit")
    compile_mtcae_model(model, CLASSES, jit_compile=False)
    encoder_before = [w.numpy() for w in model.get_layer("lgi_former_tiny").weights]
    x, y, weights = batch(4)
    before = model.get_layer("expression").get_weights()[0].copy()
    losses = model.train_on_batch(x, y, sample_weight=weights, return_dict=True)
    assert np.isfinite(losses["loss"])
    assert not np.allclose(before, model.get_layer("expression").get_weights()[0])
    frozen = model.get_layer("lgi_former_tiny").weights  # the default freezes the encoder
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(encoder_before, frozen, strict=True))

    path = export_saved_model(model, str(tmp_path / "saved_model"), class_names=list("abcdef"))
    video = np.random.default_rng(1).integers(0, 256, (2, 4, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "in.npz", video=video)
    subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, path, str(tmp_path / "in.npz"),
         str(tmp_path / "out.npz")],
        check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), cwd=str(tmp_path),
    )  # fmt: skip
    served = dict(np.load(tmp_path / "out.npz"))
    expected = model.predict(np.asarray(normalize_video(video)), verbose=0)
    np.testing.assert_allclose(served["expression_logits"], expected["expression"], atol=1e-5)
    np.testing.assert_allclose(served["boxes"], expected["boxes"], atol=1e-5)


def test_load_encoder_picks_the_kind_from_the_checkpoint():
    lgi = load_encoder(os.path.join(LGI_FORMER, "base_pretrain.pth"), num_heads=8)
    assert isinstance(lgi, LGIFormerBackbone) and lgi.num_layers == 2
    vit = load_encoder(os.path.join(LGI_FORMER, "videomae_160_pretrain.pth"), image_size=160)
    assert type(vit).__name__ == "VideoMAEBackbone" and vit.num_tokens == 800
    assert isinstance(load_encoder("lgi_former_synthetic"), LGIFormerBackbone)
    with pytest.raises(ValueError, match="lgi_former_base.*videomae_base"):
        load_encoder("lgi_former_huge")


def test_resize_video_keeps_the_clip_when_the_size_matches():
    video = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    assert resize_video(video, (32, 32)) is video
    resized = np.asarray(resize_video(video, (16, 24)))
    assert resized.shape == (4, 16, 24, 3) and resized.dtype == np.float32
    # A uniform frame stays uniform: the resize does not shift intensities.
    flat = np.full((2, 32, 32, 3), 77, np.uint8)
    np.testing.assert_allclose(resize_video(flat, (160, 160)), 77.0, atol=1e-3)


@pytest.mark.slow
def test_train_py_on_a_mae_dfer_checkpoint(tmp_path, capsys):
    """--encoder PATH.pth: an LGI-Former at 160x160 on 32x32 data, frames resized in tf.data;
    the run records the checkpoint; its SavedModel takes 160x160 clips and predict.py works."""
    encoder = os.path.join(LGI_FORMER, "base_finetune.pth")
    argv = ["--dataset", "synthetic_faces", "--dataset-config", "tiny", "--fold", "1",
            "--epochs", "1", "--batch-size", "6", "--verbose", "0", "--encoder", encoder,
            "--data-dir", str(tmp_path / "tfds"), "--output", str(tmp_path / "run"),
            "--jit-compile", "off", "--export"]  # fmt: skip
    assert train.main(argv) == 0
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["encoder"] == encoder and config["encoder_kind"] == "LGIFormerBackbone"
    assert config["encoder_path"] == os.path.abspath(encoder)
    assert config["encoder_sha256"] == file_digest(encoder)
    assert config["encoder_config"]["image_size"] == 160 and config["freeze_encoder"] is True
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["count"] == 6

    clip = SyntheticFaceRenderer(image_size=48, num_frames=20).render(9, "FEA", 0)
    video = write_video(str(tmp_path / "clip.mp4"), clip["video"])
    serve, shape, _ = predict.load_serving(str(run))
    assert shape == (16, 160, 160)
    capsys.readouterr()
    assert predict.main([video, "--run", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_train_py_refuses_an_encoder_of_another_frame_count(tmp_path):
    argv = ["--dataset", "synthetic_faces", "--dataset-config", "tiny", "--epochs", "1",
            "--encoder", "lgi_former_tiny", "--data-dir", str(tmp_path / "tfds"),
            "--output", str(tmp_path / "run")]  # fmt: skip
    # 16 stored frames are 4 phases of 4 for lgi_former_tiny; 16 of its frames they are not.
    with pytest.raises(SystemExit, match="--clip-frames 16: --encoder lgi_former_tiny takes 4-"):
        train.main(argv + ["--clip-frames", "16"])


def test_a_real_dataset_on_a_random_encoder_is_warned_about():
    warning = train.random_encoder_warning("crema_d", "videomae_base")
    assert "randomly initialised" in warning and "LGI-Former" in warning
    assert train.random_encoder_warning("crema_d", "lgi_former_base") is not None
    assert train.random_encoder_warning("crema_d", os.path.join(LGI_FORMER, "x.pth")) is None
    assert train.random_encoder_warning("synthetic_faces", "videomae_synthetic") is None


@pytest.mark.parametrize("exclusions", [False, True])
def test_decay_exclusions_spare_biases_norms_and_representative_tokens(exclusions):
    """With zero gradients AdamW moves a weight only by its decay: the excluded stay put."""
    from mtcae_keras.training import mtcae_optimizer

    model = lgi_model("cascaded_vit")
    model.get_layer("lgi_former_tiny").trainable = True
    optimizer = mtcae_optimizer(model, 0.1, weight_decay=0.5, decay_exclusions=exclusions)
    variables = model.trainable_variables
    before = [v.numpy() for v in variables]
    optimizer.apply([keras.ops.zeros_like(v) for v in variables], variables)
    for variable, value in zip(variables, before, strict=True):
        spared = len(variable.shape) <= 1 or variable.name == "lg_region_tokens"
        moved = not np.allclose(variable.numpy(), value)
        assert moved == (not (exclusions and spared)) or not value.any(), variable.path
    names = {v.name for v in variables}
    assert "lg_region_tokens" in names and "q_bias" in names
