"""Shared test helpers: fixture paths, the golden parity data, small backbones."""

import importlib.util
import os

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
VIDEOMAE_TINY = os.path.join(FIXTURES, "videomae_tiny")
# Not stored in original checkpoints; the fixture uses the videomae_tiny preset.
TINY_UNSTORED = {"image_size": 32, "num_frames": 4, "num_heads": 4}
PARITY_ATOL = 1e-4


def golden():
    """The reference inputs / outputs written by tools/make_videomae_golden.py."""
    return dict(np.load(os.path.join(VIDEOMAE_TINY, "golden.npz")))


def fixture_path(name):
    return os.path.join(VIDEOMAE_TINY, name)


def has_reference():
    """Whether torch and transformers are importable (for live parity tests)."""
    return all(importlib.util.find_spec(m) for m in ("torch", "transformers"))


def max_abs_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))))
