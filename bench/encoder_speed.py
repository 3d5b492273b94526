"""Encoder speed: our VideoMAEBackbone against Hugging Face transformers (PyTorch), same run.

    python bench/encoder_speed.py [--sizes small base] [--batch-sizes 1 4] [--frames 16]
        [--image-size 224] [--modes infer train] [--repeats 3] [--output bench/results/...]

Both sides get the same config and the same weights (ported through our converter). Each
measurement runs in its own subprocess, so the peak resident memory (ru_maxrss) belongs to
that measurement alone. PyTorch uses its fastest attention (SDPA) and all cores. Ours is
measured eager and under XLA (`jit_compile=True`), in float32, and in bfloat16 where asked.
The table reports clips/s and ours/torch ratios; ratios are what to compare across machines.
Training step = forward + MSE on the tokens + backward + AdamW update.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.machine import cpu_description  # noqa: E402

SIZES = {"small": "videomae_small", "base": "videomae_base", "tiny": "videomae_tiny"}


def _config(size, frames, image_size):
    sys.path.insert(0, ROOT)
    from mtcae_keras.models.presets import BACKBONE_PRESETS

    config = dict(BACKBONE_PRESETS[SIZES[size]])
    config.update(num_frames=frames, image_size=image_size, patch_size=16, tubelet_size=2)
    config.pop("drop_path_rate", None)
    return config


def _time(step, repeats):
    step()  # warm-up and compilation
    step()  # oneDNN / thread-pool warm-up: torch's first calls are measurably slower
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def measure_torch(size, batch, mode, frames, image_size, repeats, threads):
    import numpy as np
    import torch

    sys.path.insert(0, ROOT)
    from tools.videomae_reference import hf_config
    from tools.videomae_reference import randomize_

    torch.set_num_threads(threads)
    from transformers import VideoMAEModel

    config = hf_config(_config(size, frames, image_size))
    config._attn_implementation = "sdpa"
    model = randomize_(VideoMAEModel(config), 0)
    pixels = torch.from_numpy(
        np.random.default_rng(0).standard_normal((batch, frames, 3, image_size, image_size),
                                                 dtype=np.float32))  # fmt: skip
    if mode == "infer":
        model.eval()

        def step():
            with torch.no_grad():
                model(pixel_values=pixels)
    else:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            optimizer.zero_grad()
            loss = model(pixel_values=pixels).last_hidden_state.pow(2).mean()
            loss.backward()
            optimizer.step()

    return _time(step, repeats)


def measure_keras(size, batch, mode, frames, image_size, repeats, jit, dtype, memory_saving=True):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from mtcae_keras import VideoMAEBackbone  # before TensorFlow: it sets TF's CPU defaults

    # isort: split
    import keras
    import numpy as np
    import tensorflow as tf

    backbone = VideoMAEBackbone(**_config(size, frames, image_size), dtype=dtype,
                                memory_saving=memory_saving)  # fmt: skip
    pixels = tf.constant(
        np.random.default_rng(0).standard_normal((batch, frames, image_size, image_size, 3),
                                                 dtype=np.float32))  # fmt: skip
    if mode == "infer":
        forward = tf.function(lambda x: backbone(x, training=False), jit_compile=jit)

        def step():
            forward(pixels).numpy()
    else:
        optimizer = keras.optimizers.AdamW(1e-4)
        optimizer.build(backbone.trainable_variables)

        @tf.function(jit_compile=jit)
        def train_step(x):
            with tf.GradientTape() as tape:
                tokens = tf.cast(backbone(x, training=True), tf.float32)
                loss = tf.reduce_mean(tf.square(tokens))
            grads = tape.gradient(loss, backbone.trainable_variables)
            optimizer.apply(grads, backbone.trainable_variables)
            return loss

        def step():
            train_step(pixels).numpy()

    return _time(step, repeats)


def print_measurement(spec, seconds):
    """Prints one measurement as a JSON line, with this process's peak resident memory."""
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**spec, "seconds": seconds, "clips_per_s": spec["batch"] / seconds,
                      "peak_mb": peak_mb}))  # fmt: skip
    return 0


def write_rows(path, rows):
    """Writes bench rows as JSON, each with the CPU it ran on and the command line."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as file:
        json.dump([{**row, "cpu": cpu_description(), "command": " ".join(sys.argv)}
                   for row in rows], file, indent=2)  # fmt: skip


def add_rounds_argument(parser):
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every row this many times, in reverse order on every other round (the"
        " machine's drift then weighs on both sides of a comparison alike)",
    )


def in_rounds(specs, rounds):
    """`specs` `rounds` times, every other round reversed, each marked with its `round`."""
    return [{**spec, "round": r} for r in range(rounds)
            for spec in (specs[::-1] if r % 2 else specs)]  # fmt: skip


def run_measurements(specs, script):
    """Runs `script --one SPEC` in a subprocess per spec; returns the rows it printed. A spec
    with a `tree` (another checkout of this repository) runs that checkout's `script`."""
    rows = []
    for spec in specs:
        tree = spec.get("tree") or ROOT
        result = subprocess.run(
            [sys.executable, os.path.join(tree, os.path.relpath(script, ROOT)), "--one",
             json.dumps(spec)],
            capture_output=True, text=True, cwd=tree,
        )  # fmt: skip
        lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
        if result.returncode or not lines:
            print(f"failed: {spec}\n{result.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(lines[-1]))
        shown = ("framework", "jit", "dtype", "size", "mode", "batch")
        described = " ".join(f"{k}={spec[k]}" for k in shown if k in spec)
        print(f"  measured {described}", file=sys.stderr, flush=True)
    return rows


def run_one(spec):
    """Runs one measurement in this process; prints a JSON line."""
    if spec["framework"] == "torch":
        seconds = measure_torch(spec["size"], spec["batch"], spec["mode"], spec["frames"],
                                spec["image_size"], spec["repeats"], spec["threads"])  # fmt: skip
    else:
        seconds = measure_keras(spec["size"], spec["batch"], spec["mode"], spec["frames"],
                                spec["image_size"], spec["repeats"], spec["jit"],
                                spec["dtype"], spec.get("memory_saving", True))  # fmt: skip
    return print_measurement(spec, seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "base"], choices=sorted(SIZES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--modes", nargs="+", default=["infer", "train"])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--compile",
        nargs="+",
        default=["graph", "xla"],
        choices=["graph", "xla"],
        help="ours in graph mode, under XLA, or both",
    )
    parser.add_argument("--bf16", action="store_true", help="also measure mixed_bfloat16")
    parser.add_argument(
        "--memory-saving",
        nargs="*",
        default=[],
        choices=["off", "full"],
        help="train mode: also measure ours with these VideoMAEBackbone(memory_saving=...)"
        " settings beside the default (off: keep everything, as before issue 19; full: also"
        " recompute fc1)",
    )
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also measure ours (the memory-saving rows) from DIR, another checkout of this"
        " repository (e.g. `git worktree add /tmp/before HEAD~1`): rows marked 'before'",
    )
    add_rounds_argument(parser)
    parser.add_argument("--output", help="write the rows as JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(json.loads(args.one))
        return 0

    threads = os.cpu_count()
    variants = [("torch", None, "float32", True), ("keras", False, "float32", True),
                ("keras", True, "float32", True)]  # fmt: skip
    if args.bf16:
        variants.append(("keras", True, "mixed_bfloat16", True))
    for mode in args.memory_saving:
        saving = {"off": False, "full": "full"}[mode]
        variants += [("keras", False, "float32", saving), ("keras", True, "float32", saving)]
    specs = [
        {"framework": framework, "jit": jit, "dtype": dtype, "size": size, "mode": mode,
         "batch": batch, "frames": args.frames, "image_size": args.image_size,
         "repeats": args.repeats, "threads": threads, "memory_saving": saving}
        for size in args.sizes for mode in args.modes for batch in args.batch_sizes
        for framework, jit, dtype, saving in variants
        if (saving is True or mode == "train")  # inference keeps nothing for a backward pass
        and (framework == "torch" or ("xla" if jit else "graph") in args.compile)
    ]  # fmt: skip
    if args.before:
        before = os.path.abspath(args.before)
        specs += [{**spec, "tree": before} for spec in specs
                  if spec["framework"] == "keras" and spec["memory_saving"]]  # fmt: skip
    rows = run_measurements(in_rounds(specs, args.rounds), __file__)

    print(f"\nVideoMAE encoder, {args.frames}x{args.image_size}x{args.image_size}, "
          f"{threads} CPU threads on {cpu_description()}; ratio = ours / torch (speed:"
          " higher is faster; memory: lower is smaller)")  # fmt: skip
    header = "| size | mode | batch | implementation | clips/s | ratio | peak MB | memory ratio |"
    print(header + "\n|" + "---|" * 8)
    for size in args.sizes:
        for mode in args.modes:
            for batch in args.batch_sizes:
                group = [
                    r for r in rows if (r["size"], r["mode"], r["batch"]) == (size, mode, batch)
                ]
                for r in group:
                    torch_row = next((t for t in group if t["framework"] == "torch"
                                      and t.get("round") == r.get("round")), None)  # fmt: skip
                    name = "torch (SDPA)" if r["framework"] == "torch" else (
                        f"keras {'XLA' if r['jit'] else 'graph'} {r['dtype']}")  # fmt: skip
                    saving = r.get("memory_saving", True)
                    if r["framework"] == "keras" and saving is not True:
                        name += f", memory saving {saving or 'off'}"
                    if r.get("tree"):
                        name += ", before"
                    if args.rounds > 1:
                        name += f", round {r['round'] + 1}"
                    nan = float("nan")
                    ratio = r["clips_per_s"] / torch_row["clips_per_s"] if torch_row else nan
                    memory = r["peak_mb"] / torch_row["peak_mb"] if torch_row else nan
                    print(f"| {size} | {mode} | {batch} | {name} | {r['clips_per_s']:.3f} | "
                          f"{ratio:.2f} | {r['peak_mb']:.0f} | {memory:.2f} |")  # fmt: skip
    if args.output:
        write_rows(args.output, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
