"""The ABAW4 multi-task frameworks (basic, share-bottom, feedback) over per-frame features."""

import keras
from keras import ops

from mtcae_keras.models.task_feedback_embedding import TaskFeedbackEmbedding
from mtcae_keras.models.temporal_encoder import TemporalEncoder
from mtcae_keras.models.temporal_task_head import TemporalTaskHead

# The ABAW4 multi-task challenge's tasks and their outputs per frame (Aff-Wild2: 8
# expressions, 12 action units: AU1 2 4 6 7 10 12 15 23 24 25 26).
AFFECT_TASKS = {"valence": 1, "arousal": 1, "expression": 8, "action_units": 12}
# MTCAE-DFER's tasks on our datasets: boxes and landmarks per frame, expression per clip
# (`clip_tasks`). Tasks whose single output is squeezed away: valence and arousal.
KNOWN_TASKS = (*AFFECT_TASKS, "boxes", "landmarks")
SCALAR_TASKS = ("valence", "arousal")
FRAMEWORKS = ("basic", "share_bottom", "feedback")
FEEDBACK_KINDS = ("features", "predictions")


def _top_heads(width):
    heads = max(1, width // 64)  # the code's task_hidden_size // 64
    if width % heads:
        raise ValueError(
            f"A share-bottom top encoder of width {width} gets {heads} heads (width // 64, as "
            "the code), which do not divide it; choose hidden_dim / feed widths that do."
        )
    return heads


def build_temporal_multitask_model(
    feature_dim, num_frames, framework="basic", temporal_encoder="transformer", name=None, **kwargs
):
    """A functional `keras.Model`: per-frame features -> per-frame predictions of each task.

    AIM3-RUC/ABAW4's `MTLTransformerModel` (and its GRU / LSTM models) in three frameworks:

    - `basic`: one shared temporal encoder (`num_layers`), one `TemporalTaskHead` per task.
    - `share_bottom`: a shared bottom of `num_layers - share_layers` layers, then per task its
      own top encoder of `share_layers` layers (Transformer tops: no input projection,
      `width // 64` heads, as the code) and head. `num_layers == share_layers` leaves no
      shared encoder: the features go straight to the tops.
    - `feedback`: the source tasks are predicted first; each target task's input is the
      shared hidden states concatenated with, for every source, either its head's last
      hidden features (`feedback="features"`, the code's `feature_feedback`) or an embedding
      of its predictions (`"predictions"`, the code's `feedback`, `TaskFeedbackEmbedding`),
      gradient stopped, so the target's loss does not train the source branch. With
      `feedback_structure="share_bottom"` (the code's example script) each task has its top
      encoder; `"basic"` feeds the heads directly.

    Args:
        feature_dim: int. Width of the per-frame features.
        num_frames: int. Steps per input sequence (a multiple of `segment_length`).
        framework: str. `basic`, `share_bottom` or `feedback`.
        temporal_encoder: str. `gru`, `lstm` or `transformer`.
        name: optional model name.
        **kwargs: `temporal_multitask_graph`'s settings (tasks, widths, feedback, ...).

    Returns:
        `keras.Model` taking `features` `(B, T, feature_dim)` (and `<source>_labels` with
        `feed_gt_rate`), with one output per task: `valence` / `arousal` `(B, T)`,
        `expression` `(B, T, classes)` logits, `action_units` `(B, T, units)` logits; float32.
    """
    features = keras.Input((num_frames, feature_dim), name="features")
    inputs, outputs = temporal_multitask_graph(features, framework, temporal_encoder, **kwargs)
    model_inputs = inputs if len(inputs) > 1 else features
    return keras.Model(
        model_inputs, outputs, name=name or f"temporal_{framework}_{temporal_encoder}"
    )


def temporal_multitask_graph(
    features,
    framework="basic",
    temporal_encoder="transformer",
    tasks=None,
    hidden_dim=256,
    num_layers=4,
    num_heads=4,
    intermediate_dim=1024,
    dropout_rate=0.3,
    segment_length=None,
    head_dims=(256, 128),
    share_layers=1,
    feedback="features",
    feedback_structure="share_bottom",
    feed_sources=("action_units",),
    feed_targets=("expression",),
    feed_dim=256,
    feed_gt_rate=0.0,
    use_positions=True,
    clip_tasks=(),
    target_statistics=None,
    dtype=None,
):
    """The layers of `build_temporal_multitask_model` on a `(B, T, D)` tensor of per-frame
    features: `(inputs dict, outputs dict)`, for models made of more (the MTCAE temporal
    strategies put it after an encoder).

    Args:
        features: `(B, T, D)` KerasTensor (an `Input` or a layer's output).
        framework, temporal_encoder: as `build_temporal_multitask_model`.
        tasks: dict task -> outputs per frame; default `AFFECT_TASKS`. Names: `valence`,
            `arousal` (regression, squeezed to `(B, T)`), `expression` (classes),
            `action_units` (multi-label), `boxes`, `landmarks` (regression).
        hidden_dim, num_layers, num_heads, intermediate_dim, dropout_rate, segment_length,
            use_positions: the `TemporalEncoder`'s.
        head_dims: tuple of int. Hidden widths of every `TemporalTaskHead`.
        share_layers: int. Layers of each task's top encoder (share-bottom structures).
        feedback: str. `features` or `predictions`.
        feedback_structure: str. `share_bottom` or `basic` (feedback only).
        feed_sources, feed_targets: tuples of task names (feedback only), disjoint.
        feed_dim: int. Embedding width of prediction feedback.
        feed_gt_rate: float. Prediction feedback: share of training frames fed the source's
            ground truth; then the inputs gain `<source>_labels` (`(B, T)` for V/A and
            expression, `(B, T, units)` for action units; read in training only).
        clip_tasks: tasks predicted once per clip: the mean of their per-frame outputs over
            time (e.g. `("expression",)`: clip logits `(B, classes)`).
        target_statistics: None or dict task -> `(mean, std)`: those heads predict
            standardised targets (`TemporalTaskHead`'s `output_offset` / `output_scale`).
        dtype: dtype policy of the new layers; the outputs are float32.
    """

    tasks = dict(AFFECT_TASKS if tasks is None else tasks)
    unknown = set(tasks) - set(KNOWN_TASKS)
    if unknown:
        raise ValueError(f"Unknown tasks {sorted(unknown)}: choose from {list(KNOWN_TASKS)}.")
    if set(clip_tasks) - set(tasks) or set(target_statistics or {}) - set(tasks):
        raise ValueError(f"clip_tasks {list(clip_tasks)} and target_statistics "
                         f"{sorted(target_statistics or {})} must be among the tasks.")  # fmt: skip
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework={framework!r}: choose one of {', '.join(FRAMEWORKS)}.")
    sources, targets = list(feed_sources), list(feed_targets)
    if framework == "feedback":
        if feedback not in FEEDBACK_KINDS:
            raise ValueError(f"feedback={feedback!r}: choose one of {FEEDBACK_KINDS}.")
        if feedback_structure not in ("basic", "share_bottom"):
            raise ValueError(f"feedback_structure={feedback_structure!r}: basic or share_bottom.")
        missing = [t for t in sources + targets if t not in tasks]
        if missing or set(sources) & set(targets) or not sources or not targets:
            raise ValueError(
                f"feed_sources={sources} and feed_targets={targets} must be non-empty, disjoint "
                f"and among the tasks {list(tasks)}."
            )
    elif feed_gt_rate:
        raise ValueError(f"feed_gt_rate applies to framework='feedback', not {framework!r}.")
    if feed_gt_rate and feedback != "predictions":
        raise ValueError("feed_gt_rate mixes ground truth into prediction feedback only.")
    structure = feedback_structure if framework == "feedback" else framework
    if structure == "share_bottom" and not 1 <= share_layers <= num_layers:
        raise ValueError(f"share_layers={share_layers} must be in 1..num_layers={num_layers}.")

    encoder_args = {"kind": temporal_encoder, "num_heads": num_heads,
                    "intermediate_dim": intermediate_dim, "dropout_rate": dropout_rate,
                    "segment_length": segment_length, "use_positions": use_positions,
                    "dtype": dtype}  # fmt: skip
    num_frames = features.shape[1]
    inputs = {"features": features}
    bottom_layers = num_layers - share_layers if structure == "share_bottom" else num_layers
    hidden = features
    if bottom_layers > 0:
        hidden = TemporalEncoder(hidden_dim=hidden_dim, num_layers=bottom_layers,
                                 name="temporal_encoder", **encoder_args)(features)  # fmt: skip

    def task_branch(task, x):
        """The task's top encoder (share-bottom) and head: (outputs, head features)."""
        if structure == "share_bottom":
            width = x.shape[-1]
            top = {**encoder_args, "num_heads": _top_heads(width)}
            if temporal_encoder == "transformer":
                top["affine"] = False  # the code's affine=False: the top keeps its width
            x = TemporalEncoder(hidden_dim=width, num_layers=share_layers,
                                name=f"{task}_encoder", **top)(x)  # fmt: skip
        offset, scale = (target_statistics or {}).get(task, (None, None))
        head = TemporalTaskHead(head_dims, tasks[task], dropout_rate, output_offset=offset,
                                output_scale=scale, dtype=dtype, name=f"{task}_head")  # fmt: skip
        return head(x)

    outputs, head_features, embeddings = {}, {}, {}
    fed = targets if framework == "feedback" else []
    for task in tasks:
        if task not in fed:
            outputs[task], head_features[task] = task_branch(task, hidden)
    for task in fed:
        parts = [hidden]
        for source in sources:
            if feedback == "features":
                parts.append(ops.stop_gradient(head_features[source]))
                continue
            labels = None
            if feed_gt_rate:
                shape = (
                    (num_frames,)
                    if source in (*SCALAR_TASKS, "expression")
                    else (num_frames, tasks[source])
                )
                labels = inputs.setdefault(f"{source}_labels",
                                           keras.Input(shape, name=f"{source}_labels"))  # fmt: skip
            if source not in embeddings:  # one embedding per source, shared by the targets
                embeddings[source] = TaskFeedbackEmbedding(
                    source, tasks[source], feed_dim, feed_gt_rate, dtype=dtype,
                    name=f"{source}_feedback",
                )  # fmt: skip
            embed = embeddings[source]
            parts.append(embed(outputs[source], labels) if labels is not None
                         else embed(outputs[source]))  # fmt: skip
        outputs[task], head_features[task] = task_branch(task, ops.concatenate(parts, axis=-1))

    named = {}
    for task in tasks:
        value = ops.cast(outputs[task], "float32")
        if task in SCALAR_TASKS:
            value = ops.squeeze(value, -1)
        if task in clip_tasks:
            value = ops.mean(value, axis=1)  # the clip's prediction: mean over its frames
        named[task] = keras.layers.Identity(name=task, dtype="float32")(value)
    return inputs, named
