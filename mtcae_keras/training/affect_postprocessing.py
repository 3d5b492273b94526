"""The ABAW4 system's post-processing: temporal smoothing of per-frame predictions (its window
chosen on validation sequences) and ensembles of several runs."""

import numpy as np

from mtcae_keras.training.affect_metrics import concordance_correlation

# AIM3-RUC/ABAW4's `smooth_func` searches windows 0, 5, 10, 15.
SMOOTHING_WINDOWS = (0, 5, 10, 15)


def smooth_sequence(values, window):
    """Centred moving average of one sequence `(steps, ...)`: step `t` averages steps
    `max(0, t - window) .. min(steps, t + window)`, fewer at the ends (AIM3-RUC/ABAW4's
    `smooth_predictions` with its mean). `window=0` returns the values unchanged."""
    values = np.asarray(values, np.float64)
    if window == 0:
        return values.copy()
    steps = len(values)
    sums = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])
    t = np.arange(steps)
    left, right = np.maximum(0, t - window), np.minimum(steps, t + window + 1)
    counts = (right - left).reshape(-1, *([1] * (values.ndim - 1)))
    return (sums[right] - sums[left]) / counts


def smooth_predictions(sequences, window):
    """`smooth_sequence` applied to each sequence (a list of arrays, one per video)."""
    return [smooth_sequence(sequence, window) for sequence in sequences]


def choose_smoothing_window(predictions, labels, windows=SMOOTHING_WINDOWS):
    """The window whose smoothing gives the highest CCC on *validation* sequences.

    Pass validation predictions and labels only: the chosen window is then applied to the
    test sequences (`smooth_predictions`), which are never looked at to choose it.

    Args:
        predictions: list of `(steps,)` arrays (one task, e.g. valence), one per video.
        labels: list of `(steps,)` arrays of the same lengths (-5 = missing).
        windows: candidate half-widths.

    Returns:
        `(window, {window: validation CCC})`.
    """
    truth = np.concatenate([np.ravel(x) for x in labels])
    scores = {}
    for window in windows:
        smoothed = np.concatenate([np.ravel(x) for x in smooth_predictions(predictions, window)])
        scores[window] = concordance_correlation(truth, smoothed)
    return max(scores, key=lambda w: scores[w]), scores


def ensemble_outputs(runs):
    """The mean of several runs' outputs, per task: probabilities (expression softmax, AU
    sigmoid) and V/A regressions averaged, as the paper's ensembles.

    Args:
        runs: list of dicts task -> array, each with `valence` / `arousal` predictions,
            `expression` logits and `action_units` logits of the same frames.

    Returns:
        dict with the averaged `valence`, `arousal`, `expression_probabilities` and
        `action_units_probabilities` (whichever the runs have).
    """
    if not runs:
        raise ValueError("An ensemble needs at least one run.")
    tasks = set(runs[0])
    if any(set(run) != tasks for run in runs):
        raise ValueError(f"Runs predict different tasks: {[sorted(run) for run in runs]}.")
    averaged = {}
    for task in tasks:
        values = [np.asarray(run[task], np.float64) for run in runs]
        if task == "expression":
            values = [np.exp(v - v.max(-1, keepdims=True)) for v in values]
            values = [v / v.sum(-1, keepdims=True) for v in values]
            task = "expression_probabilities"
        elif task == "action_units":
            values = [1 / (1 + np.exp(-v)) for v in values]
            task = "action_units_probabilities"
        averaged[task] = np.mean(values, axis=0)
    return averaged
