"""mtcae-keras: MTCAE-DFER (multi-task cascaded autoencoder for dynamic FER) in Keras 3."""

import os

# TensorFlow (since 2.9) turns its oneDNN CPU kernels on by default only on CPUs with
# AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX; on an AVX2-only CPU (an AMD EPYC of our CI kind)
# graph-mode matmuls then run on Eigen: ViT-S inference 0.48-0.63x torch's clips/s, 0.85-1.04x
# with oneDNN on (AVX2 emulated; README "Speed", issue 19). TensorFlow reads this once, when it is
# imported, so it applies only if mtcae_keras is imported first; a value set already wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

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
