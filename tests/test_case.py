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


LGI_FORMER = os.path.join(FIXTURES, "lgi_former")


def lgi_former_golden(name):
    """One config of tools/make_lgi_former_golden.py: its input pixels and reference outputs."""
    from tools.make_lgi_former_golden import clip_to_pixels

    data = dict(np.load(os.path.join(LGI_FORMER, f"{name}.npz")))
    data["pixels"] = clip_to_pixels(data.pop("clip"))
    return data


def lgi_former_unstored(name):
    """The config of a fixture that its checkpoints do not store (clip, regions, heads)."""
    from tools.make_lgi_former_golden import CONFIGS

    keys = ("image_size", "num_frames", "region_size", "num_heads")
    return {key: CONFIGS[name][key] for key in keys}


def _plain(value):
    """Tuples as lists and arrays as nested lists, as a config holds them."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def assert_config_round_trip(cls, **kwargs):
    """`cls(**kwargs)` -> `get_config` -> `from_config` keeps every argument.

    Pass arguments away from their defaults: a key that `get_config` omitted would come back
    as the default on both sides, and a config-to-config comparison could not see it.
    """
    layer = cls(**kwargs)
    config = layer.get_config()
    for key, value in kwargs.items():
        assert key in config, f"{cls.__name__}.get_config() omits {key!r}"
        if key == "dtype":
            assert config[key]["config"]["name"] == value, (config[key], value)
        elif isinstance(value, (list, np.ndarray)) and np.asarray(value).dtype.kind == "f":
            np.testing.assert_allclose(config[key], value, rtol=1e-6)  # stored as float32
        else:
            assert _plain(config[key]) == _plain(value), (key, config[key], value)
    rebuilt = cls.from_config(config).get_config()
    assert rebuilt == config


class Interrupt(Exception):
    """Raised by `interrupt_after_epoch` to stop a training run as a crash would."""


def interrupt_after_epoch(monkeypatch, epoch):
    """Makes the next Keras `CSVLogger` raise `Interrupt` once `epoch` (0-based) is logged,
    i.e. after `BackupAndRestore` has saved it: the interruption of a resume test."""
    import keras

    class InterruptingLogger(keras.callbacks.CSVLogger):
        def on_epoch_end(self, done, logs=None):
            super().on_epoch_end(done, logs)
            if done == epoch:
                raise Interrupt()

    monkeypatch.setattr(keras.callbacks, "CSVLogger", InterruptingLogger)


def run_local_workers(argv_of, count=2, timeout=900):
    """Runs `python argv_of(index)` in the repository root as `count` worker processes of one
    `MultiWorkerMirroredStrategy` cluster on 127.0.0.1 (each its `TF_CONFIG`); their exit
    codes."""
    import json
    import subprocess
    import sys

    from tests.test_distribution import _free_ports

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workers = [f"127.0.0.1:{port}" for port in _free_ports(count)]
    processes = []
    for index in range(count):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(config), TF_CPP_MIN_LOG_LEVEL="3")
        processes.append(subprocess.Popen([sys.executable, *argv_of(index)], env=env, cwd=root))
    return [process.wait(timeout=timeout) for process in processes]
