"""`compile` with the paper's losses, loss weights, metrics and optimiser."""

import keras

from mtcae_keras.training.losses import DEFAULT_LOSS_WEIGHTS
from mtcae_keras.training.losses import mtcae_losses
from mtcae_keras.training.unweighted_average_recall import UnweightedAverageRecall


def compile_mtcae_model(
    model,
    num_classes,
    learning_rate=1e-3,
    weight_decay=1e-3,
    loss_weights=None,
    jit_compile="auto",
    optimizer=None,
):
    """Compiles a `build_mtcae_model` model for training.

    Losses: masked MSE on `boxes` and `landmarks` (use `face_found` as their sample weight),
    sparse cross-entropy from logits on `expression`, weighted 0.5 / 0.5 / 1.5 by default.
    Metrics on `expression` only: accuracy (WAR) and UAR. Optimiser: AdamW.

    Args:
        model: the model; its output dict names the tasks it has.
        num_classes: int. Expression classes (for UAR).
        learning_rate: float or schedule. AdamW learning rate.
        weight_decay: float. AdamW weight decay.
        loss_weights: dict of output -> weight; missing outputs keep the defaults.
        jit_compile: bool or "auto". Passed to `compile`.
        optimizer: a `keras.optimizers.Optimizer` that replaces the AdamW default.
    """
    outputs = list(model.output.keys()) if isinstance(model.output, dict) else ["expression"]
    weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
    model.compile(
        optimizer=optimizer
        or keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay),
        loss=mtcae_losses(outputs),
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
