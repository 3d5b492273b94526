"""Hugging Face `transformers` VideoMAE as the reference (needs torch; tools and tests only).

Builds randomly initialised reference models with non-trivial weights (non-zero q/v biases,
LayerNorm scales away from 1), runs them on channels-last clips, and renames state dicts
between the Hugging Face and the original VideoMAE spellings.
"""

import re

import numpy as np


def hf_config(config_kwargs):
    """A `transformers.VideoMAEConfig` for `VideoMAEBackbone` arguments."""
    from transformers import VideoMAEConfig

    return VideoMAEConfig(
        image_size=config_kwargs.get("image_size", 224),
        num_frames=config_kwargs.get("num_frames", 16),
        patch_size=config_kwargs.get("patch_size", 16),
        tubelet_size=config_kwargs.get("tubelet_size", 2),
        hidden_size=config_kwargs["hidden_dim"],
        num_hidden_layers=config_kwargs["num_layers"],
        num_attention_heads=config_kwargs["num_heads"],
        intermediate_size=config_kwargs["intermediate_dim"],
        layer_norm_eps=config_kwargs.get("layer_norm_epsilon", 1e-6),
        use_mean_pooling=not config_kwargs.get("use_final_norm", False),
        qv_bias=config_kwargs.get("qv_bias", True),
        num_channels=config_kwargs.get("num_channels", 3),
        attn_implementation="eager",
    )


def randomize_(module, seed):
    """Fills every parameter of `module` with seeded random values, in place."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(module.named_parameters()):
            noise = torch.randn(param.shape, generator=generator)
            if "layernorm" in name or name.endswith(("norm.weight", "norm.bias")):
                param.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * noise)
            elif name.endswith("bias"):
                param.copy_(0.5 * noise)
            else:
                param.copy_(noise / np.sqrt(max(param.shape[-1], 1)) if param.ndim > 1 else noise)
    return module


def random_hf_model(config_kwargs, seed=0):
    """A `VideoMAEModel` with seeded random weights, in eval mode."""
    from transformers import VideoMAEModel

    return randomize_(VideoMAEModel(hf_config(config_kwargs)), seed).eval()


def run_hf(model, pixels):
    """Runs a Hugging Face VideoMAE model on channels-last clips `(B, T, H, W, C)`."""
    import torch

    with torch.no_grad():
        inputs = torch.from_numpy(np.ascontiguousarray(np.transpose(pixels, (0, 1, 4, 2, 3))))
        return model(pixel_values=inputs).last_hidden_state.numpy()


def state_dict_numpy(module):
    return {k: v.detach().cpu().float().numpy() for k, v in module.state_dict().items()}


def hf_to_original(hf_state_dict):
    """Renames Hugging Face `VideoMAEModel` keys to the original VideoMAE ones (fused qkv)."""
    out = {}
    for key, value in hf_state_dict.items():
        key = key.removeprefix("videomae.")
        match = re.match(r"encoder\.layer\.(\d+)\.(.*)", key)
        if key.startswith("embeddings.patch_embeddings.projection."):
            out["patch_embed.proj." + key.rsplit(".", 1)[1]] = value
        elif key.startswith("layernorm."):
            out["norm." + key.rsplit(".", 1)[1]] = value
        elif match:
            i, rest = match.groups()
            prefix = f"blocks.{i}."
            names = {
                "layernorm_before": "norm1", "layernorm_after": "norm2",
                "attention.output.dense": "attn.proj", "intermediate.dense": "mlp.fc1",
                "output.dense": "mlp.fc2",
            }  # fmt: skip
            module, param = rest.rsplit(".", 1)
            if module in names:
                out[prefix + names[module] + "." + param] = value
            elif rest in ("attention.attention.query.bias", "attention.attention.q_bias"):
                out[prefix + "attn.q_bias"] = value
            elif rest in ("attention.attention.value.bias", "attention.attention.v_bias"):
                out[prefix + "attn.v_bias"] = value
        else:
            raise KeyError(f"Unexpected Hugging Face key {key!r}.")
    for i in sorted({int(k.split(".")[2]) for k in hf_state_dict if ".layer." in k}):
        parts = [
            hf_state_dict[
                next(
                    k for k in hf_state_dict
                    if k.endswith(f"encoder.layer.{i}.attention.attention.{p}.weight")
                )
            ]
            for p in ("query", "key", "value")
        ]  # fmt: skip
        out[f"blocks.{i}.attn.qkv.weight"] = np.concatenate(parts, axis=0)
    return out


def original_to_hf(state_dict):
    """Renames canonical (original) keys to Hugging Face `VideoMAEModel` keys.

    Accepts any spelling `mtcae_keras.conversion` accepts; layer-scale `gamma_1/gamma_2`
    (which Hugging Face lacks) are folded into the attention output and MLP output weights,
    which is exact: `g * (x W + b) = x (W g) + b g`.
    """
    from mtcae_keras.conversion.weight_port import classify_keys

    entries, _, _, _ = classify_keys(state_dict)
    canon = {name: value for name, (value, _) in entries.items()}
    out = {}
    for name, value in canon.items():
        if name.startswith("patch_embed.proj."):
            out["embeddings.patch_embeddings.projection." + name.rsplit(".", 1)[1]] = value
        elif name.startswith("norm."):
            out["layernorm." + name.rsplit(".", 1)[1]] = value
        elif name.startswith("blocks."):
            _, i, rest = name.split(".", 2)
            prefix = f"encoder.layer.{i}."
            if rest == "attn.qkv.weight":
                q, k, v = np.split(value, 3, axis=0)
                for part, array in zip(("query", "key", "value"), (q, k, v), strict=True):
                    out[prefix + f"attention.attention.{part}.weight"] = array
                continue
            if rest.startswith("gamma_"):
                continue
            names = {
                "norm1": "layernorm_before", "norm2": "layernorm_after",
                "attn.proj": "attention.output.dense", "mlp.fc1": "intermediate.dense",
                "mlp.fc2": "output.dense", "attn": "attention.attention",
            }  # fmt: skip
            module, param = rest.rsplit(".", 1)
            param = {"q_bias": "query.bias", "v_bias": "value.bias"}.get(param, param)
            gamma = {"attn.proj": "gamma_1", "mlp.fc2": "gamma_2"}.get(module)
            gamma_value = canon.get(f"blocks.{i}.{gamma}") if gamma else None
            if gamma_value is not None:
                value = value * (gamma_value[:, None] if param == "weight" else gamma_value)
            out[prefix + names[module] + "." + param] = value
    return out


def hf_model_from_state_dict(config_kwargs, state_dict):
    """A reference `VideoMAEModel` holding the weights of a checkpoint in any spelling."""
    import torch
    from transformers import VideoMAEModel

    model = VideoMAEModel(hf_config(config_kwargs)).eval()
    tensors = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in original_to_hf(
        state_dict).items()}  # fmt: skip
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ValueError(f"Reference model: missing {missing}, unexpected {unexpected}.")
    return model


def save_torch(state, path):
    """`torch.save` of a nest of dicts whose leaves are numpy arrays (as tensors)."""
    import torch

    def convert(obj):
        if isinstance(obj, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(obj))
        if isinstance(obj, dict):
            return {key: convert(value) for key, value in obj.items()}
        return obj

    torch.save(convert(state), path)
