"""ravdess: RAVDESS speech video clips with MTCNN face boxes / landmarks and actor-block folds."""

import logging
import os
import re

import tensorflow_datasets as tfds

from mtcae_keras.data.features import multitask_features
from mtcae_keras.data.labelled_video_builder import LabelledVideoBuilder

# RAVDESS's emotion codes 01..08.
EMOTION_CODES = {"01": "NEU", "02": "CAL", "03": "HAP", "04": "SAD", "05": "ANG", "06": "FEA",
                 "07": "DIS", "08": "SUR"}  # fmt: skip
# modality-channel-emotion-intensity-statement-repetition-actor.mp4
FILE_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})\.mp4$")
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
INTENSITIES = {"01": "normal", "02": "strong"}

_LOG = logging.getLogger(__name__)

_INSTRUCTIONS = """
Download RAVDESS (CC BY-NC-SA 4.0) from https://zenodo.org/record/1188976: the 24 archives
`Video_Speech_Actor_01.zip` .. `Video_Speech_Actor_24.zip`. Pass the folder that holds them as
--manual_dir:

    tfds build tfds_builders/ravdess --manual_dir ~/data/RAVDESS [--config mae_dfer]

Accepted layouts, mixed freely: the archives as downloaded (`DIR/Video_Speech_Actor_XX.zip`),
or extracted folders (`DIR/Actor_XX/*.mp4`, at any depth). Only video-only speech clips
(`02-01-*.mp4`) are used; audio-video (`01-*`) and song (`*-02-*`) clips are counted and left out.
"""


def contiguous_blocks(num_actors, num_folds):
    """Actor ids 1..num_actors dealt into `num_folds` contiguous blocks (first ones larger)."""
    size, extra = divmod(num_actors, num_folds)
    blocks, first = [], 1
    for fold in range(num_folds):
        last = first + size + (fold < extra) - 1
        blocks.append((first, last))
        first = last + 1
    return tuple(blocks)


class RavdessConfig(tfds.core.BuilderConfig):
    """A class map and a fold protocol.

    Args:
        merge_calm: bool. Calm (02) counts as neutral: 7 classes, else RAVDESS's 8.
        fold_actors: tuple of inclusive `(first, last)` actor blocks, one per fold.
        **kwargs: `BuilderConfig` arguments.
    """

    def __init__(self, *, merge_calm, fold_actors, **kwargs):
        super().__init__(**kwargs)
        self.merge_calm = merge_calm
        self.fold_actors = fold_actors

    @property
    def class_names(self):
        names = [n for n in EMOTION_CODES.values() if not (self.merge_calm and n == "CAL")]
        return tuple(names)

    def label_of(self, code):
        name = EMOTION_CODES[code]
        return "NEU" if self.merge_calm and name == "CAL" else name

    def fold_of(self, actor):
        for fold, (first, last) in enumerate(self.fold_actors):
            if first <= actor <= last:
                return fold
        return None


class Builder(LabelledVideoBuilder, skip_registration=True):
    """RAVDESS speech videos: 16 frames per clip at 224x224, MTCNN labels, actor-block folds."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    TITLE = "RAVDESS"
    BUILDER_CONFIGS = [
        RavdessConfig(
            name="paper",
            description="MTCAE-DFER's protocol: 7 classes (calm merged into neutral: 288 "
            "neutral + 192 per other class), 5 folds of contiguous actors 1-5, 6-10, 11-15, "
            "16-20, 21-24.",
            merge_calm=True,
            fold_actors=contiguous_blocks(24, 5),
        ),
        RavdessConfig(
            name="mae_dfer",
            description="MAE-DFER's protocol: 8 classes, 6 folds of 4 actors (1-4, ..., 21-24).",
            merge_calm=False,
            fold_actors=contiguous_blocks(24, 6),
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "paper"

    def _info(self):
        return self.dataset_info_from_configs(
            features=multitask_features(
                self.num_frames,
                self.IMAGE_SIZE,
                self.builder_config.class_names,
                emotion_code=tfds.features.Text(),
                intensity=tfds.features.Text(),
                statement=tfds.features.Text(),
                repetition=tfds.features.Text(),
            ),
            supervised_keys=None,
            homepage="https://zenodo.org/record/1188976",
        )

    @property
    def num_folds(self):
        return len(self.builder_config.fold_actors)

    def _split_generators(self, dl_manager):
        root = self._manual_root(dl_manager)
        config = self.builder_config
        by_fold, unexpected, not_used, seen = {}, [], {}, set()
        for shown, path in self._find_clips(root, ".mp4"):
            name = os.path.basename(shown)
            match = FILE_NAME.match(name)
            if match is None or match.group(3) not in EMOTION_CODES:
                unexpected.append(shown)
                continue
            modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
            if (modality, channel) != ("02", "01"):  # audio-video, audio-only or song
                kind = {"01": "audio-video", "03": "audio-only"}.get(modality, "video-only")
                kind += " speech" if channel == "01" else " song"
                not_used[kind] = not_used.get(kind, 0) + 1
                continue
            key = name[: -len(".mp4")]
            fold = config.fold_of(int(actor))
            if fold is None:
                unexpected.append(shown)
                continue
            if key in seen:  # the same clip in an archive and an extracted folder
                not_used["duplicate"] = not_used.get("duplicate", 0) + 1
                continue
            seen.add(key)
            features = {
                "label": config.label_of(emotion),
                "actor": actor,
                "emotion_code": emotion,
                "intensity": INTENSITIES.get(intensity, intensity),
                "statement": STATEMENTS.get(statement, statement),
                "repetition": repetition,
            }
            by_fold.setdefault(fold, []).append((key, path, features))
        if not by_fold:
            raise FileNotFoundError(
                f"No RAVDESS video-only speech clips (02-01-*.mp4) under {root}.\n{_INSTRUCTIONS}"
            )
        self._report_unexpected(unexpected)
        self._update_report("not_used", not_used)
        missing = [f"fold{k}" for k in range(len(config.fold_actors)) if k not in by_fold]
        if missing:
            _LOG.warning("ravdess: no clips for %s; those splits are not written", missing)
        return {
            f"fold{fold}": self._generate_examples(sorted(clips, key=_key), f"fold{fold}")
            for fold, clips in sorted(by_fold.items())
        }


def _key(clip):
    return clip[0]
