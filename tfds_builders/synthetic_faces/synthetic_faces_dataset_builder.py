"""synthetic_faces: procedurally rendered expression videos with exact multi-task labels."""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from mtcae_keras.data.features import multitask_features
from mtcae_keras.data.rendered_clips import rendered_clips
from mtcae_keras.data.synthetic_face_renderer import ACTION_UNITS
from mtcae_keras.data.synthetic_face_renderer import CLASS_NAMES


@dataclasses.dataclass
class SyntheticFacesConfig(tfds.core.BuilderConfig):
    """Frame size and dataset size of a synthetic_faces build.

    Args:
        image_size: frame side in pixels.
        num_frames: frames per clip.
        num_actors: synthetic actors (subjects); dealt to folds round-robin.
        clips_per_class: clips per actor and expression.
        class_clips: tuple of clips per actor of each expression (in `CLASS_NAMES` order),
            for unequal classes; overrides `clips_per_class` when set.
        num_folds: subject-independent folds.
        seed: generation seed.
        first_actor: id of the first actor (actors `first_actor ... first_actor +
            num_actors - 1`): a config of other identities than `small`'s 0-79.
    """

    image_size: int = 224
    num_frames: int = 16
    num_actors: int = 20
    clips_per_class: int = 6
    class_clips: tuple = None
    num_folds: int = 5
    seed: int = 0
    first_actor: int = 0

    def clips_of(self, label):
        """Clips per actor of expression `label`."""
        if self.class_clips is None:
            return self.clips_per_class
        return self.class_clips[CLASS_NAMES.index(label)]


class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Synthetic face videos: six expressions unfolding over 16 frames, with exact labels."""

    VERSION = tfds.core.Version("1.3.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": "Bolder features (brows, lips, eyes), larger faces, stronger ANG and DIS "
        "(nose creases, one-sided frown); `small` has 80 actors x 8 clips (was 40 x 16).",
        "1.2.0": "Disgust set further apart from anger: darker, longer nose creases, a more "
        "one-sided mouth, less narrowed eyes.",
        "1.3.0": "Per-frame affect labels for the ABAW4 tasks, from the renderer's own "
        "parameters: `valence`, `arousal` (class prototype x expression intensity) and "
        "`action_units` (Aff-Wild2's 12, from the drawn geometry). The other features are "
        "those of 1.2.0, value for value.",
    }
    BUILDER_CONFIGS = [
        SyntheticFacesConfig(
            name="small",
            description="64x64 frames, 80 actors x 6 classes x 8 clips: fast CPU runs.",
            num_actors=80,
            image_size=64,
            clips_per_class=8,
        ),
        SyntheticFacesConfig(
            name="extra",
            description="64x64 frames, 240 other actors (ids 1000-1239, none of `small`'s) x 6"
            " classes x 2 clips: unlabelled pre-training data beside `small` (labels unused).",
            num_actors=240,
            image_size=64,
            clips_per_class=2,
            first_actor=1000,
        ),
        SyntheticFacesConfig(
            name="full",
            description="224x224 frames (the full model's input), 30 actors x 6 x 8 clips.",
            image_size=224,
            num_actors=30,
            clips_per_class=8,
        ),
        SyntheticFacesConfig(
            name="tiny",
            description="32x32 frames, 5 actors x 6 classes x 1 clip: tests.",
            image_size=32,
            num_actors=5,
            clips_per_class=1,
        ),
        SyntheticFacesConfig(
            name="tiny_unbalanced",
            description="32x32 frames, 5 actors with unequal classes (ANG 3, HAP 2, others 1"
            " clip each): WAR and UAR differ on every fold (tests of the metrics).",
            image_size=32,
            num_actors=5,
            class_clips=(3, 1, 1, 2, 1, 1),
        ),
        SyntheticFacesConfig(
            name="tiny_frames32",
            description="32x32 frames, 32 per clip, 5 actors x 6 classes x 1 clip: tests of"
            " temporal jitter and multi-view testing (16 of 32 frames per view).",
            image_size=32,
            num_frames=32,
            num_actors=5,
            clips_per_class=1,
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "small"

    def _info(self):
        size, frames = self.builder_config.image_size, self.builder_config.num_frames
        return self.dataset_info_from_configs(
            features=multitask_features(
                frames,
                size,
                CLASS_NAMES,
                intensity=tfds.features.Scalar(dtype=np.float32),
                valence=tfds.features.Tensor(shape=(frames,), dtype=np.float32),
                arousal=tfds.features.Tensor(shape=(frames,), dtype=np.float32),
                action_units=tfds.features.Tensor(shape=(frames, len(ACTION_UNITS)), dtype=np.int8),
            ),
            supervised_keys=None,
            homepage="https://github.com/mtcae-keras/mtcae-keras",
        )

    def fold_actors(self):
        """Actor ids of each fold: the config's `i`-th actor goes to fold `i % num_folds`."""
        config = self.builder_config
        return [
            [config.first_actor + a for a in range(fold, config.num_actors, config.num_folds)]
            for fold in range(config.num_folds)
        ]

    @property
    def num_folds(self):
        """The folds of this config's protocol (`fold0 ... fold{K-1}`)."""
        return self.builder_config.num_folds

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {
            f"fold{fold}": self._generate_examples(actors)
            for fold, actors in enumerate(self.fold_actors())
        }

    def _generate_examples(self, actors):
        config = self.builder_config
        jobs = [(actor, label, clip) for actor in actors for label in CLASS_NAMES
                for clip in range(config.clips_of(label))]  # fmt: skip
        drawn = rendered_clips(config.image_size, config.num_frames, config.seed, jobs)
        with drawn as examples:
            for (actor, label, clip), example in zip(jobs, examples, strict=True):
                clip_id = f"S{actor:03d}_{label}_{clip:02d}"
                yield (
                    clip_id,
                    {
                        "video": example["video"],
                        "boxes": example["boxes"],
                        "landmarks": example["landmarks"],
                        "face_found": example["face_found"],
                        "label": label,
                        "actor": f"S{actor:03d}",
                        "clip_id": clip_id,
                        "intensity": np.float32(example["strength"]),
                        "valence": example["valence"],
                        "arousal": example["arousal"],
                        "action_units": example["action_units"].astype(np.int8),
                    },
                )
