"""UAR: the mean of per-class recalls, the headline metric of DFER benchmarks."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtcae_keras")
class UnweightedAverageRecall(keras.metrics.Metric):
    """Unweighted average recall over the classes present in the labels seen so far.

    Accumulates a confusion matrix; classes without any true example are left out of the
    mean (the public notebook divides by a hard-coded 7 instead).

    Args:
        num_classes: int. Number of classes.
        name: str. Metric name.
        **kwargs: base metric arguments.
    """

    def __init__(self, num_classes, name="uar", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.confusion = self.add_variable(
            shape=(num_classes, num_classes), initializer="zeros", name="confusion"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), self.num_classes)
        predicted = ops.argmax(ops.reshape(y_pred, (-1, self.num_classes)), axis=-1)
        predicted = ops.one_hot(predicted, self.num_classes)
        if sample_weight is not None:
            labels = labels * ops.reshape(ops.cast(sample_weight, labels.dtype), (-1, 1))
        self.confusion.assign_add(ops.matmul(ops.transpose(labels), predicted))

    def result(self):
        support = ops.sum(self.confusion, axis=1)
        recall = ops.divide_no_nan(ops.diagonal(self.confusion), support)
        present = ops.cast(support > 0, recall.dtype)
        return ops.divide_no_nan(ops.sum(recall * present), ops.sum(present))

    def reset_state(self):
        self.confusion.assign(ops.zeros(self.confusion.shape, dtype=self.confusion.dtype))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
