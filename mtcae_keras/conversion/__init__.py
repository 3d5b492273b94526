"""Checkpoint reading and the weight ports (no torch needed at run time)."""

from mtcae_keras.conversion.checkpoint_loader import load_lgi_former_checkpoint
from mtcae_keras.conversion.checkpoint_loader import load_videomae_checkpoint
from mtcae_keras.conversion.checkpoint_loader import read_state_dict
from mtcae_keras.conversion.lgi_former_keys import is_lgi_former_state_dict
from mtcae_keras.conversion.lgi_former_port import port_lgi_former_weights
from mtcae_keras.conversion.torch_zip_reader import read_torch_zip
from mtcae_keras.conversion.weight_port import port_videomae_weights

__all__ = [
    "is_lgi_former_state_dict",
    "load_lgi_former_checkpoint",
    "load_videomae_checkpoint",
    "port_lgi_former_weights",
    "port_videomae_weights",
    "read_state_dict",
    "read_torch_zip",
]
