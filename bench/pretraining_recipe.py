"""Choose label_efficiency.py's pre-training recipe on validation clips, never on a test fold.

    python bench/pretraining_recipe.py [--fold 0] [--fraction 0.25]
        [--pretrain-epochs 20 60] [--lrs 1e-3 3e-4] [--pretrain-sources fold extra]
        [--output runs/label_efficiency/recipe.json]

On one tuning fold and one labelled fraction, every candidate is run as
`bench/label_efficiency.py` runs it: `pretrain.py` on the fold's training folds (or on
`synthetic_faces/extra`, 240 actors of their own: `--pretrain-sources fold extra`) for each
pre-training length, then `train.py` on the fraction of labelled clips with each fine-tuning
learning rate, for the pre-trained arm and (with the same learning rates, so both arms get
the same tuning budget) the from-scratch arm. A run is scored by the validation-fold UAR of
the checkpoint it selected (the quantity train.py monitors); the test fold's numbers, which
train.py also writes, are not read. The best candidate of each arm is written as the choice
that `label_efficiency.py --recipe FILE` then reports on the test folds, once.
Finished runs are reused (same directories as label_efficiency.py), so it can be resumed.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from label_efficiency import ROOT  # noqa: E402
from label_efficiency import fine_tune  # noqa: E402
from label_efficiency import pretrain  # noqa: E402
from label_efficiency import validation_uar  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--pretrain-epochs", type=int, nargs="+", default=[20, 60])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-4])
    parser.add_argument("--pretrain-sources", nargs="+", default=["fold"],
                        choices=["fold", "extra"],
                        help="fold: the tuning fold's training videos; extra: "
                        "synthetic_faces/extra, 240 actors in no fold")  # fmt: skip
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "label_efficiency"))
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "runs", "tfds"))
    parser.add_argument("--output", default=os.path.join(ROOT, "runs", "label_efficiency",
                                                         "recipe.json"))  # fmt: skip
    args = parser.parse_args()
    os.makedirs(args.runs, exist_ok=True)
    log = os.path.join(args.runs, "log.txt")
    seconds = {}
    candidates = []
    for lr in args.lrs:
        run_dir = fine_tune(args.runs, args.fold, args.fraction, None, lr, args.data_dir, log,
                            seconds)  # fmt: skip
        candidates.append({"arm": "scratch", "lr": lr, "run": os.path.basename(run_dir),
                           "val_uar": validation_uar(run_dir)})  # fmt: skip
        print(candidates[-1], flush=True)
    for source in args.pretrain_sources:
        for epochs in args.pretrain_epochs:
            encoder = pretrain(args.runs, args.fold, epochs, args.data_dir, log, seconds, source)
            for lr in args.lrs:
                run_dir = fine_tune(args.runs, args.fold, args.fraction, encoder, lr,
                                    args.data_dir, log, seconds, pretrain_epochs=epochs,
                                    pretrain_source=source)  # fmt: skip
                candidates.append({"arm": "pretrained", "pretrain_source": source,
                                   "pretrain_epochs": epochs, "lr": lr,
                                   "run": os.path.basename(run_dir),
                                   "val_uar": validation_uar(run_dir)})  # fmt: skip
                print(candidates[-1], flush=True)

    print(f"\nfold {args.fold}, {args.fraction:.0%} of the labels: validation UAR of each "
          "candidate (test fold not read)")  # fmt: skip
    print("| arm | pre-training videos | epochs | fine-tuning lr | validation UAR |")
    print("|---|---|---|---|---|")
    for c in candidates:
        source, epochs = c.get("pretrain_source", "-"), c.get("pretrain_epochs", "-")
        print(f"| {c['arm']} | {source} | {epochs} | {c['lr']:g} | {100 * c['val_uar']:.1f} |")
    best = {
        arm: max((c for c in candidates if c["arm"] == arm), key=lambda c: c["val_uar"])
        for arm in ("scratch", "pretrained")
    }
    choice = {
        "pretrain_source": best["pretrained"].get("pretrain_source", "fold"),
        "pretrain_epochs": best["pretrained"]["pretrain_epochs"],
        "pretrained_lr": best["pretrained"]["lr"],
        "scratch_lr": best["scratch"]["lr"],
    }
    print(f"choice: {choice}")
    with open(args.output, "w") as file:
        json.dump({"fold": args.fold, "fraction": args.fraction, "candidates": candidates,
                   "choice": choice, "seconds": seconds}, file, indent=2)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
