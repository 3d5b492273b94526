"""One entry point for every encoder: VideoMAE or LGI-Former, preset, converted or checkpoint."""

import hashlib
import os

from mtcae_keras.models.backbone import read_weights_config
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
            `.pth` (an LGI-Former when it holds `lg_region_tokens`, else a plain ViT).
        **overrides: constructor arguments replacing the preset's or checkpoint's (e.g.
            `image_size` or `num_heads`, which checkpoints do not store).

    Returns:
        A `VideoMAEBackbone` or `LGIFormerBackbone`.
    """
    for cls in BACKBONE_CLASSES.values():
        if name in cls.PRESETS:
            return cls.from_preset(name, **overrides)
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

    from mtcae_keras.conversion import is_lgi_former_state_dict
    from mtcae_keras.conversion import load_videomae_checkpoint
    from mtcae_keras.conversion import port_lgi_former_weights
    from mtcae_keras.conversion import port_videomae_weights
    from mtcae_keras.conversion.lgi_former_keys import lgi_former_config_from_state_dict

    config, state_dict = load_videomae_checkpoint(name)  # reads the file once
    if is_lgi_former_state_dict(state_dict):
        config = lgi_former_config_from_state_dict(state_dict)
        backbone = LGIFormerBackbone(**{**config, **overrides})
        port_lgi_former_weights(backbone, state_dict)
    else:
        backbone = VideoMAEBackbone(**{**config, **overrides})
        port_videomae_weights(backbone, state_dict)
    return backbone


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
