"""MAE-DFER's own PyTorch LGI-Former as the reference (needs torch and einops; tools and tests).

The reference code is imported from a checkout of github sunlicai/MAE-DFER given on the
command line (`--mae-dfer DIR`, or `MAE_DFER_DIR` for the live test); it is never copied
into this repository. Its `modeling_finetune.py` and `modeling_pretrain.py` import three
helpers from `timm` (`drop_path`, `to_2tuple`, `trunc_normal_`) and `register_model`; timm
needs torchvision, whose wheels pull a CUDA torch here, so when timm is not installed a
stand-in module with timm's definitions of those four is registered first. With the
models in eval mode and random weights set afterwards, only `to_2tuple` and
`register_model` matter for the outputs.
"""

import os
import sys
import types

import numpy as np

from tools.videomae_reference import save_torch  # noqa: F401 (re-exported for the tools)


def _install_timm_stand_in():
    import torch

    def drop_path(x, drop_prob=0.0, training=False, scale_by_keep=True):
        if drop_prob == 0.0 or not training:
            return x
        keep = 1 - drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep if scale_by_keep else x * mask

    def to_2tuple(value):
        return tuple(value) if isinstance(value, (tuple, list)) else (value, value)

    def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
        return torch.nn.init.trunc_normal_(tensor, mean, std, a, b)

    layers = types.ModuleType("timm.models.layers")
    layers.drop_path, layers.to_2tuple, layers.trunc_normal_ = drop_path, to_2tuple, trunc_normal_
    registry = types.ModuleType("timm.models.registry")
    registry.register_model = lambda fn: fn
    models = types.ModuleType("timm.models")
    models.layers, models.registry = layers, registry
    timm = types.ModuleType("timm")
    timm.models = models
    sys.modules.update({"timm": timm, "timm.models": models, "timm.models.layers": layers,
                        "timm.models.registry": registry})  # fmt: skip


def import_mae_dfer(directory):
    """`(modeling_finetune, modeling_pretrain)` from a MAE-DFER checkout."""
    import importlib
    import importlib.util

    if not os.path.exists(os.path.join(directory, "modeling_finetune.py")):
        raise FileNotFoundError(
            f"{directory}: no modeling_finetune.py; give a checkout of github sunlicai/MAE-DFER."
        )
    if "timm" not in sys.modules and importlib.util.find_spec("timm") is None:
        _install_timm_stand_in()
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return importlib.import_module("modeling_finetune"), importlib.import_module(
        "modeling_pretrain"
    )


def randomize_(module, seed):
    """Seeded random values for every parameter: LayerNorm scales near 1, non-zero biases.

    Weights are scaled by their fan-in (the tubelet embedding's too), so the tokens stay of
    order 1 and a float32 difference of 1e-4 means a real one.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    norms = {name for name, m in module.named_modules() if isinstance(m, torch.nn.LayerNorm)}
    with torch.no_grad():
        for name, param in sorted(module.named_parameters()):
            noise = torch.randn(param.shape, generator=generator)
            if name.rsplit(".", 1)[0] in norms:
                param.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
            elif name.endswith(("bias", "lg_region_tokens", "mask_token")):
                param.copy_(0.5 * noise)
            else:
                fan_in = int(np.prod(param.shape[1:])) if param.ndim > 1 else 1
                param.copy_(noise / np.sqrt(fan_in))
    return module


def finetune_model(modeling_finetune, config, num_classes=7, seed=0):
    """The reference fine-tuning `VisionTransformer(attn_type='local_global')`, random, eval.

    `config` holds `LGIFormerBackbone` arguments; the head classifies the mean of the
    representative tokens (`lg_classify_token_type='region'`, MAE-DFER's DFER setting).
    """
    from functools import partial

    import torch

    model = modeling_finetune.VisionTransformer(
        img_size=config["image_size"],
        patch_size=config["patch_size"],
        num_classes=num_classes,
        embed_dim=config["hidden_dim"],
        depth=config["num_layers"],
        num_heads=config["num_heads"],
        mlp_ratio=config["intermediate_dim"] / config["hidden_dim"],
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=config.get("layer_norm_epsilon", 1e-6)),
        all_frames=config["num_frames"],
        tubelet_size=config["tubelet_size"],
        attn_type="local_global",
        lg_region_size=tuple(config["region_size"]),
        lg_classify_token_type="region",
    )
    return randomize_(model, seed).eval()


def pretrain_model(modeling_pretrain, config, seed=0):
    """The reference pre-training `PretrainVisionTransformer` (small decoder), random, eval.

    Its encoder builds its tubelet embedding for 16 frames whatever the clip (a limit of
    the reference), so `config["num_frames"]` must be 16.
    """
    from functools import partial

    import torch

    if config["num_frames"] != 16:
        raise ValueError("MAE-DFER's pre-training encoder is built for 16 frames only.")
    patch, tubelet = config["patch_size"], config["tubelet_size"]
    lgi = "region_size" in config
    model = modeling_pretrain.PretrainVisionTransformer(
        img_size=config["image_size"],
        patch_size=patch,
        encoder_embed_dim=config["hidden_dim"],
        encoder_depth=config["num_layers"],
        encoder_num_heads=config["num_heads"],
        decoder_num_classes=3 * tubelet * patch * patch,
        decoder_embed_dim=16,
        decoder_depth=1,
        decoder_num_heads=2,
        mlp_ratio=config["intermediate_dim"] / config["hidden_dim"],
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=config.get("layer_norm_epsilon", 1e-6)),
        tubelet_size=tubelet,
        attn_type="local_global" if lgi else "joint",
        lg_region_size=tuple(config.get("region_size", (2, 2, 10))),
    )
    return randomize_(model, seed).eval()


def to_torch(pixels):
    """Channels-last clips `(B, T, H, W, C)` -> the reference's `(B, C, T, H, W)` tensor."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.transpose(pixels, (0, 4, 1, 2, 3))))


def run_finetune(model, config, pixels):
    """Runs the reference on clips; returns its tokens as `LGIFormerBackbone` returns them.

    The whole reference forward runs (`model(x)`); a hook on the last block reads its
    `(B * regions, 1 + region tokens, C)` output, which is split into the representative
    tokens and the local tokens, the latter put back in `(t, h, w)` raster order with the
    inverse of the reference's own partition pattern.

    Returns:
        dict `tokens` `(B, N, C)`, `tokens_by_region` (the same grouped region by region, the
        order of the reference's pre-training encoder output), `region_tokens` `(B, R, C)`,
        `features` (the reference's
        `forward_features`: fc_norm of the representative tokens' mean) and `logits`.
    """
    import torch
    from einops import rearrange

    captured = {}
    hook = model.blocks[-1].register_forward_hook(
        lambda module, args, output: captured.update(x=output.detach().clone())
    )
    with torch.no_grad():
        x = to_torch(pixels)
        features = model.forward_features(x)
        logits = model.head(features)
    hook.remove()
    (nt, nh, nw), (t, h, w) = model.lg_num_region_size, model.lg_region_size
    grouped = rearrange(captured["x"], "(b n) s c -> b n s c", b=pixels.shape[0])
    tokens = rearrange(
        grouped[:, :, 1:],
        "b (nt nh nw) (t h w) c -> b (nt t nh h nw w) c",
        nt=nt, nh=nh, nw=nw, t=t, h=h, w=w,
    )  # fmt: skip
    return {
        "tokens": tokens.numpy(),
        "tokens_by_region": rearrange(grouped[:, :, 1:], "b n s c -> b (n s) c").numpy(),
        "region_tokens": grouped[:, :, 0].numpy(),
        "features": features.numpy(),
        "logits": logits.numpy(),
    }


def run_pretrain_encoder(model, pixels):
    """The reference pre-training encoder on clips with nothing masked (its `norm` applied).

    An LGI-Former encoder returns its tokens grouped region by region (`(b n s) c`), not in
    raster order.
    """
    import torch

    x = to_torch(pixels)
    num_tokens = model.encoder.patch_embed.num_patches
    mask = torch.zeros((pixels.shape[0], num_tokens), dtype=torch.bool)
    with torch.no_grad():
        return model.encoder.forward_features(x, mask).numpy()


def state_dict_numpy(module):
    return {k: v.detach().cpu().float().numpy() for k, v in module.state_dict().items()}


def load_encoder_into_pretrain(pretrain, finetune):
    """Copies a fine-tuning model's encoder weights into a pre-training model's encoder."""
    encoder = {k: v for k, v in finetune.state_dict().items()
               if not k.startswith(("fc_norm.", "head."))}  # fmt: skip
    missing, unexpected = pretrain.encoder.load_state_dict(encoder, strict=False)
    if unexpected or set(missing) - {"norm.weight", "norm.bias"}:
        raise ValueError(f"Encoder copy: missing {missing}, unexpected {unexpected}.")
    return pretrain
