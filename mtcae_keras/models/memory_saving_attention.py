"""Keras `MultiHeadAttention` whose training pass keeps no attention probabilities."""

import warnings

import keras
from keras import ops


def stateless_dropout(x, rate, seed):
    """`x` with the dropout mask of `seed`, a Keras seed state (`SeedGenerator.next()`), or
    `x` itself when `seed` is None. The op Keras' `Dropout` runs on TensorFlow, with its
    seed cast: the same seed and shape give `Dropout`'s very mask and scale, so a seed drawn
    before a `keras.remat` region reproduces the forward pass's mask when it is recomputed."""
    if seed is None or not rate:
        return x
    import tensorflow as tf

    return tf.nn.experimental.stateless_dropout(x, rate=rate, seed=_int32_seed(seed))


def _int32_seed(seed):
    """A Keras seed state as `tf.random.stateless_*` takes it under XLA (Keras' own cast)."""
    import tensorflow as tf

    if seed.dtype == tf.int32:
        return seed
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)


def _chunk_seed(seed, index):
    import tensorflow as tf

    return _int32_seed(tf.random.experimental.stateless_fold_in(seed, index))


def draw_seed(dropout):
    """The seed a `keras.layers.Dropout` call in training would draw now (None at rate 0):
    draw it outside a `keras.remat` region and pass it to `stateless_dropout` inside."""
    return dropout.seed_generator.next() if dropout.rate > 0 else None


@keras.saving.register_keras_serializable(package="mtcae_keras")
class MemorySavingAttention(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` that keeps no `(B, heads, T, S)` tensor for the
    backward pass, dropout on the probabilities included.

    In training (on the TensorFlow backend, without masks or returned scores) the attention
    has a custom gradient that recomputes the probabilities from the stored queries, keys and
    values, so the backward pass holds one layer's (or, with `chunk_size`, one query chunk's)
    probabilities at a time. The dropout mask comes from a seed drawn once per call from the
    layer's own dropout seed generator, as `Dropout` draws it, so the backward pass recomputes
    the forward pass's very mask; unchunked, it is the mask Keras' `Dropout` would draw, and
    outputs and gradients equal `MultiHeadAttention`'s. The gradient is written out (softmax
    and dropout backward): the recomputation costs one score einsum and softmax, not the
    whole forward. `call_seeded` is the plain training call with a seed the caller drew, for
    a `keras.remat` region around more than the attention (`ViTDecoder(memory_saving="full")`).

    Everything else is `MultiHeadAttention`: the same weights and names (checkpoints load
    unchanged); inference, masks and `return_attention_scores` take its path.

    Args:
        num_heads: int. Attention heads.
        key_dim: int. Width of each head's query and key.
        memory_saving: bool. Recompute the probabilities in training; False is exactly
            `MultiHeadAttention`.
        chunk_size: int or None. Queries per chunk (each with its own mask); None: one.
            Measured on the paper decoders (1,568 tokens, 2 CPU cores): chunks of 392 were
            19% slower for 1% less memory, so the default is None.
        **kwargs: `MultiHeadAttention` arguments (`dropout`, `value_dim`, `name`, ...).
    """

    def __init__(self, num_heads, key_dim, memory_saving=True, chunk_size=None, **kwargs):
        super().__init__(num_heads, key_dim, **kwargs)
        self.memory_saving = memory_saving
        self.chunk_size = chunk_size

    def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                           return_attention_scores=False, use_causal_mask=False):  # fmt: skip
        if (
            not (self.memory_saving and training)
            or return_attention_scores
            or (attention_mask is not None or use_causal_mask or len(query.shape) != 4)
        ):
            return super()._compute_attention(query, key, value, attention_mask, training,
                                              return_attention_scores)  # fmt: skip
        if keras.backend.backend() != "tensorflow":
            warnings.warn(f"{self.name}: memory_saving needs the TensorFlow backend (its "
                          "stateless dropout); this backend keeps the attention probabilities.",
                          stacklevel=2)  # fmt: skip
            return super()._compute_attention(query, key, value, attention_mask, training)
        seed = draw_seed(self._dropout_layer)
        query = self._scaled(query)
        tokens = query.shape[1]
        if not self.chunk_size or tokens is None or tokens <= self.chunk_size:
            return self._recomputed_attention(query, key, value, seed), None
        chunks = []
        for index, start in enumerate(range(0, tokens, self.chunk_size)):
            chunk_seed = None if seed is None else _chunk_seed(seed, index)
            chunk = query[:, start : start + self.chunk_size]
            chunks.append(self._recomputed_attention(chunk, key, value, chunk_seed))
        return ops.concatenate(chunks, axis=1), None

    def call_seeded(self, query, value, seed, key=None):
        """The training call of `MultiHeadAttention` (no masks), its probabilities' dropout
        mask drawn from `seed` (`draw_seed(layer._dropout_layer)`, or None for none), by
        plain autodiff: for a `keras.remat` region that recomputes this whole call."""
        query = self._scaled(self._query_dense(query))
        key = self._key_dense(value if key is None else key)
        value = self._value_dense(value)
        _, dropped = self._probabilities(query, key, seed)
        return self._output_dense(ops.einsum(self._combine_equation, dropped, value))

    def _scaled(self, query):
        return ops.multiply(query, ops.cast(self._inverse_sqrt_key_dim, query.dtype))

    def _probabilities(self, query, key, seed):
        """`MultiHeadAttention`'s probabilities (scaled queries), and with dropout applied."""
        probs = self._masked_softmax(ops.einsum(self._dot_product_equation, key, query))
        return probs, stateless_dropout(probs, self._dropout, seed)

    def _recomputed_attention(self, query, key, value, seed):
        """`(B, T, heads, value_dim)` context of scaled queries, by a custom gradient that
        keeps only its inputs."""

        @ops.custom_gradient
        def attend(query, key, value):
            _, dropped = self._probabilities(query, key, seed)

            def grad(*args, upstream=None):
                import tensorflow as tf

                upstream = args[0] if upstream is None else upstream
                # Recompute after the upstream gradient exists: without the dependency the
                # graph optimiser merges these ops with the forward pass's identical ones
                # and keeps their outputs alive (`tf.recompute_grad` does the same).
                with tf.control_dependencies([upstream]):
                    probs, dropped = self._probabilities(query, key, seed)
                d_value = ops.einsum("bnts,btnh->bsnh", dropped, upstream)
                d_probs = stateless_dropout(ops.einsum("btnh,bsnh->bnts", upstream, value),
                                            self._dropout, seed)  # fmt: skip
                d_scores = probs * (d_probs - ops.sum(d_probs * probs, axis=-1, keepdims=True))
                d_query = ops.einsum("bnts,bsnh->btnh", d_scores, key)
                d_key = ops.einsum("bnts,btnh->bsnh", d_scores, query)
                return d_query, d_key, d_value

            return ops.einsum(self._combine_equation, dropped, value), grad

        return attend(query, key, value)

    def get_config(self):
        config = super().get_config()
        config.update({"memory_saving": self.memory_saving, "chunk_size": self.chunk_size})
        return config
