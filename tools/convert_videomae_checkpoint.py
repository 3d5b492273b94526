"""Converts a VideoMAE checkpoint into Keras weights, optionally checking parity.

    python tools/convert_videomae_checkpoint.py SOURCE --output OUT.weights.h5 [--verify]

SOURCE is a Hugging Face folder or file (`.safetensors`, `.bin`) or an original `.pth`.
Writes OUT.weights.h5 and OUT.config.json (the `VideoMAEBackbone` arguments); load them with
`VideoMAEBackbone.from_preset("OUT.weights.h5")`. `--verify` runs the Hugging Face
`transformers` reference on the same random clip (torch CPU and transformers must be
installed) and exits 1 when the largest absolute difference exceeds
`atol + rtol * max|reference|`.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EXIT_MISMATCH = 1
EXIT_NO_REFERENCE = 3


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Convert a VideoMAE checkpoint to Keras weights (+ parity check)."
    )
    parser.add_argument("source", help="Hugging Face folder/file or original .pth")
    parser.add_argument("--output", required=True, help="OUT.weights.h5")
    parser.add_argument("--verify", action="store_true", help="compare with transformers")
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--batch-size", type=int, default=1, help="clips in the verify batch")
    parser.add_argument("--seed", type=int, default=0)
    for flag, help_text in (
        ("--num-heads", "attention heads (original checkpoints do not store it)"),
        ("--image-size", "frame size (not stored in original checkpoints; default 224)"),
        ("--num-frames", "frames per clip (not stored in original checkpoints; default 16)"),
    ):
        parser.add_argument(flag, type=int, help=help_text)
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
    size = config["image_size"]
    height, width = (size, size) if isinstance(size, int) else size
    shape = (args.batch_size, config["num_frames"], height, width, config["num_channels"])
    pixels = np.random.default_rng(args.seed).standard_normal(shape).astype(np.float32)
    expected = run_hf(reference, pixels)
    actual = np.asarray(backbone(pixels))
    difference = float(np.abs(actual - expected).max())
    tolerance = args.atol + args.rtol * float(np.abs(expected).max())
    return difference, tolerance


def main(argv=None):
    args = parse_args(argv)
    from mtcae_keras import VideoMAEBackbone
    from mtcae_keras.conversion import load_videomae_checkpoint
    from mtcae_keras.conversion import port_videomae_weights

    config, state_dict = load_videomae_checkpoint(args.source)
    for key in ("num_heads", "image_size", "num_frames"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    backbone = VideoMAEBackbone(**config)
    report = port_videomae_weights(backbone, state_dict)
    print(
        f"ported {report['loaded']} variables ({backbone.count_params():,} parameters); "
        f"ignored {len(report['ignored'])} decoder/head keys"
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    backbone.save_weights(args.output)
    config_path = args.output[: -len(".weights.h5")] + ".config.json"
    with open(config_path, "w") as file:
        json.dump(backbone.get_config(), file, indent=2)
    print(f"wrote {args.output} and {config_path}")
    if not args.verify:
        return 0
    result = verify(backbone, backbone.get_config(), state_dict, args)
    if result is None:
        return EXIT_NO_REFERENCE
    difference, tolerance = result
    verdict = "PASS" if difference <= tolerance else "FAIL"
    print(f"verify: max |keras - transformers| = {difference:.3e} (tolerance {tolerance:.3e}) "
          f"{verdict}")  # fmt: skip
    return 0 if verdict == "PASS" else EXIT_MISMATCH


if __name__ == "__main__":
    sys.exit(main())
