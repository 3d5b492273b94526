"""The cascade beside the ABAW4 frameworks on synthetic_faces' per-frame affect tasks, end to
end through train.py and evaluate.py.

    python bench/affect_strategies.py
        --encoder runs/label_efficiency/pretrain_fold0/encoder.weights.h5
        [--strategies cascaded_vit temporal_feedback] [--seeds 0 1 2] [--fold 0]
        [--runs runs/affect_strategies] [--output bench/results/affect_strategies_cpu.json]

Every run: `train.py --tasks affect --validation fold` on fold 0 (validation fold 1, the
folds `bench/temporal_frameworks.py` reads), the frozen encoder pre-trained without labels
on the training folds' videos (`bench/label_efficiency.py`'s `pretrain_fold0`), the demo's
recipe otherwise (20 epochs, cosine schedule, flip augmentation, the `tiny` decoder preset;
the temporal strategies' Transformer encoder), one run per seed. `evaluate.py` scores each
run's best checkpoint (highest validation UAR of the per-frame expression, train.py's
default) once on the test fold; the smoothing window of valence and arousal is
chosen on the validation fold; the seeds' ensemble averages probabilities and regressions.
Runs already evaluated are reused. The recipe was fixed before any result was seen.

Prints one row per strategy: P_MTL (mean ± s.d. over seeds), smoothed, of the ensemble, and
the four terms of the mean.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.label_efficiency import run  # noqa: E402
from bench.machine import cpu_description  # noqa: E402

TERMS = ("ccc_valence", "ccc_arousal", "expression_f1", "action_unit_f1")


def train(strategy, seed, args, log, seconds):
    run_dir = os.path.join(args.runs, f"{strategy}_seed{seed}")
    if not os.path.exists(os.path.join(run_dir, "metrics.json")):
        start = time.time()
        run(["train.py", "--dataset", "synthetic_faces", "--fold", str(args.fold),
             "--validation", "fold", "--tasks", "affect", "--strategy", strategy,
             "--encoder", args.encoder, "--freeze-encoder", "--seed", str(seed),
             "--verbose", "2", "--data-dir", args.data_dir, "--output", run_dir], log)  # fmt: skip
        seconds[os.path.basename(run_dir)] = round(time.time() - start)
    return run_dir


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", required=True, help="pre-trained encoder .weights.h5")
    parser.add_argument("--strategies", nargs="+", default=["cascaded_vit", "temporal_feedback"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--data-dir", default=os.path.join("runs", "tfds"))
    parser.add_argument("--runs", default=os.path.join("runs", "affect_strategies"))
    parser.add_argument("--output", default="bench/results/affect_strategies_cpu.json")
    args = parser.parse_args()
    os.makedirs(args.runs, exist_ok=True)
    log = os.path.join(args.runs, "log.txt")
    seconds, results = {}, {}
    for strategy in args.strategies:
        run_dirs = [train(strategy, seed, args, log, seconds) for seed in args.seeds]
        ensemble_dir = os.path.join(args.runs, f"{strategy}_ensemble")
        run(["evaluate.py", *run_dirs, "--ensemble", "--output", ensemble_dir], log)
        with open(os.path.join(ensemble_dir, "ensemble_metrics.json")) as file:
            summary = json.load(file)
        results[strategy] = {"runs": [row["name"] for row in summary["rows"]],
                             "per_seed": [{k: row[k] for k in (*TERMS, "p_mtl", "p_mtl_smoothed",
                                                              "uar", "war")}
                                          for row in summary["rows"]],
                             "mean": summary["mean"], "std": summary["std"],
                             "ensemble": {k: summary["ensemble"][k]
                                          for k in (*TERMS, "p_mtl", "p_mtl_smoothed", "uar",
                                                    "war")}}  # fmt: skip

    print(f"CPU: {cpu_description()}; fold {args.fold}, seeds {args.seeds}")
    print(
        "| strategy | P_MTL | smoothed | 3-run ensemble (smoothed) | CCC V | CCC A | expr. F1 "
        "| AU F1 | clip UAR % |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for strategy, result in results.items():
        mean, std, ens = result["mean"], result["std"], result["ensemble"]
        cells = [f"{mean[k]:.3f} ± {std[k]:.3f}" for k in ("p_mtl", "p_mtl_smoothed")]
        cells.append(f"{ens['p_mtl']:.3f} ({ens['p_mtl_smoothed']:.3f})")
        cells += [f"{mean[k]:.3f}" for k in TERMS] + [f"{100 * mean['uar']:.1f}"]
        print(f"| {strategy} | " + " | ".join(cells) + " |")
    record = {"command": " ".join(sys.argv), "cpu": cpu_description(), "fold": args.fold,
              "seeds": args.seeds, "train_seconds": seconds, "results": results}  # fmt: skip
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w") as file:
        json.dump(record, file, indent=2)
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
