"""Layers of the VideoMAE ViT encoder.

Weight names mirror the original VideoMAE checkpoints (`patch_embed.proj`, `blocks.i.norm1`,
`blocks.i.attn.qkv`, `q_bias`, `v_bias`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`,
`gamma_1`, `gamma_2`) so that `mtcae_keras.conversion` maps every checkpoint key to exactly one
variable.
"""

import keras
import numpy as np
from keras import ops


def sinusoid_position_embedding(num_positions, dim):
    """The fixed sinusoid table of VideoMAE, shape `(num_positions, dim)`, float32.

    Identical to `get_sinusoid_encoding_table` of the original and Hugging Face code: angle
    `pos / 10000 ** (2 * (j // 2) / dim)`, sine on even and cosine on odd channels, computed in
    float64 and rounded once.

    Args:
        num_positions: int. Number of tokens.
        dim: int. Channel width.
    """
    positions = np.arange(num_positions, dtype=np.float64)[:, None]
    channels = np.arange(dim)
    angles = positions / np.power(10000.0, 2 * (channels // 2) / dim)[None, :]
    table = np.empty_like(angles)
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table.astype(np.float32)


# Queries per chunk of the memory-saving attention (`recomputed_attention`,
# `rematerialized_attention`): at 1,568 tokens, 4 chunks whose probabilities exist one at a
# time in the backward pass.
ATTENTION_CHUNK = 392
# `VideoMAEEncoderBlock(memory_saving=...)`: keep everything, recompute the cheap parts
# (the default), or recompute the MLP's fc1 too.
MEMORY_SAVING = (False, True, "full")


def attention_probabilities_context(query, key, value, scale, dropout=None, training=None):
    """Softmax attention (einsum, float32 softmax, optional dropout on the probabilities,
    einsum) of `(B, T, heads, head_dim)` queries over `(B, S, heads, head_dim)` keys and
    values."""
    logits = ops.einsum("btnh,bsnh->bnts", query * ops.cast(scale, query.dtype), key)
    probs = ops.cast(ops.softmax(ops.cast(logits, "float32"), axis=-1), value.dtype)
    if dropout is not None:
        probs = dropout(probs, training=training)
    return ops.einsum("bnts,bsnh->btnh", probs, value)


def rematerialized_attention(query, key, value, scale, chunk_size=ATTENTION_CHUNK):
    """`attention_probabilities_context` that keeps no `(B, heads, T, S)` tensor for the
    backward pass: the queries go in chunks of `chunk_size`, each under `keras.remat`
    (`tf.recompute_grad` on TensorFlow), so the backward pass recomputes one chunk's
    probabilities at a time from the stored queries, keys and values. The same numbers as
    the plain attention (the same ops on the same inputs); about 1.3x one attention's
    FLOPs in training, a small share of a ViT block's.
    """
    core = keras.remat(lambda q, k, v: attention_probabilities_context(q, k, v, scale))
    return _joined([core(query[:, a:b], key, value)
                    for a, b in _chunk_bounds(query.shape[1], chunk_size)])  # fmt: skip


def _chunk_bounds(tokens, chunk_size):
    """`(start, end)` of each query chunk; one chunk when `tokens` is unknown or small."""
    if tokens is None or tokens <= chunk_size:
        return [(0, tokens)]
    return [(start, min(start + chunk_size, tokens)) for start in range(0, tokens, chunk_size)]


def _joined(chunks):
    """Query chunks' outputs joined along the token axis."""
    return chunks[0] if len(chunks) == 1 else ops.concatenate(chunks, axis=1)


def recomputed_attention(query, key, value, scale, chunk_size=ATTENTION_CHUNK):
    """`attention_probabilities_context` with a written-out gradient that keeps only the
    queries, keys, values and output, as flash attention's backward pass does: the backward
    pass recomputes the scores and softmax of one chunk of `chunk_size` queries at a time.
    Unlike `rematerialized_attention`, which recomputes the chunk's whole forward and then
    differentiates it, the recomputation is one score einsum and one softmax, and under a
    `keras.remat` around the attention sublayer (`VideoMAEEncoderBlock`) nothing is
    recomputed twice. The chunks run one after another, in the forward and the backward pass
    (data dependencies, which XLA keeps too), so at most one chunk's `(B, heads, chunk, S)`
    tensors exist at a time. TensorFlow backend.

    Args:
        query: `(B, T, heads, head_dim)`.
        key: `(B, S, heads, head_dim)`.
        value: `(B, S, heads, head_dim)`.
        scale: float. Logit scale.
        chunk_size: int. Queries per chunk.

    Returns:
        `(B, T, heads, head_dim)`: the numbers of `attention_probabilities_context`.
    """
    import tensorflow as tf

    bounds = _chunk_bounds(query.shape[1], chunk_size)

    def probabilities(scaled_query, key):
        logits = ops.einsum("btnh,bsnh->bnts", scaled_query, key)
        return ops.cast(ops.softmax(ops.cast(logits, "float32"), axis=-1), key.dtype)

    def after(tensor, dependencies):
        """`tensor`, read only once `dependencies` exist (serialises the chunks). A data
        dependency, as in `tf.recompute_grad`: XLA drops control dependencies, and then
        merges the backward pass's recomputed scores with the forward pass's (keeping every
        chunk's probabilities alive) and runs the chunks side by side. Adds a zero made from
        one element of each dependency (NaN-safe: `x == x` is false only for NaN)."""
        for dependency in dependencies:
            first = tf.reshape(dependency, [-1])[:1]
            zero = tf.where(tf.equal(first, first), 0.0, float("nan"))
            tensor = tensor + tf.cast(zero, tensor.dtype)
        return tensor

    @tf.custom_gradient
    def attend(query, key, value):
        scaled = query * ops.cast(scale, query.dtype)
        contexts = []
        for a, b in bounds:
            chunk = after(scaled[:, a:b], contexts[-1:])
            contexts.append(ops.einsum("bnts,bsnh->btnh", probabilities(chunk, key), value))
        context = _joined(contexts)

        def grad(upstream):
            # Recompute only once the upstream gradient exists: without the dependency the
            # graph optimiser (or XLA's CSE) merges these ops with the forward pass's identical
            # ones and keeps their outputs alive (`tf.recompute_grad` does the same).
            scaled = after(query, [upstream]) * ops.cast(scale, query.dtype)
            # The softmax gradient's rowsum(dP * P), per query and head, is rowsum(dO * O).
            delta = ops.einsum("btnh,btnh->bnt", ops.cast(upstream, "float32"),
                               ops.cast(context, "float32"))  # fmt: skip
            d_queries, d_key, d_value = [], 0, 0
            for a, b in bounds:
                chunk = after(scaled[:, a:b], [d_queries[-1], d_key, d_value] if d_queries else [])
                probs = probabilities(chunk, key)
                d_out = upstream[:, a:b]
                d_probs = ops.cast(ops.einsum("btnh,bsnh->bnts", d_out, value), "float32")
                d_scores = ops.cast(ops.cast(probs, "float32") * (d_probs - delta[:, :, a:b, None]),
                                    key.dtype)  # fmt: skip
                d_queries.append(ops.einsum("bnts,bsnh->btnh", d_scores, key))
                d_key = d_key + ops.einsum("bnts,btnh->bsnh", d_scores, chunk)
                d_value = d_value + ops.einsum("bnts,btnh->bsnh", probs, d_out)
            return _joined(d_queries) * ops.cast(scale, query.dtype), d_key, d_value

        return context, grad

    return attend(query, key, value)


def multi_head_attention(query, key, value, scale, dropout, training=None, memory_saving=False):
    """Softmax attention of `(B, T, heads, head_dim)` queries over `(B, S, heads, head_dim)`.

    Without dropout on the probabilities (inference, or `dropout.rate == 0`) this is
    `keras.ops.dot_product_attention`, fused where the backend has a kernel (cuDNN flash
    attention on GPU under JAX); elsewhere, and with dropout, the same einsum, float32
    softmax, einsum. With `memory_saving` in training (and no dropout on the
    probabilities) no `(B, heads, T, S)` tensor is kept for the backward pass (TensorFlow
    has no fused attention kernel to do that): `recomputed_attention` on TensorFlow,
    `rematerialized_attention` elsewhere.

    Args:
        query: `(B, T, heads, head_dim)`.
        key: `(B, S, heads, head_dim)`.
        value: `(B, S, heads, head_dim)`.
        scale: float. Logit scale (`head_dim ** -0.5`).
        dropout: a `keras.layers.Dropout` for the probabilities.
        training: bool. Dropout is active only when training.
        memory_saving: bool. Recompute the probabilities in the backward pass instead of
            keeping them (training without attention dropout only: a recomputed dropout
            mask would differ from the forward pass's).

    Returns:
        `(B, T, heads, head_dim)`.
    """
    if dropout.rate and training:
        # Dropout on the probabilities needs them explicitly: the unfused path.
        return attention_probabilities_context(query, key, value, scale, dropout, training)
    if memory_saving and training:
        if keras.backend.backend() == "tensorflow":
            return recomputed_attention(query, key, value, scale)
        return rematerialized_attention(query, key, value, scale)
    return ops.dot_product_attention(query, key, value, scale=scale)


def _gelu(x):
    return ops.gelu(x, approximate=False)


def rematerialized_sublayers(memory_saving, has_dropout, attentions, norm, fc1):
    """A transformer block's attention sublayers and its `x -> GELU(fc1(norm(x)))`, with
    what `memory_saving` (True, False or "full"; pass False outside training) recomputes in
    the backward pass under `keras.remat` instead of keeping it.

    Kept: only each sublayer's inputs. Recomputed: the attention sublayers (their
    LayerNorms, projections and probabilities), the MLP's LayerNorm intermediates and the
    GELU's (TensorFlow's gradient of the exact GELU keeps 4 tensors of the MLP's width);
    "full" recomputes fc1 too. Sublayers with dropout inside (`has_dropout`) are not
    recomputed, since their mask would be drawn again: then only the attention
    probabilities are, where they have none. Returns `(attentions, mlp_input)`.
    """

    def expand(x):
        return _gelu(fc1(x))

    if memory_saving:
        if not has_dropout:
            attentions = [keras.remat(attention) for attention in attentions]
        norm = keras.remat(norm)
        if memory_saving == "full":
            expand = keras.remat(expand)
        else:
            gelu = keras.remat(_gelu)

            def expand(x):
                return gelu(fc1(x))

    def mlp_input(x):
        return expand(norm(x))

    return attentions, mlp_input


def drop_path_layer(rate, dtype_policy):
    """Stochastic depth (keras_cv `DropPath`) at `rate`, or an `Identity` when it is 0.

    keras_cv imports TensorFlow, so it is loaded only where stochastic depth is used: a
    rate-0 encoder also runs on the JAX backend (the GPU bench uses this).
    """
    if rate > 0:
        from keras_cv.layers import DropPath

        return DropPath(rate, dtype=dtype_policy, name="drop_path")
    return keras.layers.Identity(dtype=dtype_policy, name="drop_path")


@keras.saving.register_keras_serializable(package="mtcae_keras")
class VideoMAETubeletEmbedding(keras.layers.Layer):
    """Tubelet (3D patch) embedding plus the fixed sinusoid position embedding.

    Input `(batch, frames, height, width, channels)`; output `(batch, tokens, hidden_dim)`
    with tokens ordered `(t, h, w)` row-major, as in VideoMAE. The position table is computed
    for the actual token count and is a constant, not a weight.

    Args:
        hidden_dim: int. Embedding width.
        patch_size: int. Spatial patch side.
        tubelet_size: int. Frames per tubelet.
        num_tokens: int. Tokens per clip, `(frames // tubelet) * (h // patch) * (w // patch)`.
        use_position_embedding: bool. Add the sinusoid table (True for VideoMAE; False only
            to reproduce the public notebook's defect).
        **kwargs: base layer arguments (`name`, `dtype`, ...).
    """

    def __init__(
        self,
        hidden_dim,
        patch_size,
        tubelet_size,
        num_tokens,
        use_position_embedding=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.num_tokens = num_tokens
        self.use_position_embedding = use_position_embedding

    def build(self, input_shape):
        self.proj = keras.layers.Conv3D(
            self.hidden_dim,
            kernel_size=(self.tubelet_size, self.patch_size, self.patch_size),
            strides=(self.tubelet_size, self.patch_size, self.patch_size),
            padding="valid",
            dtype=self.dtype_policy,
            name="proj",
        )
        self.proj.build(input_shape)
        self._position_table = sinusoid_position_embedding(self.num_tokens, self.hidden_dim)
        self.built = True

    def call(self, inputs):
        # The strided Conv3D as what it is, a matmul on flattened tubelets: the same weights
        # (`proj`, the checkpoints' `patch_embed.proj`) and outputs to 1e-6, but XLA on CPU
        # runs a Conv3D of this shape 3.6x slower than the matmul (forward + backward, issue
        # 4 notes), and the encoder's step is dominated by it at small widths.
        frames, height, width, channels = inputs.shape[1:]
        t, p = self.tubelet_size, self.patch_size
        x = ops.reshape(inputs, (-1, frames // t, t, height // p, p, width // p, p, channels))
        x = ops.transpose(x, (0, 1, 3, 5, 2, 4, 6, 7))  # (B, T', H', W', t, p, p, C)
        x = ops.reshape(x, (-1, self.num_tokens, t * p * p * channels))
        kernel = ops.reshape(self.proj.kernel, (t * p * p * channels, self.hidden_dim))
        x = ops.matmul(x, ops.cast(kernel, x.dtype)) + ops.cast(self.proj.bias, x.dtype)
        if self.use_position_embedding:
            x = x + ops.cast(self._position_table, x.dtype)[None]
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_tokens, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "patch_size": self.patch_size,
                "tubelet_size": self.tubelet_size,
                "num_tokens": self.num_tokens,
                "use_position_embedding": self.use_position_embedding,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mtcae_keras")
class VideoMAEAttention(keras.layers.Layer):
    """Multi-head self-attention with a fused `qkv` projection and separate q / v biases.

    The key bias is fixed at zero (VideoMAE's `qkv_bias`); the softmax runs in float32 even
    under a mixed-precision policy. Without attention dropout the attention goes through
    `keras.ops.dot_product_attention`, which uses a fused (flash) kernel where the backend has
    one.

    Args:
        hidden_dim: int. Token width.
        num_heads: int. Attention heads; `hidden_dim` must divide evenly.
        qv_bias: bool. Learn the query and value biases.
        attention_dropout_rate: float. Dropout on the attention probabilities.
        dropout_rate: float. Dropout after the output projection.
        memory_saving: bool. In training, recompute the attention probabilities in the
            backward pass instead of keeping them (`multi_head_attention`); same outputs.
        **kwargs: base layer arguments.
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        qv_bias=True,
        attention_dropout_rate=0.0,
        dropout_rate=0.0,
        memory_saving=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim={hidden_dim} is not divisible by num_heads={num_heads}.")
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.qv_bias = qv_bias
        self.attention_dropout_rate = attention_dropout_rate
        self.dropout_rate = dropout_rate
        self.memory_saving = memory_saving
        self.head_dim = hidden_dim // num_heads

    def build(self, input_shape):
        self.qkv = keras.layers.Dense(
            3 * self.hidden_dim, use_bias=False, dtype=self.dtype_policy, name="qkv"
        )
        self.qkv.build(input_shape)
        if self.qv_bias:
            self.q_bias = self.add_weight(
                shape=(self.hidden_dim,), initializer="zeros", name="q_bias"
            )
            self.v_bias = self.add_weight(
                shape=(self.hidden_dim,), initializer="zeros", name="v_bias"
            )
        self.attention_dropout = keras.layers.Dropout(
            self.attention_dropout_rate, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.proj = keras.layers.Dense(self.hidden_dim, dtype=self.dtype_policy, name="proj")
        self.proj.build(input_shape[:-1] + (self.hidden_dim,))
        self.proj_dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=self.dtype_policy, name="proj_dropout"
        )
        self.built = True

    def call(self, inputs, training=None):
        batch, tokens = ops.shape(inputs)[0], ops.shape(inputs)[1]
        qkv = self.qkv(inputs)
        if self.qv_bias:
            zero = ops.zeros((self.hidden_dim,), dtype=self.q_bias.dtype)
            bias = ops.concatenate([self.q_bias, zero, self.v_bias], axis=0)
            qkv = qkv + ops.cast(bias, qkv.dtype)
        qkv = ops.reshape(qkv, (batch, tokens, 3, self.num_heads, self.head_dim))
        # unstack, not three slices: the gradient of a slice writes a zero tensor of the
        # whole input (StridedSliceGrad, 12% of the demo step on the CPU); of unstack, a stack.
        query, key, value = ops.unstack(qkv, 3, axis=2)
        context = multi_head_attention(
            query, key, value, self.head_dim**-0.5, self.attention_dropout, training,
            self.memory_saving,
        )  # fmt: skip
        context = ops.reshape(context, (batch, tokens, self.hidden_dim))
        return self.proj_dropout(self.proj(context), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "qv_bias": self.qv_bias,
                "attention_dropout_rate": self.attention_dropout_rate,
                "dropout_rate": self.dropout_rate,
                "memory_saving": self.memory_saving,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="mtcae_keras")
class VideoMAEEncoderBlock(keras.layers.Layer):
    """Pre-norm ViT block: `x + DropPath(g1 * Attn(Norm(x)))`, then `+ DropPath(g2 * MLP(Norm(x)))`.

    Args:
        hidden_dim: int. Token width.
        num_heads: int. Attention heads.
        intermediate_dim: int. Hidden width of the GELU MLP.
        layer_norm_epsilon: float. LayerNorm epsilon (1e-6 in VideoMAE; 1e-12 is the
            Hugging Face config default).
        qv_bias: bool. Learn query and value biases.
        layer_scale_init_value: float or None. When set, the block has the per-channel
            layer-scale weights `gamma_1` and `gamma_2` of some checkpoints.
        drop_path_rate: float. Stochastic depth rate of this block.
        dropout_rate: float. Dropout after the attention projection and inside the MLP.
        attention_dropout_rate: float. Dropout on attention probabilities.
        memory_saving: True, False or `"full"`. In training, keep only the sublayers'
            inputs for the backward pass and recompute the rest (`keras.remat`): the
            attention sublayer, the second LayerNorm, the GELU; `"full"` also the MLP's fc1
            (less memory, slower: README, Speed). The same outputs and gradients either way.
        **kwargs: base layer arguments.
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        intermediate_dim,
        layer_norm_epsilon=1e-6,
        qv_bias=True,
        layer_scale_init_value=None,
        drop_path_rate=0.0,
        dropout_rate=0.0,
        attention_dropout_rate=0.0,
        memory_saving=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.layer_norm_epsilon = layer_norm_epsilon
        self.qv_bias = qv_bias
        self.layer_scale_init_value = layer_scale_init_value
        self.drop_path_rate = drop_path_rate
        self.dropout_rate = dropout_rate
        self.attention_dropout_rate = attention_dropout_rate
        if memory_saving not in MEMORY_SAVING:
            raise ValueError(f"memory_saving={memory_saving!r}: choose True, False or 'full'.")
        self.memory_saving = memory_saving

    def build(self, input_shape):
        def norm(name):
            layer = keras.layers.LayerNormalization(
                epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
            )
            layer.build(input_shape)
            return layer

        self.norm1 = norm("norm1")
        self.attn = VideoMAEAttention(
            self.hidden_dim,
            self.num_heads,
            qv_bias=self.qv_bias,
            attention_dropout_rate=self.attention_dropout_rate,
            dropout_rate=self.dropout_rate,
            memory_saving=self.memory_saving,
            dtype=self.dtype_policy,
            name="attn",
        )
        self.attn.build(input_shape)
        self.norm2 = norm("norm2")
        self.mlp_fc1 = keras.layers.Dense(
            self.intermediate_dim, dtype=self.dtype_policy, name="mlp_fc1"
        )
        self.mlp_fc1.build(input_shape)
        self.mlp_fc2 = keras.layers.Dense(self.hidden_dim, dtype=self.dtype_policy, name="mlp_fc2")
        self.mlp_fc2.build(input_shape[:-1] + (self.intermediate_dim,))
        self.mlp_dropout = keras.layers.Dropout(
            self.dropout_rate, dtype=self.dtype_policy, name="mlp_dropout"
        )
        if self.layer_scale_init_value is not None:
            init = keras.initializers.Constant(self.layer_scale_init_value)
            self.gamma_1 = self.add_weight(
                shape=(self.hidden_dim,), initializer=init, name="gamma_1"
            )
            self.gamma_2 = self.add_weight(
                shape=(self.hidden_dim,), initializer=init, name="gamma_2"
            )
        self.drop_path = drop_path_layer(self.drop_path_rate, self.dtype_policy)
        self.built = True

    def call(self, inputs, training=None):
        def attend(x):
            return self.attn(self.norm1(x), training=training)

        (attend,), mlp_input = rematerialized_sublayers(
            self.memory_saving if training else False,
            self.dropout_rate or self.attention_dropout_rate,
            [attend],
            self.norm2,
            self.mlp_fc1,
        )
        x = attend(inputs)
        if self.layer_scale_init_value is not None:
            x = x * ops.cast(self.gamma_1, x.dtype)
        x = inputs + self.drop_path(x, training=training)
        y = self.mlp_dropout(mlp_input(x), training=training)
        y = self.mlp_dropout(self.mlp_fc2(y), training=training)
        if self.layer_scale_init_value is not None:
            y = y * ops.cast(self.gamma_2, y.dtype)
        return x + self.drop_path(y, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "qv_bias": self.qv_bias,
                "layer_scale_init_value": self.layer_scale_init_value,
                "drop_path_rate": self.drop_path_rate,
                "dropout_rate": self.dropout_rate,
                "attention_dropout_rate": self.attention_dropout_rate,
                "memory_saving": self.memory_saving,
            }
        )
        return config
