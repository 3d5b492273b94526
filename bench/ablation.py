"""The paper's Table 1 in miniature: the six structure strategies on synthetic_faces, one recipe.

    python bench/ablation.py [--dataset-config small] [--seeds 0 1 2] [--folds 0 1 2 3 4]
        [--strategies stl nfs_mlp nfs_vit fs_mlp fs_vit cascaded_vit] [--epochs 20]
        [--runs runs/ablation] [--output bench/results/ablation_cpu.json]
        [--plot bench/results/ablation_cpu.png]

Every strategy is cross-validated (`cross_validate.py`: every fold, `--validation actors`)
once per seed with the demo's recipe and nothing else changed; the recipe is not tuned per
strategy, and no number here chose it. Runs already finished are kept, so the script
resumes. Prints, per strategy, the UAR / WAR of the folds' predictions pooled (mean ± sample
standard deviation over the seeds) beside the paper's CREMA-D row of Table 1 (6 classes,
like synthetic_faces), and the ordering of both. The cost is 6 x seeds x folds demo-sized
runs: about 8 minutes each on a 2-core CPU, so the full table is a GPU job or a night's.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRATEGIES = ("stl", "nfs_mlp", "nfs_vit", "fs_mlp", "fs_vit", "cascaded_vit")
# Table 1 of the paper, CREMA-D (UAR, WAR %), as ../shared/docs/reference.md gives it.
PAPER_CREMA_D = {"stl": (75.87, 76.21), "nfs_mlp": (77.23, 79.89), "nfs_vit": (83.40, 83.67),
                 "fs_mlp": (76.25, 77.55), "fs_vit": (81.64, 82.38),
                 "cascaded_vit": (84.71, 85.03)}  # fmt: skip


def strategy_rows(pooled_by_strategy):
    """`{strategy: [pooled metrics per seed]}` -> rows of mean and spread over the seeds."""
    import numpy as np

    rows = {}
    for strategy, runs in pooled_by_strategy.items():
        uar = np.array([100 * run["uar"] for run in runs])
        war = np.array([100 * run["war"] for run in runs])
        ddof = 1 if len(runs) > 1 else 0
        rows[strategy] = {"uar": float(uar.mean()), "uar_std": float(uar.std(ddof=ddof)),
                          "war": float(war.mean()), "war_std": float(war.std(ddof=ddof)),
                          "seeds": len(runs)}  # fmt: skip
    return rows


def ordering(values):
    """Strategies from best to worst by `values[strategy]`."""
    return sorted(values, key=lambda strategy: -values[strategy])


def table(rows):
    """Markdown: ours (pooled over folds, mean ± s.d. over seeds) beside the paper's."""
    lines = ["| strategy | ours UAR % | ours WAR % | seeds | paper CREMA-D UAR / WAR |",
             "|---|---|---|---|---|"]  # fmt: skip
    for strategy, row in rows.items():
        paper = PAPER_CREMA_D[strategy]
        lines.append(
            f"| {strategy} | {row['uar']:.2f} ± {row['uar_std']:.2f} | "
            f"{row['war']:.2f} ± {row['war_std']:.2f} | {row['seeds']} | "
            f"{paper[0]:.2f} / {paper[1]:.2f} |"
        )
    ours = ordering({s: row["uar"] for s, row in rows.items()})
    theirs = ordering({s: PAPER_CREMA_D[s][0] for s in rows})
    lines += ["", f"UAR order, ours:  {' > '.join(ours)}",
              f"UAR order, paper: {' > '.join(theirs)}"]  # fmt: skip
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(rows)
    x = np.arange(len(names))
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.bar(x - 0.2, [rows[n]["uar"] for n in names], 0.4,
             yerr=[rows[n]["uar_std"] for n in names], label="ours (synthetic_faces)")  # fmt: skip
    axis.bar(x + 0.2, [PAPER_CREMA_D[n][0] for n in names], 0.4, label="paper (CREMA-D)")
    axis.set_xticks(x, names)
    axis.set_ylabel("UAR % (folds pooled)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset-config", default="small")
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--folds", type=int, nargs="+", help="default: every fold")
    parser.add_argument("--epochs", type=int, help="default: the demo's")
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "ablation"))
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "runs", "tfds"))
    parser.add_argument("--output", help="also write the rows as JSON")
    parser.add_argument("--plot", help="also draw ours beside the paper's (PNG)")
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    import cross_validate

    start = time.time()
    pooled = {}
    for strategy in args.strategies:
        for seed in args.seeds:
            root = os.path.join(args.runs, strategy, f"seed{seed}")
            argv = ["--dataset", "synthetic_faces", "--dataset-config", args.dataset_config,
                    "--strategy", strategy, "--seed", str(seed), "--data-dir", args.data_dir,
                    "--output", root, "--verbose", "2"]  # fmt: skip
            argv += ["--folds", *map(str, args.folds)] if args.folds else []
            argv += ["--epochs", str(args.epochs)] if args.epochs else []
            if cross_validate.main(argv):
                return 1
            with open(os.path.join(root, "pooled_metrics.json")) as file:
                pooled.setdefault(strategy, []).append(json.load(file)["pooled"])
    rows = strategy_rows(pooled)
    print(table(rows))
    print(f"{time.time() - start:.0f} s")
    if args.output:
        with open(args.output, "w") as file:
            json.dump({"settings": vars(args), "rows": rows, "paper_crema_d": PAPER_CREMA_D},
                      file, indent=2)  # fmt: skip
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
