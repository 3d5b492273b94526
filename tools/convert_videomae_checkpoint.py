"""Converts a VideoMAE or MAE-DFER checkpoint into Keras weights, optionally checking parity.

    python tools/convert_videomae_checkpoint.py SOURCE --output OUT.weights.h5 [--verify]
    python tools/convert_videomae_checkpoint.py mae_dfer.pth --output OUT.weights.h5 \
        --verify --mae-dfer MAE_DFER_CHECKOUT

SOURCE is a Hugging Face folder or file (`.safetensors`, `.bin`), an original VideoMAE `.pth`,
or a MAE-DFER `.pth` (fine-tuned or pre-training): an LGI-Former when it holds
`lg_region_tokens`, else a plain ViT. Writes OUT.weights.h5 and OUT.config.json (the
backbone class and arguments); load them with `load_encoder("OUT.weights.h5")`, the class's
`from_preset`, or `train.py --encoder OUT.weights.h5`. `--verify` runs the reference on the
same random clip - Hugging Face `transformers` for VideoMAE, MAE-DFER's own
`modeling_finetune.py` from the checkout given by `--mae-dfer` for an LGI-Former (torch CPU
must be installed, and einops for MAE-DFER) - and exits 1 when the largest absolute
difference exceeds `atol + rtol * max|reference|`.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EXIT_MISMATCH = 1
EXIT_NO_REFERENCE = 3


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Convert a VideoMAE / MAE-DFER checkpoint to Keras weights (+ parity check)."
    )
    parser.add_argument("source", help="Hugging Face folder/file, VideoMAE or MAE-DFER .pth")
    parser.add_argument("--output", required=True, help="OUT.weights.h5")
    parser.add_argument("--verify", action="store_true",
                        help="compare with transformers (VideoMAE) or MAE-DFER's code")  # fmt: skip
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=1, help="clips in the verify batch")
    parser.add_argument("--seed", type=int, default=0)
    for flag, help_text in (
        ("--num-heads", "attention heads (original checkpoints do not store it)"),
        ("--image-size", "frame size (not stored in original checkpoints; default 224, "
                         "MAE-DFER's LGI-Former 160)"),
        ("--num-frames", "frames per clip (not stored in original checkpoints; default 16)"),
    ):  # fmt: skip
        parser.add_argument(flag, type=int, help=help_text)
    parser.add_argument(
        "--region-size",
        type=int,
        nargs=3,
        metavar=("T", "H", "W"),
        help="LGI-Former region size in tokens (not stored; default 2 5 10)",
    )
    parser.add_argument("--mae-dfer", help="checkout of sunlicai/MAE-DFER, for --verify of an "
                        "LGI-Former")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.output.endswith(".weights.h5"):
        parser.error("--output must end with .weights.h5")
    return args


def verify(backbone, config, state_dict, args):
    """Largest absolute difference against transformers, or None without a reference."""
    try:
        from tools.videomae_reference import hf_model_from_state_dict
        from tools.videomae_reference import run_hf

        reference = hf_model_from_state_dict(config, state_dict)
    except ImportError as error:
        print(
            f"--verify needs torch and transformers ({error}). Install them with "
            "`pip install -r requirements-dev.txt` (torch==2.13.0 is the CPU wheel).",
            file=sys.stderr,
        )
        return None
    pixels = random_clip(config, args)
    expected = run_hf(reference, pixels)
    actual = np.asarray(backbone(pixels))
    difference = float(np.abs(actual - expected).max())
    tolerance = args.atol + args.rtol * float(np.abs(expected).max())
    return difference, tolerance


def verify_lgi_former(backbone, config, state_dict, args):
    """Largest difference against MAE-DFER's own code (tokens and representative tokens)."""
    if not args.mae_dfer:
        print("--verify of an LGI-Former needs --mae-dfer DIR (a checkout of "
              "github sunlicai/MAE-DFER).", file=sys.stderr)  # fmt: skip
        return None
    try:
        import torch

        from mtcae_keras.conversion.lgi_former_keys import canonical_lgi_former_key
        from tools import lgi_former_reference as ref

        modeling_finetune, _ = ref.import_mae_dfer(os.path.abspath(args.mae_dfer))
    except ImportError as error:
        print(f"--verify needs torch and einops ({error}): pip install -r "
              "requirements-dev.txt.", file=sys.stderr)  # fmt: skip
        return None
    reference = ref.finetune_model(modeling_finetune, config)
    encoder = {}
    for key, value in state_dict.items():
        name = canonical_lgi_former_key(key)
        if name not in (None, "ignored"):
            encoder[name] = torch.from_numpy(np.asarray(value, np.float32))
    missing, unexpected = reference.load_state_dict(encoder, strict=False)
    if unexpected or any(not k.startswith(("fc_norm.", "head.")) for k in missing):
        raise ValueError(f"Reference model: missing {missing}, unexpected {unexpected}.")
    pixels = random_clip(config, args)
    expected = ref.run_finetune(reference, config, pixels)
    actual = type(backbone).from_config({**config, "return_region_tokens": True})
    actual.set_weights(backbone.get_weights())
    outputs = actual(pixels)
    difference = max(float(np.abs(np.asarray(outputs[k]) - expected[k]).max())
                     for k in ("tokens", "region_tokens"))  # fmt: skip
    scale = max(float(np.abs(expected[k]).max()) for k in ("tokens", "region_tokens"))
    return difference, args.atol + args.rtol * scale


def random_clip(config, args):
    size = config["image_size"]
    height, width = (size, size) if isinstance(size, int) else size
    shape = (args.batch_size, config["num_frames"], height, width, config["num_channels"])
    return np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32)


def main(argv=None):
    args = parse_args(argv)
    from mtcae_keras.conversion import is_lgi_former_state_dict
    from mtcae_keras.conversion import load_videomae_checkpoint
    from mtcae_keras.models.encoders import encoder_from_state_dict

    config, state_dict = load_videomae_checkpoint(args.source)
    lgi_former = is_lgi_former_state_dict(state_dict)
    if args.region_size and not lgi_former:
        sys.exit("--region-size applies to LGI-Former checkpoints only; this is a plain ViT.")
    keys = ("num_heads", "image_size", "num_frames", "region_size")  # not stored in checkpoints
    overrides = {key: getattr(args, key) for key in keys if getattr(args, key) is not None}
    backbone, report = encoder_from_state_dict(config, state_dict, **overrides)
    print(
        f"{type(backbone).__name__}: ported {report['loaded']} variables "
        f"({backbone.count_params():,} parameters); ignored {len(report['ignored'])} "
        "decoder/head keys"
    )
    print("wrote {} and {}".format(*backbone.save_converted(args.output)))
    if not args.verify:
        return 0
    check = verify_lgi_former if lgi_former else verify
    result = check(backbone, backbone.get_config(), state_dict, args)
    if result is None:
        return EXIT_NO_REFERENCE
    difference, tolerance = result
    verdict = "PASS" if difference <= tolerance else "FAIL"
    reference = "MAE-DFER" if lgi_former else "transformers"
    print(f"verify: max |keras - {reference}| = {difference:.3e} (tolerance {tolerance:.3e}) "
          f"{verdict}")  # fmt: skip
    return 0 if verdict == "PASS" else EXIT_MISMATCH


if __name__ == "__main__":
    sys.exit(main())
