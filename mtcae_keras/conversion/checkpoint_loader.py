"""Reads VideoMAE checkpoints (Hugging Face or original) into a config and numpy arrays."""

import json
import os
import zipfile

import numpy as np

from mtcae_keras.conversion.lgi_former_keys import lgi_former_config_from_state_dict
from mtcae_keras.conversion.torch_zip_reader import is_torch_zip
from mtcae_keras.conversion.torch_zip_reader import read_torch_zip
from mtcae_keras.conversion.videomae_keys import canonical_key
from mtcae_keras.conversion.videomae_keys import shape_config
from mtcae_keras.models.presets import HEADS_BY_WIDTH

_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _read_safetensors(path):
    """All tensors of a `.safetensors` file (bfloat16 arrives as `ml_dtypes.bfloat16`)."""
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as file:
        return {key: file.get_tensor(key) for key in file.keys()}


def _read_torch_file(path):
    if is_torch_zip(path):
        return read_torch_zip(path)
    if zipfile.is_zipfile(path):
        raise ValueError(f"{path}: a zip archive with no data.pkl, so not a torch checkpoint.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty file.")
    try:
        import torch
    except ImportError:
        raise ValueError(
            f"{path}: a legacy (pre-zip) torch file, which cannot be read safely without torch. "
            "Install torch (pip install torch==2.13.0) to read it with "
            "torch.load(weights_only=True), or re-save it with torch>=1.6."
        ) from None
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return _to_numpy(obj)


def _to_numpy(obj):
    if hasattr(obj, "detach"):
        return obj.detach().float().numpy() if obj.is_floating_point() else obj.numpy()
    if isinstance(obj, dict):
        return {key: _to_numpy(value) for key, value in obj.items()}
    return obj


def _unwrap_state_dict(obj, path):
    """Finds the tensor dict inside a training checkpoint (`model`, `module`, `state_dict`)."""
    for field in ("model", "module", "state_dict", "model_state"):
        if isinstance(obj, dict) and isinstance(obj.get(field), dict):
            return obj[field]
    if isinstance(obj, dict) and all(isinstance(v, np.ndarray) for v in obj.values()):
        return obj
    found = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
    raise ValueError(
        f"{path}: no state dict found (looked for 'model', 'module', 'state_dict' or a flat "
        f"dict of tensors; found {found})."
    )


def _read_weights(path):
    if path.endswith(".index.json"):
        with open(path) as file:
            shards = sorted(set(json.load(file)["weight_map"].values()))
        tensors = {}
        for shard in shards:
            tensors.update(_read_weights(os.path.join(os.path.dirname(path), shard)))
        return tensors
    if path.endswith(".safetensors"):
        return _read_safetensors(path)
    return _unwrap_state_dict(_read_torch_file(path), path)


def read_state_dict(path):
    """The tensors of one checkpoint file (or sharded index) as numpy, floats as float32.

    Args:
        path: str. A `.safetensors`, `.bin`, `.pth` file or a sharded `.index.json`.
    """
    return {
        key: (value.astype(np.float32) if np.issubdtype(value.dtype, np.floating)
              or value.dtype.name == "bfloat16" else value)
        for key, value in _read_weights(path).items()
        if isinstance(value, np.ndarray)
    }  # fmt: skip


def load_lgi_former_checkpoint(path):
    """Reads a MAE-DFER LGI-Former checkpoint (fine-tuned or pre-training `.pth`).

    Args:
        path: str. The `.pth` file (state dict under `model`, `module` or at the top level).

    Returns:
        `(config_kwargs, state_dict)`: `LGIFormerBackbone` arguments inferred from the
        shapes (`lgi_former_config_from_state_dict`) and key -> numpy array.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at {path!r}.")
    state_dict = read_state_dict(path)
    return lgi_former_config_from_state_dict(state_dict), state_dict


def config_from_hf(hf_config):
    """Maps a Hugging Face `VideoMAEConfig` dict to `VideoMAEBackbone` arguments."""
    if hf_config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"Unsupported hidden_act {hf_config['hidden_act']!r}; only 'gelu'.")
    image_size = hf_config.get("image_size", 224)
    return {
        "image_size": tuple(image_size) if isinstance(image_size, list) else image_size,
        "num_frames": hf_config.get("num_frames", 16),
        "patch_size": hf_config.get("patch_size", 16),
        "tubelet_size": hf_config.get("tubelet_size", 2),
        "hidden_dim": hf_config.get("hidden_size", 768),
        "num_layers": hf_config.get("num_hidden_layers", 12),
        "num_heads": hf_config.get("num_attention_heads", 12),
        "intermediate_dim": hf_config.get("intermediate_size", 3072),
        "layer_norm_epsilon": hf_config.get("layer_norm_eps", 1e-12),
        "use_final_norm": not hf_config.get("use_mean_pooling", True),
        "qv_bias": hf_config.get("qv_bias", hf_config.get("qkv_bias", True)),
        "num_channels": hf_config.get("num_channels", 3),
    }


def config_from_state_dict(state_dict):
    """Infers `VideoMAEBackbone` arguments from the tensors of an original checkpoint.

    Shapes give the width, depth, MLP width, patch and tubelet sizes, the final norm and layer
    scale. The head count is not stored: it is taken from the standard ViT sizes
    (384->6, 768->12, 1024->16, 1280->16, else width/64). Frame count and size are not stored
    either: 16x224x224 is assumed. Override any of these when building the backbone.
    """
    names = {}
    for key, value in state_dict.items():
        name = canonical_key(key)
        if name not in (None, "ignored"):
            names[name.split("#")[0]] = value
    if "patch_embed.proj.weight" not in names:
        raise ValueError(
            "No VideoMAE patch embedding (patch_embed.proj.weight or "
            "embeddings.patch_embeddings.projection.weight) in the checkpoint."
        )
    sizes = shape_config(names)
    return {
        "image_size": 224,
        "num_frames": 16,
        **sizes,
        "num_heads": HEADS_BY_WIDTH.get(sizes["hidden_dim"], max(sizes["hidden_dim"] // 64, 1)),
        "layer_norm_epsilon": 1e-6,
        "use_final_norm": "norm.weight" in names,
        "qv_bias": "blocks.0.attn.q_bias" in names,
        "layer_scale_init_value": 0.0 if "blocks.0.gamma_1" in names else None,
    }


def load_videomae_checkpoint(path):
    """Reads a VideoMAE checkpoint without importing torch (unless it is a legacy file).

    Accepts a Hugging Face folder (`config.json` with `model.safetensors`, `pytorch_model.bin`
    or their sharded indexes), a single `.safetensors` / `.bin` file (a `config.json` beside
    it is used when present) or an original `.pth` (state dict under `model`, `module` or at
    the top level). Pickled files are read by a restricted unpickler that never executes code
    from the file.

    Args:
        path: str. A folder or a file.

    Returns:
        `(config_kwargs, state_dict)`: `VideoMAEBackbone` arguments and a dict of key -> numpy
        array (float tensors as float32).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No checkpoint at {path!r}.")
    config_path = None
    if os.path.isdir(path):
        weights = [f for f in _WEIGHT_FILES if os.path.exists(os.path.join(path, f))]
        if not weights:
            raise ValueError(
                f"{path}: no weights found; a Hugging Face folder holds one of "
                f"{', '.join(_WEIGHT_FILES)} next to config.json."
            )
        weight_path = os.path.join(path, weights[0])
        config_path = os.path.join(path, "config.json")
    else:
        weight_path = path
        beside = os.path.join(os.path.dirname(path), "config.json")
        if path.endswith((".safetensors", ".bin", ".index.json")) and os.path.exists(beside):
            config_path = beside
    state_dict = read_state_dict(weight_path)
    if config_path and os.path.exists(config_path):
        with open(config_path) as file:
            config = config_from_hf(json.load(file))
        inferred = config_from_state_dict(state_dict)
        config["layer_scale_init_value"] = inferred["layer_scale_init_value"]
        config["use_final_norm"] = inferred["use_final_norm"]
    else:
        config = config_from_state_dict(state_dict)
    return config, state_dict
