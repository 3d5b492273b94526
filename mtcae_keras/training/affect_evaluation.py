"""Test metrics of runs on the `affect` tasks: per-frame CCC, F1 and P_MTL, raw and with the
temporal smoothing chosen on the run's validation clips.

A run's predictions (`predictions.npz`, `run_evaluation._predict`) hold, per clip and frame,
the labels `valence`, `arousal`, `action_units`, `frame_label` (the per-frame expression)
and the model's `pred_valence`, `pred_arousal`, `pred_action_units` (logits) and
`pred_frame_expression` (logits). Each clip is one sequence: smoothing never crosses from one
clip into the next.
"""

import numpy as np

from mtcae_keras.training.affect_metrics import affect_metrics
from mtcae_keras.training.affect_postprocessing import choose_smoothing_window
from mtcae_keras.training.affect_postprocessing import smooth_predictions

# The tasks whose predictions are smoothed (AIM3-RUC/ABAW4 smooths the regressions).
SMOOTHED_TASKS = ("valence", "arousal")
AFFECT_METRICS = ("ccc_valence", "ccc_arousal", "expression_f1", "action_unit_f1", "p_mtl")


def is_affect_prediction(predictions):
    """Whether a prediction set holds the per-frame affect tasks."""
    return "pred_valence" in predictions


def choose_smoothing(validation_predictions):
    """Per smoothed task, the window with the best CCC on the *validation* clips.

    Returns:
        dict task -> `{"window": int, "validation_ccc": {window: CCC}}`.
    """
    chosen = {}
    for task in SMOOTHED_TASKS:
        window, scores = choose_smoothing_window(
            list(validation_predictions[f"pred_{task}"]), list(validation_predictions[task])
        )
        scores = {str(w): float(c) for w, c in scores.items()}
        chosen[task] = {"window": int(window), "validation_ccc": scores}
    return chosen


def add_smoothed(predictions, smoothing):
    """`predictions` with `pred_<task>_smoothed` for each task of `smoothing`
    (`choose_smoothing`'s), each clip smoothed on its own."""
    smoothed = dict(predictions)
    for task, choice in smoothing.items():
        rows = smooth_predictions(list(predictions[f"pred_{task}"]), choice["window"])
        smoothed[f"pred_{task}_smoothed"] = np.asarray(rows, np.float32)
    return smoothed


def affect_prediction_metrics(predictions, num_classes):
    """`affect_metrics` of a prediction set, and with `pred_<task>_smoothed` where it has
    them the same under `_smoothed` names (`ccc_valence_smoothed`, ..., `p_mtl_smoothed`).

    Args:
        predictions: dict of arrays (one run's, pooled runs' or an ensemble's).
        num_classes: int. Expression classes (the macro F1 averages over all of them).
    """
    labels = {"valence": predictions["valence"], "arousal": predictions["arousal"],
              "expression": predictions["frame_label"],
              "action_units": predictions["action_units"]}  # fmt: skip
    outputs = {"valence": predictions["pred_valence"], "arousal": predictions["pred_arousal"],
               "expression": predictions["pred_frame_expression"],
               "action_units": predictions["pred_action_units"]}  # fmt: skip
    metrics = affect_metrics(labels, outputs, num_classes)
    if all(f"pred_{task}_smoothed" in predictions for task in SMOOTHED_TASKS):
        smoothed = {**outputs, **{task: predictions[f"pred_{task}_smoothed"]
                                  for task in SMOOTHED_TASKS}}  # fmt: skip
        again = affect_metrics(labels, smoothed, num_classes)
        for key in ("ccc_valence", "ccc_arousal", "p_mtl"):
            metrics[f"{key}_smoothed"] = again[key]
    return metrics


def ensemble_affect(aligned):
    """The affect part of an ensemble of aligned prediction sets: V / A (raw and smoothed)
    averaged; expression and action units averaged as probabilities and stored back as
    logits (log-probabilities; for action units the log-odds of the mean probability), so
    the ensemble is scored like one run. Each member keeps its own validation-chosen window:
    the mean of smoothed members (smoothing is linear)."""
    from mtcae_keras.training.affect_postprocessing import ensemble_outputs

    averaged = ensemble_outputs([{"expression": p["pred_frame_expression"],
                                  "action_units": p["pred_action_units"]}
                                 for p in aligned])  # fmt: skip
    result = {}
    for key in ("pred_valence", "pred_arousal", "pred_valence_smoothed", "pred_arousal_smoothed"):
        if all(key in p for p in aligned):
            result[key] = np.mean([p[key] for p in aligned], axis=0).astype(np.float32)
    probabilities = np.clip(averaged["action_units_probabilities"], 1e-7, 1 - 1e-7)
    result["pred_action_units"] = np.log(probabilities / (1 - probabilities)).astype(np.float32)
    result["pred_frame_expression"] = np.log(
        np.maximum(averaged["expression_probabilities"], 1e-30)
    ).astype(np.float32)
    return result
