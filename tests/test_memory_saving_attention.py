"""`MemorySavingAttention` against Keras' own `MultiHeadAttention`, and in `ViTDecoder`."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from mtcae_keras import ViTDecoder
from mtcae_keras.models.memory_saving_attention import MemorySavingAttention
from mtcae_keras.models.memory_saving_attention import _chunk_seed
from tests.test_case import assert_config_round_trip

HEADS, KEY_DIM, WIDTH = 3, 8, 16


def layer_pair(dropout, chunk_size, cls=MemorySavingAttention, seed=5):
    """Keras' layer and ours with the same weights and the same dropout seed."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    query = tf.constant(rng.standard_normal((2, 10, WIDTH)), tf.float32)
    memory = tf.constant(rng.standard_normal((2, 12, WIDTH)), tf.float32)
    reference = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, dropout=dropout, seed=seed)
    ours = cls(HEADS, KEY_DIM, dropout=dropout, seed=seed, chunk_size=chunk_size)
    reference(query, memory, memory)
    ours(query, memory, memory)
    ours.set_weights(reference.get_weights())
    return reference, ours, query, memory


def training_gradients(layer, query, memory):
    """A training call's output and the gradients of its inputs and every weight, traced."""

    @tf.function
    def step(query, memory):
        with tf.GradientTape() as tape:
            tape.watch([query, memory])
            output = layer(query, memory, memory, training=True)
            loss = tf.reduce_sum(output * tf.cos(output))
        return output, tape.gradient(loss, [query, memory] + layer.trainable_variables)

    return step(query, memory)


def assert_same(result, reference, atol):
    (output, grads), (reference_output, reference_grads) = result, reference
    np.testing.assert_allclose(output, reference_output, atol=atol)
    assert len(grads) == len(reference_grads) == 2 + 8  # query, memory; 4 Dense x 2
    for grad, reference_grad in zip(grads, reference_grads, strict=True):
        np.testing.assert_allclose(grad, reference_grad, atol=atol)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_one_chunk_is_keras_multi_head_attention_with_its_dropout_mask(dropout):
    """In training, with the dropout mask Keras' `Dropout` draws from the same seed: the same
    output and gradients of the inputs and of every weight. A mask drawn again in the
    backward pass, a wrong softmax or dropout backward would break it."""
    reference, ours, query, memory = layer_pair(dropout, chunk_size=392)
    result = training_gradients(ours, query, memory)
    assert_same(result, training_gradients(reference, query, memory), atol=1e-5)
    if dropout:  # dropout is really applied: training differs from inference
        inference = ours(query, memory, memory, training=False)
        assert float(ops.max(ops.abs(result[0] - inference))) > 0.1


class AutodiffChunks(MemorySavingAttention):
    """The same chunks and masks, differentiated by TensorFlow instead of by hand."""

    def _recomputed_attention(self, query, key, value, seed):
        _, dropped = self._probabilities(query, key, seed)
        return ops.einsum(self._combine_equation, dropped, value)


def test_chunked_gradient_equals_autodiff_of_the_same_chunks():
    """Four chunks (the last one short), dropout on: the written-out backward pass equals
    TensorFlow's gradient of the same computation. Each chunk draws its own mask (its
    outputs differ from one-mask Keras') and the seed generator advances once per call."""
    _, ours, query, memory = layer_pair(0.3, chunk_size=3)
    _, autodiff, _, _ = layer_pair(0.3, chunk_size=3, cls=AutodiffChunks)
    result = training_gradients(ours, query, memory)
    assert_same(result, training_gradients(autodiff, query, memory), atol=1e-5)
    state = ours._dropout_layer.seed_generator.state.numpy()
    assert_same(training_gradients(ours, query, memory),
                training_gradients(autodiff, query, memory), atol=1e-5)  # fmt: skip
    assert (ours._dropout_layer.seed_generator.state.numpy() != state).any()
    # Each chunk has its own mask: the seeds of two chunks give different zeros.
    ones = tf.ones((1, 3, HEADS, KEY_DIM))
    seed = tf.constant([7, 0], tf.int64)
    masks = [ours._probabilities(ones, ones, _chunk_seed(seed, i))[1] == 0 for i in (0, 1)]
    assert 0 < np.mean(masks[0]) < 1 and not np.array_equal(masks[0], masks[1])


def test_inference_and_memory_saving_off_are_keras():
    reference, ours, query, memory = layer_pair(0.3, chunk_size=3)
    np.testing.assert_array_equal(ours(query, memory, memory),
                                  reference(query, memory, memory))  # fmt: skip
    ours.memory_saving = False
    assert_same(training_gradients(ours, query, memory),
                training_gradients(reference, query, memory), atol=0)  # fmt: skip


def test_config_round_trip():
    assert_config_round_trip(MemorySavingAttention, num_heads=HEADS, key_dim=KEY_DIM,
                             memory_saving=False, chunk_size=7, dropout=0.2)  # fmt: skip


def decoder_gradients(memory_saving, query, memory):
    keras.utils.set_random_seed(0)
    decoder = ViTDecoder(WIDTH, 2, HEADS, KEY_DIM, mlp_dims=(32, WIDTH),
                         attention_dropout_rate=0.3, dropout_rate=0.1, memory_projection=True,
                         memory_saving=memory_saving, name="decoder")  # fmt: skip
    decoder(query, memory)
    assert all(a.memory_saving == bool(memory_saving) for a in decoder.attentions)

    @tf.function
    def step(query, memory):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(decoder(query, memory, training=True)))
        return loss, tape.gradient(loss, decoder.trainable_variables)

    return decoder, step(query, memory)


@pytest.mark.parametrize("memory_saving", [True, "full"])
def test_vit_decoder_memory_saving_keeps_its_training_step_and_its_weights(memory_saving, tmp_path):
    """The paper decoder's settings (attention and MLP dropout, memory projection) with memory
    saving on, or each layer recomputed ("full"), and off: the same loss and weight gradients
    (the same dropout masks), and the same weight names, so checkpoints of either load into
    the other."""
    rng = np.random.default_rng(2)
    query = tf.constant(rng.standard_normal((2, 10, WIDTH)), tf.float32)
    memory = tf.constant(rng.standard_normal((2, 12, 24)), tf.float32)
    saving, (loss, grads) = decoder_gradients(memory_saving, query, memory)
    plain, (reference, reference_grads) = decoder_gradients(False, query, memory)
    np.testing.assert_allclose(loss, reference, rtol=1e-5)
    assert len(grads) == len(reference_grads) == 1 + 2 + 2 * (4 + 8 + 4)
    for grad, reference_grad in zip(grads, reference_grads, strict=True):
        np.testing.assert_allclose(grad, reference_grad, atol=1e-5)
    assert [w.path for w in saving.weights] == [w.path for w in plain.weights]
    assert saving.get_config()["memory_saving"] == memory_saving
    models = []
    for decoder in (plain, saving):
        inputs = keras.Input((10, WIDTH)), keras.Input((12, 24))
        models.append(keras.Model(inputs, decoder(*inputs), name="model"))
    path = str(tmp_path / "plain.weights.h5")
    models[0].save_weights(path)
    for weight in saving.weights:
        weight.assign(ops.zeros_like(weight))
    models[1].load_weights(path)
    np.testing.assert_array_equal(saving(query, memory), plain(query, memory))
