"""Label efficiency of masked video pre-training, the way MAE-DFER argues it, on synthetic_faces.

    python bench/label_efficiency.py [--folds 0 1 2] [--fractions 0.1 0.25 1.0]
        [--pretrain-epochs 20] [--full-label-folds 0]
        [--output bench/results/label_efficiency_cpu.json]
        [--plot bench/results/label_efficiency_cpu.png]

For every fold K: `pretrain.py` on the videos of K's training folds only (labels unused; the
test and validation actors stay unseen), then `train.py` fine-tunes on a stratified fraction
of the labelled training clips (`--train-fraction`), once from the pre-trained encoder and
once from a random one, with the demo's recipe otherwise (both arms train the encoder: the
pre-trained one with `--no-freeze-encoder`). Each run selects its checkpoint on the
validation fold and is scored once on the test fold. Runs already finished (their
`metrics.json` present) are reused, so the script can be resumed.

The pre-training recipe is fixed before any fine-tuning result is seen: MAE-DFER's mask ratio
(0.9), tube masks, its joint appearance-motion target, warm-up then cosine decay; the
learning rate and the decoder's size scaled to the demo's small encoder.

Prints one row per fraction: test WAR of both arms, mean and spread over the folds, and
their difference.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAIN = ["--dataset", "synthetic_faces", "--encoder", "videomae_synthetic",
            "--mask-ratio", "0.9", "--mask-type", "tube", "--target", "appearance_motion",
            "--decoder-hidden-dim", "64", "--decoder-num-layers", "2",
            "--decoder-num-heads", "4", "--batch-size", "32", "--lr", "1e-3",
            "--warmup-epochs", "4", "--verbose", "2"]  # fmt: skip


def run(argv, log):
    with open(log, "a") as file:
        code = subprocess.call([sys.executable, *argv], cwd=ROOT, stdout=file,
                               stderr=subprocess.STDOUT)  # fmt: skip
    if code:
        sys.exit(f"{' '.join(argv)} failed (exit {code}); see {log}")


def test_war(run_dir):
    with open(os.path.join(run_dir, "metrics.json")) as file:
        return json.load(file)["war"]


def validation_uar(run_dir):
    """The validation UAR of the run's selected checkpoint (train.py monitors it)."""
    with open(os.path.join(run_dir, "log.csv")) as file:
        rows = list(csv.DictReader(file))
    return max(float(row["val_expression_uar"]) for row in rows)


def pretrain(runs, fold, epochs, data_dir, log, seconds, source="fold"):
    """Pre-trains once (reused after) and returns the encoder path: `fold`, on the videos of
    fold's training folds; `extra`, on synthetic_faces/extra (240 actors of their own, in no
    fold of `small`: one encoder for every fold)."""
    if source == "extra":
        name, data = "pretrain_extra", ["--dataset-config", "extra", "--all-splits"]
    else:
        name, data = f"pretrain_fold{fold}", ["--fold", str(fold)]
    pretrain_dir = os.path.join(runs, name + suffix(epochs, 20, "_e"))
    encoder = os.path.join(pretrain_dir, "encoder.weights.h5")
    if not os.path.exists(encoder):
        start = time.time()
        run(["pretrain.py", *PRETRAIN, *data, "--epochs", str(epochs),
             "--data-dir", data_dir, "--output", pretrain_dir], log)  # fmt: skip
        seconds[os.path.basename(pretrain_dir)] = time.time() - start
    return encoder


def fine_tune(runs, fold, fraction, encoder, lr, data_dir, log, seconds, pretrain_epochs=20,
              pretrain_source="fold"):  # fmt: skip
    """train.py on a fraction of fold's labelled training clips (once). Returns the run dir.

    encoder None trains from scratch. Run dirs are named by their settings; the defaults
    (20 pre-training epochs, learning rate 1e-3) add nothing to the name, so the first
    recorded runs are reused.
    """
    arm = "scratch" if encoder is None else "pretrained"
    name = f"{arm}_fold{fold}_f{fraction}" + suffix(lr, 1e-3, "_lr")
    if encoder is not None:
        name += suffix(pretrain_epochs, 20, "_e") + ("_extra" if pretrain_source == "extra" else "")
    run_dir = os.path.join(runs, name)
    if not os.path.exists(os.path.join(run_dir, "metrics.json")):
        start = time.time()
        encoder_args = [] if encoder is None else ["--encoder", encoder, "--no-freeze-encoder"]
        # --validation fold: the protocol the recorded results were measured under
        # (session 6, before --validation actors became the default), and the folds
        # pretrain.py --fold K reads.
        run(["train.py", "--dataset", "synthetic_faces", "--fold", str(fold),
             "--validation", "fold", "--train-fraction", str(fraction), "--lr", str(lr),
             *encoder_args, "--verbose", "2", "--data-dir", data_dir,
             "--output", run_dir], log)  # fmt: skip
        seconds[name] = time.time() - start
    return run_dir


def suffix(value, default, prefix):
    return "" if value == default else f"{prefix}{value:g}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 1.0])
    parser.add_argument("--pretrain-epochs", type=int, default=20)
    parser.add_argument("--recipe", help="a choice written by bench/pretraining_recipe.py: "
                        "its pre-training length and each arm's learning rate")  # fmt: skip
    parser.add_argument("--full-label-folds", type=int, nargs="+",
                        help="fraction 1.0 on these folds only (the longest runs)")  # fmt: skip
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "label_efficiency"))
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "runs", "tfds"))
    parser.add_argument("--output", help="also write the measurements as JSON")
    parser.add_argument("--plot", help="also draw WAR against the labelled fraction (PNG)")
    args = parser.parse_args()
    recipe = {"pretrain_epochs": args.pretrain_epochs, "pretrained_lr": 1e-3, "scratch_lr": 1e-3}
    if args.recipe:
        with open(args.recipe) as file:
            recipe = json.load(file)["choice"]
        print(f"recipe from {args.recipe}: {recipe}")
    os.makedirs(args.runs, exist_ok=True)
    log = os.path.join(args.runs, "log.txt")
    results = {"pretrained": {}, "scratch": {}}
    seconds = {}
    for fold in args.folds:
        epochs, source = recipe["pretrain_epochs"], recipe.get("pretrain_source", "fold")
        encoder = pretrain(args.runs, fold, epochs, args.data_dir, log, seconds, source)
        for fraction in args.fractions:
            if fraction == 1.0 and args.full_label_folds and fold not in args.full_label_folds:
                continue
            for arm, arm_encoder in (("pretrained", encoder), ("scratch", None)):
                run_dir = fine_tune(args.runs, fold, fraction, arm_encoder,
                                    recipe[f"{arm}_lr"], args.data_dir, log, seconds,
                                    pretrain_epochs=epochs, pretrain_source=source)  # fmt: skip
                results[arm].setdefault(str(fraction), {})[fold] = test_war(run_dir)
                print(f"fold {fold}, {fraction:.0%} labels, {arm}: test WAR "
                      f"{100 * results[arm][str(fraction)][fold]:.1f}", flush=True)  # fmt: skip

    import numpy as np

    print("\n| labelled clips | pre-trained WAR | from scratch WAR | difference |")
    print("|---|---|---|---|")
    rows = []
    for fraction in args.fractions:
        pre = np.array(list(results["pretrained"][str(fraction)].values())) * 100
        scratch = np.array(list(results["scratch"][str(fraction)].values())) * 100
        diff = pre - scratch
        rows.append(
            {
                "fraction": fraction,
                "folds": list(results["scratch"][str(fraction)]),
                "pretrained": pre.tolist(),
                "scratch": scratch.tolist(),
            }
        )
        print(f"| {fraction:.0%} ({len(pre)} folds) | {pre.mean():.1f} ± {pre.std():.1f} | "
              f"{scratch.mean():.1f} ± {scratch.std():.1f} | "
              f"{diff.mean():+.1f} (min {diff.min():+.1f}, max {diff.max():+.1f}) |")  # fmt: skip
    print("(mean ± standard deviation over the folds run; chance 16.7%)")
    if args.output:
        with open(args.output, "w") as file:
            json.dump({"folds": args.folds, "pretrain": PRETRAIN, "recipe": recipe,
                       "recipe_file": args.recipe, "rows": rows,
                       "seconds": seconds}, file, indent=2)  # fmt: skip
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(5, 3.6))
        for arm, colour in (("pretrained", "tab:blue"), ("scratch", "tab:grey")):
            values = [np.array(r[arm]) for r in rows]
            means = [v.mean() for v in values]
            axis.errorbar([100 * r["fraction"] for r in rows], means,
                          yerr=[v.std() for v in values], marker="o", capsize=3,
                          color=colour, label=arm)  # fmt: skip
        axis.axhline(100 / 6, color="k", lw=0.8, ls=":", label="chance")
        axis.set_xscale("log")
        axis.set_xticks([100 * f for f in args.fractions], [f"{f:.0%}" for f in args.fractions])
        axis.set_xlabel("labelled training clips")
        axis.set_ylabel("test WAR (%)")
        axis.legend()
        figure.tight_layout()
        figure.savefig(args.plot, dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
