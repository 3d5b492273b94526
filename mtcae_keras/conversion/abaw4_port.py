"""Ports AIM3-RUC/ABAW4 PyTorch weights into the temporal multi-task layers, strictly.

Key names are the code's: `TransformerEncoder` (`affine`, `encoder.layers.{i}.self_attn.
in_proj_weight`, ...), `GrusModel` (`rnns.0.weight_ih_l{i}`), `LSTMEncoder`
(`rnn.weight_ih_l{i}`), `FcRegressor` / `FcClassifier` (`module.{j}`, `fc_out`), and the
`MTLTransformerModel` nets (`net_seq.`, `net_v_reg.`, `net_a_reg.`, `net_expr_cls.`,
`net_au_cls.`, `net_<task>_embedding.`).
"""

import re

import numpy as np

from mtcae_keras.conversion.weight_port import assign_checked
from mtcae_keras.conversion.weight_port import layer_targets
from mtcae_keras.conversion.weight_port import same

# The code's task names and their nets.
CODE_TASKS = {"valence": "v", "arousal": "a", "expression": "expr", "action_units": "au"}
CODE_NETS = {"valence": "net_v_reg", "arousal": "net_a_reg", "expression": "net_expr_cls",
             "action_units": "net_au_cls"}  # fmt: skip


def _gru_gates(weight):
    """PyTorch GRU rows `[r, z, n]` -> Keras columns `[z, r, h]` (transposed)."""
    r, z, n = np.split(weight, 3, axis=0)
    return np.concatenate([z, r, n], axis=0).T


def _gru_bias(pair):
    """`(2, 3u)` PyTorch `[bias_ih, bias_hh]`, rows `[r, z, n]` -> Keras `[z, r, h]`."""
    return np.stack([np.concatenate([r_z_n[1], r_z_n[0], r_z_n[2]])
                     for r_z_n in (np.split(b, 3) for b in pair)])  # fmt: skip


def encoder_entries(encoder, prefix):
    """The `TemporalEncoder`'s targets under `prefix`: canonical name -> (variable,
    transform), and the keys it reads but does not load (checked or unused by design)."""
    targets, expected = {}, {}
    if encoder.kind == "transformer":
        if encoder.affine:
            targets.update(layer_targets(f"{prefix}affine", encoder.affine_dense))
        for i, layer in enumerate(encoder.encoder_layers):
            p = f"{prefix}encoder.layers.{i}."
            for part, dense in zip("qkv", (layer.query, layer.key, layer.value), strict=True):
                targets[f"{p}self_attn.in_proj_weight#{part}"] = (dense.kernel, lambda w: w.T)
                targets[f"{p}self_attn.in_proj_bias#{part}"] = (dense.bias, same)
            targets.update(layer_targets(f"{p}self_attn.out_proj", layer.out_proj))
            for name in ("linear1", "linear2", "norm1", "norm2"):
                targets.update(layer_targets(p + name, getattr(layer, name)))
        expected[f"{prefix}position_embeddings.weight"] = encoder.position_table
        expected[f"{prefix}linear.weight"] = expected[f"{prefix}linear.bias"] = None
        return targets, expected
    for i, layer in enumerate(encoder.recurrent_layers):
        cell = layer.cell
        if encoder.kind == "gru":
            targets[f"{prefix}weight_ih_l{i}"] = (cell.kernel, _gru_gates)
            targets[f"{prefix}weight_hh_l{i}"] = (cell.recurrent_kernel, _gru_gates)
            targets[f"{prefix}bias_l{i}"] = (cell.bias, _gru_bias)
        else:  # LSTM gates [i, f, g, o] are Keras's [i, f, c, o]; one bias, the sum of two
            targets[f"{prefix}weight_ih_l{i}"] = (cell.kernel, lambda w: w.T)
            targets[f"{prefix}weight_hh_l{i}"] = (cell.recurrent_kernel, lambda w: w.T)
            targets[f"{prefix}bias_l{i}"] = (cell.bias, lambda pair: pair[0] + pair[1])
    return targets, expected


def head_targets(head, prefix, state_dict):
    """The `TemporalTaskHead`'s targets: the code's `module.{j}` Linear layers in order (their
    indices depend on its dropout layers), then `fc_out`."""
    pattern = re.compile(re.escape(prefix) + r"module\.(\d+)\.weight$")
    indices = sorted(int(m.group(1)) for k in state_dict if (m := pattern.match(k)))
    if len(indices) != len(head.hidden_layers):
        indices = list(range(len(head.hidden_layers)))  # then reported as missing
    targets = {}
    for index, layer in zip(indices, head.hidden_layers, strict=True):
        targets.update(layer_targets(f"{prefix}module.{index}", layer))
    targets.update(layer_targets(f"{prefix}fc_out", head.fc_out))
    return targets


def _entries(state_dict, expected):
    """Canonical entries: in_proj split in q/k/v, recurrent biases paired; checked keys."""
    entries, ignored, unknown = {}, [], []
    for key, value in state_dict.items():
        value = np.asarray(value, np.float32)
        if key in expected:
            table = expected[key]
            if table is not None and (value.shape != table.shape or
                                      not np.allclose(value, table, atol=1e-6)):  # fmt: skip
                unknown.append(f"{key} (a position table other than the code's sinusoids)")
            else:
                ignored.append(key)
        elif key.endswith(("in_proj_weight", "in_proj_bias")):
            for part, piece in zip("qkv", np.split(value, 3, axis=0), strict=True):
                entries[f"{key}#{part}"] = (piece, [key])
        elif match := re.match(r"(.*)bias_(ih|hh)_l(\d+)$", key):
            name = f"{match.group(1)}bias_l{match.group(3)}"
            pair = entries.setdefault(name, (np.zeros((2, *value.shape), np.float32), []))
            pair[0][0 if match.group(2) == "ih" else 1] = value
            pair[1].append(key)
        else:
            entries[key] = (value, [key])
    return entries, ignored, unknown


def port_abaw4_weights(model, state_dict):
    """Copies an AIM3-RUC/ABAW4 model's weights into a `build_temporal_multitask_model` model.

    `state_dict` holds the `MTLTransformerModel` nets' weights under their net names
    (`net_seq.*`, `net_v_reg.*`, ..., as `torch.save` of each net gives them, prefixed). Every
    key is used once; the fixed position tables are checked against ours and the encoders'
    pooled-output `linear` (which the multi-task model never reads) is skipped.

    Args:
        model: a model of `build_temporal_multitask_model` of the same configuration.
        state_dict: dict of key -> numpy array.

    Returns:
        dict with `loaded`, `ignored` and `sources`, as `port_videomae_weights`.

    Raises:
        ValueError: naming each missing, unused or mis-shaped key; nothing changes then.
    """
    targets, expected = {}, {}
    names = {layer.name for layer in model.layers}
    if "temporal_encoder" in names:
        found = encoder_entries(model.get_layer("temporal_encoder"), "net_seq.")
        targets.update(found[0])
        expected.update(found[1])
    for task, net in CODE_NETS.items():
        if f"{task}_head" not in names:
            continue
        index = 0
        if f"{task}_encoder" in names:
            found = encoder_entries(model.get_layer(f"{task}_encoder"), f"{net}.0.")
            targets.update(found[0])
            expected.update(found[1])
            index = 1
        head = model.get_layer(f"{task}_head")
        targets.update(head_targets(head, f"{net}.{index}.", state_dict))
        if f"{task}_feedback" in names:
            embedding = model.get_layer(f"{task}_feedback").embeddings
            targets[f"net_{CODE_TASKS[task]}_embedding.weight"] = (embedding, same)
    entries, ignored, unknown = _entries(state_dict, expected)
    return assign_checked(
        targets, entries, ignored, unknown, [], model="the temporal multi-task model",
        hint="Build the model with the checkpoint's framework, encoder kind, widths, layers "
        "and tasks.",
    )  # fmt: skip


def port_temporal_encoder_weights(encoder, state_dict, prefix=""):
    """Copies one AIM3-RUC/ABAW4 encoder (`TransformerEncoder`, `GrusModel`'s GRU with
    `prefix="rnns.0."`, `LSTMEncoder` with `prefix="rnn."`) into a `TemporalEncoder`."""
    targets, expected = encoder_entries(encoder, prefix)
    entries, ignored, unknown = _entries(state_dict, expected)
    return assign_checked(
        targets, entries, ignored, unknown, [], model=f"the {encoder.kind} TemporalEncoder",
        hint="Build the encoder with the checkpoint's widths and layers.",
    )  # fmt: skip
