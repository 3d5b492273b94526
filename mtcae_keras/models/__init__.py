from mtcae_keras.models.backbone import Backbone
from mtcae_keras.models.heads import TaskHead
from mtcae_keras.models.lgi_former_backbone import LGIFormerBackbone
from mtcae_keras.models.mlp_decoder import MLPDecoder
from mtcae_keras.models.mtcae import STRATEGIES
from mtcae_keras.models.mtcae import build_mtcae_model
from mtcae_keras.models.mtcae_dfer import MTCAEDFER
from mtcae_keras.models.video_preprocessor import VideoPreprocessor
from mtcae_keras.models.videomae_backbone import VideoMAEBackbone
from mtcae_keras.models.vit_decoder import ViTDecoder

__all__ = [
    "Backbone",
    "LGIFormerBackbone",
    "MLPDecoder",
    "MTCAEDFER",
    "STRATEGIES",
    "TaskHead",
    "VideoMAEBackbone",
    "VideoPreprocessor",
    "ViTDecoder",
    "build_mtcae_model",
]
