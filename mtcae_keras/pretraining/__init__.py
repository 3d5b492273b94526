"""Masked video pre-training: the pretrainer, its masks, its reconstruction targets and its
multi-worker training loop."""

from mtcae_keras.pretraining.masked_video_pretrainer import MaskedVideoPretrainer
from mtcae_keras.pretraining.pretraining_trainer import PretrainingTrainer
from mtcae_keras.pretraining.reconstruction_targets import reconstruction_targets
from mtcae_keras.pretraining.tube_mask_generator import TubeMaskGenerator

__all__ = [
    "MaskedVideoPretrainer",
    "PretrainingTrainer",
    "TubeMaskGenerator",
    "reconstruction_targets",
]
