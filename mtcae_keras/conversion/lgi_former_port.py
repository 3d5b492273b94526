"""Ports MAE-DFER LGI-Former checkpoint weights into an `LGIFormerBackbone`."""

from mtcae_keras.conversion.lgi_former_keys import canonical_lgi_former_key
from mtcae_keras.conversion.weight_port import assign_checked
from mtcae_keras.conversion.weight_port import layer_targets
from mtcae_keras.conversion.weight_port import patch_embed_targets
from mtcae_keras.conversion.weight_port import same

_ATTENTIONS = ("first_attn", "second_attn", "third_attn")
_NORMS = ("first_attn_norm0", "second_attn_norm0", "third_attn_norm0", "third_attn_norm1",
          "norm2")  # fmt: skip


def _targets(backbone):
    """Canonical name -> (Keras variable, transform from the PyTorch layout)."""
    targets = patch_embed_targets(backbone)
    targets["lg_region_tokens"] = (backbone.get_layer("regions").lg_region_tokens, same)
    for i in range(backbone.num_layers):
        block = backbone.get_layer(f"blocks_{i}")
        prefix = f"blocks.{i}"
        for name in _ATTENTIONS:
            attention = getattr(block, name)
            for part in ("q", "kv", "proj"):
                targets.update(layer_targets(f"{prefix}.{name}.{part}", getattr(attention, part)))
            if attention.qv_bias:
                targets[f"{prefix}.{name}.q_bias"] = (attention.q_bias, same)
                targets[f"{prefix}.{name}.v_bias"] = (attention.v_bias, same)
        for name in _NORMS:
            targets.update(layer_targets(f"{prefix}.{name}", getattr(block, name)))
        targets.update(layer_targets(f"{prefix}.mlp.fc1", block.mlp_fc1))
        targets.update(layer_targets(f"{prefix}.mlp.fc2", block.mlp_fc2))
    return targets


def classify_lgi_former_keys(state_dict):
    """`(entries, ignored, unknown, duplicates)` of a MAE-DFER state dict (see weight_port)."""
    entries, ignored, unknown, duplicates = {}, [], [], []
    for key, value in state_dict.items():
        name = canonical_lgi_former_key(key)
        if name is None:
            unknown.append(key)
        elif name == "ignored":
            ignored.append(key)
        elif name in entries:
            duplicates.append(f"{name} (from {entries[name][1][0]!r} and {key!r})")
        else:
            entries[name] = (value, [key])
    return entries, ignored, unknown, duplicates


def port_lgi_former_weights(backbone, state_dict):
    """Copies a MAE-DFER checkpoint's LGI-Former encoder weights into `backbone`.

    Accepts fine-tuned (`fc_norm` and `head` are ignored) and pre-training checkpoints
    (`encoder.` prefix; `encoder.norm`, `decoder.*`, `encoder_to_decoder` and `mask_token`
    are ignored), with or without a `module.` prefix. Every encoder key is used exactly once
    and every shape is checked before any variable changes.

    Args:
        backbone: a built `LGIFormerBackbone` whose config matches the checkpoint.
        state_dict: dict of key -> numpy array (`load_lgi_former_checkpoint`'s second result).

    Returns:
        dict with `loaded` (variables set), `ignored` (keys skipped) and `sources`
        (variable path -> checkpoint keys).

    Raises:
        ValueError: naming each missing, unused, duplicate or mis-shaped key.
    """
    return assign_checked(
        _targets(backbone),
        *classify_lgi_former_keys(state_dict),
        model="the LGI-Former backbone",
        hint="Build the backbone from the config that load_lgi_former_checkpoint returns, "
        "with the clip size and region_size the checkpoint was trained with (not stored; "
        "a mis-shaped lg_region_tokens means they differ).",
    )
