"""Attention maps are the decoders' own attention, mapped onto the right pixels; the run plots."""

import os

import keras
import numpy as np
import pytest

from mtcae_keras import VideoMAEBackbone
from mtcae_keras import build_mtcae_model
from mtcae_keras.visualization import attention_maps
from mtcae_keras.visualization import best_epoch
from mtcae_keras.visualization import decoder_attention
from mtcae_keras.visualization import plot_attention
from mtcae_keras.visualization import plot_per_class_recall
from mtcae_keras.visualization import plot_training_curves
from mtcae_keras.visualization import tokens_to_frames


def _model(strategy):
    keras.utils.set_random_seed(0)
    backbone = VideoMAEBackbone.from_preset("videomae_tiny")  # 4x32x32, 8x8 patches: 32 tokens
    return build_mtcae_model(backbone, strategy, 6, num_frames=4, decoder="tiny")


def test_attention_is_the_decoders_own():
    model = _model("cascaded_vit")
    pixels = np.random.default_rng(0).standard_normal((2, 4, 32, 32, 3)).astype("float32")
    scores = decoder_attention(model, pixels)
    assert list(scores) == ["boxes_decoder", "landmarks_decoder", "expression_decoder"]
    for value in scores.values():
        assert value.shape[0] == 2 and value.shape[-1] == 32  # one weight per encoder token
        np.testing.assert_allclose(value.sum(-1), 1.0, atol=1e-5)  # rows sum to one
    # Fed the graph's own query and memory: the decoder then gives the model's stream.
    decoder = model.get_layer("landmarks_decoder")
    stream = keras.Model(model.input, decoder.output)(pixels)
    query, memory = keras.Model(model.input, list(decoder.input))(pixels)
    again, layers = decoder(query, memory, return_attention_scores=True)
    np.testing.assert_allclose(again, stream, atol=1e-5)
    np.testing.assert_allclose(layers[-1], scores["landmarks_decoder"], atol=1e-6)
    maps = attention_maps(model, pixels)
    assert maps["expression_decoder"].shape == (2, 4, 32, 32)
    with pytest.raises(ValueError, match="no ViT decoder"):
        decoder_attention(_model("nfs_mlp"), pixels)


def test_one_token_lights_exactly_its_tubelet():
    weights = np.zeros((1, 32))
    weights[0, 1 * 16 + 2 * 4 + 3] = 1.0  # time 1, row 2, column 3 of the 2x4x4 grid
    pixels = tokens_to_frames(weights, num_frames=4, image_size=32, patch_size=8, tubelet_size=2)
    expected = np.zeros((1, 4, 32, 32))
    expected[0, 2:4, 16:24, 24:32] = 1.0  # frames 2-3, its 8x8 patch
    np.testing.assert_array_equal(pixels, expected)
    with pytest.raises(ValueError, match="do not tile"):
        tokens_to_frames(weights, num_frames=4, image_size=48, patch_size=8)


def test_best_epoch_and_plots(tmp_path):
    log = {"epoch": np.arange(4.0), "val_expression_uar": np.array([0.2, 0.5, 0.5, 0.4]),
           "val_loss": np.array([1.0, 0.7, 0.8, 0.6]), "loss": np.array([1.2, 0.9, 0.7, 0.5]),
           "expression_uar": np.array([0.2, 0.4, 0.6, 0.7])}  # fmt: skip
    assert best_epoch(log, "val_expression_uar", "max") == 1  # the first of equals
    assert best_epoch(log, "val_loss", "min") == 3
    plot_training_curves(log, str(tmp_path / "curves.png"), "val_expression_uar", "max")
    metrics = {"per_class_recall": {"ANG": 0.5, "HAP": 1.0}, "support": {"ANG": 2, "HAP": 1},
               "uar": 0.75}  # fmt: skip
    plot_per_class_recall(metrics, str(tmp_path / "recall.png"))
    frames = np.zeros((4, 32, 32, 3), np.uint8)
    plot_attention(frames, {"boxes_decoder": np.ones((4, 32, 32))}, str(tmp_path / "a.png"))
    for name in ("curves.png", "recall.png", "a.png"):
        assert os.path.getsize(tmp_path / name) > 1000


def test_lgi_former_representative_tokens_attend_their_regions():
    from mtcae_keras import LGIFormerBackbone
    from mtcae_keras.visualization import region_attention
    from mtcae_keras.visualization import regions_to_raster

    keras.utils.set_random_seed(0)
    backbone = LGIFormerBackbone.from_preset("lgi_former_tiny")  # 2x4x4 tokens, 4 regions of 8
    pixels = np.random.default_rng(1).standard_normal((2, 4, 32, 32, 3)).astype("float32")
    # The inverse of the `regions` layer's grouping: token ids come back in raster order.
    ids = np.repeat(np.arange(32, dtype="float32")[None, :, None], 32, axis=2)
    grouped = np.asarray(backbone.get_layer("regions")(ids))[0, :, 1:, 0]  # (4, 8)
    assert (
        sorted(grouped.ravel()) == list(range(32))
        and not (grouped == np.arange(32).reshape(4, 8)).all()
    )
    np.testing.assert_array_equal(regions_to_raster(grouped, backbone), np.arange(32)[None])
    # The probabilities are the attention the layer applies: mixing its values with them
    # gives the layer's own output.
    layer = backbone.get_layer("blocks_1")
    normed = layer.first_attn_norm0(
        keras.ops.reshape(keras.Model(backbone.input, layer.input)(pixels), (-1, 9, 32))
    )
    probabilities = layer.first_attn.attention_probabilities(normed)
    _, _, value = layer.first_attn.project(normed)
    mixed = keras.ops.einsum("bnts,bsnh->btnh", probabilities, value)
    mixed = layer.first_attn.proj(keras.ops.reshape(mixed, (-1, 9, 32)))
    np.testing.assert_allclose(mixed, layer.first_attn(normed), atol=1e-5)
    # Each region's weights: the representative row less its weight on itself.
    weights = region_attention(backbone, pixels)
    own = np.asarray(probabilities)[:, :, 0, 0].mean(axis=1).reshape(2, 4)
    np.testing.assert_allclose(weights[:, grouped.astype(int)].sum(-1), 1 - own, atol=1e-5)
    model = build_mtcae_model(backbone, "cascaded_vit", 6, num_frames=4, decoder="tiny")
    maps = attention_maps(model, pixels)
    assert maps["representative_tokens"].shape == (2, 4, 32, 32)
    with pytest.raises(ValueError, match="no representative tokens"):
        region_attention(VideoMAEBackbone.from_preset("videomae_tiny"), pixels)
