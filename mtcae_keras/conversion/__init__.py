"""Checkpoint reading and the VideoMAE weight port (no torch needed at run time)."""

from mtcae_keras.conversion.checkpoint_loader import load_videomae_checkpoint
from mtcae_keras.conversion.torch_zip_reader import read_torch_zip
from mtcae_keras.conversion.weight_port import port_videomae_weights

__all__ = ["load_videomae_checkpoint", "port_videomae_weights", "read_torch_zip"]
