import keras
import numpy as np
import pytest
import tensorflow as tf

from mtcae_keras import MLPDecoder
from mtcae_keras import TaskHead
from mtcae_keras import VideoMAEBackbone
from mtcae_keras import ViTDecoder
from mtcae_keras import build_mtcae_model
from mtcae_keras.models.mtcae import PAPER_STRATEGIES as STRATEGIES
from mtcae_keras.training import compile_mtcae_model
from tests.test_case import assert_config_round_trip
from tests.test_case import max_abs_diff

TINY_DECODER = {"num_layers": 1, "hidden_dim": 16, "key_dim": 8, "mlp_dims": (32, 16)}
FRAMES, CLASSES = 4, 6


def tiny_model(strategy, decoder="notebook", dtype=None, **overrides):
    keras.utils.set_random_seed(0)
    backbone = VideoMAEBackbone.from_preset("videomae_tiny", dtype=dtype)
    return build_mtcae_model(
        backbone, strategy, CLASSES, num_frames=FRAMES, decoder=decoder, dtype=dtype,
        **{**TINY_DECODER, **overrides},
    )  # fmt: skip


def batch(size=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size, FRAMES, 32, 32, 3)).astype("float32")
    y = {
        "boxes": rng.random((size, FRAMES, 4)).astype("float32"),
        "landmarks": rng.random((size, FRAMES, 10)).astype("float32"),
        "expression": rng.integers(0, CLASSES, size),
    }
    mask = np.ones((size, FRAMES), "float32")
    mask[0, 1] = 0.0
    weights = {"boxes": mask, "landmarks": mask, "expression": np.ones(size, "float32")}
    return x, y, weights


def test_notebook_cascade_has_the_notebooks_parameter_count():
    backbone = VideoMAEBackbone.from_preset("videomae_large")
    model = build_mtcae_model(backbone, "cascaded_vit", 7, decoder="notebook")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 9_800_935
    for task in ("boxes", "landmarks", "expression"):
        assert model.get_layer(f"{task}_decoder").count_params() == 3_159_296
    assert model.count_params() == 9_800_935 + 303_858_688


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_encoder_decides_whether_a_step_moves_the_encoder(freeze):
    keras.utils.set_random_seed(0)
    backbone = VideoMAEBackbone.from_preset("videomae_tiny")
    model = build_mtcae_model(backbone, "stl", CLASSES, num_frames=FRAMES, freeze_encoder=freeze)
    assert len(model.trainable_weights) == (0 if freeze else len(backbone.weights)) + 4
    compile_mtcae_model(model, CLASSES, jit_compile=False)
    before = [w.numpy() for w in backbone.weights]
    x, y, _ = batch(4)
    model.train_on_batch(x, {"expression": y["expression"]})
    moved = [not np.array_equal(a, w.numpy()) for a, w in zip(before, backbone.weights,
                                                                strict=True)]  # fmt: skip
    assert (not any(moved)) if freeze else all(moved)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_contract_train_step_and_save_load(strategy, tmp_path):
    model = tiny_model(strategy)
    expected = {"stl": ["expression"]}.get(strategy, ["boxes", "landmarks", "expression"])
    assert sorted(model.output) == sorted(expected)
    x, y, weights = batch()
    outputs = model(x)
    shapes = {"boxes": (2, FRAMES, 4), "landmarks": (2, FRAMES, 10), "expression": (2, CLASSES)}
    for name in expected:
        assert tuple(outputs[name].shape) == shapes[name]
        assert outputs[name].dtype == tf.float32

    # XLA for the paper's model only: its CPU compile time was most of these six tests.
    compile_mtcae_model(model, CLASSES, jit_compile=strategy == "cascaded_vit")
    encoder_before = [w.numpy() for w in model.get_layer("videomae_tiny").weights]
    head_before = model.get_layer("expression").dense.kernel.numpy()
    logs = model.train_on_batch(
        x, {k: y[k] for k in expected}, sample_weight={k: weights[k] for k in expected},
        return_dict=True,
    )  # fmt: skip
    assert np.isfinite(logs["loss"])
    assert ("uar" if strategy == "stl" else "expression_uar") in logs
    assert not np.allclose(model.get_layer("expression").dense.kernel.numpy(), head_before)
    encoder_after = model.get_layer("videomae_tiny").weights
    assert all(
        np.array_equal(a, b.numpy()) for a, b in zip(encoder_before, encoder_after, strict=True)
    )

    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert len(restored.trainable_weights) == len(model.trainable_weights)
    before, after = model.predict(x, verbose=0), restored.predict(x, verbose=0)
    for name in expected:
        assert max_abs_diff(before[name], after[name]) == 0.0


def _perturb(layer, seed=1):
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(weight.numpy() + rng.standard_normal(weight.shape).astype("float32"))


@pytest.mark.parametrize("strategy, depends", [("cascaded_vit", True), ("nfs_vit", False)])
def test_expression_depends_on_landmark_decoder_only_in_the_cascade(strategy, depends):
    model = tiny_model(strategy)
    x, _, _ = batch()
    before = model.predict(x, verbose=0)
    _perturb(model.get_layer("landmarks_decoder"))
    after = model.predict(x, verbose=0)
    assert max_abs_diff(before["landmarks"], after["landmarks"]) > 1e-3
    assert (max_abs_diff(before["expression"], after["expression"]) > 1e-4) is depends
    assert max_abs_diff(before["boxes"], after["boxes"]) == 0.0


def _layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.epsilon) * layer.gamma.numpy() + layer.beta.numpy()


def _gelu(x):
    from scipy.special import erf

    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def _mha(q_in, kv_in, layer):
    def proj(dense, x):
        return np.einsum("bnd,dhk->bnhk", x, dense.kernel.numpy()) + dense.bias.numpy()

    q = proj(layer._query_dense, q_in) / np.sqrt(layer._key_dim)
    k, v = proj(layer._key_dense, kv_in), proj(layer._value_dense, kv_in)
    logits = np.einsum("bqhk,bmhk->bhqm", q, k)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = np.einsum("bhqm,bmhk->bqhk", probs, v)
    out = layer._output_dense
    return np.einsum("bqhk,hkd->bqd", context, out.kernel.numpy()) + out.bias.numpy()


def test_vit_decoder_computes_algorithm_1():
    """A numpy Algorithm 1 (paper) from the layer's weights gives the layer's output."""
    keras.utils.set_random_seed(3)
    decoder = ViTDecoder(16, 2, 3, 8, mlp_dims=(24, 16), memory_projection=True)
    rng = np.random.default_rng(0)
    y = rng.standard_normal((2, 5, 16)).astype("float32")
    f = rng.standard_normal((2, 7, 12)).astype("float32")
    decoder(y, f)  # builds the weights
    for weight in decoder.weights:  # move LayerNorms and biases off their initial values
        weight.assign(weight.numpy() + 0.1 * rng.standard_normal(weight.shape))
    actual = np.asarray(decoder(y, f))

    memory = _layer_norm(f @ decoder.memory_dense.kernel.numpy(), decoder.memory_norm)
    stream = y.astype(np.float64)
    for i in range(2):
        z = _mha(_layer_norm(stream, decoder.query_norms[i]), memory, decoder.attentions[i])
        z = z + stream
        h = _layer_norm(z, decoder.mlp_norms[i])
        for dense in decoder.mlps[i]:
            h = _gelu(h @ dense.kernel.numpy() + dense.bias.numpy())
        stream = h + z
    np.testing.assert_allclose(actual, stream, atol=1e-4)


def test_attention_scores_are_returned_per_layer():
    decoder = ViTDecoder(16, 3, 2, 8, mlp_dims=(32, 16))
    y = np.random.default_rng(0).standard_normal((2, 5, 16)).astype("float32")
    f = np.random.default_rng(1).standard_normal((2, 9, 16)).astype("float32")
    out, scores = decoder(y, f, return_attention_scores=True)
    assert max_abs_diff(out, decoder(y, f)) == 0.0
    assert len(scores) == 3
    assert all(tuple(s.shape) == (2, 2, 5, 9) for s in scores)
    np.testing.assert_allclose(np.asarray(scores[0]).sum(-1), 1.0, atol=1e-5)


def test_mlp_decoder_is_the_vit_decoder_without_attention():
    vit = ViTDecoder(16, 3, 2, 8, mlp_dims=(32, 16))
    vit.build((None, 5, 16), (None, 9, 16))
    mlp = MLPDecoder(16, 3, mlp_dims=(32, 16))
    mlp.build((None, 5, 16))
    attention = sum(a.count_params() for a in vit.attentions)
    norms = vit.memory_norm.count_params() + sum(n.count_params() for n in vit.query_norms)
    assert mlp.count_params() == vit.count_params() - attention - norms


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (ViTDecoder, dict(hidden_dim=16, num_layers=2, num_heads=2, key_dim=8,
                          mlp_dims=(32, 16), attention_dropout_rate=0.1, dropout_rate=0.2,
                          layer_norm_epsilon=1e-5, memory_projection=True, memory_saving=False,
                          name="d")),
        (MLPDecoder, dict(hidden_dim=16, num_layers=3, mlp_dims=(32, 16), dropout_rate=0.2,
                          layer_norm_epsilon=1e-5, name="m")),
        (TaskHead, dict(output_shape=(4, 10), norm_first=True, dropout_rate=0.2,
                        layer_norm_epsilon=1e-5)),
        (TaskHead, dict(output_shape=(2, 3), output_offset=[[0.1, 0.2, 0.3]],
                        output_scale=0.5, name="h")),
    ],
)  # fmt: skip
def test_decoder_and_head_configs_round_trip(cls, kwargs):
    assert_config_round_trip(cls, **kwargs)


def test_standardised_head_starts_at_the_offset_and_de_standardises_its_dense():
    """`output = offset + scale * (W pool(norm(x)) + b)`, checked against numpy."""
    rng = np.random.default_rng(0)
    offset = rng.random((3, 4)).astype("float32")
    scale = (0.01 + rng.random((3, 4))).astype("float32")
    head = TaskHead((3, 4), dropout_rate=0.0, output_offset=offset, output_scale=scale)
    tokens = rng.standard_normal((2, 5, 8)).astype("float32")
    np.testing.assert_allclose(head(tokens), np.broadcast_to(offset, (2, 3, 4)), atol=1e-7)
    kernel = rng.standard_normal((8, 12)).astype("float32")
    bias = rng.standard_normal(12).astype("float32")
    head.dense.set_weights([kernel, bias])
    pooled = tokens.mean(1)
    normed = (pooled - pooled.mean(-1, keepdims=True)) / np.sqrt(
        pooled.var(-1, keepdims=True) + 1e-6
    )
    expected = offset + scale * (normed @ kernel + bias).reshape(2, 3, 4)
    np.testing.assert_allclose(head(tokens), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="both"):
        TaskHead((3, 4), output_offset=offset)
    with pytest.raises(ValueError, match="does not broadcast"):
        TaskHead((3, 4), output_offset=offset, output_scale=np.ones(5))


def test_target_statistics_make_the_heads_start_at_the_mean_and_survive_saving(tmp_path):
    mean = {
        "boxes": np.full((FRAMES, 4), 0.3, "float32"),
        "landmarks": np.linspace(0, 1, FRAMES * 10, dtype="float32").reshape(FRAMES, 10),
    }
    std = {"boxes": np.full((FRAMES, 4), 0.05, "float32"),
           "landmarks": np.full((FRAMES, 10), 0.02, "float32")}  # fmt: skip
    statistics = {task: (mean[task], std[task]) for task in mean}
    model = tiny_model("cascaded_vit", target_statistics=statistics)
    x, y, weights = batch()
    before = model.predict(x, verbose=0)
    for task in mean:  # zero kernels: the training mean, whatever the input
        np.testing.assert_allclose(before[task], np.broadcast_to(mean[task], before[task].shape))
    compile_mtcae_model(model, CLASSES, 1e-2, 1e-3)
    model.fit(x, y, sample_weight=weights, epochs=2, verbose=0)
    after = model.predict(x, verbose=0)
    assert np.abs(after["boxes"] - before["boxes"]).max() > 1e-4  # it trains
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    for task in after:
        np.testing.assert_allclose(loaded.predict(x, verbose=0)[task], after[task], atol=1e-6)
    with pytest.raises(ValueError, match="only boxes and landmarks"):
        tiny_model("cascaded_vit", target_statistics={"expression": (0.0, 1.0)})


def test_decoders_under_mixed_bfloat16_stay_close_to_float32():
    """Outputs float32 and finite; RMS error <= 5% of the float32 output's RMS."""
    reference = tiny_model("cascaded_vit")
    mixed = tiny_model("cascaded_vit", dtype="mixed_bfloat16")
    mixed.set_weights(reference.get_weights())
    x, _, _ = batch()
    expected, actual = reference.predict(x, verbose=0), mixed.predict(x, verbose=0)
    for name in ("boxes", "landmarks", "expression"):
        assert actual[name].dtype == np.float32 and np.all(np.isfinite(actual[name]))
        error = np.sqrt(np.mean((actual[name] - expected[name]) ** 2))
        assert error <= 5e-2 * np.sqrt(np.mean(expected[name] ** 2))
    assert mixed.get_layer("landmarks_decoder").compute_dtype == "bfloat16"


def test_paper_preset_projects_memory_inside_each_decoder():
    model = tiny_model("cascaded_vit", decoder="paper")
    decoder = model.get_layer("expression_decoder")
    assert decoder.memory_projection and decoder.memory_dense.kernel.shape == (32, 16)
    assert decoder.num_heads == 3 and model.get_layer("expression").norm_first


def test_bad_strategy_and_decoder_names():
    backbone = VideoMAEBackbone.from_preset("videomae_tiny")
    with pytest.raises(ValueError, match="cascaded_vit"):
        build_mtcae_model(backbone, "cascade", CLASSES)
    with pytest.raises(ValueError, match="notebook"):
        build_mtcae_model(backbone, "nfs_vit", CLASSES, decoder="huge")
    with pytest.raises(ValueError, match="Unknown decoder settings"):
        build_mtcae_model(backbone, "nfs_vit", CLASSES, num_layer=2)
