"""`StrategyTrainer` with the masked-video reconstruction loss: multi-worker pre-training."""

import tensorflow as tf

from mtcae_keras.training.strategy_trainer import StrategyTrainer


class PretrainingTrainer(StrategyTrainer):
    """Pre-trains a `MaskedVideoPretrainer` with `strategy.run` (any `tf.distribute` strategy,
    `MultiWorkerMirroredStrategy` included, which Keras 3 `fit` cannot drive).

    Each replica's reconstruction loss (a mean over its clips' masked tokens) is weighted by
    its share of the global batch, so the replicas' losses add up to the global batch's mean:
    N workers make the same update as one device, and as `pretrainer.fit`, at the same global
    batch (every clip masks the same number of tokens). Datasets yield the
    `{"pixel_values", "mask"}` global batches of `make_pretraining_dataset`. Logs: `loss`
    (weighted by the batches' clips, as Keras `fit` reports it), and from `fit`
    `learning_rate` and `seconds`.

    Args:
        pretrainer: a `MaskedVideoPretrainer`, built in the strategy's scope.
        optimizer: a `keras.optimizers.Optimizer`, created in the strategy's scope.
        strategy: a `tf.distribute.Strategy`.

    Example:
    ```python
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        pretrainer = MaskedVideoPretrainer(encoder, decoder_hidden_dim=64)
        pretrainer.build()
        optimizer = keras.optimizers.AdamW(1e-3, weight_decay=0.05, beta_2=0.95)
    trainer = PretrainingTrainer(pretrainer, optimizer, strategy)
    trainer.fit(data, epochs=20, monitor="loss", mode="min", save_best_only=False,
                checkpoint_path="pretrainer.keras", backup_dir="backup")
    ```
    """

    def replica_results(self, batch, training):
        """The reconstruction loss of this replica's clips, weighted by their global share."""
        pixels, mask = batch["pixel_values"], batch["mask"]
        predictions = self.model({"pixel_values": pixels, "mask": mask}, training=training)
        loss = self.model.loss_from_predictions(predictions, self.model.targets(pixels, mask))
        clips = tf.cast(tf.shape(pixels)[0], "float32")
        global_clips = self._global_sum(clips)
        loss = loss * clips / global_clips
        if self.model.losses:  # weight penalties: the same on every replica
            replicas = self.strategy.num_replicas_in_sync
            loss += tf.add_n([tf.cast(x, "float32") for x in self.model.losses]) / replicas
        # Summed over the replicas: the batch's loss times its clips, and its clips.
        return loss, {"loss": loss * global_clips, "clips": clips}

    def epoch_logs(self, sums, batches):
        """The epoch's loss: the batches' losses weighted by their clips, as Keras `fit`
        reports it."""
        return {"loss": float(sums["loss"] / sums["clips"])}
