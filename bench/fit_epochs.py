"""Keras `fit` over many epochs: a new iterator each epoch (as before) against one (now).

    python bench/fit_epochs.py [--data-dir runs/tfds] [--epochs 12] [--rounds 1]
        [--output rows.json]

The demo's model (`demo_profile.demo_setup`, as `train.py --dataset synthetic_faces`) fed one
training batch held in memory, so that no input pipeline plays a part, for the demo's 87
batches an epoch. Each round fits the same (already traced) model both ways, in alternating
order:

- as before: `fit(held, epochs=N)` over a dataset of 87 batches. Keras 3 makes a new iterator
  at the start of each epoch and another at its end, which the next epoch drops unused;
- now: `fit(held.repeat(), steps_per_epoch=87, epochs=N)`, one iterator for the whole fit
  (`repeat_for_fit`, what `train.py` and `pretrain.py` do).

Each row: the fit's wall and CPU seconds (all threads), and the first batch of every epoch
after the first (wall and CPU seconds, median and largest), with the epochs whose first
batch waited more than 1 s beyond the CPU time it used: the process waiting on nothing the
cores do.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.demo_profile import demo_setup  # noqa: E402
from bench.machine import cpu_description  # noqa: E402


def first_batches(model, dataset, **fit_kwargs):
    """Fits `model`; the fit's wall and CPU s, and each epoch's first batch (wall, CPU s)."""
    import keras

    class FirstBatch(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.firsts = []

        def on_epoch_begin(self, epoch, logs=None):
            self.clock = (time.perf_counter(), time.process_time())

        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                wall, cpu = self.clock
                self.firsts.append((time.perf_counter() - wall, time.process_time() - cpu))

    recorder = FirstBatch()
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(dataset, verbose=0, callbacks=[recorder], **fit_kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu, recorder.firsts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "runs", "tfds"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--output", help="write the rows as JSON")
    args = parser.parse_args()

    setup = demo_setup(args.data_dir)
    steps = setup.steps
    batch = next(iter(setup.datasets[False]["train"]))
    held = tf.data.Dataset.from_tensors(batch)
    model = setup.demo_model()
    model.fit(held.repeat(3), epochs=1, verbose=0)  # trace the step once, outside the rows
    modes = {
        "a new iterator each epoch (before)": lambda: first_batches(
            model, held.repeat(steps), epochs=args.epochs
        ),
        "one iterator, repeated (now: repeat_for_fit)": lambda: first_batches(
            model, held.repeat(), steps_per_epoch=steps, epochs=args.epochs
        ),
    }
    rows = []
    for round_index in range(args.rounds):
        names = list(modes) if round_index % 2 == 0 else list(modes)[::-1]
        for name in names:
            wall, cpu, firsts = modes[name]()
            later = np.array(firsts[1:])  # the first epoch's first batch is not a restart
            rows.append({
                "round": round_index + 1, "mode": name, "epochs": args.epochs,
                "steps_per_epoch": steps, "wall_s": wall, "cpu_s": cpu,
                "first_batch_wall_s": later[:, 0].tolist(),
                "first_batch_cpu_s": later[:, 1].tolist(),
                "stalled_epochs": int(np.sum(later[:, 0] - later[:, 1] > 1.0)),
            })  # fmt: skip

    machine = cpu_description()
    print(f"# Keras fit, {args.epochs} epochs of {steps} batches, the demo's model on one held "
          f"batch ({machine})\n")  # fmt: skip
    print("| round | mode | fit wall s | fit CPU s | first batch wall s, median / max | "
          "epochs with a first batch waiting > 1 s |\n|---|---|---|---|---|---|")  # fmt: skip
    for row in rows:
        row["machine"] = machine
        first = np.array(row["first_batch_wall_s"])
        print(f"| {row['round']} | {row['mode']} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | "
              f"{np.median(first):.2f} / {first.max():.2f} | "
              f"{row['stalled_epochs']} of {len(first)} |")  # fmt: skip
    by_mode = {name: [r["wall_s"] for r in rows if r["mode"] == name] for name in modes}
    before, now = (float(np.sum(v)) for v in by_mode.values())
    print(f"\nfit wall time, before / now: {before / now:.2f}x")
    if args.output:
        with open(args.output, "w") as file:
            json.dump({"command": " ".join(sys.argv), "rows": rows}, file, indent=2)
    return all(np.isfinite(r["wall_s"]) for r in rows)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
