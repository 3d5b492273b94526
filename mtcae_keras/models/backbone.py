"""The base class of our video encoders: config round trip and preset / checkpoint loading."""

import json
import os

import keras

from mtcae_keras.models.hub import resolve_hub_name


@keras.saving.register_keras_serializable(package="mtcae_keras")
class Backbone(keras.Model):
    """A functional encoder model built from its constructor arguments (keras-hub's shape).

    Subclasses build their graph in `__init__`, list their constructor arguments in
    `CONFIG_KEYS`, their named sizes in `PRESETS`, and port a checkpoint in
    `_from_checkpoint`. This class gives them `get_config` / `from_config` (dtype policy and
    `trainable` included) and `from_preset` for preset names, converted `.weights.h5` files
    and checkpoints.
    """

    PRESETS = {}
    CONFIG_KEYS = ()

    def __init__(self, *args, dtype=None, **kwargs):
        super().__init__(*args, dtype=dtype, **kwargs)
        # The functional constructor keeps the float32 default whatever `dtype` says, so the
        # config (and a .keras round trip) would lose the policy the layers were built with.
        self.dtype_policy = keras.dtype_policies.get(dtype)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            **{key: getattr(self, key) for key in self.CONFIG_KEYS},
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        trainable = config.pop("trainable", True)
        backbone = cls(**config)
        backbone.trainable = trainable  # the functional constructor does not apply it
        return backbone

    @classmethod
    def presets(cls):
        """Names accepted by `from_preset`."""
        return sorted(cls.PRESETS)

    @classmethod
    def from_preset(cls, name, **overrides):
        """Builds a named size, or loads converted / original weights.

        Args:
            name: str. One of `presets()` (randomly initialised); or the path of a
                `.weights.h5` written by `tools/convert_videomae_checkpoint.py` (its
                `.config.json` beside it); or a checkpoint, ported on the fly; or
                `hf://OWNER/REPO[@REVISION]`, a Hugging Face Hub repository of either
                (e.g. `hf://MCG-NJU/videomae-base`; `mtcae_keras.models.hub`).
            **overrides: constructor arguments that replace the preset's or checkpoint's
                (e.g. `num_heads`, which original checkpoints do not store, or `dtype`).
        """
        if name in cls.PRESETS:
            return cls(**{**cls.PRESETS[name], "name": name, **overrides})
        name = resolve_hub_name(name)
        if not os.path.exists(name):
            raise ValueError(
                f"Unknown {cls.__name__} preset {name!r} (and no such file). Choose one of "
                f"{cls.presets()}, or give a checkpoint path or a .weights.h5 written by "
                "tools/convert_videomae_checkpoint.py."
            )
        if name.endswith(".weights.h5"):
            config = read_weights_config(name)
            config.pop("backbone_class", None)
            backbone = cls.from_config({**config, **overrides})
            backbone.load_weights(name)
            return backbone
        return cls._from_checkpoint(name, overrides)

    @classmethod
    def _from_checkpoint(cls, path, overrides):
        raise NotImplementedError

    def save_converted(self, weights_path):
        """Writes `weights_path` (`.weights.h5`) and its `.config.json`, naming the class.

        `from_preset(weights_path)` and `load_encoder(weights_path)` read them back.
        """
        if not weights_path.endswith(".weights.h5"):
            raise ValueError(f"{weights_path}: the weights file must end with .weights.h5.")
        os.makedirs(os.path.dirname(os.path.abspath(weights_path)), exist_ok=True)
        self.save_weights(weights_path)
        config_path = weights_config_path(weights_path)
        with open(config_path, "w") as file:
            json.dump({"backbone_class": type(self).__name__, **self.get_config()}, file, indent=2)
        return weights_path, config_path


def weights_config_path(weights_path):
    """The `.config.json` written beside a converted `.weights.h5`."""
    return weights_path[: -len(".weights.h5")] + ".config.json"


def read_weights_config(weights_path):
    """The backbone config stored beside a converted `.weights.h5`."""
    config_path = weights_config_path(weights_path)
    if not os.path.exists(config_path):
        raise ValueError(f"{weights_path}: its config {config_path} is missing.")
    with open(config_path) as file:
        return json.load(file)
