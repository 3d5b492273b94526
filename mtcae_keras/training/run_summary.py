"""Tables over several evaluated runs: folds pooled (cross-validation) or runs averaged
(ensembles), in the form of the paper's tables."""

import json
import os

import numpy as np
from scipy.special import softmax

from mtcae_keras.training.affect_evaluation import ensemble_affect
from mtcae_keras.training.affect_evaluation import is_affect_prediction
from mtcae_keras.training.run_evaluation import is_optimistic
from mtcae_keras.training.run_evaluation import load_run_config
from mtcae_keras.training.run_evaluation import metrics_from_predictions
from mtcae_keras.training.run_evaluation import plot_confusion_matrix
from mtcae_keras.training.run_evaluation import pool_predictions
from mtcae_keras.training.run_evaluation import run_file

# The metrics of a table row, as percentages (`uar`, `war`) or as they are; runs of the
# `affect` tasks have the second group (`affect_evaluation`), the others the first.
TABLE_METRICS = ("uar", "war", "box_iou", "landmark_nme")
AFFECT_TABLE_METRICS = ("uar", "war", "ccc_valence", "ccc_arousal", "expression_f1",
                        "action_unit_f1", "p_mtl", "p_mtl_smoothed")  # fmt: skip


def load_predictions(run_dir):
    """A run's `predictions.npz` (written by `evaluate_run`) as a dict of arrays."""
    with np.load(run_file(run_dir, "predictions.npz", "evaluate the run first.")) as data:
        return {key: data[key] for key in data.files}


def load_metrics(run_dir):
    with open(run_file(run_dir, "metrics.json", "evaluate the run first.")) as file:
        return json.load(file)


def mean_and_spread(metrics_list):
    """Mean and sample standard deviation (n - 1; 0 for one run) over runs of each
    `TABLE_METRICS` entry every run has: `(mean, std)` dicts."""
    keys = [k for k in dict.fromkeys(TABLE_METRICS + AFFECT_TABLE_METRICS)
            if all(m.get(k) is not None for m in metrics_list)]  # fmt: skip
    values = {key: np.array([m[key] for m in metrics_list], np.float64) for key in keys}
    mean = {key: float(v.mean()) for key, v in values.items()}
    ddof = 1 if len(metrics_list) > 1 else 0
    std = {key: float(v.std(ddof=ddof)) for key, v in values.items()}
    return mean, std


def _class_names(configs):
    class_names = configs[0]["class_names"]
    if any(config["class_names"] != class_names for config in configs):
        raise ValueError("The runs have different class lists; they cannot be combined.")
    return class_names


def _row_name(config):
    return f"{config['dataset_name']} fold {config['fold']} {config['strategy']}"


def _summary(kind, run_dirs, configs, final, warnings=(), **extra):
    """What `pooled_summary` and `ensemble_summary` share; `final`: the combined metrics."""
    metrics_list = [load_metrics(run_dir) for run_dir in run_dirs]
    mean, std = mean_and_spread(metrics_list)
    return {
        "kind": kind,
        "rows": [(_row_name(c), m) for c, m in zip(configs, metrics_list, strict=True)],
        "mean": mean,
        "std": std,
        kind: final,
        "optimistic": any(is_optimistic(config) for config in configs),
        "validation": sorted({config.get("validation", "fold") for config in configs}),
        "warnings": list(warnings),
        "class_names": configs[0]["class_names"],
        "runs": [os.path.abspath(run_dir) for run_dir in run_dirs],
        **extra,
    }


def pooled_summary(run_dirs):
    """Per-run metrics, their mean +- std, and the metrics of all predictions pooled.

    The runs are usually the folds of one cross-validation (MAE-DFER pools its folds'
    predictions); a fold given twice would count its clips twice, which is reported.

    Args:
        run_dirs: list of evaluated run dirs (`metrics.json`, `predictions.npz`).

    Returns:
        dict `rows` (name, metrics per run), `mean`, `std`, `pooled`, `optimistic`,
        `warnings`, `class_names`, `runs`.
    """
    configs = [load_run_config(run_dir) for run_dir in run_dirs]
    pooled = metrics_from_predictions(
        pool_predictions([load_predictions(run_dir) for run_dir in run_dirs]),
        _class_names(configs),
    )
    folds = [config["fold"] for config in configs]
    warnings = []
    if len(set(folds)) != len(folds):
        warnings.append(f"folds {folds} repeat: pooled clips are counted more than once")
    return _summary("pooled", run_dirs, configs, pooled, warnings)


def ensemble_predictions(prediction_sets):
    """The ensemble of runs on the same clips: class probabilities (softmax of each run's
    logits) averaged, and box / landmark predictions averaged, clip by clip.

    Rows are matched by `clip_id` (in the first run's order); every run must hold the same
    clips with the same labels. `logits` of the result are the log of the averaged
    probabilities (their argmax is the ensemble's prediction).
    """
    first = prediction_sets[0]
    order = {clip: index for index, clip in enumerate(first["clip_id"])}
    aligned = []
    for number, predictions in enumerate(prediction_sets):
        if sorted(predictions["clip_id"]) != sorted(first["clip_id"]):
            raise ValueError(
                f"Run {number} of the ensemble was tested on other clips than run 0: an "
                "ensemble averages runs on the same test fold."
            )
        index = np.argsort([order[clip] for clip in predictions["clip_id"]])
        aligned.append({key: value[index] for key, value in predictions.items()})
        if not np.array_equal(aligned[-1]["label"], first["label"]):
            raise ValueError(f"Run {number} of the ensemble has other labels for the same clips.")
    probabilities = np.mean([softmax(np.float64(p["logits"]), axis=-1) for p in aligned], 0)
    ensemble = {key: value for key, value in first.items()
                if not key.startswith("pred_") and key != "view_logits"}  # fmt: skip
    ensemble["probabilities"] = probabilities.astype(np.float32)
    ensemble["logits"] = np.log(np.maximum(probabilities, 1e-30)).astype(np.float32)
    for key in ("pred_boxes", "pred_landmarks"):
        if all(key in p for p in aligned):
            ensemble[key] = np.mean([p[key] for p in aligned], axis=0).astype(np.float32)
    if all(is_affect_prediction(p) for p in aligned):
        ensemble.update(ensemble_affect(aligned))
    return ensemble


def ensemble_summary(run_dirs):
    """Each member's metrics and those of their ensemble (`ensemble_predictions`).

    Args:
        run_dirs: list of evaluated run dirs tested on the same fold of the same dataset
            (seeds, strategies or encoders).

    Returns:
        dict as `pooled_summary`, with `ensemble` (its metrics) and `predictions` (its
        predictions) instead of `pooled`.
    """
    configs = [load_run_config(run_dir) for run_dir in run_dirs]
    class_names = _class_names(configs)
    tested = {(c["dataset_name"], c.get("dataset_config"), c["fold"]) for c in configs}
    if len(tested) > 1:
        raise ValueError(
            f"An ensemble averages runs on the same test fold; these test on {sorted(tested)}. "
            "To pool the folds of a cross-validation, leave out --ensemble."
        )
    predictions = ensemble_predictions([load_predictions(run_dir) for run_dir in run_dirs])
    ensemble = metrics_from_predictions(predictions, class_names)
    return _summary("ensemble", run_dirs, configs, ensemble, predictions=predictions)


def _cell(metrics, key, spread=None):
    value = metrics.get(key)
    if value is None:
        return "-"
    scale, digits = (100.0, 2) if key in ("uar", "war") else (1.0, 3)
    text = f"{scale * value:.{digits}f}"
    if spread is not None and spread.get(key) is not None:
        text += f" ± {scale * spread[key]:.{digits}f}"
    return text


def summary_table(summary):
    """The summary as a Markdown table: a row per run, mean ± std, then pooled or ensemble.

    Runs of the `affect` tasks get the challenge's columns (CCC, F1, P_MTL raw and with the
    validation-chosen smoothing) instead of the localisation ones.
    """
    final = summary["kind"]
    affect = "p_mtl" in summary[final]
    keys = AFFECT_TABLE_METRICS if affect else TABLE_METRICS
    titles = {"uar": "UAR %", "war": "WAR %", "box_iou": "box IoU",
              "landmark_nme": "landmark NME", "ccc_valence": "CCC V", "ccc_arousal": "CCC A",
              "expression_f1": "expr. F1", "action_unit_f1": "AU F1", "p_mtl": "P_MTL",
              "p_mtl_smoothed": "P_MTL smoothed"}  # fmt: skip
    columns = [titles[key] for key in keys]
    columns.insert(2, "clips")
    lines = ["| run | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]

    def row(name, metrics, spread=None, count=None):
        cells = [_cell(metrics, key, spread) for key in keys]
        cells.insert(2, str(metrics.get("count", "") if count is None else count))
        return f"| {name} | " + " | ".join(cells) + " |"

    for name, metrics in summary["rows"]:
        lines.append(row(name, metrics))
    runs = len(summary["rows"])
    lines.append(row(f"mean ± s.d. ({runs} runs)", summary["mean"], summary["std"], count=""))
    lines.append(row(f"{final} ({runs} runs)", summary[final]))
    if summary["optimistic"]:
        lines.append("")
        lines.append("Optimistic: at least one run selected its checkpoint on its test fold "
                     "(--validation test).")  # fmt: skip
    return "\n".join(lines)


def write_summary(summary, output):
    """Writes `{kind}_metrics.json`, `{kind}_table.md` and `{kind}_confusion_matrix.png`
    (and for an ensemble `ensemble_predictions.npz`) into `output`; returns their paths."""
    os.makedirs(output, exist_ok=True)
    kind = summary["kind"]
    record = {key: value for key, value in summary.items() if key != "predictions"}
    record["rows"] = [{"name": name, **metrics} for name, metrics in summary["rows"]]
    paths = {
        "metrics": os.path.join(output, f"{kind}_metrics.json"),
        "table": os.path.join(output, f"{kind}_table.md"),
        "confusion_matrix": os.path.join(output, f"{kind}_confusion_matrix.png"),
    }
    with open(paths["metrics"], "w") as file:
        json.dump(record, file, indent=2)
    with open(paths["table"], "w") as file:
        file.write(summary_table(summary) + "\n")
    final = summary[kind]
    title = f"{kind} over {len(summary['rows'])} runs: UAR {100 * final['uar']:.1f}"
    if summary["optimistic"]:
        title += " (optimistic)"
    plot_confusion_matrix(
        final["confusion_matrix"], summary["class_names"], paths["confusion_matrix"], title
    )
    if "predictions" in summary:
        paths["predictions"] = os.path.join(output, f"{kind}_predictions.npz")
        np.savez(paths["predictions"], **summary["predictions"])
    return paths
