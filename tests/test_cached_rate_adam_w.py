import keras
import numpy as np
import tensorflow as tf

from mtcae_keras.training import CachedRateAdamW
from mtcae_keras.training import build_training_variables
from mtcae_keras.training import compile_mtcae_model
from mtcae_keras.training import warmup_cosine_decay
from tests.test_mtcae_model import CLASSES
from tests.test_mtcae_model import batch
from tests.test_mtcae_model import tiny_model


class CountedSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`warmup_cosine_decay` that counts how often it is built into a graph or called."""

    def __init__(self, total_steps):
        self.schedule = warmup_cosine_decay(1e-2, total_steps)
        self.calls = 0

    def __call__(self, step):
        self.calls += 1
        return self.schedule(step)

    def get_config(self):
        return {}


def trained_weights(optimizer, steps=4):
    model = tiny_model("cascaded_vit")
    compile_mtcae_model(model, CLASSES, jit_compile=False, optimizer=optimizer)
    x, y, weights = batch(size=4)
    data = tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(2).repeat(steps // 2)
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    return model, [w.numpy() for w in model.trainable_weights]


def test_cached_rate_adam_w_updates_as_keras_adam_w():
    """Four steps of warm-up and decay (the rate changes every step): the same weights, bit
    for bit, with weight decay on, and the same count of steps taken."""
    total = 6  # warm-up: step 0 only; the cosine from step 1
    keras_model, expected = trained_weights(
        keras.optimizers.AdamW(warmup_cosine_decay(1e-2, total), weight_decay=0.3)
    )
    ours_model, got = trained_weights(
        CachedRateAdamW(warmup_cosine_decay(1e-2, total), weight_decay=0.3)
    )
    assert int(ours_model.optimizer.iterations) == int(keras_model.optimizer.iterations) == 4
    assert len(got) == len(expected) > 60
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    _, fixed = trained_weights(CachedRateAdamW(1e-2, weight_decay=0.3))  # a constant rate
    assert any(not np.array_equal(a, b) for a, b in zip(fixed, expected, strict=True))


def test_one_trace_builds_the_schedule_once():
    """With `build_training_variables` first, `fit` traces its step once, and our AdamW puts
    one copy of the schedule in it; Keras' AdamW puts one for each decayed variable."""
    x, y, weights = batch(size=2)
    data = tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(2)
    counts = {}
    for name, build, optimizer_class in (("ours", True, CachedRateAdamW),
                                         ("unbuilt", False, CachedRateAdamW),
                                         ("keras", True, keras.optimizers.AdamW)):  # fmt: skip
        schedule = CountedSchedule(10)
        model = tiny_model("cascaded_vit")
        compile_mtcae_model(model, CLASSES, jit_compile=False,
                            optimizer=optimizer_class(schedule, weight_decay=0.1))  # fmt: skip
        if build:
            build_training_variables(model, data.element_spec)
            assert model.optimizer.built
        model.fit(data, epochs=2, verbose=0)
        counts[name] = schedule.calls
        variables = len(model.trainable_weights)
    assert counts["ours"] == 1
    assert counts["unbuilt"] == 2  # the step traced again once the variables existed
    assert counts["keras"] > variables


def test_cached_rate_adam_w_round_trips_through_its_config():
    optimizer = CachedRateAdamW(warmup_cosine_decay(3e-4, 50), weight_decay=0.05, beta_2=0.95)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
    assert type(restored) is CachedRateAdamW
    assert restored.get_config() == optimizer.get_config()
    assert float(restored.learning_rate) == float(optimizer.learning_rate) == 0.0
