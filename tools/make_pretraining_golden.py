"""Writes the pre-training loss fixtures (needs torch and transformers; MAE-DFER for the second).

    python tools/make_pretraining_golden.py [--fixture tests/fixtures/videomae_tiny]
        [--mae-dfer DIR [--lgi-fixture tests/fixtures/lgi_former]]

VideoMAE: loads the seeded random Hugging Face `VideoMAEForPreTraining` of the VideoMAE
fixture (`hf_pretraining/`, written by `make_videomae_golden.py`), draws tube masks with
`TubeMaskGenerator` (seeded) and a random clip, and writes `pretraining_golden.npz`:
`pixels` (B, T, H, W, C) normalised, `mask` (B, N) bool, the reference `logits` and its
`loss_norm_pix` / `loss_plain` (`norm_pix_loss` on and off) on them.

MAE-DFER (with `--mae-dfer`, a checkout of github sunlicai/MAE-DFER, read and never copied):
loads the LGI-Former fixture's `base_pretrain.pth` into MAE-DFER's own
`PretrainVisionTransformer` (16x160x160, regions 2x5x10), draws part-window masks (ratio
0.9, windows 5x10, as its VoxCeleb2 script) and writes `base_pretraining.npz`: `mask`, the
first 24 masked tokens' `logits` and the joint appearance-motion loss (`loss_joint`, one
mean; `loss_joint_weighted`, `target_diff_weight` 0.3) of the reference's predictions
against `joint_target_reference`.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SEED = 20261201
MASK_RATIO = 0.75


def reference_pretraining(folder, pixels, mask, norm_pix_loss):
    """`(loss, logits)` of the Hugging Face model in `folder` on channels-last `pixels`."""
    import torch
    from transformers import VideoMAEForPreTraining

    model = VideoMAEForPreTraining.from_pretrained(folder, norm_pix_loss=norm_pix_loss).eval()
    inputs = torch.from_numpy(np.ascontiguousarray(np.transpose(pixels, (0, 1, 4, 2, 3))))
    with torch.no_grad():
        out = model(pixel_values=inputs, bool_masked_pos=torch.from_numpy(mask))
    return float(out.loss), out.logits.numpy()


def fixture_inputs(config):
    """The fixture's normalised clips and seeded tube masks for a VideoMAE config dict."""
    from mtcae_keras.models.videomae_backbone import token_grid
    from mtcae_keras.pretraining.tube_mask_generator import TubeMaskGenerator

    rng = np.random.default_rng(SEED)
    size, frames = config["image_size"], config["num_frames"]
    # Pixels in [0, 1] (as real clips), normalised as the model's input.
    raw = rng.random((2, frames, size, size, 3)).astype(np.float32)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    pixels = ((raw - mean) / std).astype(np.float32)
    grid, _ = token_grid(size, frames, config["patch_size"], config["tubelet_size"])
    generator = TubeMaskGenerator(grid, MASK_RATIO)
    mask = np.stack([generator(np.array([SEED, i])).numpy() for i in range(2)])
    return pixels, mask


def joint_target_reference(pixels, patch, tubelet, norm_pix_loss=True):
    """MAE-DFER's `use_frame_diff_as_target` written out in NumPy from its definition.

    Each clip `(B, T, H, W, C)` in [0, 1] is cut into tubelets in raster order; every tubelet
    is standardised per channel (mean and unbiased std over its pixels, `+ 1e-6` after the
    root); its first frame is kept and every later frame replaced by itself minus the first.
    Returns `(B, N, tubelet * patch * patch * C)` in float64.
    """
    b, t, h, w, c = pixels.shape
    out = np.zeros((b, (t // tubelet) * (h // patch) * (w // patch), tubelet * patch * patch * c))
    for i in range(b):
        n = 0
        for ti in range(0, t, tubelet):
            for hi in range(0, h, patch):
                for wi in range(0, w, patch):
                    cube = pixels[i, ti : ti + tubelet, hi : hi + patch, wi : wi + patch]
                    flat = cube.reshape(-1, c).astype(np.float64)  # (tubelet * p * p, C)
                    if norm_pix_loss:
                        flat = (flat - flat.mean(0)) / (flat.std(0, ddof=1) + 1e-6)
                    cube = flat.reshape(tubelet, patch, patch, c)
                    out[i, n] = np.concatenate([cube[:1], cube[1:] - cube[:1]]).reshape(-1)
                    n += 1
    return out


def weighted_joint_loss(predictions, targets, tubelet, weight=None):
    """MAE-DFER's loss: one mean, or `(1 - weight)` first frames + `weight` differences."""
    error = (np.asarray(predictions, np.float64) - targets) ** 2
    if weight is None:
        return float(error.mean())
    error = error.reshape(*error.shape[:2], tubelet, -1)
    return float((1 - weight) * error[:, :, 0].mean() + weight * error[:, :, 1:].mean())


def lgi_former_inputs(mask_type="part_window"):
    """The MAE-DFER fixture's clips (normalised, and in [0, 1]) and seeded masks (ratio 0.9,
    on its 8x10x10 grid): part-window (windows 5x10, its VoxCeleb2 script's) or tube."""
    from mtcae_keras.pretraining.tube_mask_generator import TubeMaskGenerator
    from tools.make_lgi_former_golden import CONFIGS
    from tools.make_lgi_former_golden import random_clip

    config = CONFIGS["base"]
    raw = random_clip(np.random.default_rng(SEED), 2, config).astype(np.float32) / 255.0
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    pixels = ((raw - mean) / std).astype(np.float32)
    window = (5, 10) if mask_type == "part_window" else None
    generator = TubeMaskGenerator((8, 10, 10), 0.9, mask_type, window)
    mask = np.stack([generator(np.array([SEED, i])).numpy() for i in range(2)])
    return pixels, raw, mask


def mae_dfer_pretraining(mae_dfer, fixture, pixels, mask, name="base"):
    """Predictions `(B, N_masked, 1536)` of MAE-DFER's model holding `<name>_pretrain.pth`
    (`base`: its LGI-Former; `videomae_160`: its plain ViT)."""
    import torch

    from mtcae_keras.conversion import read_state_dict
    from tools import lgi_former_reference as ref
    from tools.make_lgi_former_golden import CONFIGS
    from tools.make_lgi_former_golden import VIDEOMAE_160

    _, modeling_pretrain = ref.import_mae_dfer(os.path.abspath(mae_dfer))
    model = ref.pretrain_model(modeling_pretrain, CONFIGS.get(name, VIDEOMAE_160))
    state = read_state_dict(os.path.join(fixture, f"{name}_pretrain.pth"))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    with torch.no_grad():
        return model(ref.to_torch(pixels), torch.from_numpy(mask)).numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixture", default="tests/fixtures/videomae_tiny")
    parser.add_argument("--mae-dfer", help="a checkout of github sunlicai/MAE-DFER")
    parser.add_argument("--lgi-fixture", default="tests/fixtures/lgi_former")
    args = parser.parse_args()

    from mtcae_keras.models.presets import BACKBONE_PRESETS

    folder = os.path.join(args.fixture, "hf_pretraining")
    pixels, mask = fixture_inputs(BACKBONE_PRESETS["videomae_tiny"])
    loss_norm_pix, logits = reference_pretraining(folder, pixels, mask, True)
    loss_plain, _ = reference_pretraining(folder, pixels, mask, False)
    path = os.path.join(args.fixture, "pretraining_golden.npz")
    np.savez(path, pixels=pixels, mask=mask, logits=logits, loss_norm_pix=loss_norm_pix,
             loss_plain=loss_plain)  # fmt: skip
    print(f"wrote {path}: loss {loss_norm_pix:.6f} (norm_pix) / {loss_plain:.6f} (plain)")
    if args.mae_dfer:
        pixels, raw, mask = lgi_former_inputs()
        logits = mae_dfer_pretraining(args.mae_dfer, args.lgi_fixture, pixels, mask)
        target = joint_target_reference(raw, 16, 2)
        masked = np.stack([target[i][mask[i]] for i in range(len(mask))])
        losses = {"loss_joint": weighted_joint_loss(logits, masked, 2),
                  "loss_joint_weighted": weighted_joint_loss(logits, masked, 2, 0.3)}  # fmt: skip
        path = os.path.join(args.lgi_fixture, "base_pretraining.npz")
        np.savez(path, mask=mask, logits=logits[:, :24], **losses)
        print(f"wrote {path}: {losses}")
        # Its plain ViT pre-training (VideoMAE's, in MCG-NJU's key names): tube masks and
        # the appearance target, standardised per tubelet.
        from mtcae_keras.pretraining.reconstruction_targets import reconstruction_targets

        pixels, raw, mask = lgi_former_inputs("tube")
        logits = mae_dfer_pretraining(args.mae_dfer, args.lgi_fixture, pixels, mask,
                                      "videomae_160")  # fmt: skip
        patches = np.asarray(reconstruction_targets(raw, 16, 2, True, "appearance"))
        masked = np.stack([patches[i][mask[i]] for i in range(len(mask))])
        loss = weighted_joint_loss(logits, masked, 2)
        path = os.path.join(args.lgi_fixture, "videomae_160_pretraining.npz")
        np.savez(path, mask=mask, logits=logits[:, :24], loss_appearance=loss)
        print(f"wrote {path}: loss {loss}")


if __name__ == "__main__":
    main()
