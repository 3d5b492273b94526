"""Input pipeline: clips/s our tf.data pipeline delivers against what the training step uses.

    python bench/input_pipeline.py [--data-dir runs/tfds] [--batch-size 16] [--batches 40]
        [--crema-d DIR] [--output rows.json]

Three numbers on the same machine, each in its own process:

1. `pipeline`: `make_fold_datasets(...)["train"]` alone (TFRecord read, JPEG decode,
   normalise, shuffle, batch, prefetch), iterated without a model;
2. `train step`: the model's `train_on_batch` on one batch held in memory (what the step can
   consume when it never waits for data);
3. `fit`: `model.fit` fed by the pipeline, both sharing the cores as in real training;
   `fit_cached`: `model.fit` fed one cached batch, which separates fit's own cost from the
   pipeline's.

The pipeline should deliver >= 1.3x what the step consumes, and `fit` should then run at the
step's rate. The default case is the demo's (synthetic_faces `small`, 64x64, the
`videomae_synthetic` encoder). With `--crema-d DIR` (the six real clips) it also times the
224x224 pipeline alone, built from those clips and repeated, to set against the training
rates measured elsewhere (bench/results/gpu_speed_h100.md).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _demo_data(data_dir, batch_size):
    from mtcae_keras.data.input_pipeline import load_builder
    from mtcae_keras.data.input_pipeline import make_fold_datasets

    builder = load_builder("synthetic_faces", data_dir=data_dir, prepare=True)
    return make_fold_datasets(builder, 0, batch_size)["train"]


def _demo_model():
    from mtcae_keras import VideoMAEBackbone
    from mtcae_keras import build_mtcae_model
    from mtcae_keras.training import compile_mtcae_model

    backbone = VideoMAEBackbone.from_preset("videomae_synthetic")
    model = build_mtcae_model(backbone, "cascaded_vit", 6, decoder="tiny", freeze_encoder=False)
    return compile_mtcae_model(model, 6, jit_compile=True)


def _iterate_rate(dataset, batches):
    iterator = iter(dataset.repeat())
    for _ in range(3):  # warm-up: file opening, shuffle buffer fill, autotune
        next(iterator)
    clips, start = 0, time.perf_counter()
    for _ in range(batches):
        clips += int(next(iterator)[0].shape[0])
    return clips / (time.perf_counter() - start)


def run_case(case, spec):
    sys.path.insert(0, ROOT)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    batches, batch_size = spec["batches"], spec["batch_size"]
    if case == "pipeline":
        return _iterate_rate(_demo_data(spec["data_dir"], batch_size), batches)
    if case == "step":
        model = _demo_model()
        video, targets, weights = next(iter(_demo_data(spec["data_dir"], batch_size)))
        for _ in range(3):
            model.train_on_batch(video, targets, sample_weight=weights)
        start = time.perf_counter()
        for _ in range(batches):
            model.train_on_batch(video, targets, sample_weight=weights)
        return batches * int(video.shape[0]) / (time.perf_counter() - start)
    if case in ("fit", "fit_cached"):
        model = _demo_model()
        dataset = _demo_data(spec["data_dir"], batch_size)
        if case == "fit_cached":  # one batch from memory: fit's own cost, no pipeline work
            dataset = dataset.take(1).cache()
        dataset = dataset.repeat()
        model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)  # compile, fill buffers
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=batches, epochs=1, verbose=0)
        return batches * batch_size / (time.perf_counter() - start)
    if case == "pipeline_224":
        import tensorflow as tf
        import tensorflow_datasets as tfds

        from mtcae_keras.data.input_pipeline import to_model_io
        from tfds_builders.crema_d import crema_d_dataset_builder

        with tempfile.TemporaryDirectory() as data_dir:
            builder = crema_d_dataset_builder.Builder(data_dir=data_dir)
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=spec["crema_d"])
            )
            dataset = builder.as_dataset(split="fold0").repeat()
            dataset = dataset.map(to_model_io, num_parallel_calls=tf.data.AUTOTUNE)
            dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
            return _iterate_rate(dataset, batches)
    raise ValueError(case)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "runs", "tfds"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--crema-d", default=os.environ.get("MTCAE_CREMA_D_DIR"))
    parser.add_argument("--output", help="write the rows as JSON here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        case, spec = json.loads(args.one)
        print(json.dumps({"case": case, "clips_per_s": run_case(case, spec)}))
        return 0

    spec = {"data_dir": args.data_dir, "batch_size": args.batch_size, "batches": args.batches,
            "crema_d": args.crema_d}  # fmt: skip
    cases = ["pipeline", "step", "fit", "fit_cached"] + (["pipeline_224"] if args.crema_d else [])
    rows = {}
    for case in cases:
        result = subprocess.run([sys.executable, __file__, "--one", json.dumps([case, spec])],
                                capture_output=True, text=True, cwd=ROOT)  # fmt: skip
        lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
        if result.returncode or not lines:
            print(f"failed: {case}\n{result.stderr[-2000:]}", file=sys.stderr)
            continue
        rows[case] = json.loads(lines[-1])["clips_per_s"]
        print(f"  measured {case}: {rows[case]:.1f} clips/s", file=sys.stderr, flush=True)

    step = rows.get("step", float("nan"))
    print(f"\nInput pipeline vs training step, batch {args.batch_size}, {os.cpu_count()} CPU "
          f"cores; ratio = clips/s / the train step's")  # fmt: skip
    print("| case | clips/s | ratio |")
    print("|---|---|---|")
    names = {"pipeline": "pipeline alone (synthetic_faces small, 64x64)",
             "step": "train step alone (videomae_synthetic + tiny decoders, XLA)",
             "fit": "fit fed by the pipeline",
             "fit_cached": "fit fed one cached batch (no pipeline work)",
             "pipeline_224": "pipeline alone, 224x224 (crema_d records)"}  # fmt: skip
    for case, rate in rows.items():
        ratio = rate / step if case != "pipeline_224" else float("nan")
        print(f"| {names[case]} | {rate:.1f} | {ratio:.2f} |")
    if args.output:
        with open(args.output, "w") as file:
            json.dump(rows, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
