"""mead: MEAD video clips (one camera view) with MTCNN face boxes / landmarks and actor folds."""

import logging
import re

import tensorflow_datasets as tfds

from mtcae_keras.data.features import multitask_features
from mtcae_keras.data.labelled_video_builder import LabelledVideoBuilder

# MEAD's eight emotions, as its folders name them.
CLASS_NAMES = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
VIEWS = ("front", "down", "top", "left_30", "left_60", "right_30", "right_60")
NUM_FOLDS = 5
ACTOR = re.compile(r"^[MW]\d{3}$")
# .../<view>/<emotion>/level_<n>/<nnn>.mp4 below an actor folder (or inside its video.tar).
CLIP_TAIL = re.compile(r"(?:^|/)([a-z_0-9]+)/([a-z]+)/level_(\d+)/(\d+)\.mp4$")

_LOG = logging.getLogger(__name__)

_INSTRUCTIONS = """
MEAD (Wang et al., ECCV 2020) is distributed after a request: https://wywu.github.io/projects/MEAD
Its licence forbids redistributing any clip. Download the actors' `video.tar` archives and pass
the folder holding the actor folders as --manual_dir:

    tfds build tfds_builders/mead --manual_dir ~/data/MEAD [--config left_30]

Accepted layouts, mixed freely: `DIR/<ACTOR>/video.tar` as downloaded, or extracted
`DIR/<ACTOR>/video/<view>/<emotion>/level_<n>/<nnn>.mp4`. Actor folders are named like M003 or
W009; an extra folder level between the actor and the view (one actor's archive has it) is
accepted.
"""


def actor_folds(actors):
    """MEAD has no published split: folds dealt from the sorted actor ids (i-th -> i % 5)."""
    return {actor: index % NUM_FOLDS for index, actor in enumerate(sorted(actors))}


def _actor_of(relative_path):
    for part in relative_path.replace("\\", "/").split("/"):
        if ACTOR.match(part):
            return part
    return None


class Builder(LabelledVideoBuilder, skip_registration=True):
    """MEAD: 16 frames per clip at 224x224, MTCNN labels, 5 folds of whole actors."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    TITLE = "MEAD"
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name=view, description=f"The {view} camera, all intensities.")
        for view in VIEWS
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "front"

    def _info(self):
        return self.dataset_info_from_configs(
            features=multitask_features(
                self.num_frames,
                self.IMAGE_SIZE,
                CLASS_NAMES,
                view=tfds.features.Text(),
                intensity=tfds.features.Text(),
                clip_number=tfds.features.Text(),
            ),
            supervised_keys=None,
            homepage="https://wywu.github.io/projects/MEAD",
        )

    @property
    def num_folds(self):
        return NUM_FOLDS

    def _split_generators(self, dl_manager):
        root = self._manual_root(dl_manager)
        view = self.builder_config.name
        clips, unexpected, other_views, seen = [], [], 0, set()
        for relative, path in self._find_clips(root, ".mp4"):
            match = CLIP_TAIL.search(relative.replace("\\", "/"))
            actor = _actor_of(relative)
            if match is None or actor is None or match.group(2) not in CLASS_NAMES:
                unexpected.append(relative)
                continue
            clip_view, emotion, level, number = match.groups()
            if clip_view != view:
                other_views += clip_view in VIEWS
                if clip_view not in VIEWS:
                    unexpected.append(relative)
                continue
            key = f"{actor}_{view}_{emotion}_level{level}_{number}"
            if key in seen:  # the same clip in an archive and an extracted folder
                continue
            seen.add(key)
            features = {"label": emotion, "actor": actor, "view": view,
                        "intensity": level, "clip_number": number}  # fmt: skip
            clips.append((key, path, features))
        if not clips:
            raise FileNotFoundError(f"No MEAD {view} clips under {root}.\n{_INSTRUCTIONS}")
        self._report_unexpected(unexpected)
        self._update_report("other_views", other_views)
        folds = actor_folds({features["actor"] for _, _, features in clips})
        self._update_report("fold_actors", {
            f"fold{k}": sorted(a for a, f in folds.items() if f == k) for k in range(NUM_FOLDS)
        })  # fmt: skip
        by_fold = {}
        for clip in sorted(clips, key=lambda c: c[0]):
            by_fold.setdefault(folds[clip[2]["actor"]], []).append(clip)
        return {
            f"fold{fold}": self._generate_examples(fold_clips, f"fold{fold}")
            for fold, fold_clips in sorted(by_fold.items())
        }
