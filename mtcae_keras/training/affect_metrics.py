"""The ABAW multi-task challenge's per-frame metrics, with missing labels left out.

Missing labels follow Aff-Wild2's annotation files: -5 for valence / arousal, -1 for the
expression and for each action unit. Every metric is computed over the frames whose label
of that task (for action units: of that unit) is present.

The challenge's score (Kollias, "ABAW: Learning from Synthetic Data & Multi-Task Learning
Challenges", ECCV 2022 Workshops, arXiv 2207.01138) adds the three tasks' measures::

    P_MTL = (CCC_V + CCC_A) / 2 + (sum of the 8 expressions' F1) / 8 + (sum of the 12 AUs' F1) / 12

so it lies in [-1, 3]. The expression term is the macro F1 over *all* classes: a class absent
from both the labels and the predictions scores F1 = 0 there (scikit-learn's
`f1_score(labels=range(C), average="macro", zero_division=0)`).
"""

import numpy as np

MISSING_AFFECT = -5.0
MISSING_CLASS = -1


def concordance_correlation(y_true, y_pred):
    """Lin's concordance correlation coefficient, population moments (as AIM3-RUC/ABAW4's
    `evaluate_regression` and the challenge), over the labelled frames (`y_true != -5`).

    `2 cov(x, y) / (var x + var y + (mean x - mean y)^2)`; nan without a labelled frame.
    """
    y_true, y_pred = np.ravel(y_true).astype(np.float64), np.ravel(y_pred).astype(np.float64)
    keep = y_true != MISSING_AFFECT
    x, y = y_true[keep], y_pred[keep]
    if not x.size:
        return float("nan")
    covariance = np.mean((x - x.mean()) * (y - y.mean()))
    return float(2 * covariance / (x.var() + y.var() + (x.mean() - y.mean()) ** 2))


def expression_f1(labels, predictions, num_classes):
    """Macro F1 over all `num_classes` of the labelled frames (`labels != -1`).

    Args:
        labels: int array of class indices, any shape.
        predictions: class indices of the same shape, or scores with a trailing class axis.
        num_classes: int.

    Returns:
        `(macro F1, per-class F1 array)`.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if predictions.ndim == labels.ndim + 1:  # scores: the best class
        predictions = predictions.argmax(-1)
    labels, predictions = np.ravel(labels).astype(np.int64), np.ravel(predictions).astype(np.int64)
    keep = labels != MISSING_CLASS
    labels, predictions = labels[keep], predictions[keep]
    per_class = np.zeros(num_classes)
    for c in range(num_classes):
        true_positive = np.sum((predictions == c) & (labels == c))
        denominator = np.sum(predictions == c) + np.sum(labels == c)
        per_class[c] = 2 * true_positive / denominator if denominator else 0.0
    return float(per_class.mean()), per_class


def action_unit_f1(labels, scores, threshold=0.5):
    """Binary F1 of each action unit over its labelled frames (`labels != -1`), and their mean.

    Args:
        labels: `(..., units)` of 0 / 1 / -1.
        scores: `(..., units)` probabilities (or 0 / 1 decisions): a unit is on at
            `score >= threshold`.
        threshold: float.

    Returns:
        `(mean F1, per-unit F1 array)`; a unit with no positive label nor prediction scores 0.
    """
    labels = np.asarray(labels).reshape(-1, np.shape(labels)[-1])
    on = np.asarray(scores).reshape(labels.shape) >= threshold
    per_unit = np.zeros(labels.shape[1])
    for u in range(labels.shape[1]):
        keep = labels[:, u] != MISSING_CLASS
        truth, guess = labels[keep, u] == 1, on[keep, u]
        denominator = truth.sum() + guess.sum()
        per_unit[u] = 2 * np.sum(truth & guess) / denominator if denominator else 0.0
    return float(per_unit.mean()), per_unit


def p_mtl(ccc_valence, ccc_arousal, expression_macro_f1, action_unit_mean_f1):
    """The ABAW4 multi-task score: mean CCC + expression macro F1 + mean AU F1."""
    return (ccc_valence + ccc_arousal) / 2 + expression_macro_f1 + action_unit_mean_f1


def affect_metrics(labels, outputs, num_classes=8, au_threshold=0.5):
    """Every per-frame measure of the tasks present, and P_MTL when all four are.

    Args:
        labels: dict with any of `valence`, `arousal` (floats, -5 missing), `expression`
            (class indices, -1 missing), `action_units` (0 / 1, -1 missing).
        outputs: dict of the same keys: V / A predictions, expression logits (or
            `expression_probabilities`), action-unit logits (a sigmoid is applied) or
            `action_units_probabilities` (what `ensemble_outputs` gives).
        num_classes: int. Expression classes.
        au_threshold: float. Probability at which a unit counts as on.

    Returns:
        dict: `ccc_valence`, `ccc_arousal`, `expression_f1` (+ `expression_f1_per_class`),
        `action_unit_f1` (+ `action_unit_f1_per_unit`), `p_mtl`.
    """
    metrics = {}
    for task in ("valence", "arousal"):
        if task in labels:
            metrics[f"ccc_{task}"] = concordance_correlation(labels[task], outputs[task])
    if "expression" in labels:
        scores = outputs.get("expression_probabilities", outputs.get("expression"))
        macro, per_class = expression_f1(labels["expression"], scores, num_classes)
        metrics["expression_f1"], metrics["expression_f1_per_class"] = macro, per_class.tolist()
    if "action_units" in labels:
        probabilities = outputs.get("action_units_probabilities")
        if probabilities is None:
            probabilities = 1 / (1 + np.exp(-np.asarray(outputs["action_units"], np.float64)))
        mean, per_unit = action_unit_f1(labels["action_units"], probabilities, au_threshold)
        metrics["action_unit_f1"], metrics["action_unit_f1_per_unit"] = mean, per_unit.tolist()
    if {"ccc_valence", "ccc_arousal", "expression_f1", "action_unit_f1"} <= set(metrics):
        metrics["p_mtl"] = p_mtl(metrics["ccc_valence"], metrics["ccc_arousal"],
                                 metrics["expression_f1"], metrics["action_unit_f1"])  # fmt: skip
    return metrics
