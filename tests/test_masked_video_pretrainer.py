"""Masked video pre-training: loss parity with Hugging Face, MAE-DFER's target and masks."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mtcae_keras.pretraining.masked_video_pretrainer import MaskedVideoPretrainer
from mtcae_keras.pretraining.reconstruction_targets import reconstruction_targets
from mtcae_keras.pretraining.tube_mask_generator import TubeMaskGenerator
from tests.test_case import fixture_path
from tests.test_case import has_reference
from tools.make_pretraining_golden import joint_target_reference

GOLDEN = fixture_path("pretraining_golden.npz")
# Not stored in original checkpoints: the fixture's clip size, heads, and Hugging Face's
# final decoder LayerNorm epsilon.
ORIGINAL_UNSTORED = {"image_size": 32, "num_frames": 4, "num_heads": 4, "decoder_num_heads": 2,
                     "decoder_norm_epsilon": 1e-5}  # fmt: skip


def _relative(a, b):
    return abs(float(a) - float(b)) / abs(float(b))


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_loss_equals_hugging_face_pretraining_loss(norm_pix_loss):
    """Same weights, clips and `bool_masked_pos`: VideoMAEForPreTraining's loss within 1e-4
    (relative), with and without per-patch normalised targets."""
    golden = dict(np.load(GOLDEN))
    pretrainer = MaskedVideoPretrainer.from_preset(
        fixture_path("hf_pretraining"), mask_ratio=0.75, norm_pix_loss=norm_pix_loss
    )
    assert pretrainer.decoder_num_layers == 1 and pretrainer.decoder_hidden_dim == 16
    loss = pretrainer.reconstruction_loss(golden["pixels"], golden["mask"])
    reference = golden["loss_norm_pix" if norm_pix_loss else "loss_plain"]
    assert _relative(loss, reference) <= 1e-4, (float(loss), float(reference))
    predictions = pretrainer({"pixel_values": golden["pixels"], "mask": golden["mask"]})
    np.testing.assert_allclose(predictions, golden["logits"], atol=1e-4, rtol=1e-4)


def test_original_pretraining_checkpoint_ports_the_same_weights():
    """MCG-NJU's spelling (`encoder.*`, `decoder.blocks.*`, fused qkv) of the same weights
    predicts what the Hugging Face folder does."""
    golden = dict(np.load(GOLDEN))
    pretrainer = MaskedVideoPretrainer.from_preset(
        fixture_path("original_pretrain.pth"), mask_ratio=0.75, **ORIGINAL_UNSTORED
    )
    predictions = pretrainer({"pixel_values": golden["pixels"], "mask": golden["mask"]})
    np.testing.assert_allclose(predictions, golden["logits"], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="decoder_num_layers"):
        MaskedVideoPretrainer.from_preset(
            fixture_path("original_pretrain.pth"), mask_ratio=0.75, decoder_num_layers=2,
            **ORIGINAL_UNSTORED,
        )  # fmt: skip


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_appearance_motion_target_equals_a_numpy_reference(norm_pix_loss):
    pixels = np.random.default_rng(0).random((2, 4, 16, 24, 3)).astype(np.float32)
    ours = reconstruction_targets(pixels, 8, 2, norm_pix_loss, "appearance_motion")
    expected = joint_target_reference(pixels, 8, 2, norm_pix_loss)
    np.testing.assert_allclose(ours, expected, atol=2e-5, rtol=1e-5)
    appearance = reconstruction_targets(pixels, 8, 2, norm_pix_loss, "appearance")
    # The first frame of every tubelet is the appearance target; the second its change.
    half = expected.shape[-1] // 2
    np.testing.assert_allclose(np.asarray(appearance)[..., :half], expected[..., :half],
                               atol=2e-5, rtol=1e-5)  # fmt: skip
    assert np.abs(np.asarray(appearance)[..., half:] - expected[..., half:]).max() > 0.1


def test_motion_weight_splits_the_loss_as_mae_dfer():
    from mtcae_keras import VideoMAEBackbone

    encoder = VideoMAEBackbone.from_preset("videomae_tiny", use_final_norm=True)
    pretrainer = MaskedVideoPretrainer(encoder, mask_ratio=0.75, decoder_hidden_dim=16,
                                       decoder_num_layers=1, decoder_num_heads=2,
                                       target="appearance_motion", motion_weight=0.3)  # fmt: skip
    rng = np.random.default_rng(1)
    predictions = rng.standard_normal((2, 24, 384)).astype(np.float32)
    targets = rng.standard_normal((2, 24, 384)).astype(np.float32)
    error = ((predictions - targets) ** 2).reshape(2, 24, 2, 192)
    expected = 0.7 * error[:, :, 0].mean() + 0.3 * error[:, :, 1].mean()
    assert float(pretrainer.loss_from_predictions(predictions, targets)) == pytest.approx(
        expected, rel=1e-5
    )
    with pytest.raises(ValueError, match="motion_weight weighs the joint target"):
        MaskedVideoPretrainer(encoder, motion_weight=0.3)


def test_tube_masks_hide_the_same_positions_in_every_frame():
    generator = TubeMaskGenerator((8, 14, 14), 0.9)
    mask = generator(tf.constant([3, 4])).numpy().reshape(8, 196)
    assert (mask == mask[:1]).all()
    assert mask[0].sum() == int(0.9 * 196) == 176 and generator.num_masked == 8 * 176
    again = generator(tf.constant([3, 4])).numpy().reshape(8, 196)
    other = generator(tf.constant([3, 5])).numpy().reshape(8, 196)
    assert (again == mask).all() and (other != mask).any()
    with pytest.raises(ValueError, match="tube masks take none"):
        TubeMaskGenerator((8, 14, 14), 0.9, "tube", (7, 14))


def test_part_window_masks_keep_the_same_visible_count_in_every_window():
    # MAE-DFER's 16x160x160 clips: an 8x10x10 grid, windows of 5 rows across the frame.
    generator = TubeMaskGenerator((8, 10, 10), 0.9, "part_window", (5, 10))
    mask = generator(tf.constant([0, 1])).numpy().reshape(8, 10, 10)
    assert (mask == mask[:1]).all()
    for rows in (slice(0, 5), slice(5, 10)):
        assert (~mask[0, rows]).sum() == 50 - int(0.9 * 50) == 5
    assert generator.num_visible == 8 * 2 * 5
    # Narrower windows are placed at their raster positions: 4 windows of 5x5.
    narrow = TubeMaskGenerator((2, 10, 10), 0.8, "part_window", (5, 5))
    frame = narrow(tf.constant([7, 7])).numpy().reshape(2, 10, 10)[0]
    for r in (0, 5):
        for c in (0, 5):
            assert (~frame[r : r + 5, c : c + 5]).sum() == 5
    with pytest.raises(ValueError, match="must divide"):
        TubeMaskGenerator((8, 10, 10), 0.9, "part_window", (4, 10))


def test_dataset_masks_change_every_epoch_and_repeat_for_a_seed():
    generator = TubeMaskGenerator((2, 4, 4), 0.5)

    def epochs(seed):
        dataset = generator.map_dataset(tf.data.Dataset.range(3).map(lambda i: {"i": i}), seed)
        return [np.stack([e["mask"] for e in dataset.as_numpy_iterator()]) for _ in range(2)]

    first, second = epochs(5)
    assert (first != second).any()  # new masks each epoch
    assert all((a == b).all() for a, b in zip(epochs(5), (first, second), strict=True))
    assert (epochs(6)[0] != first).any()


def test_lgi_former_pretrainer_trains_and_round_trips(tmp_path):
    import keras

    from mtcae_keras import LGIFormerBackbone

    encoder = LGIFormerBackbone.from_preset("lgi_former_tiny")
    grid, region = encoder.token_grid, encoder.region_size
    pretrainer = MaskedVideoPretrainer(encoder, mask_ratio=0.5, decoder_hidden_dim=16,
                                       decoder_num_layers=1, decoder_num_heads=2,
                                       target="appearance_motion")  # fmt: skip
    assert pretrainer.mask_type == "part_window" and pretrainer.window_size == tuple(region[1:])
    rng = np.random.default_rng(0)
    size, frames = encoder.input.shape[2], encoder.input.shape[1]
    pixels = rng.standard_normal((4, frames, size, size, 3)).astype(np.float32)
    masks = np.stack([pretrainer.mask_generator(np.array([0, i])).numpy() for i in range(4)])
    dataset = tf.data.Dataset.from_tensor_slices({"pixel_values": pixels, "mask": masks})
    keras.utils.set_random_seed(0)
    pretrainer.compile(keras.optimizers.AdamW(3e-3))
    history = pretrainer.fit(dataset.batch(2).repeat(8), epochs=1, verbose=0)
    before = float(pretrainer.reconstruction_loss(pixels[:2], masks[:2]))
    pretrainer.fit(dataset.batch(2).repeat(8), epochs=1, verbose=0)
    assert float(pretrainer.reconstruction_loss(pixels[:2], masks[:2])) < before
    assert np.isfinite(history.history["loss"]).all()
    assert pretrainer.num_visible * 2 == grid[0] * grid[1] * grid[2]

    path = str(tmp_path / "pretrainer.keras")
    pretrainer.save(path)
    restored = keras.saving.load_model(path)
    inputs = {"pixel_values": pixels[:2], "mask": masks[:2]}
    np.testing.assert_allclose(restored(inputs), pretrainer(inputs), atol=1e-5)
    assert restored.target == "appearance_motion" and restored.mask_ratio == 0.5
    with pytest.raises(ValueError, match="pre-trains as MAE-DFER does"):
        MaskedVideoPretrainer(encoder, mask_type="tube")


@pytest.mark.skipif(not has_reference(), reason="needs torch and transformers")
def test_live_loss_parity_with_hugging_face():
    """The fixture's numbers recomputed from transformers now (a newer transformers that
    changed the loss would show here first)."""
    from mtcae_keras.models.presets import BACKBONE_PRESETS
    from tools.make_pretraining_golden import fixture_inputs
    from tools.make_pretraining_golden import reference_pretraining

    folder = fixture_path("hf_pretraining")
    pixels, mask = fixture_inputs(BACKBONE_PRESETS["videomae_tiny"])
    for norm_pix_loss in (True, False):
        reference, _ = reference_pretraining(folder, pixels, mask, norm_pix_loss)
        pretrainer = MaskedVideoPretrainer.from_preset(
            folder, mask_ratio=0.75, norm_pix_loss=norm_pix_loss
        )
        assert _relative(pretrainer.reconstruction_loss(pixels, mask), reference) <= 1e-4
    assert os.path.exists(GOLDEN)


@pytest.mark.parametrize("motion_weight", [None, 0.3])
def test_lgi_former_pretraining_equals_mae_dfer(motion_weight):
    """MAE-DFER's own `PretrainVisionTransformer` (LGI-Former encoder, 16x160x160, regions
    2x5x10) on part-window masks: the same predictions, and its joint appearance-motion loss
    (one mean, or `target_diff_weight` 0.3) within 1e-4."""
    from tests.test_case import LGI_FORMER
    from tests.test_case import lgi_former_unstored
    from tools.make_pretraining_golden import lgi_former_inputs

    golden = dict(np.load(os.path.join(LGI_FORMER, "base_pretraining.npz")))
    pixels, _, mask = lgi_former_inputs()
    assert (mask == golden["mask"]).all()
    pretrainer = MaskedVideoPretrainer.from_preset(
        os.path.join(LGI_FORMER, "base_pretrain.pth"), **lgi_former_unstored("base"),
        mask_ratio=0.9, decoder_num_heads=2, target="appearance_motion",
        motion_weight=motion_weight,
    )  # fmt: skip
    predictions = pretrainer({"pixel_values": pixels, "mask": mask})
    np.testing.assert_allclose(predictions[:, :24], golden["logits"], atol=1e-4, rtol=1e-4)
    reference = golden["loss_joint" if motion_weight is None else "loss_joint_weighted"]
    assert _relative(pretrainer.reconstruction_loss(pixels, mask), reference) <= 1e-4


def test_mcg_nju_key_names_of_a_plain_vit_pretraining_equal_mae_dfer():
    """MAE-DFER's plain ViT pre-training checkpoint (MCG-NJU's names: `encoder.blocks.*`,
    `decoder.blocks.*` with fused qkv, `decoder.norm`, `decoder.head`) on tube masks: its
    model's predictions and appearance loss."""
    from tests.test_case import LGI_FORMER
    from tools.make_pretraining_golden import lgi_former_inputs

    golden = dict(np.load(os.path.join(LGI_FORMER, "videomae_160_pretraining.npz")))
    pixels, _, mask = lgi_former_inputs("tube")
    assert (mask == golden["mask"]).all()
    pretrainer = MaskedVideoPretrainer.from_preset(
        os.path.join(LGI_FORMER, "videomae_160_pretrain.pth"), image_size=160, num_frames=16,
        num_heads=4, decoder_num_heads=2, mask_ratio=0.9,
    )  # fmt: skip
    predictions = pretrainer({"pixel_values": pixels, "mask": mask})
    np.testing.assert_allclose(predictions[:, :24], golden["logits"], atol=1e-4, rtol=1e-4)
    loss = pretrainer.reconstruction_loss(pixels, mask)
    assert _relative(loss, golden["loss_appearance"]) <= 1e-4


def test_config_round_trip_keeps_every_argument():
    from mtcae_keras import VideoMAEBackbone

    encoder = VideoMAEBackbone.from_preset("videomae_tiny", use_final_norm=True)
    settings = {"mask_ratio": 0.5, "mask_type": "part_window", "window_size": (2, 4),
                "decoder_hidden_dim": 24, "decoder_num_layers": 2, "decoder_num_heads": 3,
                "decoder_intermediate_dim": 40, "decoder_norm_epsilon": 1e-5,
                "norm_pix_loss": False, "target": "appearance_motion", "motion_weight": 0.25,
                "normalization": "notebook"}  # fmt: skip
    config = MaskedVideoPretrainer(encoder, **settings).get_config()
    for key, value in settings.items():
        assert config[key] == (list(value) if isinstance(value, tuple) else value), key
    rebuilt = MaskedVideoPretrainer.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.encoder.get_config() == encoder.get_config()
    assert rebuilt.mask_generator.masked_per_window == 4  # int(0.5 * 2 * 4)
