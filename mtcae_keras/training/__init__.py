"""Losses, metrics and compilation for MTCAE-DFER training."""

from mtcae_keras.training.compile import compile_mtcae_model
from mtcae_keras.training.distributed_trainer import DistributedTrainer
from mtcae_keras.training.losses import DEFAULT_LOSS_WEIGHTS
from mtcae_keras.training.losses import masked_mse
from mtcae_keras.training.losses import mtcae_losses
from mtcae_keras.training.unweighted_average_recall import UnweightedAverageRecall

__all__ = [
    "DEFAULT_LOSS_WEIGHTS",
    "DistributedTrainer",
    "UnweightedAverageRecall",
    "compile_mtcae_model",
    "masked_mse",
    "mtcae_losses",
]
