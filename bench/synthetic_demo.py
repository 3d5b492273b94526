"""The demo's learning claims, measured: true labels vs a shuffled-label control, and the
localisation heads vs the trivial baseline (the training folds' mean box and landmarks).

    python3 tasks.py demo                       # trains runs/demo on the true labels
    python bench/synthetic_demo.py [--run runs/demo] [--control runs/demo_shuffled]
                                   [--seed 0] [--output bench/results/synthetic_demo_cpu.json]
                                   [--plot bench/results/synthetic_demo_cpu.png]

Trains the control with exactly the demo run's settings (read from its `config.json`) plus
`--shuffle-labels SEED`: the same clips, class counts and schedule, but training labels
permuted among the clips, so they carry no information. Validation and test keep their
true labels. A control that is already trained (`metrics.json` present) is reused.

Prints one table row per run: test WAR and UAR, box IoU and landmark NME of the model and of
the training mean, and the training time of the control (measured here). `--plot` draws both
runs' training and validation accuracy per epoch (from their `log.csv`) against chance.
"""

import argparse
import csv
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# train.py arguments that are copied from the demo run's config.json: valued, then on/off.
_COPIED = ("dataset", "dataset_config", "fold", "strategy", "encoder", "encoder_image_size",
           "decoder", "decoder_memory_saving", "epochs",
           "batch_size", "lr", "weight_decay", "lr_schedule", "normalization", "mixed_precision",
           "monitor", "lr_patience", "stop_patience", "seed", "data_dir",
           "train_fraction", "validation", "validation_share", "clip_frames",
           "temporal_sampling", "temporal_encoder", "cache_clips")  # fmt: skip
_SWITCHES = ("freeze_encoder", "standardize_targets", "decay_exclusions")
# train.py flag -> its config.json key, where they differ (`tasks` there is the task list).
_RENAMED = {"tasks": "task_set"}
_LISTS = ("loss_weights",)


def control_arguments(config, output, seed):
    """train.py arguments of the control: the run's resolved settings plus shuffled labels."""
    argv = []
    for key in _COPIED:
        value = config.get(key)
        if key == "decoder" and isinstance(value, dict):
            # The preset's settings with the overrides of --decoder-memory-saving and
            # --temporal-encoder (copied as flags themselves): the preset as given.
            value = config["arguments"]["decoder"]
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    for flag, key in _RENAMED.items():
        if config.get(key) is not None:
            argv += [f"--{flag}", str(config[key])]
    for key in _LISTS:
        if config.get(key):
            argv += [f"--{key.replace('_', '-')}", *config[key]]
    for key in _SWITCHES:
        if config.get(key) is not None:
            argv.append(f"--{'' if config[key] else 'no-'}{key.replace('_', '-')}")
    argv += ["--jit-compile", "on" if config.get("jit_compile") else "off"]
    argv += ["--augment", *(config.get("augment") or ["none"])]
    return argv + ["--shuffle-labels", str(seed), "--output", output, "--verbose", "2"]


def row(name, metrics, seconds=None):
    base = metrics.get("training_mean_baseline", {})
    cells = [f"{100 * metrics['war']:.1f}", f"{100 * metrics['uar']:.1f}"]
    for key in ("box_iou", "landmark_nme"):
        model, mean = metrics.get(key), base.get(key)
        cells.append(f"{model:.3f} / {mean:.3f}" if model is not None and mean else "-")
    cells.append(f"{seconds:.0f}" if seconds is not None else "-")
    return f"| {name} | " + " | ".join(cells) + " |"


def accuracy_curves(run_dir):
    """Per-epoch training and validation expression accuracy of a run, from its log.csv."""
    with open(os.path.join(run_dir, "log.csv")) as file:
        rows = list(csv.DictReader(file))
    return {split: [float(row[f"{prefix}expression_accuracy"]) for row in rows]
            for split, prefix in (("train", ""), ("validation", "val_"))}  # fmt: skip


def plot_curves(curves, chance, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4))
    for (name, runs), color in zip(curves.items(), ("tab:blue", "tab:red"), strict=True):
        for split, style in (("train", "--"), ("validation", "-")):
            values = [100 * v for v in runs[split]]
            axis.plot(range(1, len(values) + 1), values, style, color=color,
                      label=f"{name}, {split}")  # fmt: skip
    axis.axhline(100 * chance, color="gray", linewidth=0.8, label="chance")
    axis.set(xlabel="epoch", ylabel="expression accuracy (%)", ylim=(0, 100),
             title="synthetic_faces fold 0: true vs shuffled training labels")  # fmt: skip
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default=os.path.join(ROOT, "runs", "demo"))
    parser.add_argument("--control", default=os.path.join(ROOT, "runs", "demo_shuffled"))
    parser.add_argument("--seed", type=int, default=0, help="label permutation seed")
    parser.add_argument("--output", help="also write the measurements as JSON")
    parser.add_argument("--plot", help="also draw the accuracy curves of both runs (PNG)")
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    os.chdir(ROOT)  # the run's data_dir may be relative to the repository

    with open(os.path.join(args.run, "metrics.json")) as file:
        true_metrics = json.load(file)
    with open(os.path.join(args.run, "config.json")) as file:
        config = json.load(file)
    control_metrics_path = os.path.join(args.control, "metrics.json")
    seconds_path = os.path.join(args.control, "control_seconds.json")  # kept for a reuse
    if not os.path.exists(control_metrics_path):
        import train

        start = time.time()
        if train.main(control_arguments(config, args.control, args.seed)):
            sys.exit("the control run failed")
        with open(seconds_path, "w") as file:
            json.dump({"seconds": time.time() - start}, file)
    seconds = None
    if os.path.exists(seconds_path):
        with open(seconds_path) as file:
            seconds = json.load(file)["seconds"]
    with open(control_metrics_path) as file:
        control_metrics = json.load(file)

    chance = 100 / len(config["class_names"])
    curves = {"true labels": accuracy_curves(args.run),
              "shuffled labels": accuracy_curves(args.control)}  # fmt: skip
    print(f"\ntest fold {config['fold']} of {config['dataset']} ({config.get('dataset_config')}),"
          f" chance {chance:.1f}%; IoU / NME as model / training mean\n")  # fmt: skip
    print("| run | WAR % | UAR % | box IoU | landmark NME | control train+eval s |")
    print("|---|---|---|---|---|---|")
    print(row("true labels", true_metrics))
    print(row(f"shuffled labels (seed {args.seed})", control_metrics, seconds))
    if args.output:
        with open(args.output, "w") as file:
            json.dump({"config": {k: config.get(k) for k in _COPIED + _SWITCHES + ("augment",)},
                       "true_labels": true_metrics, "shuffled_labels": control_metrics,
                       "control_seconds": seconds, "accuracy_curves": curves}, file,
                      indent=2)  # fmt: skip
    if args.plot:
        plot_curves(curves, chance / 100, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
