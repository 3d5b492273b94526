"""AdamW that evaluates its learning-rate schedule once per step."""

import keras


@keras.saving.register_keras_serializable(package="mtcae_keras")
class CachedRateAdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` that evaluates a learning-rate schedule once per step.

    Keras' AdamW on the TensorFlow backend reads `learning_rate` once for every variable
    it decays (`_apply_weight_decay`), and with a schedule each read builds the whole
    schedule again (the warm-up's `cond`, the cosine) into the traced training step: 190
    copies for the demo's model, which made its first step's tracing take 5 s longer on 2
    CPU cores (issue 19; `bench/demo_profile.py`). This optimizer evaluates the schedule
    once at the start of `apply`, before any variable is touched, and hands that value to
    the weight decay and the update alike. The iteration count is the same at every read
    of a step, so the updates are the same, bit for bit (`tests/test_cached_rate_adam_w.py`).

    Args: as `keras.optimizers.AdamW`.
    """

    def apply(self, grads, trainable_variables=None):
        if isinstance(self._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            self._rate_of_this_step = super()._get_current_learning_rate()
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._rate_of_this_step = None

    def _get_current_learning_rate(self):
        rate = getattr(self, "_rate_of_this_step", None)
        return super()._get_current_learning_rate() if rate is None else rate
