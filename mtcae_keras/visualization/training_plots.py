"""The plots of a run: training curves with the best epoch marked, and recall per class."""

import csv

import numpy as np

from mtcae_keras.visualization.figures import pyplot
from mtcae_keras.visualization.figures import save_figure


def read_log(path):
    """`log.csv` as `{column: np.array}` (one value per epoch)."""
    with open(path) as file:
        rows = list(csv.DictReader(file))
    if not rows:
        raise ValueError(f"{path}: no epoch logged.")
    return {key: np.array([float(row[key]) if row[key] else np.nan for row in rows])
            for key in rows[0]}  # fmt: skip


def best_epoch(log, monitor, mode):
    """The epoch (the `epoch` column's value) whose `monitor` is best (`mode` max or min):
    the one `ModelCheckpoint(save_best_only=True)` kept; the first of equals."""
    values = log[monitor]
    index = int(np.nanargmax(values) if mode == "max" else np.nanargmin(values))
    return int(log["epoch"][index])


def plot_training_curves(log, path, monitor, mode, title=None):
    """Writes losses (training and validation, log scale) and validation UAR / accuracy per
    epoch, the best epoch marked on both.

    Args:
        log: `read_log`'s columns.
        path: str. The PNG to write.
        monitor, mode: what selected the best checkpoint (e.g. `val_expression_uar`, `max`).
        title: str. The figure's title.
    """
    plt = pyplot()
    epochs, best = log["epoch"], best_epoch(log, monitor, mode)
    figure, (losses, scores) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key in sorted(log):
        if key.endswith("loss") and np.isfinite(log[key]).any():
            style = "--" if key.startswith("val_") else "-"
            losses.plot(epochs, log[key], style, label=key, linewidth=1.2)
    losses.set_yscale("log")
    losses.set_title("losses")
    for key in ("expression_uar", "val_expression_uar", "expression_accuracy",
                "val_expression_accuracy", "uar", "val_uar"):  # fmt: skip
        if key in log:
            style = "--" if key.startswith("val_") else "-"
            scores.plot(epochs, 100 * log[key], style, label=key, linewidth=1.2)
    scores.set_title("expression (%)")
    for axis in (losses, scores):
        axis.axvline(best, color="gray", linestyle=":", label=f"best epoch {best}")
        axis.set_xlabel("epoch")
        axis.legend(fontsize=7)
    return save_figure(figure, path, title)


def plot_per_class_recall(metrics, path, title=None):
    """Writes a bar per class: its recall on the test fold, its clip count, chance marked.

    Args:
        metrics: `metrics.json`'s content (`per_class_recall`, `support`, `uar`).
        path: str. The PNG to write.
        title: str. The figure's title.
    """
    plt = pyplot()
    names = list(metrics["per_class_recall"])
    recall = [100 * metrics["per_class_recall"][name] for name in names]
    figure, axis = plt.subplots(figsize=(1.2 + 0.7 * len(names), 3.4))
    bars = axis.bar(names, recall, color="tab:blue")
    for bar, name in zip(bars, names, strict=True):
        axis.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1,
                  f"n={metrics['support'][name]}", ha="center", fontsize=7)  # fmt: skip
    axis.axhline(100 / len(names), color="gray", linestyle=":", label="chance")
    axis.axhline(100 * metrics["uar"], color="tab:orange", linestyle="--", label="UAR")
    axis.set_ylim(0, 110)
    axis.set_ylabel("recall (%)")
    axis.legend(fontsize=7)
    axis.set_title(title or "recall per class")
    return save_figure(figure, path)
