from mtcae_keras.models.videomae_backbone import VideoMAEBackbone

__all__ = ["VideoMAEBackbone"]
