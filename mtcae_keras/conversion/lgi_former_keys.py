"""Key names of MAE-DFER's LGI-Former checkpoints, and the config their shapes imply.

Fine-tuned checkpoints (`{'model' or 'module': ...}`) hold the encoder keys as they are, then
`fc_norm` + `head`; pre-training checkpoints prefix them with `encoder.` and add `encoder.norm`,
`decoder.*`, `encoder_to_decoder` and `mask_token`. Encoder keys (reference.md section 5):
`patch_embed.proj.{weight,bias}`, `lg_region_tokens`, `blocks.i.{first,second,third}_attn.
{q.weight, kv.weight, q_bias, v_bias, proj.weight, proj.bias}`, `blocks.i.{first_attn_norm0,
second_attn_norm0, third_attn_norm0, third_attn_norm1, norm2}.{weight,bias}` and
`blocks.i.mlp.{fc1,fc2}.{weight,bias}`. The canonical name of a key is the key without its
`module.` / `encoder.` prefixes.
"""

import re

from mtcae_keras.conversion.videomae_keys import shape_config

_ATTN = r"(?:first|second|third)_attn\.(?:q\.weight|kv\.weight|q_bias|v_bias|proj\.(?:weight|bias))"
_NORM = r"(?:first_attn_norm0|second_attn_norm0|third_attn_norm0|third_attn_norm1|norm2)"
ENCODER_PATTERNS = (
    r"patch_embed\.proj\.(?:weight|bias)",
    r"lg_region_tokens",
    rf"blocks\.\d+\.{_ATTN}",
    rf"blocks\.\d+\.{_NORM}\.(?:weight|bias)",
    r"blocks\.\d+\.mlp\.fc[12]\.(?:weight|bias)",
)
# The classification head, the pre-training encoder's final norm and the pre-training decoder.
IGNORED_PATTERNS = (
    r"fc_norm\..*",
    r"head\..*",
    r"norm\.(?:weight|bias)",
    r"decoder\..*",
    r"encoder_to_decoder\..*",
    r"mask_token",
)
_ENCODER = [re.compile(pattern + "$") for pattern in ENCODER_PATTERNS]
_IGNORED = [re.compile(pattern + "$") for pattern in IGNORED_PATTERNS]


def canonical_lgi_former_key(key):
    """Canonical name of an LGI-Former encoder key, `"ignored"`, or None if unknown.

    Args:
        key: str. A state-dict key of a fine-tuned or pre-training MAE-DFER checkpoint.
    """
    for prefix in ("module.", "encoder."):
        key = key.removeprefix(prefix)
    if any(pattern.match(key) for pattern in _ENCODER):
        return key
    if any(pattern.match(key) for pattern in _IGNORED):
        return "ignored"
    return None


def is_lgi_former_state_dict(state_dict):
    """Whether a state dict holds an LGI-Former encoder (it has representative tokens)."""
    return any(canonical_lgi_former_key(key) == "lg_region_tokens" for key in state_dict)


def lgi_former_config_from_state_dict(state_dict):
    """Infers `LGIFormerBackbone` arguments from the tensors of a MAE-DFER checkpoint.

    Shapes give the width, depth, MLP width, patch and tubelet sizes and whether q / v
    biases exist. Not stored, and taken from MAE-DFER's released encoder: the clip size
    (16x160x160), the region size (2, 5, 10) and the head count (width / 64: 8 at 512).
    Override these when building the backbone; a region count that disagrees with them is
    reported by the port as a mis-shaped `lg_region_tokens`.
    """
    names = {}
    for key, value in state_dict.items():
        name = canonical_lgi_former_key(key)
        if name not in (None, "ignored"):
            names[name] = value
    if "patch_embed.proj.weight" not in names or "lg_region_tokens" not in names:
        raise ValueError(
            "Not an LGI-Former checkpoint: patch_embed.proj.weight and lg_region_tokens (with "
            "or without the encoder. prefix) are required."
        )
    sizes = shape_config(names)
    return {
        "image_size": 160,
        "num_frames": 16,
        **sizes,
        "num_heads": max(sizes["hidden_dim"] // 64, 1),
        "region_size": (2, 5, 10),
        "layer_norm_epsilon": 1e-6,
        "qv_bias": "blocks.0.first_attn.q_bias" in names,
    }
