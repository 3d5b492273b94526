"""`MTCAEDFER`: the task model (keras-hub's shape), with its preprocessor and presets."""

import datetime
import json
import os

import keras
import numpy as np
from scipy.special import softmax

from mtcae_keras.models.backbone import Backbone
from mtcae_keras.models.hub import is_hub_name
from mtcae_keras.models.hub import resolve_hub_name
from mtcae_keras.models.mtcae import decoder_config
from mtcae_keras.models.mtcae import mtcae_graph
from mtcae_keras.models.video_preprocessor import VideoPreprocessor

# A preset directory: the task's config, its weights, the preprocessor, what made it.
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.weights.h5"
PREPROCESSOR_FILE, METADATA_FILE = "preprocessor.json", "metadata.json"


@keras.saving.register_keras_serializable(package="mtcae_keras")
class MTCAEDFER(keras.Model):
    """Encoder, decoders and heads of one structure strategy, with the class names, the
    target statistics and the preprocessor that belong to the weights.

    The model takes normalised float clips `(B, frames, H, W, 3)` (what the tf.data pipeline
    yields) and returns `build_mtcae_model`'s outputs; `preprocessor` turns decoded uint8
    clips into that input, and `predict_video` does both. `save_to_preset` writes a preset
    directory that `from_preset` reads back, in any process; `from_preset` also reads a
    `train.py` run dir (its best checkpoint) and `hf://OWNER/REPO` repositories of presets.

    Args:
        backbone: the encoder (`VideoMAEBackbone`, `LGIFormerBackbone`).
        strategy: str. One of `STRATEGIES`.
        class_names: sequence of str: the expression classes, in logit order.
        decoder: str or dict. A `DECODER_PRESETS` name or resolved settings (stored resolved).
        freeze_encoder: bool. Whether the encoder's weights are frozen.
        target_statistics: None or dict `boxes` / `landmarks` -> `(mean, std)`.
        preprocessor: a `VideoPreprocessor`; by default ImageNet normalisation and frames
            resized to the encoder's size.
        dtype: dtype policy of the decoders and heads.
        tasks: str. A `TASK_SETS` name: `mtcae` (boxes, landmarks, clip expression) or
            `affect` (per-frame action units, valence, arousal and expression).
        **kwargs: `keras.Model` arguments (e.g. `name`).
    """

    def __init__(self, backbone, strategy="cascaded_vit", class_names=(), decoder="paper",
                 freeze_encoder=True, target_statistics=None, preprocessor=None, dtype=None,
                 tasks="mtcae", **kwargs):  # fmt: skip
        class_names = [str(name) for name in class_names]
        if not class_names:
            raise ValueError("MTCAEDFER needs the class_names of its expression logits.")
        decoder = decoder_config(decoder)
        statistics = None
        if target_statistics:
            statistics = {task: [np.asarray(v, np.float64).tolist() for v in pair]
                          for task, pair in target_statistics.items()}  # fmt: skip
        video, outputs = mtcae_graph(backbone, strategy, len(class_names), backbone.num_frames,
                                     decoder, freeze_encoder, statistics, dtype,
                                     tasks)  # fmt: skip
        kwargs.setdefault("name", f"mtcae_{strategy}")
        super().__init__(inputs=video, outputs=outputs, **kwargs)
        self.backbone = backbone
        self.strategy = strategy
        self.class_names = class_names
        self.decoder = decoder
        self.freeze_encoder = freeze_encoder
        self.target_statistics = statistics
        self.tasks = tasks
        if preprocessor is None:
            preprocessor = VideoPreprocessor(image_size=tuple(video.shape[2:4]))
        self.preprocessor = preprocessor

    def get_config(self):
        return {
            "name": self.name,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "strategy": self.strategy,
            "class_names": list(self.class_names),
            "decoder": json.loads(json.dumps(dict(self.decoder))),  # tuples as JSON has them
            "freeze_encoder": self.freeze_encoder,
            "target_statistics": self.target_statistics,
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
            "tasks": self.tasks,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("backbone", "preprocessor"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def predict_video(self, video, **kwargs):
        """Predictions for decoded uint8 clips `(B, T, H, W, 3)`: `preprocessor`, then
        `predict`, with `expression_probabilities` (softmax; per frame for the `affect`
        tasks) added."""
        pixels = np.asarray(self.preprocessor(video))
        outputs = self.predict(pixels, **{"verbose": 0, **kwargs})
        outputs["expression_probabilities"] = softmax(outputs["expression"].astype(np.float64), -1)
        return outputs

    def save_to_preset(self, preset_dir):
        """Writes `config.json` (the task, its encoder and preprocessor), `model.weights.h5`,
        `preprocessor.json` and `metadata.json` (class names, versions, parameter count)
        into `preset_dir`, for `from_preset`."""
        from mtcae_keras import __version__

        os.makedirs(preset_dir, exist_ok=True)
        _write_json(os.path.join(preset_dir, CONFIG_FILE),
                    keras.saving.serialize_keras_object(self))  # fmt: skip
        self.save_weights(os.path.join(preset_dir, WEIGHTS_FILE))
        _write_json(os.path.join(preset_dir, PREPROCESSOR_FILE),
                    keras.saving.serialize_keras_object(self.preprocessor))  # fmt: skip
        _write_json(os.path.join(preset_dir, METADATA_FILE), {
            "class_names": list(self.class_names),
            "strategy": self.strategy,
            "parameter_count": int(self.count_params()),
            "mtcae_keras_version": __version__,
            "keras_version": keras.version(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        })  # fmt: skip
        return preset_dir

    @classmethod
    def from_preset(cls, preset, **overrides):
        """The task model of a preset directory, a `train.py` run dir, or `hf://OWNER/REPO`.

        Args:
            preset: str. A folder written by `save_to_preset`; a run dir (`config.json` and
                `checkpoints/best.keras`: the best checkpoint, with the run's class names and
                normalisation); or `hf://OWNER/REPO[@REVISION]` holding a preset directory.
            **overrides: config entries replacing the preset's (e.g. `freeze_encoder`).
        """
        folder = _preset_folder(preset)
        if os.path.exists(os.path.join(folder, "checkpoints", "best.keras")):
            return cls.from_run(folder, **overrides)
        with open(os.path.join(folder, CONFIG_FILE)) as file:
            serialized = json.load(file)
        config = {**serialized["config"], **overrides}
        model = cls.from_config(config)
        model.load_weights(os.path.join(folder, WEIGHTS_FILE))
        return model

    @classmethod
    def from_run(cls, run_dir, checkpoint="best.keras", **overrides):
        """The task model of a `train.py` run: its checkpoint's weights, with the class names,
        decoder settings, target statistics and normalisation the run trained with."""
        with open(os.path.join(run_dir, "config.json")) as file:
            run = json.load(file)
        trained = keras.saving.load_model(
            os.path.join(run_dir, "checkpoints", checkpoint), compile=False
        )
        encoder = next(layer for layer in trained.layers if isinstance(layer, Backbone))
        layers = {layer.name for layer in trained.layers}
        statistics = {}
        for task in ("boxes", "landmarks"):
            name = f"{task}_head" if f"{task}_head" in layers else task  # temporal_*: heads
            if name in layers:
                head = trained.get_layer(name)
                if head.output_offset is not None:
                    statistics[task] = (head.output_offset, head.output_scale)
        config = {
            "backbone": type(encoder).from_config(encoder.get_config()),
            "strategy": run["strategy"],
            "class_names": run["class_names"],
            "decoder": run["decoder"],
            "freeze_encoder": run.get("freeze_encoder", True),
            "target_statistics": statistics or None,
            "tasks": run.get("task_set", "mtcae"),
            "preprocessor": VideoPreprocessor(
                image_size=tuple(trained.input.shape[2:4]),
                normalization=run.get("normalization", "imagenet"),
            ),
            **overrides,
        }
        model = cls(**config)
        model.set_weights(trained.get_weights())
        return model


def _preset_folder(preset):
    folder = resolve_hub_name(preset)
    if not os.path.isdir(folder):
        kind = "Hub repository" if is_hub_name(preset) else "folder"
        raise ValueError(f"{preset}: not a preset {kind} (written by MTCAEDFER.save_to_preset)"
                         " or a train.py run dir.")  # fmt: skip
    return folder


def _write_json(path, value):
    with open(path, "w") as file:
        json.dump(value, file, indent=2)
