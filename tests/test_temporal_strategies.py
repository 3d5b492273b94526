"""The temporal strategies: ABAW4's frameworks on MTCAE's tasks, in the model builder and in
train.py."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import train
from mtcae_keras import VideoMAEBackbone
from mtcae_keras import build_mtcae_model
from mtcae_keras.models.frame_feature_pooling import FrameFeaturePooling
from mtcae_keras.models.mtcae import TEMPORAL_STRATEGIES
from mtcae_keras.models.temporal_encoder import TemporalEncoder
from mtcae_keras.training import compile_mtcae_model
from tests.test_mtcae_model import CLASSES
from tests.test_mtcae_model import FRAMES
from tests.test_mtcae_model import TINY_DECODER
from tests.test_mtcae_model import batch
from tests.test_train_cli import _args


def test_frame_pooling_averages_each_step_over_space_and_repeats_it_per_frame():
    tokens = np.random.default_rng(0).standard_normal((2, 3 * 2 * 4, 5)).astype(np.float32)
    pooled = FrameFeaturePooling((3, 2, 4), tubelet_size=2)(tokens).numpy()
    means = tokens.reshape(2, 3, 8, 5).mean(2)
    np.testing.assert_allclose(pooled, np.repeat(means, 2, axis=1), atol=1e-6)


# Each strategy once, each encoder kind once (the frameworks' wiring per kind is in
# test_temporal_models.py).
@pytest.mark.parametrize(
    "strategy, kind", list(zip(TEMPORAL_STRATEGIES, ["gru", "lstm", "transformer"], strict=True))
)
def test_temporal_strategy_contract_train_step_and_save_load(strategy, kind, tmp_path):
    keras.utils.set_random_seed(0)
    backbone = VideoMAEBackbone.from_preset("videomae_tiny")
    model = build_mtcae_model(backbone, strategy, CLASSES, num_frames=FRAMES, decoder="notebook",
                              temporal_encoder=kind, **TINY_DECODER)  # fmt: skip
    encoders = [layer for layer in model.layers if isinstance(layer, TemporalEncoder)]
    assert encoders and all(layer.kind == kind for layer in encoders)
    x, y, weights = batch()
    outputs = model(x)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "boxes": (2, FRAMES, 4), "landmarks": (2, FRAMES, 10), "expression": (2, CLASSES)
    }  # fmt: skip
    compile_mtcae_model(model, CLASSES, jit_compile=False)
    head = model.get_layer("expression_head").fc_out.kernel.numpy()
    logs = model.train_on_batch(x, y, sample_weight=weights, return_dict=True)
    assert np.isfinite(logs["loss"]) and "expression_uar" in logs
    assert not np.allclose(model.get_layer("expression_head").fc_out.kernel.numpy(), head)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    for name, value in model.predict(x, verbose=0).items():
        np.testing.assert_array_equal(restored.predict(x, verbose=0)[name], value)


def test_temporal_feedback_feeds_landmarks_into_expression_without_training_them():
    keras.utils.set_random_seed(0)
    backbone = VideoMAEBackbone.from_preset("videomae_tiny")
    model = build_mtcae_model(backbone, "temporal_feedback", CLASSES, num_frames=FRAMES,
                              decoder="notebook", freeze_encoder=False, **TINY_DECODER)  # fmt: skip
    x, _, _ = batch()
    branch = model.get_layer("landmarks_head").trainable_variables
    branch += model.get_layer("landmarks_encoder").trainable_variables
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(x)["expression"]))
    grads = tape.gradient(loss, branch + model.get_layer("videomae_tiny").trainable_variables)
    assert all(g is None or float(tf.norm(g)) == 0 for g in grads[: len(branch)])
    assert sum(float(tf.norm(g)) for g in grads[len(branch) :] if g is not None) > 0
    before = model(x)["expression"]
    kernel = model.get_layer("landmarks_head").hidden_layers[0].kernel
    kernel.assign(kernel * 3.0)
    assert np.abs(model(x)["expression"] - before).max() > 1e-5


@pytest.mark.slow
def test_train_py_trains_a_temporal_strategy_and_its_task_model_reloads(tmp_path):
    """train.py --strategy temporal_feedback --temporal-encoder gru on tiny synthetic_faces:
    the run records the encoder kind, tests the best checkpoint, and `MTCAEDFER.from_run`
    (with the run's head statistics) predicts what the checkpoint does."""
    args = _args(tmp_path, 1) + ["--strategy", "temporal_feedback", "--temporal-encoder", "gru"]
    assert train.main(args) == 0
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["decoder"]["temporal_encoder"] == "gru"
    assert json.loads((run / "metrics.json").read_text())["count"] > 0
    from mtcae_keras import MTCAEDFER

    task = MTCAEDFER.from_run(str(run))
    trained = keras.saving.load_model(run / "checkpoints" / "best.keras", compile=False)
    assert task.get_layer("boxes_head").output_offset is not None  # standardised targets
    x = np.random.default_rng(0).standard_normal((2, *trained.input.shape[1:])).astype("float32")
    for name, value in trained.predict(x, verbose=0).items():
        np.testing.assert_allclose(task.predict(x, verbose=0)[name], value, atol=1e-5)


def test_temporal_encoder_flag_is_refused_without_a_temporal_strategy(tmp_path):
    with pytest.raises(SystemExit, match="--temporal-encoder: --strategy cascaded_vit has no"):
        train.main(_args(tmp_path, 1) + ["--temporal-encoder", "lstm"])
