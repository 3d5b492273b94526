"""Train and test every fold of a dataset's protocol; print the table of the paper's form.

    python cross_validate.py --dataset crema_d [--folds 0 1 2 3 4] [--output RUN_ROOT]
                             [any train.py flag but --fold and --output]

Each fold is a train.py run in RUN_ROOT/fold{k} (default RUN_ROOT: runs/<dataset>_<strategy>_cv)
with the same flags. The command is resumable: a fold that finished with these settings is
kept, an interrupted one resumes where it stopped, a missing one is trained. Then the table:
every fold's UAR, WAR, box IoU and landmark NME, their mean +- standard deviation over the
folds, and the metrics of all folds' predictions pooled (MAE-DFER's and the paper's way of
reporting 5-fold results), written to RUN_ROOT/pooled_{metrics.json,table.md,
confusion_matrix.png}.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from mtcae_keras.cli import train  # noqa: E402
from mtcae_keras.data.input_pipeline import load_builder  # noqa: E402
from mtcae_keras.training.run_summary import pooled_summary  # noqa: E402
from mtcae_keras.training.run_summary import summary_table  # noqa: E402
from mtcae_keras.training.run_summary import write_summary  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Every other flag is train.py's (python train.py --help).",
        allow_abbrev=False,  # --fold is train.py's, not an abbreviation of --folds
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--dataset-config")
    parser.add_argument("--data-dir")
    parser.add_argument("--strategy", default="cascaded_vit")
    parser.add_argument("--folds", nargs="+", type=int, help="default: every fold")
    parser.add_argument("--output", help="default: runs/<dataset>_<strategy>_cv")
    args, train_flags = parser.parse_known_args(argv)
    for flag in ("--fold", "--distribute"):
        if any(f == flag or f.startswith(flag + "=") for f in train_flags):
            message = {
                "--fold": "--fold: cross_validate.py runs every fold; choose them with --folds",
                "--distribute": "--distribute: each fold runs train.py in this process, with"
                " its default strategy; for multi_worker runs start train.py --fold k on every"
                " worker, then pool the run dirs with evaluate.py",
            }[flag]
            parser.error(f"refused, not silently dropped: {message}")
    return args, train_flags


def fold_argv(args, train_flags, fold, run_dir):
    """The train.py command line of one fold."""
    argv = ["--dataset", args.dataset, "--strategy", args.strategy]
    for flag, value in (("--dataset-config", args.dataset_config), ("--data-dir", args.data_dir)):
        if value is not None:
            argv += [flag, value]
    return argv + list(train_flags) + ["--fold", str(fold), "--output", run_dir]


def finished_conflicts(run_dir, argv):
    """None if `run_dir` holds no finished run; else the settings (`key: before -> now`) in
    which that run differs from what `argv` would train (empty: it is this command's)."""
    if not os.path.exists(os.path.join(run_dir, "metrics.json")):
        return None
    if os.path.isdir(os.path.join(run_dir, "backup")):  # unfinished: train.py resumes it
        return None
    with open(os.path.join(run_dir, "config.json")) as file:
        previous = json.load(file).get("arguments")
    if previous is None:  # written before train.py recorded its flags as given
        return ["arguments: the run does not record the flags it was trained with"]
    current = json.loads(json.dumps(vars(train.parse_args(argv)), default=str))
    return train.resume_conflicts(previous, current)


def main(argv=None):
    args, train_flags = parse_args(argv)
    dataset_name = args.dataset.split("/")[0]
    builder = load_builder(args.dataset, data_dir=args.data_dir, config=args.dataset_config,
                           prepare=dataset_name in train.GENERATED_DATASETS)  # fmt: skip
    folds = args.folds if args.folds is not None else list(range(builder.num_folds))
    bad = [fold for fold in folds if not 0 <= fold < builder.num_folds]
    if bad:
        sys.exit(f"--folds {bad}: {args.dataset} has folds 0-{builder.num_folds - 1}.")
    root = args.output or os.path.join("runs", f"{dataset_name}_{args.strategy}_cv")

    run_dirs = []
    for fold in folds:
        run_dir = os.path.join(root, f"fold{fold}")
        command = fold_argv(args, train_flags, fold, run_dir)
        conflicts = finished_conflicts(run_dir, command)
        if conflicts:
            sys.exit(
                f"{run_dir} holds a finished run with other settings:\n  "
                + "\n  ".join(conflicts)
                + "\nChoose another --output, or remove that fold's run dir to train it again."
            )
        if conflicts is None:
            print(f"== fold {fold}: python train.py {' '.join(command)}", flush=True)
            keras.backend.clear_session()  # the previous fold's graphs and layer names
            status = train.main(command)
            if status:
                return status
        else:
            print(f"== fold {fold}: finished with these settings in {run_dir}; kept")
        run_dirs.append(run_dir)

    summary = pooled_summary(run_dirs)
    print(summary_table(summary))
    for warning in summary["warnings"]:
        print(f"warning: {warning}")
    paths = write_summary(summary, root)
    print(f"cross-validation results in {paths['table']} and {paths['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
