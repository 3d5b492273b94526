"""LGI-Former (MAE-DFER's encoder): parity with the authors' PyTorch code through the golden
fixture of tools/make_lgi_former_golden.py (no torch needed), weight port, Keras behaviour."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtcae_keras import LGIFormerBackbone
from mtcae_keras import VideoMAEBackbone
from mtcae_keras.conversion import load_lgi_former_checkpoint
from mtcae_keras.conversion import port_lgi_former_weights
from mtcae_keras.conversion import read_state_dict
from mtcae_keras.models.lgi_former_attention import LGIFormerAttention
from mtcae_keras.models.lgi_former_block import LGIFormerBlock
from mtcae_keras.models.lgi_former_region_merge import LGIFormerRegionMerge
from mtcae_keras.models.lgi_former_region_partition import LGIFormerRegionPartition
from tests.test_case import LGI_FORMER
from tests.test_case import PARITY_ATOL
from tests.test_case import assert_config_round_trip
from tests.test_case import lgi_former_golden
from tests.test_case import lgi_former_unstored
from tests.test_case import max_abs_diff

# (fixture config, checkpoint layout, keys ignored: fc_norm + head (4), or encoder.norm (2),
# encoder_to_decoder, mask_token and the 1-block decoder's 13 + its norm and head (4))
CASES = [
    ("base", "finetune", 4),
    ("base", "pretrain", 21),
    ("small", "finetune", 4),
    ("small", "pretrain", 21),
]


def checkpoint(name, layout):
    return os.path.join(LGI_FORMER, f"{name}_{layout}.pth")


@pytest.fixture(scope="module")
def base():
    return LGIFormerBackbone.from_preset(
        checkpoint("base", "finetune"), return_region_tokens=True, **lgi_former_unstored("base")
    )


@pytest.mark.parametrize("name, layout, ignored", CASES)
def test_port_matches_mae_dfer(name, layout, ignored):
    config, state_dict = load_lgi_former_checkpoint(checkpoint(name, layout))
    backbone = LGIFormerBackbone(
        **{**config, **lgi_former_unstored(name)}, return_region_tokens=True
    )
    report = port_lgi_former_weights(backbone, state_dict)
    assert report["loaded"] == len(backbone.weights)
    assert len(report["ignored"]) == ignored
    used = [key for keys in report["sources"].values() for key in keys]
    assert sorted(used + report["ignored"]) == sorted(state_dict)  # every key once
    data = lgi_former_golden(name)
    out = backbone(data["pixels"])
    assert max_abs_diff(out["tokens"], data["tokens"]) <= PARITY_ATOL
    assert max_abs_diff(out["region_tokens"], data["region_tokens"]) <= PARITY_ATOL


def test_region_tokens_give_the_reference_classification_features(base):
    """MAE-DFER classifies fc_norm(mean of the representative tokens): same numbers."""
    data = lgi_former_golden("base")
    state = read_state_dict(checkpoint("base", "finetune"))
    norm = keras.layers.LayerNormalization(epsilon=1e-6)
    norm.build((None, 64))
    norm.set_weights([state["fc_norm.weight"], state["fc_norm.bias"]])
    features = norm(keras.ops.mean(base(data["pixels"])["region_tokens"], axis=1))
    assert max_abs_diff(features, data["features"]) <= PARITY_ATOL


def test_config_inferred_from_the_checkpoint():
    config, _ = load_lgi_former_checkpoint(checkpoint("small", "pretrain"))
    assert (config["hidden_dim"], config["num_layers"], config["intermediate_dim"]) == (48, 3, 96)
    assert (config["patch_size"], config["tubelet_size"], config["qv_bias"]) == (16, 2, True)
    # Not stored: MAE-DFER's released geometry, which the base fixture has.
    assert (config["image_size"], config["num_frames"], config["region_size"]) == (
        160, 16, (2, 5, 10))  # fmt: skip
    base_config, _ = load_lgi_former_checkpoint(checkpoint("base", "finetune"))
    assert LGIFormerBackbone(**base_config).num_regions == 8


def test_base_preset_has_the_official_parameter_count():
    """84,878,343 logged for MAE-DFER's 7-class model = encoder + fc_norm (1,024) + head (3,591)."""
    backbone = LGIFormerBackbone.from_preset("lgi_former_base")
    assert backbone.count_params() == 84_873_728
    assert backbone.count_params() + 2 * 512 + 512 * 7 + 7 == 84_878_343
    assert backbone.num_tokens == 800 and backbone.num_regions == 8
    assert backbone.output.shape == (None, 800, 512)
    # Tiny: embedding 12,320 + 4 region tokens 128 + 2 blocks of (3 attentions x 4,192 +
    # 5 norms x 64 + MLP 4,192).
    assert LGIFormerBackbone.from_preset("lgi_former_tiny").count_params() == 46_624


def test_wrong_keys_and_shapes_are_named():
    config, state_dict = load_lgi_former_checkpoint(checkpoint("small", "finetune"))
    backbone = LGIFormerBackbone(**{**config, **lgi_former_unstored("small")})
    before = [w.numpy() for w in backbone.weights]
    renamed = dict(state_dict)
    renamed["blocks.1.third_attn.kvx.weight"] = renamed.pop("blocks.1.third_attn.kv.weight")
    with pytest.raises(ValueError) as error:
        port_lgi_former_weights(backbone, renamed)
    assert "missing (the backbone needs them): blocks.1.third_attn.kv.weight" in str(error.value)
    assert "unused" in str(error.value) and "blocks.1.third_attn.kvx.weight" in str(error.value)
    misshaped = dict(state_dict, **{"blocks.2.mlp.fc1.weight": np.zeros((95, 48), "float32")})
    with pytest.raises(
        ValueError, match=r"blocks\.2\.mlp\.fc1\.weight: checkpoint shape \(95, 48\)"
    ):
        port_lgi_former_weights(backbone, misshaped)
    # A checkpoint whose region count differs from the configured region size.
    other_regions = LGIFormerBackbone(**{**config, **lgi_former_unstored("small"),
                                         "region_size": (4, 2, 3)})  # fmt: skip
    with pytest.raises(ValueError, match=r"lg_region_tokens.*\(16, 48\).*\(8, 48\)"):
        port_lgi_former_weights(other_regions, state_dict)
    duplicated = dict(state_dict, **{"encoder.lg_region_tokens": state_dict["lg_region_tokens"]})
    with pytest.raises(ValueError, match="given more than once: lg_region_tokens"):
        port_lgi_former_weights(backbone, duplicated)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, backbone.weights, strict=True))


def test_each_backbone_refuses_the_other_kind_of_checkpoint():
    with pytest.raises(ValueError, match="lg_region_tokens"):
        LGIFormerBackbone.from_preset(os.path.join(LGI_FORMER, "videomae_160_pretrain.pth"))
    with pytest.raises(ValueError, match="holds a MAE-DFER LGI-Former.*load_encoder"):
        VideoMAEBackbone.from_preset(checkpoint("base", "pretrain"))


def test_region_size_must_divide_the_token_grid():
    with pytest.raises(ValueError, match=r"token grid \(8, 10, 10\).*region_size=\(2, 4, 10\)"):
        LGIFormerBackbone.from_preset("lgi_former_base", region_size=(2, 4, 10))


def test_mae_dfer_plain_videomae_at_160_loads_into_videomae_backbone():
    """MAE-DFER's `pretrain_videomae_base_patch16_160` layout: encoder. prefix, final norm."""
    backbone = VideoMAEBackbone.from_preset(
        os.path.join(LGI_FORMER, "videomae_160_pretrain.pth"), image_size=160, num_heads=4
    )
    assert backbone.use_final_norm and backbone.num_tokens == 800
    pixels = lgi_former_golden("base")["pixels"]
    expected = np.load(os.path.join(LGI_FORMER, "videomae_160.npz"))["tokens"]
    assert max_abs_diff(backbone(pixels), expected) <= PARITY_ATOL


def test_eager_equals_xla(base):
    x = lgi_former_golden("base")["pixels"]
    eager = base(x, training=False)
    compiled = tf.function(lambda v: base(v, training=False), jit_compile=True)(tf.constant(x))
    for key in ("tokens", "region_tokens"):
        assert max_abs_diff(eager[key], compiled[key]) <= 1e-4


def test_keras_save_load_round_trip(tmp_path):
    backbone = LGIFormerBackbone.from_preset(
        checkpoint("small", "pretrain"), **lgi_former_unstored("small"), drop_path_rate=0.1
    )
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, LGIFormerBackbone)
    assert restored.get_config() == backbone.get_config()
    assert restored.region_size == (2, 2, 3) and restored.image_size == (64, 96)
    x = lgi_former_golden("small")["pixels"]
    assert max_abs_diff(restored(x), backbone(x)) == 0.0


def test_converted_weights_file_round_trip(tmp_path, base):
    """`from_preset(PATH.weights.h5)` with its `.config.json`, as the converter writes them."""
    import json

    weights = str(tmp_path / "lgi.weights.h5")
    base.save_weights(weights)
    with open(str(tmp_path / "lgi.config.json"), "w") as file:
        json.dump(base.get_config(), file)
    restored = LGIFormerBackbone.from_preset(weights)
    x = lgi_former_golden("base")["pixels"]
    assert max_abs_diff(restored(x)["tokens"], base(x)["tokens"]) == 0.0


def test_mixed_bfloat16_stays_close_to_float32(base):
    """Tolerance: RMS error <= 2% of the float32 output's RMS."""
    bf16 = LGIFormerBackbone.from_preset(
        checkpoint("base", "finetune"), dtype="mixed_bfloat16", **lgi_former_unstored("base")
    )
    x = lgi_former_golden("base")["pixels"]
    out = bf16(x)
    assert out.dtype == tf.bfloat16
    assert bf16.get_layer("regions").lg_region_tokens.dtype == "float32"
    reference = np.asarray(base(x)["tokens"])
    out = np.asarray(tf.cast(out, tf.float32))
    rms_error = np.sqrt(np.mean((out - reference) ** 2) / np.mean(reference**2))
    assert np.all(np.isfinite(out)) and rms_error <= 2e-2


def test_drop_path_drops_per_region_in_training_only():
    backbone = LGIFormerBackbone.from_preset("lgi_former_tiny", drop_path_rate=0.5)
    assert backbone.get_layer("blocks_1").drop_path_rate == 0.5
    x = np.random.default_rng(0).standard_normal((2, 4, 32, 32, 3)).astype("float32")
    assert max_abs_diff(backbone(x), backbone(x)) == 0.0
    keras.utils.set_random_seed(1)
    assert max_abs_diff(backbone(x, training=True), backbone(x)) > 1e-3


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (LGIFormerAttention, dict(hidden_dim=16, num_heads=2, qv_bias=False,
                                  attention_dropout_rate=0.1, dropout_rate=0.2)),
        (LGIFormerBlock, dict(hidden_dim=16, num_heads=2, intermediate_dim=24,
                              layer_norm_epsilon=1e-5, qv_bias=False, drop_path_rate=0.1,
                              dropout_rate=0.2, attention_dropout_rate=0.3,
                              memory_saving="full")),
        (LGIFormerRegionPartition, dict(token_grid=(4, 2, 6), region_size=(2, 1, 3))),
        (LGIFormerRegionMerge, dict(token_grid=(4, 2, 6), region_size=(2, 1, 3))),
    ],
)  # fmt: skip
def test_layer_configs_round_trip(cls, kwargs):
    assert_config_round_trip(cls, **kwargs)


def test_backbone_config_round_trip():
    """Every constructor argument away from its default survives get_config / from_config."""
    assert_config_round_trip(
        LGIFormerBackbone, image_size=(48, 64), num_frames=8, patch_size=8, tubelet_size=4,
        hidden_dim=24, num_layers=3, num_heads=3, intermediate_dim=40, region_size=(1, 3, 4),
        layer_norm_epsilon=1e-5, return_region_tokens=True, qv_bias=False, drop_path_rate=0.1,
        dropout_rate=0.2, attention_dropout_rate=0.3, num_channels=1, memory_saving=False,
        dtype="mixed_bfloat16", name="lgi", trainable=False,
    )  # fmt: skip


@pytest.mark.parametrize("mode, dropout_rate", [(True, 0.0), ("full", 0.0), ("full", 0.2)])
def test_memory_saving_keeps_the_outputs_and_gradients_of_every_weight(mode, dropout_rate):
    """A training step (tokens and representative tokens in the loss, stochastic depth on)
    has the same loss and gradient of every weight with the blocks' recomputation on and
    off (to 1e-5), in graph mode; with dropout the same seeded masks both ways, which a
    recomputed sublayer drawing its mask again would break."""
    x = np.random.default_rng(1).standard_normal((2, 4, 32, 32, 3)).astype("float32")
    results = {}
    for saving in (mode, False):
        keras.utils.set_random_seed(0)
        backbone = LGIFormerBackbone.from_preset(
            "lgi_former_tiny", memory_saving=saving, dropout_rate=dropout_rate,
            drop_path_rate=0.3, return_region_tokens=True,
        )  # fmt: skip
        blocks = [backbone.get_layer(f"blocks_{i}") for i in range(2)]
        assert all(block.memory_saving == saving for block in blocks)

        @tf.function
        def step(x, backbone=backbone):
            with tf.GradientTape() as tape:
                out = backbone(x, training=True)
                loss = tf.reduce_sum(tf.square(out["tokens"])) + tf.reduce_sum(
                    tf.sin(out["region_tokens"])
                )
            return loss, tape.gradient(loss, backbone.trainable_variables)

        results[saving] = step(tf.constant(x))
    (loss, grads), (reference, reference_grads) = results[mode], results[False]
    np.testing.assert_allclose(loss, reference, rtol=1e-5)
    # Every weight: the tubelet embedding's 2, the representative tokens, and 32 per block
    # (three attentions of q, kv, q / v biases and proj's 2; five norms; two MLP layers).
    assert len(grads) == len(reference_grads) == 3 + 2 * 32
    assert all(g is not None for g in grads)
    for g, r in zip(grads, reference_grads, strict=True):  # float32 summation order aside
        assert np.abs(g - r).max() <= 1e-5 * np.abs(r).max()


def test_memory_saving_is_checked():
    with pytest.raises(ValueError, match="memory_saving='most': choose True, False or 'full'"):
        LGIFormerBackbone.from_preset("lgi_former_tiny", memory_saving="most")


def test_partition_and_merge_are_inverse_and_group_by_region():
    partition = LGIFormerRegionPartition((4, 4, 6), (2, 2, 3))
    tokens = np.arange(2 * 96 * 1, dtype="float32").reshape(2, 96, 1)
    grouped = partition(tokens)
    assert grouped.shape == (2, 8, 1 + 12, 1)
    # Region 3 = (0, 1, 1): frames 0-1, rows 2-3, columns 3-5 (raster index t*24 + h*6 + w).
    expected = [t * 24 + h * 6 + w for t in (0, 1) for h in (2, 3) for w in (3, 4, 5)]
    assert np.asarray(grouped)[0, 3, 1:, 0].tolist() == expected
    merged, regions = LGIFormerRegionMerge((4, 4, 6), (2, 2, 3))(grouped)
    assert np.array_equal(np.asarray(merged), tokens)
    np.testing.assert_array_equal(regions, np.asarray(grouped)[:, :, 0])
