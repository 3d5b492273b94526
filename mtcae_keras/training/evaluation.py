"""Test-set metrics: WAR / UAR / confusion matrix, face-box IoU and landmark error."""

import numpy as np
from sklearn.metrics import confusion_matrix
from sklearn.metrics import recall_score


def classification_metrics(labels, predictions, class_names):
    """WAR (accuracy), UAR (mean recall over the classes present), per-class recall, confusion.

    Args:
        labels: int array `(N,)` of true classes.
        predictions: int array `(N,)` of predicted classes.
        class_names: list of str, index = class id.

    Returns:
        dict with `war`, `uar`, `per_class_recall` (None for a class absent from `labels`),
        `confusion_matrix` (rows: true, columns: predicted, all classes), `support`, `count`.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    classes = list(range(len(class_names)))
    matrix = confusion_matrix(labels, predictions, labels=classes)
    present = sorted(set(labels.tolist()))
    recalls = recall_score(labels, predictions, labels=present, average=None, zero_division=0)
    per_class = {name: None for name in class_names}
    for cls, recall in zip(present, recalls, strict=True):
        per_class[class_names[cls]] = float(recall)
    return {
        "war": float(np.mean(labels == predictions)) if len(labels) else 0.0,
        "uar": float(np.mean(recalls)) if present else 0.0,
        "per_class_recall": per_class,
        "confusion_matrix": matrix.tolist(),
        "support": {name: int(n) for name, n in zip(class_names, matrix.sum(1), strict=True)},
        "count": int(len(labels)),
    }


def box_iou(predicted, target):
    """IoU of `[x, y, w, h]` boxes, elementwise over leading dimensions."""
    p, t = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    x1 = np.maximum(p[..., 0], t[..., 0])
    y1 = np.maximum(p[..., 1], t[..., 1])
    x2 = np.minimum(p[..., 0] + p[..., 2], t[..., 0] + t[..., 2])
    y2 = np.minimum(p[..., 1] + p[..., 3], t[..., 1] + t[..., 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = np.clip(p[..., 2], 0, None) * np.clip(p[..., 3], 0, None) + t[..., 2] * t[..., 3]
    return inter / np.maximum(area - inter, 1e-12)


def landmark_nme(predicted, target):
    """Mean point error over the 5 landmarks divided by the inter-ocular distance."""
    p = np.asarray(predicted, np.float64).reshape(*np.shape(predicted)[:-1], 5, 2)
    t = np.asarray(target, np.float64).reshape(*np.shape(target)[:-1], 5, 2)
    ocular = np.linalg.norm(t[..., 0, :] - t[..., 1, :], axis=-1)
    return np.linalg.norm(p - t, axis=-1).mean(-1) / np.maximum(ocular, 1e-12)


def localisation_metrics(pred_boxes, boxes, pred_landmarks, landmarks, face_found):
    """Mean box IoU and landmark NME over the frames with a detected face."""
    mask = np.asarray(face_found, bool)
    if not mask.any():
        return {"box_iou": None, "landmark_nme": None, "frames": 0}
    return {
        "box_iou": float(box_iou(pred_boxes, boxes)[mask].mean()),
        "landmark_nme": float(landmark_nme(pred_landmarks, landmarks)[mask].mean()),
        "frames": int(mask.sum()),
    }
