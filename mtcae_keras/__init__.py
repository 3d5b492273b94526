"""mtcae-keras: MTCAE-DFER (multi-task cascaded autoencoder for dynamic FER) in Keras 3."""

from mtcae_keras.models.videomae_backbone import VideoMAEBackbone

__version__ = "0.1.0"
__all__ = ["VideoMAEBackbone"]
