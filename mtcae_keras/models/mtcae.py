"""Builds the full MTCAE-DFER model for one of the paper's six structure strategies."""

import keras

from mtcae_keras.models.frame_feature_pooling import FrameFeaturePooling
from mtcae_keras.models.heads import TaskHead
from mtcae_keras.models.mlp_decoder import MLPDecoder
from mtcae_keras.models.presets import DECODER_PRESETS
from mtcae_keras.models.temporal_multitask import temporal_multitask_graph
from mtcae_keras.models.vit_decoder import ViTDecoder

PAPER_STRATEGIES = ("stl", "nfs_mlp", "nfs_vit", "fs_mlp", "fs_vit", "cascaded_vit")
# ABAW4's temporal multi-task frameworks on MTCAE's tasks (boxes and landmarks per frame,
# expression per clip) over the encoder's tokens pooled per frame.
TEMPORAL_STRATEGIES = ("temporal_basic", "temporal_share_bottom", "temporal_feedback")
STRATEGIES = PAPER_STRATEGIES + TEMPORAL_STRATEGIES
# Cascade order (paper eq. 4-6): face detection, then landmarks, then expression.
TASKS = ("boxes", "landmarks", "expression")
# The tasks a model learns, in cascade order. `mtcae`: the paper's (boxes and landmarks per
# frame, expression per clip). `affect`: the ABAW4 challenge's per-frame tasks (action
# units, valence, arousal, expression at every frame); the cascade runs action units first
# (the face's geometry, like landmarks), then the affect dimensions, then the expression,
# the order in which ABAW4's feedback framework feeds action units into the expression.
TASK_SETS = {"mtcae": TASKS, "affect": ("action_units", "valence", "arousal", "expression")}
NUM_ACTION_UNITS = 12  # Aff-Wild2's (AIM3-RUC/ABAW4; synthetic_faces draws the same 12)
_HEAD_ARGS = ("input_dropout_rate", "head_dropout_rate", "head_norm_first")
_TEMPORAL_ARGS = ("temporal_encoder", "temporal_num_heads")


def task_output_shapes(task_set, num_frames, num_classes):
    """`{task: output shape of one example}` of a `TASK_SETS` name, in cascade order."""
    if task_set not in TASK_SETS:
        raise ValueError(f"Unknown task set {task_set!r}; choose one of {sorted(TASK_SETS)}.")
    shapes = {"boxes": (num_frames, 4), "landmarks": (num_frames, 10),
              "expression": (num_classes,)}  # fmt: skip
    if task_set == "affect":
        shapes = {"action_units": (num_frames, NUM_ACTION_UNITS), "valence": (num_frames,),
                  "arousal": (num_frames,), "expression": (num_frames, num_classes)}  # fmt: skip
    return {task: shapes[task] for task in TASK_SETS[task_set]}


def decoder_config(decoder="paper", **overrides):
    """The resolved decoder settings: a preset name or dict, plus overrides."""
    if isinstance(decoder, str):
        if decoder not in DECODER_PRESETS:
            raise ValueError(
                f"Unknown decoder preset {decoder!r}; choose one of {sorted(DECODER_PRESETS)}."
            )
        decoder = DECODER_PRESETS[decoder]
    unknown = set(overrides) - set(DECODER_PRESETS["paper"])
    if unknown:
        raise ValueError(f"Unknown decoder settings {sorted(unknown)}.")
    return {**decoder, **overrides}


def build_mtcae_model(
    backbone,
    strategy,
    num_classes,
    num_frames=16,
    decoder="paper",
    freeze_encoder=True,
    target_statistics=None,
    dtype=None,
    name=None,
    tasks="mtcae",
    **decoder_overrides,
):
    """Encoder + decoders + heads for a named structure strategy.

    Strategies (paper section 4.3), with `T` the projected encoder tokens and `F` the memory
    (the projected tokens, or the raw encoder tokens when the decoder projects its own):

    - `stl`: expression head on the encoder tokens only.
    - `nfs_mlp` / `nfs_vit`: one task-specific MLP / ViT decoder per task on `T`.
    - `fs_mlp` / `fs_vit`: one shared decoder on `T`, then a task-specific one per task.
    - `cascaded_vit` (MTCAE-DFER): `Y1 = Dec1(T, F)`, `Y2 = Dec2(Y1, F)`, `Y3 = Dec3(Y2, F)`
      feeding the box, landmark and expression heads.
    - `temporal_basic` / `temporal_share_bottom` / `temporal_feedback`: the ABAW4 system's
      frameworks (`temporal_multitask_graph`) on the encoder's tokens averaged per frame
      (`FrameFeaturePooling`, then dropout at the decoder's `input_dropout_rate`): a
      `TemporalEncoder` of the decoder's `temporal_encoder` kind
      (`gru`, `lstm`, `transformer`; its width, layers and dropout the decoder's
      `hidden_dim`, `num_layers`, `dropout_rate`, feed-forward `mlp_dims[0]`, heads
      `temporal_num_heads`), per-frame box and landmark heads and a per-frame expression
      head averaged over the clip; `temporal_feedback` feeds the landmark branch's features
      (gradient stopped) into the expression branch (with `tasks="affect"`: the action-unit
      branch's, as ABAW4's example).

    Args:
        backbone: a `VideoMAEBackbone`, an `LGIFormerBackbone` (its local tokens), or any model
            mapping a clip to `(B, tokens, width)`.
        strategy: str. One of `STRATEGIES`.
        num_classes: int. Expression classes.
        num_frames: int. Frames per clip, i.e. the rows of the box and landmark outputs.
        decoder: str or dict. A `DECODER_PRESETS` name (`paper`, `notebook`) or settings.
        freeze_encoder: bool. Set `backbone.trainable = False` (the notebook's setting).
        target_statistics: None or dict `boxes` / `landmarks` -> `(mean, std)` of the training
            targets (`localisation_statistics`): those heads predict standardised targets and
            start at the mean (`TaskHead`'s `output_offset` / `output_scale`).
        dtype: dtype policy of the new layers (e.g. `"mixed_bfloat16"`); global if None.
        name: str. Model name; `mtcae_<strategy>` if None.
        tasks: str. A `TASK_SETS` name: `mtcae` (the paper's tasks) or `affect` (per-frame
            action units, valence, arousal and expression; the cascade in that order).
        **decoder_overrides: replace single decoder settings (e.g. `num_layers=1`).

    Returns:
        A functional `keras.Model` taking `video` `(B, frames, H, W, 3)` normalised float
        pixels and returning a dict, all float32 (`stl`: `expression` only). `mtcae`:
        `boxes` `(B, num_frames, 4)`, `landmarks` `(B, num_frames, 10)`, `expression`
        `(B, num_classes)` logits. `affect`: `action_units` `(B, num_frames, 12)` logits,
        `valence` and `arousal` `(B, num_frames)`, `expression` `(B, num_frames,
        num_classes)` logits.
    """
    video, outputs = mtcae_graph(backbone, strategy, num_classes, num_frames, decoder,
                                 freeze_encoder, target_statistics, dtype, tasks,
                                 **decoder_overrides)  # fmt: skip
    return keras.Model(video, outputs, name=name or f"mtcae_{strategy}")


def mtcae_graph(backbone, strategy, num_classes, num_frames=16, decoder="paper",
                freeze_encoder=True, target_statistics=None, dtype=None, tasks="mtcae",
                **decoder_overrides):  # fmt: skip
    """The `(video input, outputs dict)` of `build_mtcae_model` (same arguments), for a
    functional model to be made of: `build_mtcae_model`'s `keras.Model` or `MTCAEDFER`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; choose one of {STRATEGIES}.")
    config = decoder_config(decoder, **decoder_overrides)
    backbone.trainable = not freeze_encoder
    video = keras.Input(shape=tuple(backbone.input.shape[1:]), name="video")
    features = backbone(video)
    if isinstance(features, dict):  # LGIFormerBackbone(return_region_tokens=True)
        features = features["tokens"]
    output_shapes = task_output_shapes(tasks, num_frames, num_classes)

    unknown = set(target_statistics or {}) - ({"boxes", "landmarks"} & set(output_shapes))
    if unknown:
        raise ValueError(f"target_statistics for {sorted(unknown)}: only boxes and landmarks"
                         f" (of the {tasks!r} tasks).")  # fmt: skip

    def head(task, tokens):
        offset, scale = (target_statistics or {}).get(task, (None, None))
        return TaskHead(
            output_shapes[task],
            norm_first=config["head_norm_first"],
            dropout_rate=config["head_dropout_rate"],
            layer_norm_epsilon=config["layer_norm_epsilon"],
            output_offset=offset,
            output_scale=scale,
            dtype=dtype,
            name=task,
        )(tokens)

    if strategy == "stl":
        return video, {"expression": head("expression", features)}
    if strategy in TEMPORAL_STRATEGIES:
        return video, _temporal_outputs(backbone, features, strategy, output_shapes,
                                        num_frames, config, target_statistics,
                                        dtype)  # fmt: skip

    decoder_args = {k: v for k, v in config.items() if k not in _HEAD_ARGS + _TEMPORAL_ARGS}
    mlp_args = {
        k: decoder_args[k] for k in ("hidden_dim", "num_layers", "mlp_dims", "dropout_rate")
    }
    mlp_args["layer_norm_epsilon"] = decoder_args["layer_norm_epsilon"]
    dropped = keras.layers.Dropout(config["input_dropout_rate"], dtype=dtype, name="token_dropout")(
        features
    )
    tokens = keras.layers.Dense(
        config["hidden_dim"], use_bias=False, dtype=dtype, name="token_projection"
    )(dropped)
    memory = features if config["memory_projection"] else tokens

    def vit(name, query):
        return ViTDecoder(**decoder_args, dtype=dtype, name=name)(query, memory)

    def mlp(name, query):
        return MLPDecoder(**mlp_args, dtype=dtype, name=name)(query)

    outputs = {}
    if strategy == "cascaded_vit":
        stream = tokens
        for task in output_shapes:  # cascade order
            stream = vit(f"{task}_decoder", stream)
            outputs[task] = head(task, stream)
    else:
        decode = vit if strategy.endswith("_vit") else mlp
        shared = decode("shared_decoder", tokens) if strategy.startswith("fs_") else tokens
        for task in output_shapes:
            outputs[task] = head(task, decode(f"{task}_decoder", shared))
    return video, outputs


def _temporal_outputs(backbone, features, strategy, output_shapes, num_frames, config,
                      statistics, dtype):  # fmt: skip
    """The temporal strategies' outputs: tokens -> frames -> ABAW4 framework -> heads."""
    grid = getattr(backbone, "token_grid", None)
    if grid is None:
        raise ValueError(f"{strategy} needs an encoder with a token_grid (VideoMAE, LGI-Former).")
    frames = FrameFeaturePooling(grid, backbone.tubelet_size, dtype=dtype,
                                 name="frame_pooling")(features)  # fmt: skip
    frames = keras.layers.Dropout(config["input_dropout_rate"], dtype=dtype,
                                  name="frame_dropout")(frames)  # fmt: skip
    if frames.shape[1] != num_frames:
        raise ValueError(f"{strategy}: the encoder's tokens cover {frames.shape[1]} frames, "
                         f"num_frames is {num_frames}.")  # fmt: skip
    width = config["hidden_dim"]
    affect = "valence" in output_shapes
    # Each task's outputs per frame; the clip tasks (mtcae's expression) average them.
    per_frame = {task: 1 if task in ("valence", "arousal") else shape[-1]
                 for task, shape in output_shapes.items()}  # fmt: skip
    _, outputs = temporal_multitask_graph(
        frames,
        framework=strategy.removeprefix("temporal_"),
        temporal_encoder=config["temporal_encoder"],
        tasks=per_frame,
        hidden_dim=width,
        num_layers=config["num_layers"],
        num_heads=config["temporal_num_heads"],
        intermediate_dim=config["mlp_dims"][0],
        dropout_rate=config["dropout_rate"],
        head_dims=(max(width // 2, 1),),
        share_layers=1,
        feed_sources=("action_units",) if affect else ("landmarks",),
        feed_targets=("expression",),
        clip_tasks=() if affect else ("expression",),
        target_statistics=statistics,
        dtype=dtype,
    )
    return {task: outputs[task] for task in output_shapes}
