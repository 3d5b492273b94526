"""Losses of the three tasks, with frames without a detected face masked out."""

import keras

# reference.md section 2: MSE 0.5 (boxes), MSE 0.5 (landmarks), cross-entropy 1.5 (expression).
DEFAULT_LOSS_WEIGHTS = {"boxes": 0.5, "landmarks": 0.5, "expression": 1.5}


def masked_mse(name):
    """Mean squared error averaged over the frames whose sample weight is non-zero.

    Pass the per-frame `face_found` (B, frames) as the sample weight of the `boxes` and
    `landmarks` outputs: masked frames contribute nothing and are not counted in the mean.
    A batch with no face at all gives 0.

    Args:
        name: str. Loss name.
    """
    return keras.losses.MeanSquaredError(reduction="mean_with_sample_weight", name=name)


def mtcae_losses(outputs=("boxes", "landmarks", "expression"), frame_expression=False):
    """Per-output losses for `model.compile`: masked MSE, and cross-entropy from logits.

    The affect tasks (`valence`, `arousal`, `action_units`) and a per-frame `expression`
    (`frame_expression=True`) take `MaskedAffectLoss`es, which leave missing labels out.
    """
    from mtcae_keras.training.affect_losses import affect_losses

    affect = [name for name in outputs if name in ("valence", "arousal", "action_units")]
    if frame_expression and "expression" in outputs:
        affect.append("expression")
    losses = {
        "boxes": masked_mse("boxes_mse"),
        "landmarks": masked_mse("landmarks_mse"),
        "expression": keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, name="expression_cross_entropy"
        ),
        **affect_losses(affect),
    }
    return {name: losses[name] for name in outputs}
