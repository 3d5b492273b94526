"""`StrategyTrainer` with the MTCAE losses: multi-worker training of `build_mtcae_model`
models (Keras 3 `fit` cannot drive `MultiWorkerMirroredStrategy`; see `strategy_trainer`)."""

import tensorflow as tf

from mtcae_keras.training.losses import DEFAULT_LOSS_WEIGHTS
from mtcae_keras.training.strategy_trainer import StrategyTrainer


class DistributedTrainer(StrategyTrainer):
    """Trains a `build_mtcae_model` model with `strategy.run` (any `tf.distribute` strategy).

    The losses of `compile_mtcae_model` are reduced over the *global* batch: the masked box /
    landmark means divide by the face frames of all replicas, not of each one. Build the model
    and the optimizer inside `strategy.scope()`. Datasets yield `(video, targets,
    sample_weights)` global batches as `make_fold_datasets` gives them.

    Args:
        model: the model; its output dict names the tasks it has.
        optimizer: a `keras.optimizers.Optimizer`, created in the strategy's scope.
        strategy: a `tf.distribute.Strategy`.
        loss_weights: dict of output -> weight; missing outputs keep the paper's defaults.

    Example:
    ```python
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = build_mtcae_model(backbone, "cascaded_vit", 6)
        optimizer = keras.optimizers.AdamW(1e-3, weight_decay=1e-3)
    trainer = DistributedTrainer(model, optimizer, strategy)
    history = trainer.fit(data["train"], epochs=10, validation_data=data["validation"])
    ```
    """

    def __init__(self, model, optimizer, strategy, loss_weights=None):
        super().__init__(model, optimizer, strategy)
        outputs = list(model.output.keys()) if isinstance(model.output, dict) else ["expression"]
        self.outputs = outputs
        weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
        self.loss_weights = {name: weights[name] for name in outputs}

    def _losses(self, targets, outputs, sample_weights):
        """Per-task losses of this replica's share, scaled so the replicas' sum is the global
        mean; returns (total, per-task dict, correct predictions per class, examples per
        class)."""
        per_task = {}
        for name in self.outputs:
            predicted = tf.cast(outputs[name] if isinstance(outputs, dict) else outputs, "float32")
            target = targets[name] if isinstance(targets, dict) else targets
            if name == "expression":
                values = tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=tf.cast(target, "int32"), logits=predicted
                )
                weight = tf.ones_like(values)
            else:
                values = tf.reduce_mean(tf.square(predicted - tf.cast(target, "float32")), -1)
                weight = tf.cast(sample_weights[name], "float32")
            denominator = tf.maximum(self._global_sum(tf.reduce_sum(weight)), 1e-12)
            per_task[name] = tf.reduce_sum(values * weight) / denominator
        total = tf.add_n([self.loss_weights[n] * per_task[n] for n in self.outputs])
        logits = outputs["expression"] if isinstance(outputs, dict) else outputs
        labels = tf.cast(targets["expression"] if isinstance(targets, dict) else targets, "int32")
        hits = tf.cast(tf.argmax(logits, -1, output_type="int32") == labels, "float32")
        num_classes = logits.shape[-1]  # per-class hits and counts give UAR over the epoch
        per_class = tf.math.unsorted_segment_sum(hits, labels, num_classes)
        support = tf.math.unsorted_segment_sum(tf.ones_like(hits), labels, num_classes)
        return total, per_task, per_class, support

    def replica_results(self, batch, training):
        """The MTCAE losses (weighted total and per task) and per-class hits and counts."""
        video, targets, sample_weights = batch
        outputs = self.model(video, training=training)
        total, per_task, per_class, support = self._losses(targets, outputs, sample_weights)
        sums = {"loss": total, "per_class": per_class, "support": support}
        sums.update({f"{name}_loss": value for name, value in per_task.items()})
        return total, sums

    def epoch_logs(self, sums, batches):
        """Mean losses, expression accuracy and UAR of the epoch."""
        per_class, support = sums["per_class"], sums["support"]
        present = support > 0
        logs = {
            "loss": float(sums["loss"]) / batches,
            "expression_accuracy": float(per_class.sum() / support.sum()),
            "expression_uar": float((per_class[present] / support[present]).mean()),
        }
        logs.update({f"{name}_loss": float(sums[f"{name}_loss"]) / batches
                     for name in self.outputs})  # fmt: skip
        return logs
