"""The ABAW4 temporal models: parity with AIM3-RUC/ABAW4's PyTorch code, and the wiring of
the basic, share-bottom and feedback frameworks."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtcae_keras.conversion.abaw4_port import port_abaw4_weights
from mtcae_keras.conversion.abaw4_port import port_temporal_encoder_weights
from mtcae_keras.models.task_feedback_embedding import TaskFeedbackEmbedding
from mtcae_keras.models.temporal_encoder import TemporalEncoder
from mtcae_keras.models.temporal_multitask import build_temporal_multitask_model

GOLDEN = os.path.join(os.path.dirname(__file__), "fixtures", "abaw4", "golden.npz")
CODE_OUTPUTS = {"valence": "v", "arousal": "a", "expression": "expr", "action_units": "au"}
# The fixture's MTLTransformerModel settings (tools/make_abaw4_golden.py).
MTL = {"feature_dim": 24, "num_frames": 10, "hidden_dim": 64, "num_layers": 2, "num_heads": 4,
       "intermediate_dim": 32, "head_dims": (16, 8), "feed_dim": 8}  # fmt: skip
MTL_CASES = {
    "basic": {"framework": "basic"},
    "share_bottom_feature_feedback": {
        "framework": "feedback", "feedback": "features", "feedback_structure": "share_bottom",
        "feed_sources": ("valence", "action_units"), "feed_targets": ("arousal",),
    },
    "feedback": {
        "framework": "feedback", "feedback": "predictions", "feedback_structure": "basic",
        "feed_sources": ("action_units", "expression"), "feed_targets": ("valence",),
    },
}  # fmt: skip


def _case(golden, case):
    prefix = f"{case}/state/"
    return {k[len(prefix) :]: golden[k] for k in golden if k.startswith(prefix)}


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN))


@pytest.mark.parametrize(
    "case, encoder, prefix",
    [
        ("transformer", {"kind": "transformer", "hidden_dim": 32, "num_layers": 2,
                         "num_heads": 4, "intermediate_dim": 48}, ""),
        ("gru", {"kind": "gru", "hidden_dim": 16, "num_layers": 2, "segment_length": 4},
         "rnns.0."),
        ("lstm", {"kind": "lstm", "hidden_dim": 16, "num_layers": 1, "segment_length": 4},
         "rnn."),
    ],
)  # fmt: skip
def test_temporal_encoder_equals_the_abaw4_code(golden, case, encoder, prefix):
    """The code's TransformerEncoder (its last layer), and its GRU / LSTM over three segments
    with the state carried: the same hidden states within 1e-5 after the port."""
    layer = TemporalEncoder(**encoder)
    x = golden[f"{case}/x"]
    layer(x)
    report = port_temporal_encoder_weights(layer, _case(golden, case), prefix=prefix)
    assert report["loaded"] == len(layer.weights)
    np.testing.assert_allclose(layer(x), golden[f"{case}/y"], atol=1e-5)


@pytest.mark.parametrize("case", list(MTL_CASES))
def test_multitask_model_equals_mtl_transformer_model(golden, case):
    """MTLTransformerModel.forward_step of each framework (the example script's share-bottom
    + feature feedback among them): every task's output within 1e-5."""
    model = build_temporal_multitask_model(**MTL, **MTL_CASES[case])
    state = _case(golden, f"mtl_{case}")
    report = port_abaw4_weights(model, state)
    assert report["loaded"] == len(model.weights) - len(
        [w for w in model.weights if w.name == "gt_rate"]
    )
    assert all("position_embeddings" in k or ".linear." in k for k in report["ignored"])
    outputs = model(golden[f"mtl_{case}/x"])
    for task, code in CODE_OUTPUTS.items():
        reference = golden[f"mtl_{case}/{code}"]
        np.testing.assert_allclose(outputs[task], reference.reshape(outputs[task].shape),
                                   atol=1e-5, err_msg=task)  # fmt: skip


def test_the_port_names_what_does_not_match(golden):
    model = build_temporal_multitask_model(**{**MTL, "head_dims": (16,)}, framework="basic")
    with pytest.raises(ValueError, match=r"unused.*net_v_reg\.0\.module\.4\.weight"):
        port_abaw4_weights(model, _case(golden, "mtl_basic"))
    state = _case(golden, "mtl_basic")
    state["net_seq.position_embeddings.weight"] = np.ones((512, 64), np.float32)
    model = build_temporal_multitask_model(**MTL, framework="basic")
    with pytest.raises(ValueError, match="a position table other than the code's"):
        port_abaw4_weights(model, state)


def _gradient_norms(model, x, task):
    """Norm of d(sum of squares of `task`'s output) / d(each layer's variables)."""
    names = [layer.name for layer in model.layers if layer.trainable_variables]
    variables = {name: model.get_layer(name).trainable_variables for name in names}
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(x, training=False)[task]))
    grads = tape.gradient(loss, variables)
    return {name: sum(float(tf.norm(g)) for g in grads[name] if g is not None) for name in names}


KINDS = ["gru", "lstm", "transformer"]
SMALL = {"feature_dim": 12, "num_frames": 8, "hidden_dim": 64, "num_layers": 2, "num_heads": 2,
         "intermediate_dim": 16, "head_dims": (8,), "segment_length": 4, "feed_dim": 8}  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_feedback_feeds_the_target_without_training_the_source(kind):
    """Feature feedback from action units into expression: changing the source head changes
    the target's output, but the target's loss sends no gradient into the source branch (its
    top encoder and head), while it does reach the shared encoder."""
    model = build_temporal_multitask_model(**SMALL, temporal_encoder=kind, framework="feedback")
    x = np.random.default_rng(0).standard_normal((2, 8, 12)).astype(np.float32)
    norms = _gradient_norms(model, x, "expression")
    assert norms["action_units_head"] == 0 and norms["action_units_encoder"] == 0
    assert norms["expression_head"] > 0 and norms["temporal_encoder"] > 0
    before = model(x)["expression"]
    head = model.get_layer("action_units_head").hidden_layers[0]
    head.kernel.assign(head.kernel * 2.0)
    assert np.abs(model(x)["expression"] - before).max() > 1e-4


@pytest.mark.parametrize("kind", KINDS)
def test_share_bottom_tops_are_task_specific_and_basic_shares_all(kind):
    x = np.random.default_rng(1).standard_normal((2, 8, 12)).astype(np.float32)
    model = build_temporal_multitask_model(**SMALL, temporal_encoder=kind,
                                           framework="share_bottom")  # fmt: skip
    norms = _gradient_norms(model, x, "valence")
    assert norms["valence_encoder"] > 0 and norms["temporal_encoder"] > 0
    for other in ("arousal", "expression", "action_units"):
        assert norms[f"{other}_encoder"] == 0 and norms[f"{other}_head"] == 0
    assert model.get_layer("temporal_encoder").num_layers == 1  # num_layers - share_layers
    basic = build_temporal_multitask_model(**SMALL, temporal_encoder=kind, framework="basic")
    encoders = [layer.name for layer in basic.layers if isinstance(layer, TemporalEncoder)]
    assert encoders == ["temporal_encoder"]  # one encoder, shared by every task
    for task in ("valence", "expression"):
        assert _gradient_norms(basic, x, task)["temporal_encoder"] > 0


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_recurrent_segments_carry_the_state_without_its_gradient(kind):
    encoder = TemporalEncoder(kind, hidden_dim=8, num_layers=2, segment_length=4)
    x = tf.constant(np.random.default_rng(2).standard_normal((1, 8, 5)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = encoder(x)[:, 4:]  # the second segment
        total = tf.reduce_sum(y)
    gradient = tape.gradient(total, x).numpy()
    assert np.abs(gradient[:, :4]).max() == 0 and np.abs(gradient[:, 4:]).max() > 0
    changed = x.numpy().copy()
    changed[:, :4] += 1.0
    assert np.abs(encoder(changed)[:, 4:] - y).max() > 1e-4  # the carried state depends on it


def test_transformer_segments_do_not_see_each_other():
    encoder = TemporalEncoder("transformer", hidden_dim=16, num_layers=1, num_heads=2,
                              intermediate_dim=16, segment_length=4)  # fmt: skip
    x = np.random.default_rng(3).standard_normal((1, 8, 5)).astype(np.float32)
    changed = x.copy()
    changed[:, :4] += 1.0
    np.testing.assert_allclose(encoder(changed)[:, 4:], encoder(x)[:, 4:], atol=1e-6)
    with pytest.raises(ValueError, match="multiple of segment_length=4"):
        encoder(x[:, :6])


def test_prediction_feedback_mixes_ground_truth_only_in_training():
    """gt_rate 1: training frames weigh the embeddings by the labels (missing ones weigh
    nothing); inference uses the predictions alone."""
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((2, 6, 3)).astype(np.float32)
    labels = np.array([[0, 1, 2, -1, 0, 1], [2, 2, 1, 0, -1, -1]])
    layer = TaskFeedbackEmbedding("expression", 3, feed_dim=4, gt_rate=1.0, seed=0)
    trained = layer(logits, labels, training=True).numpy()
    table = layer.embeddings.numpy()
    truth = np.where(labels[..., None] >= 0, np.eye(3)[labels.clip(0)], 0.0)
    np.testing.assert_allclose(trained, truth @ table, atol=1e-6)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(layer(logits, labels, training=False), probabilities @ table,
                               atol=1e-5)  # fmt: skip
    valence = TaskFeedbackEmbedding("valence", 1, feed_dim=4, gt_rate=1.0)
    v = np.array([[0.5, -5.0, -1.0]], np.float32)
    out = valence(np.zeros((1, 3, 1), np.float32), v, training=True).numpy()
    np.testing.assert_allclose(out, ((v + 1) / 2 * (v != -5))[..., None] * valence.embeddings
                               .numpy()[0], atol=1e-6)  # fmt: skip
    half = TaskFeedbackEmbedding("expression", 3, feed_dim=4, gt_rate=0.5, seed=1)
    mixed = half(logits, labels, training=True).numpy()
    half_table = half.embeddings.numpy()
    from_truth = np.isclose(mixed, truth @ half_table, atol=1e-6).all(-1)
    assert (from_truth.sum(1) >= 3).all()  # floor(6 * 0.5) frames, the same in each clip
    assert (from_truth.sum(1) < 6).all()  # and the other frames from the predictions


def test_a_multitask_model_round_trips_with_non_default_settings(tmp_path):
    model = build_temporal_multitask_model(
        **SMALL, temporal_encoder="transformer", framework="feedback", feedback="predictions",
        feed_sources=("valence", "action_units"), feed_targets=("expression", "arousal"),
    )  # fmt: skip
    x = np.random.default_rng(5).standard_normal((2, 8, 12)).astype(np.float32)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    for task, value in model(x).items():
        np.testing.assert_allclose(loaded(x)[task], value, atol=1e-6)
    assert loaded.get_layer("valence_feedback").feed_dim == 8


def test_feedback_rate_decays_linearly_over_the_epochs():
    from mtcae_keras.training.feedback_rate_decay import FeedbackRateDecay

    model = build_temporal_multitask_model(
        **SMALL, temporal_encoder="gru", framework="feedback", feedback="predictions",
        feed_gt_rate=0.8,
    )  # fmt: skip
    layer = model.get_layer("action_units_feedback")
    callback = FeedbackRateDecay(epochs=4)
    callback.set_model(model)
    rates = []
    for epoch in range(4):
        callback.on_epoch_begin(epoch)
        rates.append(float(layer.gt_rate.numpy()))
    np.testing.assert_allclose(rates, [0.8, 0.6, 0.4, 0.2], atol=1e-7)
    assert "action_units_labels" in model.input  # ground truth is an input in training
