"""The ABAW4 code's `--gt_rate_decay`: less ground truth in the prediction feedback each epoch."""

import keras

from mtcae_keras.models.task_feedback_embedding import TaskFeedbackEmbedding


class FeedbackRateDecay(keras.callbacks.Callback):
    """Sets every `TaskFeedbackEmbedding`'s `gt_rate` to `initial * (epochs - epoch) / epochs`
    at the start of each epoch (AIM3-RUC/ABAW4's linear decay of `feed_gt_rate`), so the
    target tasks learn from the ground truth first and from the source predictions they will
    see at inference later.

    Args:
        epochs: int. The run's epochs (the code's `niter + niter_decay`).
    """

    def __init__(self, epochs):
        super().__init__()
        if epochs < 1:
            raise ValueError(f"epochs={epochs} must be positive.")
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        share = (self.epochs - epoch) / self.epochs
        for layer in self.model._flatten_layers():
            if isinstance(layer, TaskFeedbackEmbedding):
                layer.gt_rate.assign(layer.initial_gt_rate * share)
