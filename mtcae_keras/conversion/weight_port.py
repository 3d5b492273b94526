"""Ports VideoMAE checkpoint weights into a `VideoMAEBackbone`, with strict accounting."""

import collections

import numpy as np

from mtcae_keras.conversion.videomae_keys import canonical_key


def _targets(backbone):
    """Canonical name -> (Keras variable, transform from the PyTorch layout)."""

    def linear(weight):
        return weight.T

    def same(value):
        return value

    def conv3d(weight):
        return np.transpose(weight, (2, 3, 4, 1, 0))

    embed = backbone.get_layer("patch_embed")
    targets = {
        "patch_embed.proj.weight": (embed.proj.kernel, conv3d),
        "patch_embed.proj.bias": (embed.proj.bias, same),
    }
    for i in range(backbone.num_layers):
        block = backbone.get_layer(f"blocks_{i}")
        prefix = f"blocks.{i}."
        pairs = {
            "norm1.weight": (block.norm1.gamma, same),
            "norm1.bias": (block.norm1.beta, same),
            "attn.qkv.weight": (block.attn.qkv.kernel, linear),
            "attn.proj.weight": (block.attn.proj.kernel, linear),
            "attn.proj.bias": (block.attn.proj.bias, same),
            "norm2.weight": (block.norm2.gamma, same),
            "norm2.bias": (block.norm2.beta, same),
            "mlp.fc1.weight": (block.mlp_fc1.kernel, linear),
            "mlp.fc1.bias": (block.mlp_fc1.bias, same),
            "mlp.fc2.weight": (block.mlp_fc2.kernel, linear),
            "mlp.fc2.bias": (block.mlp_fc2.bias, same),
        }
        if block.qv_bias:
            pairs["attn.q_bias"] = (block.attn.q_bias, same)
            pairs["attn.v_bias"] = (block.attn.v_bias, same)
        if block.layer_scale_init_value is not None:
            pairs["gamma_1"] = (block.gamma_1, same)
            pairs["gamma_2"] = (block.gamma_2, same)
        targets.update({prefix + name: value for name, value in pairs.items()})
    if backbone.use_final_norm:
        norm = backbone.get_layer("norm")
        targets["norm.weight"] = (norm.gamma, same)
        targets["norm.bias"] = (norm.beta, same)
    return targets


def classify_keys(state_dict):
    """Sorts checkpoint keys into encoder entries, ignored keys and unknown keys.

    Returns:
        `(entries, ignored, unknown, duplicates)`: `entries` maps canonical names to
        `(array, [source keys])`, with Hugging Face's separate query/key/value weights already
        fused into `qkv`; a Hugging Face key bias that is all zeros is consumed, a non-zero one
        is reported in `unknown`. `duplicates` lists canonical names given by several keys.
    """
    entries, ignored, unknown, duplicates = {}, [], [], []
    parts = collections.defaultdict(dict)
    for key, value in state_dict.items():
        name = canonical_key(key)
        if name is None:
            unknown.append(key)
        elif name == "ignored":
            ignored.append(key)
        elif "#" in name:
            base, part = name.split("#")
            if part == "k_bias":
                if np.any(np.asarray(value, np.float32) != 0):
                    unknown.append(f"{key} (non-zero key bias: VideoMAE has none)")
                else:
                    parts[base].setdefault("sources", []).append(key)
                continue
            parts[base][part] = (np.asarray(value), key)
        elif name in entries:
            duplicates.append(f"{name} (from {entries[name][1][0]!r} and {key!r})")
        else:
            entries[name] = (np.asarray(value), [key])
    for base, found in parts.items():
        pieces = [found.get(p) for p in ("q", "k", "v")]
        sources = [piece[1] for piece in pieces if piece] + found.get("sources", [])
        if base in entries:
            duplicates.append(f"{base} (fused and separate query/key/value weights)")
        elif all(pieces):
            fused = np.concatenate([piece[0] for piece in pieces], axis=0)
            entries[base] = (fused, sources)
        elif sources:
            missing = [p for p, piece in zip("qkv", pieces, strict=True) if not piece]
            entries[base] = (None, sources + [f"missing {'/'.join(missing)} part"])
    return entries, ignored, unknown, duplicates


def port_videomae_weights(backbone, state_dict):
    """Copies a VideoMAE checkpoint's encoder weights into `backbone`.

    Accepts Hugging Face and original key names, with or without `videomae.`, `encoder.` and
    `module.` prefixes. Every encoder key is used exactly once and every shape is checked
    before any variable changes; decoder and classification-head keys are ignored and listed.

    Args:
        backbone: a built `VideoMAEBackbone` whose config matches the checkpoint.
        state_dict: dict of key -> numpy array (`load_videomae_checkpoint`'s second result).

    Returns:
        dict with `loaded` (number of variables set), `ignored` (keys skipped as decoder or
        head weights) and `sources` (variable path -> checkpoint keys).

    Raises:
        ValueError: naming each missing, unused, duplicate or mis-shaped key.
    """
    entries, ignored, unknown, duplicates = classify_keys(state_dict)
    targets = _targets(backbone)
    missing = sorted(set(targets) - set(entries))
    unused = sorted(set(entries) - set(targets))
    unused_keys = sorted(unknown) + [
        f"{key} (-> {name}, which this backbone config does not have)"
        for name in unused
        for key in entries[name][1]
    ]
    misshaped, values = [], {}
    for name in sorted(set(targets) & set(entries)):
        variable, transform = targets[name]
        array, sources = entries[name]
        if array is None:
            misshaped.append(f"{name}: incomplete ({', '.join(sources)})")
            continue
        try:
            value = transform(array.astype(np.float32))
        except ValueError:
            value = array
        if tuple(value.shape) != tuple(variable.shape):
            misshaped.append(
                f"{', '.join(sources)}: checkpoint shape {tuple(array.shape)} gives "
                f"{tuple(value.shape)}, the backbone expects {tuple(variable.shape)}"
            )
        values[name] = value
    problems = []
    if missing:
        problems.append("missing (the backbone needs them): " + ", ".join(missing))
    if unused_keys:
        problems.append("unused (not encoder weights of this config): " + ", ".join(unused_keys))
    if duplicates:
        problems.append("given more than once: " + ", ".join(duplicates))
    if misshaped:
        problems.append("mis-shaped: " + "; ".join(misshaped))
    if problems:
        hint = (
            "Build the backbone from the config that load_videomae_checkpoint returns "
            "(e.g. use_final_norm, layer_scale_init_value, num_layers must match)."
        )
        raise ValueError(
            "Checkpoint does not match the VideoMAE backbone:\n  - "
            + "\n  - ".join(problems)
            + "\n"
            + hint
        )
    sources = {}
    for name, value in values.items():
        variable = targets[name][0]
        variable.assign(value)
        sources[variable.path] = entries[name][1]
    return {"loaded": len(values), "ignored": sorted(ignored), "sources": sources}
