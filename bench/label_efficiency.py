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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.25, 1.0])
    parser.add_argument("--pretrain-epochs", type=int, default=20)
    parser.add_argument("--full-label-folds", type=int, nargs="+",
                        help="fraction 1.0 on these folds only (the longest runs)")  # fmt: skip
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "label_efficiency"))
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "runs", "tfds"))
    parser.add_argument("--output", help="also write the measurements as JSON")
    parser.add_argument("--plot", help="also draw WAR against the labelled fraction (PNG)")
    args = parser.parse_args()
    os.makedirs(args.runs, exist_ok=True)
    log = os.path.join(args.runs, "log.txt")
    results = {"pretrained": {}, "scratch": {}}
    seconds = {}
    for fold in args.folds:
        pretrain_dir = os.path.join(args.runs, f"pretrain_fold{fold}")
        encoder = os.path.join(pretrain_dir, "encoder.weights.h5")
        if not os.path.exists(encoder):
            start = time.time()
            run(["pretrain.py", *PRETRAIN, "--fold", str(fold), "--epochs",
                 str(args.pretrain_epochs), "--data-dir", args.data_dir,
                 "--output", pretrain_dir], log)  # fmt: skip
            seconds[f"pretrain_fold{fold}"] = time.time() - start
        for fraction in args.fractions:
            if fraction == 1.0 and args.full_label_folds and fold not in args.full_label_folds:
                continue
            for arm, encoder_args in (("pretrained", ["--encoder", encoder, "--no-freeze-encoder"]),
                                      ("scratch", [])):  # fmt: skip
                run_dir = os.path.join(args.runs, f"{arm}_fold{fold}_f{fraction}")
                if not os.path.exists(os.path.join(run_dir, "metrics.json")):
                    start = time.time()
                    # --validation fold: the protocol the recorded results were measured
                    # under (session 6, before --validation actors became the default).
                    run(["train.py", "--dataset", "synthetic_faces", "--fold", str(fold),
                         "--validation", "fold",
                         "--train-fraction", str(fraction), *encoder_args, "--verbose", "2",
                         "--data-dir", args.data_dir, "--output", run_dir], log)  # fmt: skip
                    seconds[os.path.basename(run_dir)] = time.time() - start
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
            json.dump({"folds": args.folds, "pretrain": PRETRAIN,
                       "pretrain_epochs": args.pretrain_epochs, "rows": rows,
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
