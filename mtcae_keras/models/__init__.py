from mtcae_keras.models.backbone import Backbone
from mtcae_keras.models.heads import TaskHead
from mtcae_keras.models.lgi_former_backbone import LGIFormerBackbone
from mtcae_keras.models.mlp_decoder import MLPDecoder
from mtcae_keras.models.mtcae import STRATEGIES
from mtcae_keras.models.mtcae import build_mtcae_model
from mtcae_keras.models.mtcae_dfer import MTCAEDFER
from mtcae_keras.models.task_feedback_embedding import TaskFeedbackEmbedding
from mtcae_keras.models.temporal_encoder import TemporalEncoder
from mtcae_keras.models.temporal_multitask import AFFECT_TASKS
from mtcae_keras.models.temporal_multitask import build_temporal_multitask_model
from mtcae_keras.models.temporal_task_head import TemporalTaskHead
from mtcae_keras.models.temporal_transformer_layer import TemporalTransformerLayer
from mtcae_keras.models.video_preprocessor import VideoPreprocessor
from mtcae_keras.models.videomae_backbone import VideoMAEBackbone
from mtcae_keras.models.vit_decoder import ViTDecoder

__all__ = [
    "AFFECT_TASKS",
    "Backbone",
    "LGIFormerBackbone",
    "MLPDecoder",
    "MTCAEDFER",
    "STRATEGIES",
    "TaskFeedbackEmbedding",
    "TaskHead",
    "TemporalEncoder",
    "TemporalTaskHead",
    "TemporalTransformerLayer",
    "VideoMAEBackbone",
    "VideoPreprocessor",
    "ViTDecoder",
    "build_mtcae_model",
    "build_temporal_multitask_model",
]
