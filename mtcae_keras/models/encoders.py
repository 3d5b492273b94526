"""One entry point for every encoder: VideoMAE or LGI-Former, preset, converted or checkpoint."""

import hashlib
import os

from mtcae_keras.models.backbone import read_weights_config
from mtcae_keras.models.hub import resolve_hub_name
from mtcae_keras.models.lgi_former_backbone import LGIFormerBackbone
from mtcae_keras.models.videomae_backbone import VideoMAEBackbone

BACKBONE_CLASSES = {cls.__name__: cls for cls in (VideoMAEBackbone, LGIFormerBackbone)}


def encoder_presets():
    """Every encoder preset name, VideoMAE's and LGI-Former's."""
    return sorted(name for cls in BACKBONE_CLASSES.values() for name in cls.PRESETS)


def is_encoder_preset(name):
    return any(name in cls.PRESETS for cls in BACKBONE_CLASSES.values())


def load_encoder(name, **overrides):
    """Builds the encoder that `name` names, whichever kind it is.

    Args:
        name: str. A preset of `VideoMAEBackbone` or `LGIFormerBackbone`; a `.weights.h5`
            written by the converters (its `.config.json` says which class); or a checkpoint:
            a Hugging Face VideoMAE folder or file, an original VideoMAE `.pth`, or a MAE-DFER
            `.pth` (an LGI-Former when it holds `lg_region_tokens`, else a plain ViT); or
            `hf://OWNER/REPO[@REVISION]`, a Hub repository of any of these.
        **overrides: constructor arguments replacing the preset's or checkpoint's (e.g.
            `image_size` or `num_heads`, which checkpoints do not store).

    Returns:
        A `VideoMAEBackbone` or `LGIFormerBackbone`.
    """
    for cls in BACKBONE_CLASSES.values():
        if name in cls.PRESETS:
            return cls.from_preset(name, **overrides)
    name = resolve_hub_name(name)
    if not os.path.exists(name):
        raise ValueError(
            f"Unknown encoder {name!r}: no such preset or file. Presets: {encoder_presets()}; "
            "or give a VideoMAE / MAE-DFER checkpoint or a converted .weights.h5."
        )
    if name.endswith(".weights.h5"):
        config = read_weights_config(name)
        kind = config.get("backbone_class")
        if kind is None:  # written before the class was recorded
            kind = "LGIFormerBackbone" if "region_size" in config else "VideoMAEBackbone"
        return BACKBONE_CLASSES[kind].from_preset(name, **overrides)

    from mtcae_keras.conversion import load_videomae_checkpoint

    config, state_dict = load_videomae_checkpoint(name)  # reads the file once
    return encoder_from_state_dict(config, state_dict, **overrides)[0]


def encoder_from_state_dict(config, state_dict, **overrides):
    """Builds and ports the encoder a checkpoint's tensors hold, whichever kind it is.

    An LGI-Former when the state dict has `lg_region_tokens` (its config then inferred by
    `lgi_former_config_from_state_dict`), else a VideoMAE ViT built from `config`.

    Args:
        config: `VideoMAEBackbone` arguments (`load_videomae_checkpoint`'s first result).
        state_dict: dict key -> numpy array.
        **overrides: constructor arguments replacing the inferred ones.

    Returns:
        `(backbone, report)`, the report of `port_videomae_weights` / `port_lgi_former_weights`.
    """
    from mtcae_keras.conversion import is_lgi_former_state_dict
    from mtcae_keras.conversion import port_lgi_former_weights
    from mtcae_keras.conversion import port_videomae_weights
    from mtcae_keras.conversion.lgi_former_keys import lgi_former_config_from_state_dict

    if is_lgi_former_state_dict(state_dict):
        backbone = LGIFormerBackbone(**{**lgi_former_config_from_state_dict(state_dict),
                                        **overrides})  # fmt: skip
        return backbone, port_lgi_former_weights(backbone, state_dict)
    backbone = VideoMAEBackbone(**{**config, **overrides})
    return backbone, port_videomae_weights(backbone, state_dict)


def file_digest(path, chunk=1 << 24):
    """SHA-256 of a file, or of a folder's files in sorted order (a Hugging Face folder)."""
    digest = hashlib.sha256()
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(root, f) for root, _, files in os.walk(path) for f in files)  # fmt: skip
    for item in paths:
        with open(item, "rb") as file:
            while block := file.read(chunk):
                digest.update(block)
    return digest.hexdigest()
