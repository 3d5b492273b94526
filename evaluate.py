"""Evaluate train.py runs on their test folds; with several runs, pool them.

    python evaluate.py RUN_DIR [RUN_DIR ...] [--data-dir DIR] [--export]

Each run's best checkpoint (selected on its validation fold) is evaluated on its test fold:
WAR, UAR, per-class recall, confusion matrix (PNG + JSON), face-box IoU and landmark error
normalised by the inter-ocular distance, on frames with a face. With several run dirs (e.g.
folds 0-4) the predictions are also pooled before computing the metrics, as MAE-DFER does,
and the table is printed in the form of the paper's tables.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtcae_keras.training.run_evaluation import evaluate_run  # noqa: E402
from mtcae_keras.training.run_evaluation import load_run_config  # noqa: E402
from mtcae_keras.training.run_evaluation import metrics_from_predictions  # noqa: E402
from mtcae_keras.training.run_evaluation import plot_confusion_matrix  # noqa: E402
from mtcae_keras.training.run_evaluation import pool_predictions  # noqa: E402


def load_predictions(run_dir):
    import numpy as np

    with np.load(os.path.join(run_dir, "predictions.npz")) as data:
        return {key: data[key] for key in data.files}


def format_row(name, metrics):
    iou = metrics.get("box_iou")
    nme = metrics.get("landmark_nme")
    localisation = f"{iou:9.3f} {nme:9.3f}" if iou is not None else f"{'-':>9} {'-':>9}"
    return (f"| {name:<24} | {100 * metrics['uar']:6.2f} | {100 * metrics['war']:6.2f} | "
            f"{metrics['count']:6d} | {localisation} |")  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--data-dir", help="override the TFDS data dir of the runs")
    parser.add_argument("--export", action="store_true", help="also export each SavedModel")
    parser.add_argument("--output", help="where pooled results go (default: first run's parent)")
    args = parser.parse_args(argv)

    rows, prediction_sets, configs = [], [], []
    for run_dir in args.run_dirs:
        metrics = evaluate_run(run_dir, export=args.export, data_dir=args.data_dir)
        config = load_run_config(run_dir)
        configs.append(config)
        prediction_sets.append(load_predictions(run_dir))
        rows.append(format_row(f"{config['dataset_name']} fold {config['fold']}", metrics))

    print("| run                      |  UAR % |  WAR % |  clips |   box IoU  lmk NME |")
    print("|--------------------------|--------|--------|--------|---------------------|")
    for row in rows:
        print(row)
    if len(args.run_dirs) > 1:
        class_names = configs[0]["class_names"]
        if any(c["class_names"] != class_names for c in configs):
            sys.exit("Runs have different class lists; they cannot be pooled.")
        folds = [c["fold"] for c in configs]
        if len(set(folds)) != len(folds):
            print(f"warning: folds {folds} repeat; pooled clips are counted more than once")
        pooled = metrics_from_predictions(pool_predictions(prediction_sets), class_names)
        print(format_row(f"pooled ({len(args.run_dirs)} runs)", pooled))
        output = args.output or os.path.dirname(os.path.abspath(args.run_dirs[0]))
        os.makedirs(output, exist_ok=True)
        with open(os.path.join(output, "pooled_metrics.json"), "w") as file:
            json.dump({**pooled, "runs": args.run_dirs}, file, indent=2)
        plot_confusion_matrix(
            pooled["confusion_matrix"], class_names,
            os.path.join(output, "pooled_confusion_matrix.png"),
            f"pooled over {len(args.run_dirs)} runs: UAR {100 * pooled['uar']:.1f}",
        )  # fmt: skip
        print(f"pooled results in {output}/pooled_metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
