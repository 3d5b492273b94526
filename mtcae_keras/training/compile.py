"""`compile` with the paper's losses, loss weights, metrics and optimiser."""

import keras

from mtcae_keras.training.affect_losses import ABAW4_LOSS_WEIGHTS
from mtcae_keras.training.cached_rate_adam_w import CachedRateAdamW
from mtcae_keras.training.losses import DEFAULT_LOSS_WEIGHTS
from mtcae_keras.training.losses import mtcae_losses
from mtcae_keras.training.unweighted_average_recall import UnweightedAverageRecall


def warmup_cosine_decay(learning_rate, total_steps, warmup_fraction=0.1, alpha=0.01):
    """Linear warm-up from 0 to `learning_rate`, then cosine decay to `alpha * learning_rate`.

    Args:
        learning_rate: float. Peak learning rate, reached after the warm-up.
        total_steps: int. Optimiser steps of the whole run (warm-up included).
        warmup_fraction: float. Share of `total_steps` spent warming up.
        alpha: float. Final learning rate as a fraction of the peak.

    Returns:
        A `keras.optimizers.schedules.CosineDecay`.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1; got {total_steps}.")
    warmup = int(total_steps * warmup_fraction)
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        max(total_steps - warmup, 1),
        alpha=alpha,
        warmup_target=learning_rate,
        warmup_steps=warmup,
    )


# Never decayed with `decay_exclusions`: MAE-DFER's and VideoMAE's `no_weight_decay` set
# (position tables, which are constants here, and the representative tokens), plus every
# one-dimensional weight (biases, LayerNorm scales and offsets, q / v biases), as their
# `optim_factory` does.
NO_DECAY_NAMES = ("lg_region_tokens",)


def mtcae_optimizer(model, learning_rate=1e-3, weight_decay=1e-3, decay_exclusions=False):
    """AdamW for a model, optionally without decay on biases, norms and representative tokens.

    A `CachedRateAdamW`: Keras' AdamW, with a learning-rate schedule evaluated once per step.

    Args:
        model: the (built) model whose trainable variables the optimizer will update.
        learning_rate: float or schedule.
        weight_decay: float. Decoupled weight decay.
        decay_exclusions: bool. Exclude `NO_DECAY_NAMES` and every 1-D variable from weight
            decay (MAE-DFER's and VideoMAE's fine-tuning recipe). Off by default: the
            MTCAE-DFER notebook decays every weight.
    """
    optimizer = CachedRateAdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    if decay_exclusions:
        optimizer.exclude_from_weight_decay(
            var_list=[
                v
                for v in model.trainable_variables
                if len(v.shape) <= 1 or v.name in NO_DECAY_NAMES
            ]  # fmt: skip
        )
    return optimizer


def compile_mtcae_model(
    model,
    num_classes,
    learning_rate=1e-3,
    weight_decay=1e-3,
    loss_weights=None,
    jit_compile="auto",
    optimizer=None,
    decay_exclusions=False,
):
    """Compiles a `build_mtcae_model` model for training.

    Losses: masked MSE on `boxes` and `landmarks` (use `face_found` as their sample weight),
    sparse cross-entropy from logits on `expression`, weighted 0.5 / 0.5 / 1.5 by default.
    A model of the `affect` tasks (`build_mtcae_model(tasks="affect")`) takes ABAW4's
    masked per-frame losses (`MaskedAffectLoss`: MSE on valence and arousal, cross-entropy on
    the per-frame expression, sigmoid cross-entropy on action units) weighted as its example
    script, V 12 / A 12 / expression 1 / AU 0.35. Metrics on `expression` only: accuracy (WAR)
    and UAR (per frame for a per-frame expression). Optimiser: AdamW.

    Args:
        model: the model; its output dict names the tasks it has.
        num_classes: int. Expression classes (for UAR).
        learning_rate: float or schedule. AdamW learning rate.
        weight_decay: float. AdamW weight decay.
        loss_weights: dict of output -> weight; missing outputs keep the defaults.
        jit_compile: bool or "auto". Passed to `compile`.
        optimizer: a `keras.optimizers.Optimizer` that replaces the AdamW default.
        decay_exclusions: bool. No weight decay on biases, norms and representative tokens
            (`mtcae_optimizer`); off by default, as in the paper's notebook.
    """
    outputs = list(model.output.keys()) if isinstance(model.output, dict) else ["expression"]
    expression = model.output["expression"] if isinstance(model.output, dict) else model.output
    frame_expression = len(expression.shape) == 3  # (B, frames, classes)
    unknown = set(loss_weights or {}) - set(outputs)
    if unknown:
        raise ValueError(f"Loss weights for {sorted(unknown)}: the model's outputs are {outputs}.")
    defaults = ABAW4_LOSS_WEIGHTS if frame_expression else DEFAULT_LOSS_WEIGHTS
    weights = {**DEFAULT_LOSS_WEIGHTS, **defaults, **(loss_weights or {})}
    model.compile(
        optimizer=optimizer
        or mtcae_optimizer(model, learning_rate, weight_decay, decay_exclusions),
        loss=mtcae_losses(outputs, frame_expression),
        loss_weights={name: weights[name] for name in outputs},
        metrics={
            "expression": [
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                UnweightedAverageRecall(num_classes, name="uar"),
            ]
        },
        jit_compile=jit_compile,
    )
    return model


def build_training_variables(model, element_spec):
    """Creates the variables `fit` would create in its first step, before it is traced.

    Keras builds the optimizer's moments and the compiled metrics' and losses' state inside
    the first traced training step when no `tf.distribute` strategy was given; TensorFlow
    then traces the whole step a second time without creating them. Building them first
    (as Keras does itself under a strategy: `Trainer._symbolic_build`, from the shapes
    only, no data read) traces it once: the demo's first step took 9.4-9.7 s instead of
    19-21 s on 2 CPU cores (issue 19). Call it in the scope the model was compiled in.

    Args:
        model: a compiled Keras model.
        element_spec: the `element_spec` of its training `tf.data.Dataset` (`(x, y)` or
            `(x, y, sample_weight)`).
    """
    model._symbolic_build(data_batch=element_spec)
    return model
