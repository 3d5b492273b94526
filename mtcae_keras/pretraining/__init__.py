"""Masked video pre-training: the pretrainer, its masks and its reconstruction targets."""

from mtcae_keras.pretraining.masked_video_pretrainer import MaskedVideoPretrainer
from mtcae_keras.pretraining.reconstruction_targets import reconstruction_targets
from mtcae_keras.pretraining.tube_mask_generator import TubeMaskGenerator

__all__ = ["MaskedVideoPretrainer", "TubeMaskGenerator", "reconstruction_targets"]
