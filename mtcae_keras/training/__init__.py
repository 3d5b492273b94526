"""Losses, metrics and compilation for MTCAE-DFER training (backend-neutral Keras).

`DistributedTrainer` (TensorFlow only) is imported from
`mtcae_keras.training.distributed_trainer`.
"""

from mtcae_keras.training.cached_rate_adam_w import CachedRateAdamW
from mtcae_keras.training.compile import build_training_variables
from mtcae_keras.training.compile import compile_mtcae_model
from mtcae_keras.training.compile import mtcae_optimizer
from mtcae_keras.training.compile import warmup_cosine_decay
from mtcae_keras.training.losses import DEFAULT_LOSS_WEIGHTS
from mtcae_keras.training.losses import masked_mse
from mtcae_keras.training.losses import mtcae_losses
from mtcae_keras.training.unweighted_average_recall import UnweightedAverageRecall

__all__ = [
    "CachedRateAdamW",
    "DEFAULT_LOSS_WEIGHTS",
    "UnweightedAverageRecall",
    "build_training_variables",
    "compile_mtcae_model",
    "masked_mse",
    "mtcae_losses",
    "mtcae_optimizer",
    "warmup_cosine_decay",
]
