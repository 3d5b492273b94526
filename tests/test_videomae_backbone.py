import keras
import numpy as np
import pytest
import tensorflow as tf

from mtcae_keras import VideoMAEBackbone
from mtcae_keras.models.videomae_layers import VideoMAEAttention
from mtcae_keras.models.videomae_layers import VideoMAEEncoderBlock
from mtcae_keras.models.videomae_layers import VideoMAETubeletEmbedding
from mtcae_keras.models.videomae_layers import sinusoid_position_embedding
from tests.test_case import assert_config_round_trip
from tests.test_case import fixture_path
from tests.test_case import golden
from tests.test_case import max_abs_diff


@pytest.fixture(scope="module")
def ported():
    return VideoMAEBackbone.from_preset(fixture_path("hf"))


@pytest.mark.parametrize(
    "preset, params",
    [
        ("videomae_base", 86_225_664),
        ("videomae_large", 303_858_688),
        ("videomae_small", 21_879_168),
        ("videomae_tiny", 29_344),
    ],
)
def test_parameter_counts_are_exact(preset, params):
    backbone = VideoMAEBackbone.from_preset(preset)
    assert backbone.count_params() == params
    if preset != "videomae_tiny":
        assert backbone.num_tokens == 1568
        assert backbone.output.shape == (None, 1568, backbone.hidden_dim)


def test_final_norm_and_layer_scale_add_their_weights():
    base = VideoMAEBackbone.from_preset("videomae_tiny").count_params()
    width, layers = 32, 2
    with_norm = VideoMAEBackbone.from_preset("videomae_tiny", use_final_norm=True)
    with_scale = VideoMAEBackbone.from_preset("videomae_tiny", layer_scale_init_value=0.1)
    assert with_norm.count_params() == base + 2 * width
    assert with_scale.count_params() == base + 2 * width * layers


def test_position_embedding_is_the_sinusoid_table():
    table = sinusoid_position_embedding(1568, 768)
    positions = np.arange(1568)
    np.testing.assert_allclose(table[:, 0], np.sin(positions), atol=1e-6)
    np.testing.assert_allclose(table[:, 1], np.cos(positions), atol=1e-6)
    np.testing.assert_allclose(table[:, 10], np.sin(positions / 10000 ** (10 / 768)), atol=1e-6)
    backbone = VideoMAEBackbone.from_preset("videomae_tiny")
    assert not any("pos" in w.path for w in backbone.weights)


def test_position_embedding_changes_the_output(ported):
    """The notebook's defect (no position embedding) must not be the default."""
    without = VideoMAEBackbone.from_preset(fixture_path("hf"), use_position_embedding=False)
    x = golden()["pixels"]
    assert max_abs_diff(ported(x), without(x)) > 1e-2


def test_eager_equals_xla(ported):
    x = golden()["pixels"]
    eager = ported(x, training=False)
    compiled = tf.function(lambda v: ported(v, training=False), jit_compile=True)
    assert max_abs_diff(eager, compiled(tf.constant(x))) <= 1e-4


def test_keras_save_load_round_trip(ported, tmp_path):
    path = str(tmp_path / "backbone.keras")
    ported.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, VideoMAEBackbone)
    assert restored.get_config() == ported.get_config()
    x = golden()["pixels"]
    assert max_abs_diff(restored(x), ported(x)) == 0.0


def test_mixed_bfloat16_stays_close_to_float32(ported):
    """Tolerance: RMS error <= 2% of the float32 output's RMS (measured: about 0.5%)."""
    bf16 = VideoMAEBackbone.from_preset(fixture_path("hf"), dtype="mixed_bfloat16")
    x = golden()["pixels"]
    out = bf16(x)
    assert out.dtype == tf.bfloat16
    assert bf16.get_layer("blocks_0").attn.q_bias.dtype == "float32"
    reference = np.asarray(ported(x))
    out = np.asarray(tf.cast(out, tf.float32))
    assert np.all(np.isfinite(out))
    rms_error = np.sqrt(np.mean((out - reference) ** 2) / np.mean(reference**2))
    assert rms_error <= 2e-2


def test_drop_path_is_stochastic_in_training_only():
    backbone = VideoMAEBackbone.from_preset("videomae_tiny", drop_path_rate=0.5)
    assert backbone.get_layer("blocks_0").drop_path_rate == 0.0
    assert backbone.get_layer("blocks_1").drop_path_rate == 0.5
    x = np.random.default_rng(0).standard_normal((4, 4, 32, 32, 3)).astype("float32")
    assert max_abs_diff(backbone(x), backbone(x)) == 0.0
    keras.utils.set_random_seed(1)
    assert max_abs_diff(backbone(x, training=True), backbone(x)) > 1e-3


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (VideoMAETubeletEmbedding, dict(hidden_dim=16, patch_size=8, tubelet_size=1,
                                        num_tokens=32, use_position_embedding=False, name="e")),
        (VideoMAEAttention, dict(hidden_dim=16, num_heads=2, qv_bias=False,
                                 attention_dropout_rate=0.1, dropout_rate=0.2,
                                 memory_saving=False)),
        (VideoMAEEncoderBlock, dict(hidden_dim=16, num_heads=2, intermediate_dim=24,
                                    layer_norm_epsilon=1e-5, qv_bias=False,
                                    layer_scale_init_value=0.1, drop_path_rate=0.2,
                                    dropout_rate=0.3, attention_dropout_rate=0.4,
                                    memory_saving=False)),
    ],
)  # fmt: skip
def test_layer_configs_round_trip(cls, kwargs):
    assert_config_round_trip(cls, **kwargs)


def test_backbone_config_round_trip():
    backbone = VideoMAEBackbone.from_preset(
        "videomae_tiny", layer_scale_init_value=0.1, use_final_norm=True, drop_path_rate=0.1
    )
    config = backbone.get_config()
    clone = VideoMAEBackbone.from_config(config)
    assert clone.get_config() == config
    assert clone.count_params() == backbone.count_params()


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="videomae_base"):
        VideoMAEBackbone.from_preset("videomae_gigantic")
    with pytest.raises(ValueError, match="multiple of patch_size"):
        VideoMAEBackbone(image_size=30, patch_size=8, hidden_dim=16, num_heads=2)
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        VideoMAEBackbone.from_preset("videomae_tiny", num_heads=5)
    with pytest.raises(ValueError, match="memory_saving='most': choose True, False or 'full'"):
        VideoMAEBackbone.from_preset("videomae_tiny", memory_saving="most")


def test_backbone_config_keeps_every_argument():
    assert_config_round_trip(
        VideoMAEBackbone, image_size=(48, 32), num_frames=6, patch_size=8, tubelet_size=3,
        hidden_dim=24, num_layers=3, num_heads=3, intermediate_dim=40, layer_norm_epsilon=1e-5,
        use_final_norm=True, qv_bias=False, layer_scale_init_value=0.1, drop_path_rate=0.1,
        dropout_rate=0.2, attention_dropout_rate=0.3, use_position_embedding=False,
        num_channels=1, memory_saving="full", dtype="mixed_bfloat16", name="vit",
        trainable=False,
    )  # fmt: skip


@pytest.mark.parametrize("recompute", ["rematerialized_attention", "recomputed_attention"])
@pytest.mark.parametrize("jit_compile", [False, True])
def test_memory_saving_attention_in_chunks_equals_the_plain_one_and_its_gradients(
    recompute, jit_compile
):
    """Both memory-saving attentions, in query chunks of 4 + 4 + 3, against the plain
    einsum / softmax / einsum: outputs and the gradients of queries, keys and values, in
    graph mode and under XLA. A wrong written-out gradient (`recomputed_attention`'s softmax
    backward, its scale, a chunk's key / value share) breaks it."""
    from mtcae_keras.models import videomae_layers

    attention = getattr(videomae_layers, recompute)
    rng = np.random.default_rng(0)
    q, k, v = (tf.constant(rng.standard_normal((2, n, 3, 8)), tf.float32) for n in (11, 7, 7))

    @tf.function(jit_compile=jit_compile)  # graph mode: where the backward pass keeps less
    def both(q, k, v):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([q, k, v])
            plain = videomae_layers.attention_probabilities_context(q, k, v, 0.3)
            chunked = attention(q, k, v, 0.3, chunk_size=4)  # 4 + 4 + 3
            weight = tf.reshape(tf.range(tf.size(plain), dtype=tf.float32), plain.shape)
            losses = [tf.reduce_sum(tf.sin(x) * weight) for x in (plain, chunked)]
        return plain, chunked, [tape.gradient(loss, [q, k, v]) for loss in losses]

    plain, chunked, (grads, remat_grads) = both(q, k, v)
    np.testing.assert_allclose(chunked, plain, atol=1e-6)
    for g, r in zip(grads, remat_grads, strict=True):
        np.testing.assert_allclose(r, g, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(plain, keras.ops.dot_product_attention(q, k, v, scale=0.3),
                               atol=1e-5)  # fmt: skip


def test_recomputed_attention_recomputes_each_chunks_softmax_in_the_backward_pass(monkeypatch):
    """What sets `recomputed_attention` apart (its outputs and gradients are the plain
    attention's): the traced gradient computes one softmax per query chunk again, after the
    upstream gradient exists, rather than reading the forward pass's probabilities (plain
    autodiff would trace 3 softmaxes, not 6); and `multi_head_attention` takes it in
    training with memory saving on TensorFlow."""
    from mtcae_keras.models import videomae_layers

    spec = tf.TensorSpec((2, 11, 3, 8), tf.float32)

    @tf.function(input_signature=[spec, spec, spec])
    def gradients(q, k, v):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            loss = tf.reduce_sum(videomae_layers.recomputed_attention(q, k, v, 0.3, 4) ** 2)
        return tape.gradient(loss, [q, k, v])

    graph = gradients.get_concrete_function().graph
    softmaxes = [op for op in graph.get_operations() if op.type == "Softmax"]
    assert len(softmaxes) == 6

    calls, original = [], videomae_layers.recomputed_attention
    monkeypatch.setattr(videomae_layers, "recomputed_attention",
                        lambda *args: calls.append(args) or original(*args))  # fmt: skip
    x, dropout = tf.zeros((1, 5, 2, 4)), keras.layers.Dropout(0.0)
    for training in (True, False):  # inference keeps nothing: the fused path
        videomae_layers.multi_head_attention(x, x, x, 0.5, dropout, training, memory_saving=True)
    assert len(calls) == 1


def test_recomputed_attention_recomputes_under_xla_too():
    """XLA drops control dependencies: with them alone its common-subexpression pass merged
    the backward pass's recomputed scores with the forward pass's (3 exponentials in the
    optimised HLO instead of 6) and so kept every chunk's probabilities alive. The data
    dependencies keep the 3 chunks' softmaxes recomputed after the upstream gradient."""
    from mtcae_keras.models import videomae_layers

    q, k, v, w = (
        tf.constant(x) for x in np.random.default_rng(3).standard_normal((4, 2, 11, 2, 8))
    )

    @tf.function(jit_compile=True)
    def gradients(q, k, v):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            loss = tf.reduce_sum(videomae_layers.recomputed_attention(q, k, v, 0.3, 4) * w)
        return tape.gradient(loss, [q, k, v])

    hlo = gradients.experimental_get_compiler_ir(q, k, v)(stage="optimized_hlo")
    assert hlo.count("exponential(") == 6


@pytest.mark.parametrize("mode, dropout_rate", [(True, 0.0), ("full", 0.0), ("full", 0.2)])
def test_memory_saving_keeps_the_outputs_and_gradients_of_every_weight(mode, dropout_rate):
    """A training step's loss and the gradient of every weight are the same with the
    blocks' recomputation on and off (to 1e-5), in graph mode. With dropout (the same seeded
    masks both ways) a recomputed sublayer that drew its mask again would differ."""
    x = np.random.default_rng(1).standard_normal((2, 4, 32, 32, 3)).astype("float32")
    results = {}
    for saving in (mode, False):
        keras.utils.set_random_seed(0)
        backbone = VideoMAEBackbone.from_preset("videomae_tiny", memory_saving=saving,
                                                dropout_rate=dropout_rate)  # fmt: skip
        assert all(block.memory_saving == saving for block in backbone.layers[2:])

        @tf.function
        def step(x, backbone=backbone):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(backbone(x, training=True)))
            return loss, tape.gradient(loss, backbone.trainable_variables)

        results[saving] = step(tf.constant(x))
    (loss, grads), (reference, reference_grads) = results[mode], results[False]
    np.testing.assert_allclose(loss, reference, rtol=1e-5)
    # Every weight: the tubelet embedding's 2, and 13 per block (two norms, qkv, q / v
    # biases, projection, two MLP layers), none without a gradient.
    assert len(grads) == len(reference_grads) == 2 + 2 * 13
    assert all(g is not None for g in grads)
    for g, r in zip(grads, reference_grads, strict=True):  # float32 summation order aside
        assert np.abs(g - r).max() <= 1e-5 * np.abs(r).max()


@pytest.mark.parametrize("block", ["videomae", "lgi_former"])
@pytest.mark.parametrize(
    "memory_saving, dropout_rate, training, recomputed",
    [
        (True, 0.0, True, ["attend", "norm2", "_gelu"]),
        ("full", 0.0, True, ["attend", "norm2", "expand"]),
        ("full", 0.1, True, ["norm2", "expand"]),  # a recomputed dropout would draw anew
        ("full", 0.0, False, []),  # inference keeps nothing for a backward pass
        (False, 0.0, True, []),
    ],
)  # fmt: skip
def test_each_memory_saving_setting_recomputes_what_it_says(
    monkeypatch, block, memory_saving, dropout_rate, training, recomputed
):
    """What the blocks hand to `keras.remat` (outputs and gradients are the same in every
    setting, so only this tells "full" from True)."""
    from mtcae_keras.models.lgi_former_block import LGIFormerBlock
    from mtcae_keras.models.videomae_layers import VideoMAEEncoderBlock

    wrapped = []

    def remat(function):
        wrapped.append(getattr(function, "name", getattr(function, "__name__", None)))
        return function

    if block == "videomae":
        layer = VideoMAEEncoderBlock(16, 2, 24, memory_saving=memory_saving,
                                     dropout_rate=dropout_rate)  # fmt: skip
        x, attentions = np.zeros((1, 6, 16), "float32"), ["attend"]
    else:
        layer = LGIFormerBlock(16, 2, 24, memory_saving=memory_saving, dropout_rate=dropout_rate)
        x = np.zeros((1, 2, 3, 16), "float32")
        attentions = ["local_attend", "global_attend", "local_global_attend"]
    layer.build(x.shape)
    monkeypatch.setattr(keras, "remat", remat)
    layer(x, training=training)
    if "attend" in recomputed:
        recomputed = attentions + recomputed[1:]
    # Less VideoMAEAttention's own query chunks (`rematerialized_attention`, a lambda).
    assert [name for name in wrapped if name != "<lambda>"] == recomputed
