"""Writes the LGI-Former parity fixture used by the tests (needs torch, einops and MAE-DFER).

    python tools/make_lgi_former_golden.py --mae-dfer DIR [--output tests/fixtures/lgi_former]

DIR is a checkout of github sunlicai/MAE-DFER (read, never copied). For each config below it
builds MAE-DFER's own fine-tuning `VisionTransformer(attn_type='local_global')` with seeded
random weights (non-zero q / v biases, LayerNorm scales off 1, random representative tokens),
runs it on a fixed clip and writes:

    <config>_finetune.pth   {'module': encoder + fc_norm + head, 'epoch', 'args'}: the
                            fine-tuned layout
    <config>_pretrain.pth   {'model': encoder.* + encoder.norm + decoder.* +
                            encoder_to_decoder + mask_token} of the reference
                            `PretrainVisionTransformer` holding the same encoder weights
    videomae_160_pretrain.pth  MAE-DFER's plain VideoMAE pre-training layout at 160x160
    <config>.npz            `clip` uint8 (the input is clip / 32 - 4, exact in float32),
                            `tokens` (B, N, C) in raster order, `region_tokens` (B, R, C),
                            `features` (fc_norm of the mean representative token)
    videomae_160.npz        `tokens`: the plain encoder's normed output on the base clip

Before writing, the tool checks that the reference pre-training encoder, run with nothing
masked, equals the fine-tuning encoder's normed local tokens (for region sizes with one
region across the width, where the two partitions of the reference agree).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tools import lgi_former_reference as ref  # noqa: E402

SEED = 20261201
# `base`: the released geometry (16x160x160, 8x10x10 tokens, regions 2x5x10, 8 heads) with
# 2 narrow blocks; `small`: non-square frames, 3 heads and several regions along every axis
# (2x2x3 on an 8x4x6 grid: 4x2x2 = 16 regions of 12 tokens), so that no axis of the region
# partition is trivial.
CONFIGS = {
    "base": {
        "image_size": 160, "num_frames": 16, "patch_size": 16, "tubelet_size": 2,
        "hidden_dim": 64, "num_layers": 2, "num_heads": 8, "intermediate_dim": 128,
        "region_size": (2, 5, 10), "batch": 2,
    },
    "small": {
        "image_size": (64, 96), "num_frames": 16, "patch_size": 16, "tubelet_size": 2,
        "hidden_dim": 48, "num_layers": 3, "num_heads": 3, "intermediate_dim": 96,
        "region_size": (2, 2, 3), "batch": 3,
    },
}  # fmt: skip
VIDEOMAE_160 = {
    "image_size": 160, "num_frames": 16, "patch_size": 16, "tubelet_size": 2,
    "hidden_dim": 32, "num_layers": 2, "num_heads": 4, "intermediate_dim": 64,
}  # fmt: skip


def clip_to_pixels(clip):
    """uint8 clip -> the float32 input of the fixture, exactly: clip / 32 - 4."""
    return clip.astype(np.float32) / 32.0 - 4.0


def random_clip(rng, batch, config):
    size = config["image_size"]
    height, width = size if isinstance(size, tuple) else (size, size)
    # 16 grey levels per channel: the clip compresses to about half its size in the npz.
    return (17 * rng.integers(0, 16, (batch, config["num_frames"], height, width, 3))).astype(
        np.uint8
    )


def layer_norm(x, weight, bias, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mae-dfer", required=True, help="checkout of sunlicai/MAE-DFER")
    parser.add_argument("--output", default="tests/fixtures/lgi_former")
    args = parser.parse_args(argv)

    import argparse as namespace_module

    modeling_finetune, modeling_pretrain = ref.import_mae_dfer(os.path.abspath(args.mae_dfer))
    os.makedirs(args.output, exist_ok=True)
    rng = np.random.default_rng(SEED)
    clips = {}
    for index, (name, config) in enumerate(CONFIGS.items()):
        clip = random_clip(rng, config["batch"], config)
        pixels = clip_to_pixels(clip)
        finetune = ref.finetune_model(modeling_finetune, config, seed=SEED + index)
        out = ref.run_finetune(finetune, config, pixels)
        state = ref.state_dict_numpy(finetune)
        ref.save_torch(
            {"module": state, "epoch": 99, "args": namespace_module.Namespace(depth=2)},
            os.path.join(args.output, f"{name}_finetune.pth"),
        )

        pretrain = ref.pretrain_model(modeling_pretrain, config, seed=SEED + 10 + index)
        ref.load_encoder_into_pretrain(pretrain, finetune)
        ref.save_torch(
            {"model": ref.state_dict_numpy(pretrain)},
            os.path.join(args.output, f"{name}_pretrain.pth"),
        )
        width = np.atleast_1d(config["image_size"])[-1] // config["patch_size"]
        if config["region_size"][2] == width:
            encoder = ref.state_dict_numpy(pretrain.encoder)
            expected = layer_norm(
                out["tokens_by_region"],
                encoder["norm.weight"],
                encoder["norm.bias"],
            )
            diff = np.abs(ref.run_pretrain_encoder(pretrain, pixels) - expected).max()
            print(f"{name}: pre-training encoder vs fine-tuning encoder (normed): {diff:.2e}")
            if diff > 1e-4:
                sys.exit(f"{name}: the reference's two encoders disagree ({diff:.2e})")
        clips[name] = clip
        arrays = {key: out[key] for key in ("tokens", "region_tokens", "features")}
        np.savez_compressed(os.path.join(args.output, f"{name}.npz"), clip=clip, **arrays)
        print(f"{name}: tokens {out['tokens'].shape}, region tokens {out['region_tokens'].shape}")

    # MAE-DFER's plain VideoMAE (pretrain_videomae_base_patch16_160's layout) at 160x160.
    videomae = ref.pretrain_model(modeling_pretrain, VIDEOMAE_160, seed=SEED + 20)
    ref.save_torch(
        {"model": ref.state_dict_numpy(videomae)},
        os.path.join(args.output, "videomae_160_pretrain.pth"),
    )
    tokens = ref.run_pretrain_encoder(videomae, clip_to_pixels(clips["base"]))
    np.savez_compressed(os.path.join(args.output, "videomae_160.npz"), tokens=tokens)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
