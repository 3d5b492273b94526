"""Ports VideoMAE checkpoint weights into a `VideoMAEBackbone`, with strict accounting."""

import collections

import keras
import numpy as np

from mtcae_keras.conversion.videomae_keys import canonical_key


def linear(weight):
    """PyTorch `Linear` weight `[out, in]` -> Keras `Dense` kernel `[in, out]`."""
    return weight.T


def same(value):
    return value


def conv3d(weight):
    """PyTorch `Conv3d` weight `[out, in, t, h, w]` -> Keras kernel `[t, h, w, in, out]`."""
    return np.transpose(weight, (2, 3, 4, 1, 0))


def patch_embed_targets(backbone):
    """The tubelet embedding's entries, shared by every backbone."""
    embed = backbone.get_layer("patch_embed")
    return {
        "patch_embed.proj.weight": (embed.proj.kernel, conv3d),
        "patch_embed.proj.bias": (embed.proj.bias, same),
    }


def layer_targets(prefix, layer):
    """`prefix.weight` / `prefix.bias` entries of a `Dense` or `LayerNormalization`."""
    if isinstance(layer, keras.layers.LayerNormalization):
        return {f"{prefix}.weight": (layer.gamma, same), f"{prefix}.bias": (layer.beta, same)}
    targets = {f"{prefix}.weight": (layer.kernel, linear)}
    if layer.use_bias:
        targets[f"{prefix}.bias"] = (layer.bias, same)
    return targets


def _targets(backbone):
    """Canonical name -> (Keras variable, transform from the PyTorch layout)."""
    targets = patch_embed_targets(backbone)
    for i in range(backbone.num_layers):
        targets.update(block_targets(f"blocks.{i}.", backbone.get_layer(f"blocks_{i}")))
    if backbone.use_final_norm:
        targets.update(layer_targets("norm", backbone.get_layer("norm")))
    return targets


def block_targets(prefix, block):
    """The entries of one `VideoMAEEncoderBlock`, named `prefix` + the original names."""
    pairs = {
        **layer_targets("norm1", block.norm1),
        **layer_targets("attn.qkv", block.attn.qkv),
        **layer_targets("attn.proj", block.attn.proj),
        **layer_targets("norm2", block.norm2),
        **layer_targets("mlp.fc1", block.mlp_fc1),
        **layer_targets("mlp.fc2", block.mlp_fc2),
    }
    if block.qv_bias:
        pairs["attn.q_bias"] = (block.attn.q_bias, same)
        pairs["attn.v_bias"] = (block.attn.v_bias, same)
    if block.layer_scale_init_value is not None:
        pairs["gamma_1"] = (block.gamma_1, same)
        pairs["gamma_2"] = (block.gamma_2, same)
    return {prefix + name: value for name, value in pairs.items()}


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
    return assign_checked(
        _targets(backbone),
        *classify_keys(state_dict),
        model="the VideoMAE backbone",
        hint="Build the backbone from the config that load_videomae_checkpoint returns "
        "(e.g. use_final_norm, layer_scale_init_value, num_layers must match).",
    )


def assign_checked(targets, entries, ignored, unknown, duplicates, model, hint):
    """Assigns checkpoint entries to variables after checking that they match one to one.

    Args:
        targets: canonical name -> `(variable, transform from the PyTorch layout)`.
        entries: canonical name -> `(array or None, [source keys])`.
        ignored: checkpoint keys skipped on purpose (decoders, heads).
        unknown: checkpoint keys that are no weight this port knows.
        duplicates: canonical names given by several keys (described).
        model: str. What is being loaded, for the error message.
        hint: str. What to do about a mismatch.

    Returns:
        dict with `loaded`, `ignored` and `sources` (variable path -> checkpoint keys).

    Raises:
        ValueError: naming each missing, unused, duplicate or mis-shaped key; no variable
            changes then.
    """
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
        raise ValueError(
            f"Checkpoint does not match {model}:\n  - " + "\n  - ".join(problems) + "\n" + hint
        )
    sources = {}
    for name, value in values.items():
        variable = targets[name][0]
        variable.assign(value)
        sources[variable.path] = entries[name][1]
    return {"loaded": len(values), "ignored": sorted(ignored), "sources": sources}
