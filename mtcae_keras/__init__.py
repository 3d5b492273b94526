"""mtcae-keras: MTCAE-DFER (multi-task cascaded autoencoder for dynamic FER) in Keras 3."""

from mtcae_keras.models import MTCAEDFER
from mtcae_keras.models import STRATEGIES
from mtcae_keras.models import Backbone
from mtcae_keras.models import LGIFormerBackbone
from mtcae_keras.models import MLPDecoder
from mtcae_keras.models import TaskHead
from mtcae_keras.models import TemporalEncoder
from mtcae_keras.models import VideoMAEBackbone
from mtcae_keras.models import VideoPreprocessor
from mtcae_keras.models import ViTDecoder
from mtcae_keras.models import build_mtcae_model
from mtcae_keras.models import build_temporal_multitask_model
from mtcae_keras.pretraining import MaskedVideoPretrainer
from tfds_builders import BUILDER_MODULES  # noqa: F401 (tfds.builder("crema_d") finds ours)

__version__ = "0.1.0"
__all__ = [
    "Backbone",
    "LGIFormerBackbone",
    "MLPDecoder",
    "MTCAEDFER",
    "MaskedVideoPretrainer",
    "STRATEGIES",
    "TaskHead",
    "TemporalEncoder",
    "VideoMAEBackbone",
    "VideoPreprocessor",
    "ViTDecoder",
    "build_mtcae_model",
    "build_temporal_multitask_model",
]
