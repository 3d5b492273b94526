"""Building synthetic_faces: clips drawn in this process (as before) or by worker processes.

    python bench/synthetic_build.py [--config small] [--rounds 2] [--output rows.json]

Each round builds the config twice into temporary folders, in alternating order: with every
clip drawn in the building process (`rendered_clips` with its pool turned off, as before)
and as the builder does now (one forked worker per core drawing while TFDS encodes and
writes). Each row: wall seconds, the building process's own CPU seconds, and whether the
two builds hold the same examples (every feature of every clip of every fold, compared
value for value; the files' bytes differ between processes, as protobuf's map order does).
`small` is what `python3 tasks.py demo` builds first.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from bench.machine import cpu_description  # noqa: E402
from mtcae_keras.data import rendered_clips  # noqa: E402
from tfds_builders.synthetic_faces.synthetic_faces_dataset_builder import Builder  # noqa: E402


def build(config, data_dir, pooled):
    """Builds `config` into `data_dir`; wall and CPU seconds of this process."""
    limit = rendered_clips.POOL_MIN_CLIPS if pooled else sys.maxsize
    wall, cpu = time.perf_counter(), time.process_time()
    with mock.patch.object(rendered_clips, "POOL_MIN_CLIPS", limit):
        builder = Builder(config=config, data_dir=data_dir)
        builder.download_and_prepare()
    return time.perf_counter() - wall, time.process_time() - cpu, builder


def examples(builder):
    """`{clip_id: example}` over every split."""
    return {
        example["clip_id"]: example
        for split in builder.info.splits
        for example in tfds.as_numpy(builder.as_dataset(split=split))
    }


def same_examples(first, second):
    first, second = examples(first), examples(second)
    return first.keys() == second.keys() and all(
        np.array_equal(first[key][name], second[key][name]) for key in first for name in first[key]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", help="write the rows as JSON")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if cores < 2:  # rendered_clips draws in this process then: both rows would be the same
        sys.exit(f"{cores} core: the builder draws in one process here; nothing to compare.")

    rows = []
    with tempfile.TemporaryDirectory() as root:
        for round_index in range(args.rounds):
            order = (False, True) if round_index % 2 == 0 else (True, False)
            builders = {}
            for pooled in order:
                folder = os.path.join(root, f"{round_index}_{pooled}")
                wall, cpu, builders[pooled] = build(args.config, folder, pooled)
                rows.append({"round": round_index + 1, "pooled": pooled, "wall_s": wall,
                             "cpu_s": cpu})  # fmt: skip
            same = same_examples(builders[False], builders[True])
            for row in rows[-2:]:
                row["same_examples"] = same

    machine = cpu_description()
    print(f"# synthetic_faces `{args.config}` build ({machine})\n")
    print("| round | clips drawn | wall s | CPU s, this process | same examples |\n"
          "|---|---|---|---|---|")  # fmt: skip
    for row in rows:
        row.update(machine=machine, config=args.config)
        where = "by worker processes (now)" if row["pooled"] else "in this process (before)"
        print(f"| {row['round']} | {where} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | "
              f"{row['same_examples']} |")  # fmt: skip
    before = sum(r["wall_s"] for r in rows if not r["pooled"])
    now = sum(r["wall_s"] for r in rows if r["pooled"])
    print(f"\nbuild wall time, before / now: {before / now:.2f}x")
    if args.output:
        with open(args.output, "w") as file:
            json.dump({"command": " ".join(sys.argv), "rows": rows}, file, indent=2)
    return all(row["same_examples"] for row in rows)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
