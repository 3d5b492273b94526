"""Where the full MTCAE training step spends its GPU time: a JAX profiler trace, summarised.

    KERAS_BACKEND=jax python bench/gpu_profile.py [--size base] [--decoder paper]
        [--frozen] [--batch 32] [--steps 3] [--output profile.json]

Runs `gpu_speed.py`'s MTCAE training step (Keras on JAX, bf16), warms it up, records
`--steps` steps with `jax.profiler.trace(create_perfetto_trace=True)`, and sums the device
kernels' durations from the Perfetto trace: by kind of kernel (matrix products, fused
attention, XLA fusions, copies, other) and by the part of the model the kernel's HLO op
belongs to (encoder, each decoder, heads, optimizer), as read from the op's name scope.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.gpu_speed import _keras_model  # noqa: E402
from bench.gpu_speed import _keras_targets  # noqa: E402
from bench.gpu_speed import _pixels  # noqa: E402

KINDS = [  # first match wins, on the lower-cased kernel name
    ("fused attention (cuDNN)", r"cudnn|flash|fmha|attention"),
    ("matrix products", r"gemm|cutlass|xmma|nvjet|matmul|wgmma|cublas"),
    ("copies / transposes", r"copy|transpose|memcpy|memset"),
    ("XLA fusions (element-wise, reductions, softmax)", r"fusion|reduce|softmax"),
]
PARTS = [  # on the op's name scope (Keras layer names), first match wins
    ("dropout random bits", r"_bernoulli|_uniform|threefry|random_bits"),
    ("optimizer (AdamW)", r"adam_w|optimizer"),
    ("losses", r"compile_loss"),
    ("encoder", r"video_mae_backbone|videomae"),
    ("decoders", r"decoder|token_dropout|token_projection|memory"),
    ("heads", r"\((boxes|landmarks|expression)\)|/(boxes|landmarks|expression)/"),
]


def _classify(text, table, default):
    lowered = text.lower()
    for name, pattern in table:
        if re.search(pattern, lowered):
            return name
    return default


def hlo_scopes(dump_dir):
    """HLO instruction name -> its `op_name` metadata (the JAX / Keras name scope), from the
    optimised HLO that XLA dumped for the training step."""
    scopes = {}
    pattern = re.compile(r'^\s*(?:ROOT )?%?([\w.\-]+) = .*?op_name="([^"]+)"')
    for path in glob.glob(os.path.join(dump_dir, "*train_step*after_optimizations.txt")):
        with open(path) as file:
            for line in file:
                match = pattern.match(line)
                if match:
                    scopes.setdefault(match.group(1), match.group(2))
    return scopes


def summarise(trace_path, steps, scopes=None):
    with gzip.open(trace_path, "rt") as file:
        trace = json.load(file)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    # Device kernels live on the GPU's process; find it by its name metadata.
    names = {e["pid"]: e.get("args", {}).get("name", "") for e in events
             if e.get("ph") == "M" and e.get("name") == "process_name"}  # fmt: skip
    device_pids = {pid for pid, name in names.items() if re.search(r"gpu|/device:", name.lower())}
    kinds, parts, total = collections.Counter(), collections.Counter(), 0.0
    top, top_parts = collections.Counter(), {}
    examples = {}
    for event in events:
        if event.get("ph") != "X" or event.get("pid") not in device_pids:
            continue
        duration = float(event.get("dur", 0.0))  # microseconds
        args = event.get("args", {})
        scope = " ".join(str(args.get(k, "")) for k in ("long_name", "tf_op", "hlo_op"))
        # On the GPU a kernel is named after its HLO instruction (`loop_transpose_fusion.60`);
        # its name scope comes from the dumped HLO's metadata.
        # GPU kernel names write `fusion_7539` for the HLO's `fusion.7539` (seen on an H100;
        # this mapping was added after the recorded run).
        dotted = re.sub(r"_(\d+)$", r".\1", event["name"])
        candidates = (args.get("hlo_op"), event["name"], dotted, scope.split("XlaModule: ")[-1])
        for candidate in candidates:
            op_name = (scopes or {}).get(str(candidate).strip().split(" ")[0])
            if op_name:
                scope += " " + op_name
                break
        kind = _classify(event["name"], KINDS, "other kernels")
        part = _classify(scope + " " + event["name"], PARTS, "unattributed")
        kinds[kind] += duration
        parts[part] += duration
        total += duration
        examples.setdefault(part, scope[:300])
        top[event["name"]] += duration
        top_parts[event["name"]] = part
    return {
        "device_processes": sorted(names[p] for p in device_pids),
        "gpu_ms_per_step": total / 1e3 / steps,
        "by_kind_ms": {k: v / 1e3 / steps for k, v in kinds.most_common()},
        "by_part_ms": {k: v / 1e3 / steps for k, v in parts.most_common()},
        "scope_examples": examples,
        "top_kernels_ms": [(n, top_parts[n], v / 1e3 / steps) for n, v in top.most_common(25)],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="base")
    parser.add_argument("--decoder", default="paper")
    parser.add_argument("--frozen", action="store_true")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--output", help="write the summary as JSON here")
    args = parser.parse_args(argv)
    dump_dir = tempfile.mkdtemp(prefix="mtcae_hlo_")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={dump_dir}"
                               " --xla_dump_hlo_as_text").strip()  # fmt: skip
    import jax

    spec = {"size": args.size, "frames": args.frames, "image_size": args.image_size,
            "batch": args.batch,
            "dtype": "bfloat16", "model": "mtcae", "decoder": args.decoder,
            "frozen": args.frozen}  # fmt: skip
    model = _keras_model(spec)
    pixels = jax.numpy.asarray(_pixels(args.batch, args.frames, args.image_size, True))
    targets = _keras_targets(spec, model)

    def step():
        model.train_on_batch(pixels, targets)
        jax.block_until_ready([v.value for v in model.trainable_variables])

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    wall_ms = (time.perf_counter() - start) / args.steps * 1e3
    folder = tempfile.mkdtemp(prefix="mtcae_profile_")
    with jax.profiler.trace(folder, create_perfetto_trace=True):
        for _ in range(args.steps):
            step()
    traces = glob.glob(os.path.join(folder, "**", "perfetto_trace.json.gz"), recursive=True)
    if not traces:
        sys.exit(f"no perfetto_trace.json.gz under {folder}")
    scopes = hlo_scopes(dump_dir)
    summary = {**spec, "wall_ms_per_step": wall_ms, "hlo_ops_with_scope": len(scopes),
               **summarise(traces[0], args.steps, scopes)}  # fmt: skip
    print(f"\nMTCAE training step ({args.size}, {args.decoder} decoders, "
          f"{'frozen' if args.frozen else 'trained'} encoder, batch {args.batch}, bf16): "
          f"{wall_ms:.1f} ms wall, {summary['gpu_ms_per_step']:.1f} ms of GPU kernels")  # fmt: skip
    for title, key in (("kind of kernel", "by_kind_ms"), ("part of the model", "by_part_ms")):
        print(f"| {title} | ms per step | share |\n|---|---|---|")
        for name, ms in summary[key].items():
            print(f"| {name} | {ms:.1f} | {ms / summary['gpu_ms_per_step']:.1%} |")
    if args.output:
        with open(args.output, "w") as file:
            json.dump(summary, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
