"""Parity with Hugging Face VideoMAE through the golden fixture (no torch needed)."""

import numpy as np
import pytest

from mtcae_keras import VideoMAEBackbone
from mtcae_keras.conversion import load_videomae_checkpoint
from mtcae_keras.conversion import port_videomae_weights
from tests.test_case import PARITY_ATOL
from tests.test_case import TINY_UNSTORED
from tests.test_case import fixture_path
from tests.test_case import golden
from tests.test_case import max_abs_diff

# (source, golden output, variables set, ignored keys, overrides for unstored config)
SOURCES = [
    ("hf", "last_hidden_state", 28, 0, {}),
    ("hf/model.safetensors", "last_hidden_state", 28, 0, {}),
    ("hf_classification", "last_hidden_state", 28, 4, {}),
    ("hf_pretraining", "last_hidden_state_final_norm", 30, 21, {}),
    ("original_finetune.pth", "last_hidden_state", 28, 4, TINY_UNSTORED),
    ("original_pretrain.pth", "last_hidden_state_final_norm", 30, 21, TINY_UNSTORED),
    ("original_layer_scale.pth", "last_hidden_state_layer_scale", 32, 0, TINY_UNSTORED),
]


def _load(source, overrides):
    config, state_dict = load_videomae_checkpoint(fixture_path(source))
    return VideoMAEBackbone(**{**config, **overrides}), state_dict


@pytest.mark.parametrize("source, output, loaded, ignored, overrides", SOURCES)
def test_port_matches_huggingface(source, output, loaded, ignored, overrides):
    backbone, state_dict = _load(source, overrides)
    report = port_videomae_weights(backbone, state_dict)
    assert report["loaded"] == loaded == len(backbone.weights)
    assert len(report["ignored"]) == ignored
    data = golden()
    assert max_abs_diff(backbone(data["pixels"]), data[output]) <= PARITY_ATOL


def test_every_encoder_key_is_used_exactly_once():
    backbone, state_dict = _load("hf_classification", {})
    report = port_videomae_weights(backbone, state_dict)
    used = [key for keys in report["sources"].values() for key in keys]
    assert len(used) == len(set(used))
    assert sorted(used + report["ignored"]) == sorted(state_dict)
    qkv = report["sources"]["blocks_1/attn/qkv/kernel"]
    assert [k.rsplit(".", 2)[-2] for k in qkv] == ["query", "key", "value"]
    assert "videomae.encoder.layer.1.attention.attention.query.bias" in used


def test_config_read_from_checkpoints():
    hf_config, _ = load_videomae_checkpoint(fixture_path("hf"))
    assert hf_config["num_heads"] == 4 and hf_config["image_size"] == 32
    assert hf_config["use_final_norm"] is False
    config, _ = load_videomae_checkpoint(fixture_path("original_pretrain.pth"))
    assert (config["hidden_dim"], config["num_layers"], config["intermediate_dim"]) == (32, 2, 64)
    assert (config["patch_size"], config["tubelet_size"]) == (8, 2)
    assert config["use_final_norm"] is True and config["layer_scale_init_value"] is None
    scaled, _ = load_videomae_checkpoint(fixture_path("original_layer_scale.pth"))
    assert scaled["layer_scale_init_value"] is not None


def test_renamed_key_is_named_as_missing_and_unused():
    backbone, state_dict = _load("original_finetune.pth", TINY_UNSTORED)
    state_dict["blocks.1.mlp.fc_one.weight"] = state_dict.pop("blocks.1.mlp.fc1.weight")
    before = [w.numpy() for w in backbone.weights]
    with pytest.raises(ValueError) as error:
        port_videomae_weights(backbone, state_dict)
    message = str(error.value)
    assert "missing (the backbone needs them): blocks.1.mlp.fc1.weight" in message
    assert "unused" in message and "blocks.1.mlp.fc_one.weight" in message
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, backbone.weights, strict=True))


def test_misshaped_key_is_named_with_both_shapes():
    backbone, state_dict = _load("hf", {})
    key = "encoder.layer.0.intermediate.dense.weight"
    state_dict[key] = state_dict[key][:50]
    with pytest.raises(ValueError, match=r"mis-shaped: .*intermediate\.dense\.weight: "
                       r"checkpoint shape \(50, 32\) gives \(32, 50\), "
                       r"the backbone expects \(32, 64\)"):  # fmt: skip
        port_videomae_weights(backbone, state_dict)


def test_unknown_and_duplicate_keys_are_errors():
    backbone, state_dict = _load("hf", {})
    state_dict["pos_embed"] = np.zeros((1, 32, 32), np.float32)
    state_dict["encoder.layer.0.attention.attention.query.bias"] = state_dict[
        "encoder.layer.0.attention.attention.q_bias"
    ]
    with pytest.raises(ValueError) as error:
        port_videomae_weights(backbone, state_dict)
    assert "pos_embed" in str(error.value)
    assert "given more than once: blocks.0.attn.q_bias" in str(error.value)


def test_nonzero_key_bias_is_rejected_and_zero_key_bias_accepted():
    backbone, state_dict = _load("hf", {})
    key = "encoder.layer.1.attention.attention.key.bias"
    state_dict[key] = np.zeros(32, np.float32)
    assert port_videomae_weights(backbone, state_dict)["loaded"] == 28
    state_dict[key] = np.ones(32, np.float32)
    with pytest.raises(ValueError, match="non-zero key bias"):
        port_videomae_weights(backbone, state_dict)


def test_config_mismatch_names_the_extra_weight():
    config, state_dict = load_videomae_checkpoint(fixture_path("original_pretrain.pth"))
    backbone = VideoMAEBackbone(**{**config, **TINY_UNSTORED, "use_final_norm": False})
    with pytest.raises(ValueError, match=r"encoder\.norm\.weight \(-> norm\.weight"):
        port_videomae_weights(backbone, state_dict)
