"""The ABAW4 system's temporal encoder: GRU, LSTM or Transformer over per-frame features."""

import keras
from keras import ops

from mtcae_keras.models.temporal_transformer_layer import TemporalTransformerLayer
from mtcae_keras.models.videomae_layers import sinusoid_position_embedding

TEMPORAL_ENCODERS = ("gru", "lstm", "transformer")


def sinusoid_position_table(num_positions, dim, padding_index=0):
    """AIM3-RUC/ABAW4's sinusoid table `(num_positions, dim)`: VideoMAE's
    (`sinusoid_position_embedding`, the same formula) with the row of `padding_index` zeroed
    (the code builds it with `padding_idx=0`, so the first step of every segment gets no
    position signal). `padding_index=None` keeps every row."""
    table = sinusoid_position_embedding(num_positions, dim)
    if padding_index is not None:
        table[padding_index] = 0.0
    return table


@keras.saving.register_keras_serializable(package="mtcae_keras")
class TemporalEncoder(keras.layers.Layer):
    """Per-frame features `(B, T, D)` -> per-frame hidden states `(B, T, hidden_dim)`.

    As AIM3-RUC/ABAW4 (Zhang et al., ABAW4 multi-task challenge) runs it, over segments of
    `segment_length` steps (the paper's sequences are cut into segments):

    - `transformer`: `affine` (Dense to `hidden_dim`), plus the fixed sinusoid table
      (`sinusoid_position_table`, restarting at every segment), then `num_layers`
      `TemporalTransformerLayer`s (PyTorch's post-norm encoder layer). Segments do not see
      each other.
    - `gru`: `num_layers` stacked GRUs (PyTorch's gate layout, `reset_after`), dropout
      between layers and on the output (the code's `GrusModel`); `lstm`: stacked LSTMs,
      dropout between layers (`LSTMEncoder`). The last hidden (and cell) state of each
      segment, gradient stopped, starts the next one (the paper's eqs. 1-2; the code also
      detaches it), so a long sequence trains with truncated back-propagation.

    Args:
        kind: str. `gru`, `lstm` or `transformer`.
        hidden_dim: int. Width of the hidden states.
        num_layers: int. Transformer layers or stacked recurrent layers.
        num_heads: int. Transformer attention heads.
        intermediate_dim: int. Transformer feed-forward width.
        dropout_rate: float. Transformer dropout; recurrent: between (and, for GRU, after)
            the layers.
        segment_length: optional int. Steps per segment (None: the whole sequence is one
            segment); the sequence length must be a multiple of it.
        affine: bool. Transformer: project the input to `hidden_dim` first (False: the input
            must already be `hidden_dim` wide, as in the share-bottom tops).
        use_positions: bool. Transformer: add the sinusoid table (the code's `--use_pe`).
        max_positions: int. Rows of the sinusoid table (the code's 512).
        **kwargs: base layer arguments.

    Call arguments:
        features: `(batch, steps, input_dim)`. Padded steps are attended to like the others,
            as the code runs it (it passes no mask); datasets mark them in their labels.
    """

    def __init__(self, kind="transformer", hidden_dim=256, num_layers=4, num_heads=4,
                 intermediate_dim=1024, dropout_rate=0.3, segment_length=None, affine=True,
                 use_positions=True, max_positions=512, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if kind not in TEMPORAL_ENCODERS:
            raise ValueError(f"kind={kind!r}: choose one of {', '.join(TEMPORAL_ENCODERS)}.")
        if segment_length is not None and segment_length > max_positions and kind == "transformer":
            raise ValueError(f"segment_length={segment_length} > max_positions={max_positions}.")
        self.kind = kind
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout_rate = dropout_rate
        self.segment_length = segment_length
        self.affine = affine
        self.use_positions = use_positions
        self.max_positions = max_positions

    def build(self, input_shape):
        width = input_shape[-1]
        if self.kind == "transformer":
            if self.affine:
                self.affine_dense = keras.layers.Dense(
                    self.hidden_dim, dtype=self.dtype_policy, name="affine"
                )
                self.affine_dense.build(input_shape)
            elif width != self.hidden_dim:
                raise ValueError(f"affine=False needs input width {width} == {self.hidden_dim}.")
            self.position_table = sinusoid_position_table(self.max_positions, self.hidden_dim)
            self.encoder_layers = []
            for i in range(self.num_layers):
                layer = TemporalTransformerLayer(
                    self.hidden_dim, self.num_heads, self.intermediate_dim, self.dropout_rate,
                    dtype=self.dtype_policy, name=f"layers_{i}",
                )  # fmt: skip
                layer.build((None, None, self.hidden_dim))
                self.encoder_layers.append(layer)
        else:
            recurrent = keras.layers.GRU if self.kind == "gru" else keras.layers.LSTM
            options = {"reset_after": True} if self.kind == "gru" else {}
            self.recurrent_layers = []
            for i in range(self.num_layers):
                layer = recurrent(self.hidden_dim, return_sequences=True, return_state=True,
                                  dtype=self.dtype_policy, name=f"rnn_l{i}", **options)  # fmt: skip
                layer.build((None, None, width if i == 0 else self.hidden_dim))
                self.recurrent_layers.append(layer)
            self.dropout = keras.layers.Dropout(self.dropout_rate, dtype=self.dtype_policy)
        super().build(input_shape)

    def _segments(self, steps):
        length = self.segment_length or steps
        if steps is None or steps % length:
            raise ValueError(
                f"{steps} steps: the sequence length must be static and a multiple of "
                f"segment_length={self.segment_length}."
            )
        return steps // length, length

    def call(self, features, training=None):
        count, length = self._segments(features.shape[1])
        if self.kind == "transformer":
            x = self.affine_dense(features) if self.affine else features
            width = x.shape[-1]
            x = ops.reshape(x, (-1, length, width))  # segments side by side in the batch
            if self.use_positions:
                x = x + ops.cast(self.position_table[:length], x.dtype)
            for layer in self.encoder_layers:
                x = layer(x, training=training)
            return ops.reshape(x, (-1, count * length, width))
        states = [None] * self.num_layers
        outputs = []
        for segment in range(count):
            x = features[:, segment * length : (segment + 1) * length]
            for i, layer in enumerate(self.recurrent_layers):
                result = layer(x, initial_state=states[i], training=training)
                x, states[i] = result[0], [ops.stop_gradient(s) for s in result[1:]]
                if i < self.num_layers - 1 or self.kind == "gru":
                    x = self.dropout(x, training=training)
            outputs.append(x)
        return outputs[0] if count == 1 else ops.concatenate(outputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kind": self.kind,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout_rate": self.dropout_rate,
                "segment_length": self.segment_length,
                "affine": self.affine,
                "use_positions": self.use_positions,
                "max_positions": self.max_positions,
            }
        )
        return config
