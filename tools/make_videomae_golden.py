"""Writes the VideoMAE parity fixture used by the tests (needs torch and transformers).

    python tools/make_videomae_golden.py [--output tests/fixtures/videomae_tiny]

From one seeded random Hugging Face `VideoMAEModel` (the `videomae_tiny` config, non-zero q/v
biases) it writes the same encoder weights in every checkpoint spelling we accept, plus the
reference outputs on a fixed random clip:

    hf/                      config.json + model.safetensors (save_pretrained: hub-style
                             q_bias / v_bias names)
    hf_pretraining/          config.json + model.safetensors of VideoMAEForPreTraining
                             (videomae. prefix, final layernorm, decoder keys)
    hf_classification/       config.json + pytorch_model.bin with the in-memory names of
                             transformers 5 (query.bias / value.bias), fc_norm and classifier
    original_finetune.pth    {'module': blocks.* + fc_norm + head, 'args': Namespace, 'epoch'}
    original_pretrain.pth    {'model': encoder.* + encoder.norm + decoder.* + mask_token}
    original_layer_scale.pth {'model': blocks.* with random gamma_1/gamma_2}
    golden.npz               pixels (B, T, H, W, C) and the reference last_hidden_state for the
                             plain, final-norm and layer-scale variants
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mtcae_keras.models.presets import BACKBONE_PRESETS  # noqa: E402
from tools import videomae_reference as ref  # noqa: E402

SEED = 20261122


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="tests/fixtures/videomae_tiny")
    args = parser.parse_args()

    import torch
    from transformers import VideoMAEForPreTraining

    os.makedirs(args.output, exist_ok=True)
    config = dict(BACKBONE_PRESETS["videomae_tiny"], layer_norm_epsilon=1e-6)
    rng = np.random.default_rng(SEED)
    shape = (2, config["num_frames"], config["image_size"], config["image_size"], 3)
    pixels = rng.standard_normal(shape).astype(np.float32)

    model = ref.random_hf_model(config, seed=SEED)
    model.save_pretrained(os.path.join(args.output, "hf"))
    hf_sd = ref.state_dict_numpy(model)
    original = ref.hf_to_original(hf_sd)
    out_plain = ref.run_hf(model, pixels)

    # Pre-training checkpoints: same encoder plus a final LayerNorm and a decoder.
    pre_config = ref.hf_config(dict(config, use_final_norm=True))
    pre_config.decoder_hidden_size = 16
    pre_config.decoder_num_hidden_layers = 1
    pre_config.decoder_num_attention_heads = 2
    pre_config.decoder_intermediate_size = 32
    pretraining = ref.randomize_(VideoMAEForPreTraining(pre_config), SEED + 1).eval()
    pretraining.videomae.load_state_dict(
        {
            **{k: torch.from_numpy(v) for k, v in hf_sd.items()},
            **{
                k: v
                for k, v in pretraining.videomae.state_dict().items()
                if k.startswith("layernorm.")
            },
        }  # fmt: skip
    )
    pretraining.save_pretrained(os.path.join(args.output, "hf_pretraining"))
    out_final_norm = ref.run_hf(pretraining.videomae, pixels)
    final_norm = {
        k.replace("layernorm.", "norm."): v
        for k, v in ref.state_dict_numpy(pretraining.videomae).items()
        if k.startswith("layernorm.")
    }
    decoder = {
        k: v for k, v in ref.state_dict_numpy(pretraining).items() if not k.startswith("videomae.")
    }
    ref.save_torch(
        {"model": {**{"encoder." + k: v for k, v in {**original, **final_norm}.items()},
                   **decoder}},
        os.path.join(args.output, "original_pretrain.pth"),
    )  # fmt: skip

    # A classification checkpoint with transformers 5 module names (query.bias, videomae.).
    classification = os.path.join(args.output, "hf_classification")
    os.makedirs(classification, exist_ok=True)
    module_names = {"videomae." + k: v for k, v in hf_sd.items()}
    width = config["hidden_dim"]
    head = {
        "fc_norm.weight": rng.standard_normal(width).astype(np.float32),
        "fc_norm.bias": rng.standard_normal(width).astype(np.float32),
        "classifier.weight": rng.standard_normal((6, width)).astype(np.float32),
        "classifier.bias": rng.standard_normal(6).astype(np.float32),
    }
    ref.save_torch({**module_names, **head}, os.path.join(classification, "pytorch_model.bin"))
    hf_json = json.load(open(os.path.join(args.output, "hf", "config.json")))
    hf_json.update({"architectures": ["VideoMAEForVideoClassification"], "num_labels": 6})
    with open(os.path.join(classification, "config.json"), "w") as file:
        json.dump(hf_json, file, indent=2)

    # Fine-tuned original checkpoint: plain keys under 'module', extra non-tensor entries.
    head = {
        "fc_norm.weight": head["fc_norm.weight"],
        "fc_norm.bias": head["fc_norm.bias"],
        "head.weight": head["classifier.weight"],
        "head.bias": head["classifier.bias"],
    }
    ref.save_torch(
        {"module": {**original, **head}, "epoch": 7, "args": argparse.Namespace(lr=1e-3)},
        os.path.join(args.output, "original_finetune.pth"),
    )  # fmt: skip

    # Layer scale: random gamma_1/gamma_2; the reference folds them into the output weights.
    scaled = dict(original)
    for i in range(config["num_layers"]):
        for name in ("gamma_1", "gamma_2"):
            scaled[f"blocks.{i}.{name}"] = rng.uniform(0.2, 1.5, width).astype(np.float32)
    ref.save_torch({"model": scaled}, os.path.join(args.output, "original_layer_scale.pth"))
    out_layer_scale = ref.run_hf(ref.hf_model_from_state_dict(config, scaled), pixels)

    np.savez_compressed(
        os.path.join(args.output, "golden.npz"),
        pixels=pixels,
        last_hidden_state=out_plain,
        last_hidden_state_final_norm=out_final_norm,
        last_hidden_state_layer_scale=out_layer_scale,
    )
    print(f"wrote {args.output}: output {out_plain.shape}, |out| max {np.abs(out_plain).max():.3f}")


if __name__ == "__main__":
    main()
