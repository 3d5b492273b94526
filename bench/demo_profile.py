"""Where the demo's training time goes: its input pipeline stage by stage, its step alone, both.

    python bench/demo_profile.py [--data-dir runs/tfds] [--jit-compile on|off] [--repeats 3]
        [--trace DIR] [--output rows.json]

The demo's own data (synthetic_faces `small`, fold 0, `--validation actors`), batch, model and
compiled losses (`train.py --dataset synthetic_faces`), built in this process. Each row gives
wall ms and CPU ms (all threads: `time.process_time`) per batch of 32, the best of
`--repeats` passes over the 87 training batches:

- the pipeline built up stage by stage (read, shuffle, JPEG decode, flip, `to_model_io`), and
  beside it, as the reference measured in the same run, the two stages as they were before
  issue 19 (`tf.where` flip, normalisation broadcasting a `(3,)` constant);
- the first step of a fresh model (compile, trace, one step), as it was (Keras' AdamW, whose
  schedule is built once per decayed variable, and the optimizer's and metrics' variables
  made inside the trace, which traces the step twice) and now (`CachedRateAdamW` and
  `build_training_variables`, as `train.py`); one pass each;
- `fit` on one batch held in memory (the step alone), and `fit` fed by the pipeline (both
  sharing the cores, as in training), without and with the decoded clips cached in memory
  (`--cache-clips`, on for the demo).

CPU ms matter on this workplace's machines: on a slow day a 2-core VM gets less CPU time, and
the wall time follows the CPU time the run needs. `--trace DIR` also writes a TensorFlow
profiler trace of 10 steps (open it with TensorBoard's profile plugin or `xprof`).
"""

import argparse
import json
import os
import sys
import time
import types
from functools import partial

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.machine import cpu_description  # noqa: E402


def best_pass(run, count, repeats):
    """Best wall and CPU ms per item of `repeats` calls of `run` (each over `count` items)."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(1000 * (time.perf_counter() - wall) / count)
        cpus.append(1000 * (time.process_time() - cpu) / count)
    return min(walls), min(cpus)


def flip_before(example):
    """The flip as it was: a select broadcasting the coin over the whole clip."""
    from mtcae_keras.data.input_pipeline import flip_coordinates

    flip = tf.random.uniform(()) < 0.5
    boxes, landmarks = flip_coordinates(
        example["boxes"], example["landmarks"], example["video"].shape[2]
    )
    return {
        **example,
        "video": tf.where(flip, tf.reverse(example["video"], axis=[2]), example["video"]),
        "boxes": tf.where(flip, boxes, example["boxes"]),
        "landmarks": tf.where(flip, landmarks, example["landmarks"]),
    }


def normalize_before(video, normalization="imagenet"):
    """The normalisation as it was: `(3,)` constants broadcast over the last axis."""
    from mtcae_keras.models.video_preprocessor import normalization_constants

    mean, std = normalization_constants(normalization)
    video = tf.cast(video, tf.float32) / 255.0
    return (video - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def pipeline_rows(builder, protocol, batch_size, repeats):
    from mtcae_keras.data import input_pipeline as pipeline

    selection = pipeline.SplitSelection.of(protocol["train"])
    video = builder.info.features["video"]
    order = pipeline.tfds.ReadConfig(shuffle_seed=0)
    read = pipeline.read_selection(builder, selection, shuffle_files=True, read_config=order)
    parallel = {"num_parallel_calls": tf.data.AUTOTUNE}
    shuffled = read.shuffle(512, seed=0)
    decoded = shuffled.map(partial(pipeline._decode_video, video), **parallel)

    def to_io(example, normalize=None):
        if normalize is None:
            return pipeline.to_model_io(example, "imagenet", pipeline.TASKS)
        one_pixel = {**example, "video": example["video"][:1, :1, :1]}  # targets only
        _, targets, weights = pipeline.to_model_io(one_pixel, "imagenet", pipeline.TASKS)
        return normalize(example["video"]), targets, weights

    stages = [
        ("read TFRecords", read),
        ("+ shuffle", shuffled),
        ("+ decode JPEG", decoded),
        ("+ flip", decoded.map(pipeline.random_flip, **parallel)),
        ("+ to_model_io (the whole pipeline)",
         decoded.map(pipeline.random_flip, **parallel).map(to_io, **parallel)),
        ("reference: + flip before (tf.where)", decoded.map(flip_before, **parallel)),
        ("reference: whole pipeline before",
         decoded.map(flip_before, **parallel).map(partial(to_io, normalize=normalize_before),
                                                 **parallel)),
    ]  # fmt: skip
    rows = []
    for name, dataset in stages:
        batches = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
        count = sum(1 for _ in batches)
        wall, cpu = best_pass(lambda b=batches: sum(1 for _ in b), count, repeats)
        rows.append({"part": "pipeline", "stage": name, "wall_ms": wall, "cpu_ms": cpu})
    return rows


def demo_setup(data_dir, jit_compile=False):
    """The demo's data, protocol and model as `train.py --dataset synthetic_faces` makes them.

    Returns a namespace: `flags` (train.py's defaults), `builder`, `protocol` (fold 0,
    validation actors), `datasets` (`{cache: make_fold_datasets(...)}` for False and True),
    `steps` (training batches), `schedule`, and `demo_model(optimizer=None, build=True)`,
    which builds and compiles a fresh model (`build`: `build_training_variables` first).
    """
    import keras

    from mtcae_keras import build_mtcae_model
    from mtcae_keras.cli import train
    from mtcae_keras.data.input_pipeline import fold_protocol
    from mtcae_keras.data.input_pipeline import load_builder
    from mtcae_keras.data.input_pipeline import localisation_statistics
    from mtcae_keras.data.input_pipeline import make_fold_datasets
    from mtcae_keras.training import build_training_variables
    from mtcae_keras.training import compile_mtcae_model
    from mtcae_keras.training import warmup_cosine_decay

    flags = train.parse_args(["--dataset", "synthetic_faces", "--data-dir", data_dir])
    keras.utils.set_random_seed(0)
    builder = load_builder("synthetic_faces", data_dir=data_dir, prepare=True)
    _, backbone = train.build_backbone(flags, builder.info)
    protocol = fold_protocol(builder, 0, "actors", 0.1, 0)
    datasets = {}
    for cache in (False, True):
        datasets[cache] = make_fold_datasets(
            builder, 0, flags.batch_size, "imagenet", augment=flags.augment, protocol=protocol,
            image_size=backbone.input.shape[2:4], num_frames=backbone.num_frames, cache=cache,
        )  # fmt: skip
    statistics = localisation_statistics(builder, protocol["train"], augment=flags.augment,
                                         num_frames=backbone.num_frames)  # fmt: skip
    steps = int(datasets[False]["train"].cardinality())
    schedule = warmup_cosine_decay(flags.lr, steps * flags.epochs)

    def demo_model(optimizer=None, build=True):
        model = build_mtcae_model(backbone, "cascaded_vit", 6, decoder="tiny",
                                  freeze_encoder=False, target_statistics=statistics)  # fmt: skip
        compile_mtcae_model(model, 6, schedule, flags.weight_decay, optimizer=optimizer,
                            jit_compile=jit_compile)  # fmt: skip
        if build:
            build_training_variables(model, datasets[False]["train"].element_spec)
        return model

    return types.SimpleNamespace(flags=flags, builder=builder, protocol=protocol,
                                 datasets=datasets, steps=steps, schedule=schedule,
                                 demo_model=demo_model)  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "runs", "tfds"))
    parser.add_argument("--jit-compile", choices=["on", "off"], default="off",
                        help="train.py's choice for synthetic_faces: off")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trace", help="also write a TF profiler trace of 10 steps here")
    parser.add_argument("--output", help="write the rows as JSON")
    args = parser.parse_args()

    import keras

    setup = demo_setup(args.data_dir, args.jit_compile == "on")
    flags, builder, protocol = setup.flags, setup.builder, setup.protocol
    datasets, schedule, demo_model = setup.datasets, setup.schedule, setup.demo_model
    data, steps = datasets[False], setup.steps

    rows = pipeline_rows(builder, protocol, flags.batch_size, args.repeats)
    # The first step: tracing (and XLA's compile) before any arithmetic, once per run.
    first = tf.data.Dataset.from_tensors(next(iter(data["train"])))
    for name, optimizer, build in (
        ("first step, as before (Keras AdamW, variables made in the trace)",
         keras.optimizers.AdamW(schedule, weight_decay=flags.weight_decay), False),
        ("first step, now (CachedRateAdamW, build_training_variables)", None, True),
    ):  # fmt: skip
        wall, cpu = best_pass(
            lambda o=optimizer, b=build: demo_model(o, b).fit(first, epochs=1, verbose=0), 1, 1
        )
        rows.append({"part": "training", "stage": name, "wall_ms": wall, "cpu_ms": cpu})
    model = demo_model()
    held = tf.data.Dataset.from_tensors(next(iter(data["train"]))).repeat(steps)
    for name, dataset in (("fit on one batch held in memory (the step alone)", held),
                          ("fit fed by the pipeline, as before", data["train"]),
                          ("fit fed by the pipeline, decoded clips cached (now)",
                           datasets[True]["train"])):  # fmt: skip
        model.fit(dataset, epochs=1, verbose=0)  # trace and compile; fills the cache
        wall, cpu = best_pass(lambda d=dataset: model.fit(d, epochs=1, verbose=0), steps,
                              args.repeats)  # fmt: skip
        rows.append({"part": "training", "stage": name, "wall_ms": wall, "cpu_ms": cpu})
    if args.trace:
        ten = tf.data.Dataset.from_tensors(next(iter(data["train"]))).repeat(10)
        tf.profiler.experimental.start(args.trace)
        model.fit(ten, epochs=1, verbose=0)
        tf.profiler.experimental.stop()

    machine = cpu_description()
    print(
        f"# The demo's training, by stage ({machine}; XLA {args.jit_compile}; batch "
        f"{flags.batch_size}; best of {args.repeats} passes of {steps} batches)\n"
    )
    print("| part | stage | wall ms / batch | CPU ms / batch |\n|---|---|---|---|")
    for row in rows:
        row.update(machine=machine, jit_compile=args.jit_compile, batch_size=flags.batch_size)
        print(f"| {row['part']} | {row['stage']} | {row['wall_ms']:.1f} | {row['cpu_ms']:.1f} |")
    pipeline = {row["stage"]: row for row in rows}
    before = pipeline["reference: whole pipeline before"]["cpu_ms"]
    after = pipeline["+ to_model_io (the whole pipeline)"]["cpu_ms"]
    print(f"\npipeline CPU ms per batch, before / now: {before / after:.2f}x")
    if args.output:
        with open(args.output, "w") as file:
            json.dump({"command": " ".join(sys.argv), "rows": rows}, file, indent=2,
                      default=float)  # fmt: skip
    return np.isfinite([row["cpu_ms"] for row in rows]).all()


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
