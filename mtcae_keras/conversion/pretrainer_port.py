"""Ports pre-training checkpoints (encoder and decoder) into a `MaskedVideoPretrainer`."""

import re

import numpy as np

from mtcae_keras.conversion.lgi_former_port import port_lgi_former_weights
from mtcae_keras.conversion.weight_port import assign_checked
from mtcae_keras.conversion.weight_port import block_targets
from mtcae_keras.conversion.weight_port import classify_keys
from mtcae_keras.conversion.weight_port import layer_targets
from mtcae_keras.conversion.weight_port import linear
from mtcae_keras.conversion.weight_port import port_videomae_weights
from mtcae_keras.conversion.weight_port import same

# Decoder keys in both spellings -> the encoder-block spelling `classify_keys` reads.
_DECODER_BLOCK = (
    (re.compile(r"decoder\.decoder_layers\.(\d+)\.(.*)"), r"encoder.layer.\1.\2"),  # HF
    (re.compile(r"decoder\.blocks\.(\d+)\.(.*)"), r"blocks.\1.\2"),  # MCG-NJU / MAE-DFER
)
# The encoder's final LayerNorm in every spelling (HF `videomae.layernorm`, `encoder.norm`).
_ENCODER_NORM = re.compile(r"(?:videomae\.layernorm|layernorm|encoder\.norm|norm)\.(weight|bias)")


def _strip(key):
    return key[len("module.") :] if key.startswith("module.") else key


def split_pretraining_state_dict(state_dict):
    """`(encoder keys, decoder keys)` of a pre-training state dict; the decoder's renamed to
    `blocks.i.*` / `encoder.layer.i.*` block keys, `decoder_norm.*`, `decoder_head.*`,
    `encoder_to_decoder.weight` and `mask_token`."""
    encoder, decoder = {}, {}
    for key, value in state_dict.items():
        key = _strip(key)
        for pattern, template in _DECODER_BLOCK:
            if pattern.match(key):
                decoder[pattern.sub(template, key)] = value
                break
        else:
            if key.startswith(("decoder.norm.", "decoder.head.")):
                decoder[key.replace("decoder.", "decoder_", 1)] = value
            elif key.startswith("encoder_to_decoder.") or key == "mask_token":
                decoder[key] = value
            else:
                encoder[key] = value
    return encoder, decoder


def port_pretrainer_weights(pretrainer, state_dict):
    """Copies a pre-training checkpoint's encoder and decoder into `pretrainer`.

    Accepts Hugging Face `VideoMAEForPreTraining` state dicts and the original MCG-NJU
    VideoMAE / MAE-DFER pre-training ones (`encoder.*`, `decoder.blocks.*`, `decoder.norm`,
    `decoder.head`, `encoder_to_decoder`, `mask_token`). Every key is used exactly once and
    every shape is checked (the encoder's by its own port) before anything changes.

    Args:
        pretrainer: a built `MaskedVideoPretrainer` whose config matches the checkpoint.
        state_dict: dict key -> numpy array.

    Returns:
        dict `encoder` and `decoder`: each port's report (`loaded`, `ignored`, `sources`).

    Raises:
        ValueError: naming each missing, unused or mis-shaped key.
    """
    encoder_keys, decoder_keys = split_pretraining_state_dict(state_dict)
    if not decoder_keys:
        raise ValueError(
            "The checkpoint has no pre-training decoder (decoder.*, encoder_to_decoder, "
            "mask_token): it is an encoder only; load it with the backbone's from_preset and "
            "a new MaskedVideoPretrainer around it."
        )
    if pretrainer.encoder_norm is not None:  # the pretrainer's own: take it from the encoder's
        norm = {k: v for k, v in encoder_keys.items() if _ENCODER_NORM.fullmatch(k)}
        encoder_keys = {k: v for k, v in encoder_keys.items() if k not in norm}
        for key, value in norm.items():
            decoder_keys["encoder_norm." + key.rsplit(".", 1)[1]] = value
    entries, ignored, unknown, duplicates = classify_keys(
        {k: v for k, v in decoder_keys.items() if k.startswith(("blocks.", "encoder.layer."))}
    )
    for key, value in decoder_keys.items():
        if not key.startswith(("blocks.", "encoder.layer.")):
            entries[key] = (np.asarray(value), [key])
    targets = {}
    for i, block in enumerate(pretrainer.decoder_blocks):
        targets.update(block_targets(f"blocks.{i}.", block))
    targets.update(layer_targets("decoder_norm", pretrainer.decoder_norm))
    targets.update(layer_targets("decoder_head", pretrainer.decoder_head))
    targets["encoder_to_decoder.weight"] = (pretrainer.encoder_to_decoder.kernel, linear)
    targets["mask_token"] = (pretrainer.mask_token, same)
    if pretrainer.encoder_norm is not None:
        targets.update(layer_targets("encoder_norm", pretrainer.encoder_norm))
    # Check the decoder first: the encoder port assigns as soon as its own keys match.
    decoder_report = assign_checked(
        targets, entries, ignored, unknown, duplicates,
        model="the pre-training decoder",
        hint="Build the MaskedVideoPretrainer with the checkpoint's decoder sizes "
        "(decoder_hidden_dim, decoder_num_layers, decoder_num_heads, decoder_intermediate_dim).",
    )  # fmt: skip
    if type(pretrainer.encoder).__name__ == "LGIFormerBackbone":
        encoder_report = port_lgi_former_weights(pretrainer.encoder, encoder_keys)
    else:
        encoder_report = port_videomae_weights(pretrainer.encoder, encoder_keys)
    return {"encoder": encoder_report, "decoder": decoder_report}


def decoder_config_from_checkpoint(state_dict, hf_config=None):
    """`MaskedVideoPretrainer` decoder arguments of a pre-training checkpoint.

    From a Hugging Face `config.json` dict when given (its final decoder LayerNorm is
    PyTorch's default, epsilon 1e-5), else from the shapes (the original checkpoints: the head
    count is not stored and is taken from the width, 384 -> 6 as in VideoMAE and MAE-DFER).
    """
    if hf_config is not None:
        return {
            "decoder_hidden_dim": hf_config.get("decoder_hidden_size", 384),
            "decoder_num_layers": hf_config.get("decoder_num_hidden_layers", 4),
            "decoder_num_heads": hf_config.get("decoder_num_attention_heads", 6),
            "decoder_intermediate_dim": hf_config.get("decoder_intermediate_size", 1536),
            "decoder_norm_epsilon": 1e-5,
            "norm_pix_loss": hf_config.get("norm_pix_loss", True),
        }
    _, decoder = split_pretraining_state_dict(state_dict)
    if "encoder_to_decoder.weight" not in decoder:
        raise ValueError("The checkpoint has no encoder_to_decoder.weight: no decoder to load.")
    width = int(decoder["encoder_to_decoder.weight"].shape[0])
    blocks = {int(m.group(1)) for k in decoder
              if (m := re.match(r"(?:blocks|encoder\.layer)\.(\d+)\.", k))}  # fmt: skip
    fc1 = decoder.get(
        "blocks.0.mlp.fc1.weight", decoder.get("encoder.layer.0.intermediate.dense.weight")
    )
    return {
        "decoder_hidden_dim": width,
        "decoder_num_layers": len(blocks),
        "decoder_num_heads": max(width // 64, 1),
        "decoder_intermediate_dim": int(fc1.shape[0]) if fc1 is not None else 4 * width,
        "decoder_norm_epsilon": 1e-6,
    }
