"""Evaluate train.py runs on their test folds; with several runs, pool them or ensemble them.

    python evaluate.py RUN_DIR [RUN_DIR ...] [--ensemble] [--views N] [--data-dir DIR]
                       [--export] [--output DIR]

Each run's best checkpoint (selected on its validation clips) is evaluated on its test fold:
WAR, UAR, per-class recall, confusion matrix (PNG + JSON), face-box IoU and landmark error
normalised by the inter-ocular distance, on frames with a face. With several run dirs (e.g.
folds 0-4) the table gives each run, their mean +- standard deviation and the metrics of
their predictions pooled, as MAE-DFER reports its folds. With --ensemble the runs (seeds,
strategies, encoders tested on one fold) are averaged in probability space instead and the
ensemble is reported beside its members. With --views N each clip of a dataset that stores
more frames than the model takes is predicted on N evenly spaced phases of its frames, the
softmax probabilities averaged (MAE-DFER's multi-view test). Runs that selected on their
test fold (--validation test) are marked optimistic.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtcae_keras.training.run_evaluation import evaluate_run  # noqa: E402
from mtcae_keras.training.run_summary import ensemble_summary  # noqa: E402
from mtcae_keras.training.run_summary import pooled_summary  # noqa: E402
from mtcae_keras.training.run_summary import summary_table  # noqa: E402
from mtcae_keras.training.run_summary import write_summary  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="average the runs' class probabilities (runs on the same test fold)",
    )
    parser.add_argument(
        "--views",
        type=int,
        default=1,
        help="test views per clip, softmax averaged (MAE-DFER's multi-view test): phases of a"
        " dataset that stores more frames than the model takes (default 1: the middle one)",
    )
    parser.add_argument("--data-dir", help="override the TFDS data dir of the runs")
    parser.add_argument("--export", action="store_true", help="also export each SavedModel")
    parser.add_argument("--output", help="where combined results go (default: first run's parent)")
    args = parser.parse_args(argv)
    if args.ensemble and len(args.run_dirs) < 2:
        sys.exit("--ensemble averages several runs: give two run dirs or more.")

    for run_dir in args.run_dirs:
        try:
            evaluate_run(run_dir, export=args.export, data_dir=args.data_dir, views=args.views)
        except ValueError as error:
            sys.exit(str(error))
    try:
        summarize = ensemble_summary if args.ensemble else pooled_summary
        summary = summarize(args.run_dirs)
    except ValueError as error:
        sys.exit(str(error))
    if len(args.run_dirs) == 1:  # one run: its row
        print("\n".join(summary_table(summary).split("\n")[:3]))
        return 0
    print(summary_table(summary))
    for warning in summary["warnings"]:
        print(f"warning: {warning}")
    output = args.output or os.path.dirname(os.path.abspath(args.run_dirs[0]))
    paths = write_summary(summary, output)
    print(f"{summary['kind']} results in {paths['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
