"""Training memory and speed of the full MTCAE cascade on the CPU, decoder memory saving on / off.

    python bench/cascade_memory.py [--sizes large] [--batch-sizes 2] [--decoder paper]
        [--memory-saving off on full] [--repeats 1] [--jit] [--output bench/results/...]

The model is `build_mtcae_model(VideoMAEBackbone(<size>), "cascaded_vit", decoder=...)` at
16x224x224 (1,568 tokens; the paper's setting: the encoder frozen, three 5-layer decoders whose
queries and memory are all 1,568 tokens), compiled by `compile_mtcae_model` and stepped by
`train_on_batch` on random clips and targets in float32, graph mode (`--jit` for XLA). Weights
are random: memory and speed do not depend on them. Each row runs in its own subprocess, so its
peak resident memory (ru_maxrss) is that configuration's alone. `--memory-saving` sets the
decoders' `memory_saving` (`ViTDecoder`); the encoder keeps its default. There is no PyTorch
implementation of this model to measure beside it (the paper's code is a Keras notebook), so
the table compares our two settings in the same run, and the issue's target is absolute: batch
16 in 24 GB.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.encoder_speed import print_measurement  # noqa: E402
from bench.encoder_speed import run_measurements  # noqa: E402
from bench.encoder_speed import write_rows  # noqa: E402
from bench.machine import cpu_description  # noqa: E402

SIZES = {"small": "videomae_small", "base": "videomae_base", "large": "videomae_large"}


def measure(spec):
    """Seconds per training step of one configuration, in this process."""
    import keras
    import numpy as np

    from mtcae_keras import VideoMAEBackbone
    from mtcae_keras import build_mtcae_model
    from mtcae_keras.training import compile_mtcae_model

    keras.utils.set_random_seed(0)
    backbone = VideoMAEBackbone.from_preset(SIZES[spec["size"]], num_frames=spec["frames"],
                                            image_size=spec["image_size"])  # fmt: skip
    overrides = {} if spec["memory_saving"] is None else {"memory_saving": spec["memory_saving"]}
    model = build_mtcae_model(backbone, "cascaded_vit", num_classes=6, num_frames=spec["frames"],
                              decoder=spec["decoder"], freeze_encoder=True,
                              **overrides)  # fmt: skip
    compile_mtcae_model(model, num_classes=6, jit_compile=spec["jit"])
    batch, frames, size = spec["batch"], spec["frames"], spec["image_size"]
    rng = np.random.default_rng(1)
    clips = rng.standard_normal((batch, frames, size, size, 3), dtype=np.float32)
    targets = {
        "boxes": rng.uniform(size=(batch, frames, 4)).astype("float32"),
        "landmarks": rng.uniform(size=(batch, frames, 10)).astype("float32"),
        "expression": rng.integers(0, 6, size=(batch,)).astype("int32"),
    }
    model.train_on_batch(clips, targets)  # tracing and the first step
    start = time.perf_counter()
    for _ in range(spec["repeats"]):
        model.train_on_batch(clips, targets)
    return (time.perf_counter() - start) / spec["repeats"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["large"], choices=sorted(SIZES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[2])
    parser.add_argument("--decoder", default="paper")
    parser.add_argument("--memory-saving", nargs="+", default=["off", "on", "full"],
                        choices=["off", "on", "full", "preset"],
                        help="the decoders' memory_saving (on: True); preset: the decoder"
                        " preset's own")  # fmt: skip
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=1, help="timed steps after the first")
    parser.add_argument("--jit", action="store_true", help="XLA instead of graph mode")
    parser.add_argument("--output", help="write the rows as JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        spec = json.loads(args.one)
        return print_measurement(spec, measure(spec))

    saving = {"on": True, "off": False, "full": "full", "preset": None}
    specs = [{"size": size, "batch": batch, "decoder": args.decoder,
              "memory_saving": saving[mode], "frames": args.frames,
              "image_size": args.image_size, "repeats": args.repeats, "jit": args.jit}
             for size in args.sizes for batch in args.batch_sizes
             for mode in args.memory_saving]  # fmt: skip
    rows = run_measurements(specs, __file__)

    print(f"\nMTCAE cascaded_vit ({args.decoder} decoders, encoder frozen), {args.frames}x"
          f"{args.image_size}x{args.image_size}, float32, {'XLA' if args.jit else 'graph'}, "
          f"{os.cpu_count()} CPU threads on {cpu_description()}; ratios against memory saving "
          "off in the same run")  # fmt: skip
    print("| encoder | batch | decoder memory saving | s / step | speed ratio | peak MB |"
          " memory ratio |\n|" + "---|" * 7)  # fmt: skip
    for row in rows:
        off = next((r for r in rows if r["memory_saving"] is False
                    and (r["size"], r["batch"]) == (row["size"], row["batch"])), None)  # fmt: skip
        speed = off["seconds"] / row["seconds"] if off else float("nan")
        memory = row["peak_mb"] / off["peak_mb"] if off else float("nan")
        mode = {True: "on", False: "off", "full": "full", None: "preset"}[row["memory_saving"]]
        print(f"| ViT-{row['size'][0].upper()} | {row['batch']} | {mode} | {row['seconds']:.1f}"
              f" | {speed:.2f} | {row['peak_mb']:.0f} | {memory:.2f} |")  # fmt: skip
    if args.output:
        write_rows(args.output, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
