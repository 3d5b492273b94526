"""Per-frame affect losses that leave missing labels out (Aff-Wild2: -5 for V/A, -1 else)."""

import keras
from keras import ops

from mtcae_keras.training.affect_metrics import MISSING_AFFECT
from mtcae_keras.training.affect_metrics import MISSING_CLASS


def _masked_mean(values, keep):
    keep = ops.cast(keep, "float32")
    return ops.sum(values * keep) / ops.maximum(ops.sum(keep), 1.0)


@keras.saving.register_keras_serializable(package="mtcae_keras")
class MaskedAffectLoss(keras.losses.Loss):
    """One task's loss, averaged over the labelled entries of the batch only.

    - `regression` (valence, arousal): squared error; labels -5 left out.
    - `classification` (per-frame expression): softmax cross-entropy on logits; -1 left out
      (PyTorch's `ignore_index=-1`, as AIM3-RUC/ABAW4).
    - `multilabel` (action units): sigmoid cross-entropy on logits per unit; -1 left out.

    A batch without any label gives 0. AIM3-RUC/ABAW4 averages its masked MSE over all frames
    (the masked ones count as zero error), which scales that loss by the labelled share; this
    loss divides by the labelled frames instead, so batches with few labels are not damped.

    Args:
        kind: str. `regression`, `classification` or `multilabel`.
        name: optional loss name.
    """

    KINDS = ("regression", "classification", "multilabel")

    def __init__(self, kind, name=None, **kwargs):
        if kind not in self.KINDS:
            raise ValueError(f"kind={kind!r}: choose one of {self.KINDS}.")
        super().__init__(name=name or f"masked_{kind}", **kwargs)
        self.kind = kind

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        if self.kind == "classification":
            labels = ops.cast(y_true, "int32")
            keep = labels != MISSING_CLASS
            values = keras.losses.sparse_categorical_crossentropy(
                ops.where(keep, labels, 0), y_pred, from_logits=True
            )
            return _masked_mean(values, keep)
        y_true = ops.cast(y_true, "float32")
        if self.kind == "regression":
            keep = y_true != MISSING_AFFECT
            return _masked_mean(ops.square(ops.where(keep, y_true, 0.0) - y_pred), keep)
        keep = y_true != MISSING_CLASS
        target = ops.where(keep, y_true, 0.0)
        # Stable sigmoid cross-entropy: max(x, 0) - x z + log(1 + exp(-|x|)).
        values = ops.relu(y_pred) - y_pred * target + ops.log1p(ops.exp(-ops.abs(y_pred)))
        return _masked_mean(values, keep)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind}


TASK_LOSS_KINDS = {"valence": "regression", "arousal": "regression",
                   "expression": "classification", "action_units": "multilabel"}  # fmt: skip
# AIM3-RUC/ABAW4's example script: --loss_weights 12,12,1,0.35 (V, A, EXPR, AU).
ABAW4_LOSS_WEIGHTS = {"valence": 12.0, "arousal": 12.0, "expression": 1.0, "action_units": 0.35}


def affect_losses(tasks):
    """`{task: MaskedAffectLoss}` for the tasks of a temporal multi-task model."""
    return {task: MaskedAffectLoss(TASK_LOSS_KINDS[task], name=f"{task}_loss") for task in tasks}
