"""The `affect` task set: per-frame action units, valence, arousal and expression through the
model builder, the input pipeline, the losses, train.py and evaluate.py."""

import json
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import expit
from scipy.special import log_softmax
from sklearn.metrics import f1_score

import evaluate
import predict
import train
from mtcae_keras import VideoMAEBackbone
from mtcae_keras import build_mtcae_model
from mtcae_keras.data.input_pipeline import make_fold_datasets
from mtcae_keras.data.input_pipeline import to_model_io
from mtcae_keras.training import compile_mtcae_model
from mtcae_keras.training.affect_evaluation import add_smoothed
from mtcae_keras.training.affect_evaluation import choose_smoothing
from mtcae_keras.training.affect_evaluation import ensemble_affect
from tests.test_mtcae_model import CLASSES
from tests.test_mtcae_model import FRAMES
from tests.test_mtcae_model import TINY_DECODER
from tests.test_train_cli import _args

AFFECT_SHAPES = {"action_units": (2, FRAMES, 12), "valence": (2, FRAMES),
                 "arousal": (2, FRAMES), "expression": (2, FRAMES, CLASSES)}  # fmt: skip


def affect_model(strategy, **overrides):
    keras.utils.set_random_seed(0)
    backbone = VideoMAEBackbone.from_preset("videomae_tiny")
    return build_mtcae_model(backbone, strategy, CLASSES, num_frames=FRAMES, decoder="notebook",
                             tasks="affect", **{**TINY_DECODER, **overrides})  # fmt: skip


def affect_batch(size=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size, FRAMES, 32, 32, 3)).astype("float32")
    y = {"valence": rng.uniform(-1, 1, (size, FRAMES)).astype("float32"),
         "arousal": rng.uniform(-1, 1, (size, FRAMES)).astype("float32"),
         "action_units": rng.integers(0, 2, (size, FRAMES, 12)).astype("float32"),
         "expression": rng.integers(0, CLASSES, (size, FRAMES))}  # fmt: skip
    y["valence"][0, 1] = -5.0  # missing labels, as Aff-Wild2 writes them
    y["expression"][1, 2] = -1
    y["action_units"][0, 3, 4] = -1.0
    return x, y


@pytest.mark.parametrize("strategy", ["cascaded_vit", "temporal_feedback"])
def test_affect_outputs_and_the_cascade_order(strategy):
    model = affect_model(strategy)
    x, _ = affect_batch()
    assert {k: tuple(v.shape) for k, v in model(x).items()} == AFFECT_SHAPES
    if strategy == "cascaded_vit":  # each decoder's query: the previous task's decoder
        order = ["action_units", "valence", "arousal", "expression"]
        for before, task in zip(order, order[1:], strict=False):
            query = model.get_layer(f"{task}_decoder")._inbound_nodes[0].parent_nodes[0]
            assert query.operation.name == f"{before}_decoder"
        return
    # temporal_feedback: the action-unit head's features go into the expression branch, the
    # expression's gradient does not reach the action-unit branch.
    branch = model.get_layer("action_units_head").trainable_variables
    branch += model.get_layer("action_units_encoder").trainable_variables
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(x)["expression"]))
    grads = tape.gradient(loss, branch)
    assert all(g is None or float(tf.norm(g)) == 0 for g in grads)
    before = model(x)["expression"]
    kernel = model.get_layer("action_units_head").hidden_layers[0].kernel
    kernel.assign(kernel * 3.0)
    assert np.abs(model(x)["expression"] - before).max() > 1e-5


def test_compiled_affect_loss_is_abaw4s_weighted_masked_sum():
    """The compiled loss of a batch with missing labels equals ABAW4's weighted sum of masked
    MSE, cross-entropy and sigmoid cross-entropy computed here with NumPy (weights 12 / 12 /
    1 / 0.35, each loss averaged over the labelled entries only)."""
    model = affect_model("cascaded_vit")
    compile_mtcae_model(model, CLASSES, jit_compile=False)
    x, y = affect_batch()
    ones = {task: np.ones(2, "float32") for task in y}  # the pipeline's sample weights
    outputs = {k: np.float64(v) for k, v in model(x, training=False).items()}
    loss = float(model.compute_loss(x, y, model(x, training=False), ones, training=False))

    def mse(task):
        keep = y[task] != -5
        return np.mean((y[task][keep] - outputs[task][keep]) ** 2)

    keep = y["expression"] != -1
    classes = np.maximum(y["expression"], 0)[..., None]
    cross_entropy = -np.take_along_axis(log_softmax(outputs["expression"], -1), classes, -1)
    p, z = expit(outputs["action_units"]), y["action_units"]
    keep_au = z != -1
    bce = -(z * np.log(p) + (1 - z) * np.log(1 - p))
    expected = (12 * mse("valence") + 12 * mse("arousal") + cross_entropy[..., 0][keep].mean()
                + 0.35 * bce[keep_au].mean())  # fmt: skip
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    compile_mtcae_model(model, CLASSES, jit_compile=False, loss_weights={"valence": 1.0})
    changed = float(model.compute_loss(x, y, model(x, training=False), ones, training=False))
    np.testing.assert_allclose(changed, expected - 11 * mse("valence"), rtol=1e-5)


def test_pipeline_gives_the_datasets_own_affect_labels_per_frame():
    example = {"video": tf.zeros((FRAMES, 8, 8, 3), tf.uint8), "label": tf.constant(4, tf.int64),
               "valence": tf.constant([0.1, 0.2, 0.3, -5.0]),
               "arousal": tf.constant([0.5, 0.4, 0.3, 0.2]),
               "action_units": tf.constant(np.eye(FRAMES, 12, dtype=np.int8))}  # fmt: skip
    tasks = ("action_units", "valence", "arousal", "expression")
    _, targets, weights = to_model_io(example, tasks=tasks, frame_expression=True)
    np.testing.assert_array_equal(targets["expression"], [4, 4, 4, 4])  # the clip's class
    np.testing.assert_array_equal(targets["valence"], example["valence"])  # -5 kept
    np.testing.assert_array_equal(targets["action_units"], np.eye(FRAMES, 12))
    assert targets["action_units"].dtype == tf.float32 and set(weights) == set(tasks)
    # Aff-Wild2 labels the expression of each frame itself.
    per_frame = {**example, "expression": tf.constant([1, -1, 2, 2], tf.int32)}
    _, targets, _ = to_model_io(per_frame, tasks=tasks, frame_expression=True)
    np.testing.assert_array_equal(targets["expression"], [1, -1, 2, 2])
    features = {"video": None, "label": None, "boxes": None}
    builder = types.SimpleNamespace(name="crema_d", info=types.SimpleNamespace(features=features))
    with pytest.raises(ValueError, match="crema_d has no valence, arousal, action_units labels"):
        make_fold_datasets(builder, 0, tasks=tasks, frame_expression=True)


def test_smoothing_is_chosen_on_validation_and_stays_within_each_clip():
    rng = np.random.default_rng(0)
    steps = np.arange(16)
    truth = np.stack([np.sin(steps / 12 + phase) for phase in (0.0, 2.0, 4.0)])
    validation = {"valence": truth, "arousal": truth,  # noisy valence: smoothing helps
                  "pred_valence": truth + rng.standard_normal(truth.shape),
                  "pred_arousal": truth.copy()}  # fmt: skip
    smoothing = choose_smoothing(validation)
    assert smoothing["arousal"]["window"] == 0  # exact predictions: smoothing only hurts
    scores = smoothing["valence"]["validation_ccc"]
    assert smoothing["valence"]["window"] == int(max(scores, key=scores.get)) > 0
    test = {
        "pred_valence": np.stack([np.zeros(16), np.ones(16)]),
        "pred_arousal": np.zeros((2, 16)),
    }
    smoothed = add_smoothed(test, {"valence": {"window": 5}})
    # Clip 0's last frame averages clip 0 only, not the ones of clip 1 after it.
    np.testing.assert_array_equal(smoothed["pred_valence_smoothed"], test["pred_valence"])
    assert "pred_arousal_smoothed" not in smoothed


def test_ensemble_averages_probabilities_and_regressions():
    rng = np.random.default_rng(1)
    members = [{"pred_frame_expression": rng.standard_normal((2, 3, CLASSES)),
                "pred_action_units": rng.standard_normal((2, 3, 12)),
                "pred_valence": rng.standard_normal((2, 3)),
                "pred_arousal": rng.standard_normal((2, 3))} for _ in range(3)]  # fmt: skip
    ensemble = ensemble_affect(members)
    softmax = [np.exp(log_softmax(m["pred_frame_expression"], -1)) for m in members]
    np.testing.assert_allclose(np.exp(ensemble["pred_frame_expression"]), np.mean(softmax, 0),
                               rtol=1e-5)  # fmt: skip
    sigmoid = np.mean([expit(m["pred_action_units"]) for m in members], 0)
    np.testing.assert_allclose(expit(ensemble["pred_action_units"]), sigmoid, rtol=1e-5)
    valence = np.mean([m["pred_valence"] for m in members], 0)
    np.testing.assert_allclose(ensemble["pred_valence"], valence, rtol=1e-6)


def _ccc(x, y):
    return 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


@pytest.mark.slow
def test_train_and_evaluate_score_the_affect_tasks_of_a_cascade(tmp_path, capsys):
    """train.py --tasks affect on tiny synthetic_faces: the predictions hold the dataset's own
    labels; metrics.json's CCC, F1 and P_MTL equal NumPy / scikit-learn on them; the smoothing
    window is validation's best; an ensemble of a run with itself is the run."""
    assert train.main(_args(tmp_path, 1) + ["--tasks", "affect"]) == 0
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["tasks"] == ["action_units", "valence", "arousal", "expression"]
    assert config["standardize_targets"] is False  # synthetic_faces' default: no boxes here
    metrics = json.loads((run / "metrics.json").read_text())
    p = dict(np.load(run / "predictions.npz"))
    assert p["valence"].shape == p["pred_valence"].shape == (metrics["count"], 16)
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(config["data_dir"] + "/synthetic_faces/tiny/1.3.0")
    clips = {ex["clip_id"].decode(): ex for ex in tfds.as_numpy(builder.as_dataset("fold1"))}
    for row, clip_id in enumerate(p["clip_id"]):
        np.testing.assert_array_equal(p["valence"][row], clips[clip_id]["valence"])
        np.testing.assert_array_equal(p["action_units"][row], clips[clip_id]["action_units"])
        assert (p["frame_label"][row] == clips[clip_id]["label"]).all()
    f1 = f1_score(p["frame_label"].ravel(), p["pred_frame_expression"].argmax(-1).ravel(),
                  labels=range(6), average="macro", zero_division=0)  # fmt: skip
    units = [f1_score(p["action_units"][..., u].ravel(), expit(p["pred_action_units"][..., u])
                      .ravel() >= 0.5, zero_division=0) for u in range(12)]  # fmt: skip
    ccc = [_ccc(p[t].ravel(), p[f"pred_{t}"].ravel()) for t in ("valence", "arousal")]
    np.testing.assert_allclose(metrics["expression_f1"], f1, rtol=1e-6)
    np.testing.assert_allclose(metrics["action_unit_f1"], np.mean(units), rtol=1e-6)
    np.testing.assert_allclose(metrics["p_mtl"], np.mean(ccc) + f1 + np.mean(units), rtol=1e-5)
    # The windows were scored on the run's validation clips (not the test fold's).
    from mtcae_keras.training.run_evaluation import predict_validation

    model = keras.saving.load_model(run / "checkpoints" / "best.keras", compile=False)
    validation = predict_validation(str(run), model, config)
    assert not set(validation["clip_id"]) & set(p["clip_id"])
    for task in ("valence", "arousal"):
        scores = metrics["smoothing"][task]["validation_ccc"]
        assert metrics["smoothing"][task]["window"] == int(max(scores, key=scores.get))
        raw = _ccc(validation[task].ravel(), validation[f"pred_{task}"].ravel())
        np.testing.assert_allclose(scores["0"], raw, rtol=1e-5)
    assert "P_MTL" in capsys.readouterr().out
    # The task model of the run has its tasks; predict.py reports every frame's.
    from mtcae_keras import MTCAEDFER
    from mtcae_keras.data.video_reader import write_video

    task = MTCAEDFER.from_run(str(run))
    assert task.tasks == "affect"
    x = np.random.default_rng(0).standard_normal((2, *model.input.shape[1:])).astype("float32")
    for name, value in model.predict(x, verbose=0).items():
        np.testing.assert_allclose(task.predict(x, verbose=0)[name], value, atol=1e-5)
    clip = next(iter(clips.values()))
    video = write_video(str(tmp_path / "clip.mp4"), clip["video"])
    assert predict.main([video, "--run", str(run), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["frames"]["valence"]) == 16
    assert sorted(printed["frames"]["action_unit_probabilities"])[:2] == ["AU1", "AU10"]
    # tools/extract_frame_features.py --encoder RUN_DIR: the run's trained encoder, pooled.
    from mtcae_keras.models.frame_feature_pooling import FrameFeaturePooling
    from mtcae_keras.models.video_preprocessor import normalize_pixels
    from tools import extract_frame_features as tool

    features = str(tmp_path / "features.h5")
    assert tool.main(["--dataset", "synthetic_faces", "--dataset-config", "tiny", "--encoder",
                      str(run), "--data-dir", config["data_dir"], "--splits", "fold1",
                      "--output", features]) == 0  # fmt: skip
    fold = tool.load_frame_features(features, "fold1")
    first = clips[fold["clip_id"][0]]
    pixels = np.asarray(normalize_pixels(first["video"][None], config["normalization"]))
    pool = FrameFeaturePooling(task.backbone.token_grid, task.backbone.tubelet_size)
    np.testing.assert_allclose(fold["features"][:1], pool(task.backbone(pixels)), atol=1e-5)
    assert evaluate.main([str(run), str(run), "--ensemble", "--output", str(tmp_path)]) == 0
    ensemble = json.loads((tmp_path / "ensemble_metrics.json").read_text())["ensemble"]
    for key in ("p_mtl", "p_mtl_smoothed", "ccc_valence", "expression_f1", "uar"):
        np.testing.assert_allclose(ensemble[key], metrics[key], rtol=1e-5)
    assert "| P_MTL smoothed |" in (tmp_path / "ensemble_table.md").read_text()


def test_affect_flags_are_refused_where_they_cannot_apply(tmp_path):
    with pytest.raises(SystemExit, match="--standardize-targets: the affect tasks have no"):
        train.main(_args(tmp_path, 1) + ["--tasks", "affect", "--standardize-targets"])
    with pytest.raises(SystemExit, match="multi-worker loop"):
        train.main(_args(tmp_path, 1) + ["--tasks", "affect", "--distribute", "multi_worker"])
    tasks = ("valence", "action_units")
    weights = train.parse_loss_weights(["valence=3", "action_units=0.5"], tasks)
    assert weights == {"valence": 3.0, "action_units": 0.5}
    with pytest.raises(ValueError, match="the model's tasks are boxes, expression"):
        train.parse_loss_weights(["valence=3"], ("boxes", "expression"))
    with pytest.raises(ValueError, match="write TASK=WEIGHT"):
        train.parse_loss_weights(["valence"], ("valence",))
