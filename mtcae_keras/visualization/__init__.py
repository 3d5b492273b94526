"""Figures: decoder attention on the frames, training curves, recall per class."""

from mtcae_keras.visualization.attention_maps import attention_maps
from mtcae_keras.visualization.attention_maps import decoder_attention
from mtcae_keras.visualization.attention_maps import plot_attention
from mtcae_keras.visualization.attention_maps import region_attention
from mtcae_keras.visualization.attention_maps import regions_to_raster
from mtcae_keras.visualization.attention_maps import tokens_to_frames
from mtcae_keras.visualization.training_plots import best_epoch
from mtcae_keras.visualization.training_plots import plot_per_class_recall
from mtcae_keras.visualization.training_plots import plot_training_curves
from mtcae_keras.visualization.training_plots import read_log

__all__ = [
    "attention_maps",
    "best_epoch",
    "decoder_attention",
    "plot_attention",
    "plot_per_class_recall",
    "plot_training_curves",
    "read_log",
    "region_attention",
    "regions_to_raster",
    "tokens_to_frames",
]
