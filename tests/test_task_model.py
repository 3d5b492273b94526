"""`MTCAEDFER`, the task model: config round trip, presets read back in a fresh process (and
exported), a train.py run dir loaded as a preset, and its preprocessor."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtcae_keras import MTCAEDFER
from mtcae_keras import VideoMAEBackbone
from mtcae_keras import VideoPreprocessor
from mtcae_keras import build_mtcae_model
from mtcae_keras.models.mtcae import decoder_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"]
# Non-default everywhere: strategy, decoder, statistics, normalisation, a resizing step.
STATISTICS = {"boxes": ([0.3, 0.2, 0.4, 0.5], [0.05, 0.04, 0.06, 0.07]),
              "landmarks": ([0.5] * 10, [0.1] * 10)}  # fmt: skip


def _task(strategy="fs_vit"):
    backbone = VideoMAEBackbone.from_preset("videomae_tiny")
    return MTCAEDFER(
        backbone, strategy=strategy, class_names=CLASSES,
        decoder=decoder_config("notebook", num_layers=1, hidden_dim=32, mlp_dims=(64, 32),
                               num_heads=2, key_dim=16),
        freeze_encoder=False, target_statistics=STATISTICS,
        preprocessor=VideoPreprocessor(image_size=(32, 32), normalization="notebook"),
    )  # fmt: skip


def _video(seed=0, size=48):
    return np.random.default_rng(seed).integers(0, 256, (2, 4, size, size, 3), dtype=np.uint8)


def test_config_round_trip_keeps_every_setting():
    task = _task()
    clone = MTCAEDFER.from_config(json.loads(json.dumps(task.get_config())))
    clone.set_weights(task.get_weights())
    assert clone.get_config() == task.get_config()
    assert clone.class_names == CLASSES and clone.strategy == "fs_vit"
    assert clone.preprocessor.normalization == "notebook" and clone.backbone.trainable
    np.testing.assert_allclose(clone.get_layer("boxes").output_offset, [0.3, 0.2, 0.4, 0.5])
    pixels = np.asarray(task.preprocessor(_video()))
    for name, value in task.predict(pixels, verbose=0).items():
        np.testing.assert_array_equal(clone.predict(pixels, verbose=0)[name], value)


_FRESH = r"""
import sys
import numpy as np
import tensorflow as tf
from mtcae_keras import MTCAEDFER
from mtcae_keras.export import export_saved_model

preset, expected_path, saved = sys.argv[1:4]
expected = np.load(expected_path)
task = MTCAEDFER.from_preset(preset)
assert task.class_names == ["ANG", "DIS", "FEA", "HAP", "NEU", "SAD"], task.class_names
outputs = task.predict_video(expected["video"])
for name in ("boxes", "landmarks", "expression"):
    assert np.array_equal(outputs[name], expected[name]), name
export_saved_model(task, saved)
served = tf.saved_model.load(saved).signatures["serving_default"](
    video=tf.constant(expected["video"][:, :, :32, :32]))
direct = task.predict_video(expected["video"][:, :, :32, :32])
np.testing.assert_allclose(served["expression_logits"], direct["expression"], atol=1e-5)
np.testing.assert_allclose(served["boxes"], direct["boxes"], atol=1e-5)
print("fresh ok")
"""


def test_preset_reads_back_in_a_fresh_process_and_exports(tmp_path):
    task = _task()
    preset = task.save_to_preset(str(tmp_path / "preset"))
    assert sorted(os.listdir(preset)) == [
        "config.json", "metadata.json", "model.weights.h5", "preprocessor.json"]  # fmt: skip
    metadata = json.load(open(os.path.join(preset, "metadata.json")))
    assert metadata["class_names"] == CLASSES
    assert metadata["parameter_count"] == task.count_params()
    video = _video(size=48)  # resized to 32 by the preprocessor
    outputs = task.predict_video(video)
    np.testing.assert_allclose(outputs["expression_probabilities"].sum(-1), 1.0, atol=1e-6)
    np.savez(tmp_path / "expected.npz", video=video,
             **{k: outputs[k] for k in ("boxes", "landmarks", "expression")})  # fmt: skip
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", _FRESH, preset, str(tmp_path / "expected.npz"),
         str(tmp_path / "saved_model")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and "fresh ok" in result.stdout, result.stderr[-3000:]


def test_a_run_dir_loads_as_a_preset(tmp_path):
    """What `train.py` leaves (`config.json`, `checkpoints/best.keras`): the best checkpoint's
    weights with the run's class names, normalisation and target statistics."""
    decoder = decoder_config("notebook", num_layers=1, hidden_dim=32, mlp_dims=(64, 32),
                             num_heads=2, key_dim=16)  # fmt: skip
    backbone = VideoMAEBackbone.from_preset("videomae_tiny")
    trained = build_mtcae_model(backbone, "cascaded_vit", 3, num_frames=4, decoder=decoder,
                                target_statistics=STATISTICS)  # fmt: skip
    for weight in trained.weights:  # away from the initial values (zero head kernels)
        weight.assign(weight + np.random.default_rng(1).normal(0, 0.02, weight.shape))
    os.makedirs(tmp_path / "run" / "checkpoints")
    trained.save(tmp_path / "run" / "checkpoints" / "best.keras")
    with open(tmp_path / "run" / "config.json", "w") as file:
        json.dump({"strategy": "cascaded_vit", "class_names": ["a", "b", "c"], "decoder": decoder,
                   "freeze_encoder": True, "normalization": "notebook"}, file)  # fmt: skip
    task = MTCAEDFER.from_preset(str(tmp_path / "run"))
    assert task.class_names == ["a", "b", "c"] and task.preprocessor.normalization == "notebook"
    np.testing.assert_allclose(task.target_statistics["landmarks"][1], [0.1] * 10, rtol=1e-6)
    assert not task.backbone.trainable
    pixels = np.asarray(task.preprocessor(_video(size=32)))
    expected = trained.predict(pixels, verbose=0)
    for name, value in task.predict(pixels, verbose=0).items():
        np.testing.assert_array_equal(value, expected[name])


def test_preprocessor_resizes_antialiased_and_normalises():
    video = _video(size=48)
    pixels = VideoPreprocessor(image_size=(16, 24), normalization="imagenet")(video)
    frames = tf.image.resize(tf.cast(video.reshape(-1, 48, 48, 3), tf.float32), (16, 24),
                             antialias=True).numpy().reshape(2, 4, 16, 24, 3)  # fmt: skip
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(pixels, (frames / 255.0 - mean) / std, atol=1e-5)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert VideoPreprocessor()(video).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert VideoPreprocessor(image_size=(48, 48))(video).shape == (2, 4, 48, 48, 3)
    with pytest.raises(ValueError, match="Unknown normalization 'imagenet21k'"):
        VideoPreprocessor(normalization="imagenet21k")
    with pytest.raises(ValueError, match="class_names"):
        MTCAEDFER(VideoMAEBackbone.from_preset("videomae_tiny"))
