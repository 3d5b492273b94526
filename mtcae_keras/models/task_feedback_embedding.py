"""The ABAW4 prediction feedback: a source task's predictions weight learned embeddings."""

import keras
from keras import ops

REGRESSION_TASKS = ("valence", "arousal")


@keras.saving.register_keras_serializable(package="mtcae_keras")
class TaskFeedbackEmbedding(keras.layers.Layer):
    """Per-frame embedding of a source task's prediction (AIM3-RUC/ABAW4's `get_task_emb`).

    One learned vector per output of the source task (1 for valence or arousal, one per
    expression class or action unit), weighted per frame by the prediction and summed:
    expression logits through a softmax, action units through a sigmoid, valence / arousal
    mapped from [-1, 1] to [0, 1]. Predictions arrive gradient-stopped (the target task's loss
    does not train the source task through this path). In training, a random
    `floor(steps * gt_rate)` of the frames (the same frames for the whole batch) use the
    ground truth instead (one-hot expression, 0/1 units, raw V/A, which
    the code weights the same way); missing labels (-5 for V/A, -1 for the others) weigh
    nothing. `gt_rate` is a variable, so a callback may decay it (`FeedbackRateDecay`, the
    code's `--gt_rate_decay`).

    Args:
        task: str. `valence`, `arousal`, `expression` or `action_units`.
        num_outputs: int. The source task's outputs per frame.
        feed_dim: int. Embedding width (the code's `feed_dim`, 256).
        gt_rate: float. Share of training frames fed the ground truth (`feed_gt_rate`).
        seed: optional int. Seed of the frame draw.
        **kwargs: base layer arguments.

    Call arguments:
        predictions: `(batch, steps, num_outputs)` raw outputs of the source head.
        labels: optional `(batch, steps)` (V/A, class indices) or `(batch, steps, units)`
            (AUs); needed in training when `gt_rate > 0`.
    """

    def __init__(self, task, num_outputs, feed_dim=256, gt_rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.task = task
        self.num_outputs = num_outputs
        self.feed_dim = feed_dim
        self.initial_gt_rate = gt_rate
        self.seed = seed
        self._seed_generator = keras.random.SeedGenerator(seed)

    def build(self, predictions_shape, labels_shape=None):
        self.embeddings = self.add_weight(
            shape=(self.num_outputs, self.feed_dim),
            initializer=keras.initializers.RandomNormal(stddev=1.0),  # torch nn.Embedding's
            name="embeddings",
        )
        self.gt_rate = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_gt_rate),
            trainable=False, name="gt_rate",
        )  # fmt: skip
        super().build(predictions_shape)

    def _weights(self, values, ground_truth):
        if self.task == "expression":
            if ground_truth:
                return ops.one_hot(ops.cast(values, "int32"), self.num_outputs)  # -1: zeros
            return ops.softmax(values, axis=-1)
        if self.task in REGRESSION_TASKS:
            return ops.where(values != -5.0, (values + 1.0) / 2.0, 0.0)
        if ground_truth:
            return ops.where(values != -1.0, values, 0.0)
        return ops.sigmoid(values)

    def call(self, predictions, labels=None, training=None):
        predictions = ops.stop_gradient(ops.cast(predictions, "float32"))
        weights = self._weights(predictions, ground_truth=False)
        if training and self.initial_gt_rate > 0:
            if labels is None:
                raise ValueError(f"gt_rate > 0: training needs the {self.task} labels.")
            labels = ops.cast(labels, "float32")
            if self.task in REGRESSION_TASKS and len(labels.shape) == 2:
                labels = labels[..., None]  # (B, T) -> (B, T, 1)
            truth = self._weights(labels, ground_truth=True)
            # As the code: a random floor(steps * gt_rate) of the frames, the same for every
            # clip of the batch.
            steps = ops.shape(predictions)[1]
            draw = keras.random.uniform((steps,), seed=self._seed_generator)
            rank = ops.argsort(ops.argsort(draw))
            count = ops.floor(ops.cast(steps, "float32") * self.gt_rate)
            use_truth = (ops.cast(rank, "float32") < count)[None, :, None]
            weights = ops.where(use_truth, truth, weights)
        return ops.einsum("btk,kd->btd", weights, ops.cast(self.embeddings, "float32"))

    def compute_output_shape(self, predictions_shape, labels_shape=None):
        return (*predictions_shape[:-1], self.feed_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"task": self.task, "num_outputs": self.num_outputs,
                       "feed_dim": self.feed_dim, "gt_rate": self.initial_gt_rate,
                       "seed": self.seed})  # fmt: skip
        return config
