"""crema_d: CREMA-D video clips with MTCNN face boxes / landmarks and actor-block folds."""

import logging
import os
import re

import tensorflow_datasets as tfds

from mtcae_keras.data.features import multitask_features
from mtcae_keras.data.labelled_video_builder import LabelledVideoBuilder

CLASS_NAMES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
# MAE-DFER's five subject-independent folds: contiguous actor blocks.
FOLD_ACTORS = ((1001, 1018), (1019, 1036), (1037, 1054), (1055, 1072), (1073, 1091))
FILE_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})\.(?i:flv)$")

_LOG = logging.getLogger(__name__)

_INSTRUCTIONS = """
Download CREMA-D's video clips (ODbL 1.0) from https://github.com/CheyneyComputerScience/CREMA-D
(Git LFS folder `VideoFlash/`, 7,442 files `<actor>_<sentence>_<emotion>_<level>.flv`) and pass
the folder that holds them, or any folder above it, as --manual_dir:

    tfds build tfds_builders/crema_d --manual_dir ~/data/CREMA-D

Accepted layouts: `DIR/VideoFlash/*.flv` (the repository), `DIR/*.flv` (flat), or `.zip` /
`.tar` archives of either anywhere below DIR; `.FLV` in capitals too.
"""


def fold_of(actor):
    for fold, (first, last) in enumerate(FOLD_ACTORS):
        if first <= actor <= last:
            return fold
    return None


def _clip(name, path):
    """`(key, path, features)` of one clip: the key is the file name without extension."""
    key = os.path.splitext(name)[0]
    actor, sentence, emotion, level = FILE_NAME.match(name).groups()
    features = {"label": emotion, "actor": actor, "sentence": sentence, "intensity": level}
    return key, path, features


class Builder(LabelledVideoBuilder, skip_registration=True):
    """CREMA-D: 16 frames per clip at 224x224, MTCNN labels, 5 actor-block folds."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    TITLE = "CREMA-D"
    IMAGE_SIZE = 224

    def _info(self):
        frames, size = self.num_frames, self.IMAGE_SIZE
        return self.dataset_info_from_configs(
            features=multitask_features(
                frames,
                size,
                CLASS_NAMES,
                sentence=tfds.features.Text(),
                intensity=tfds.features.Text(),
            ),
            supervised_keys=None,
            homepage="https://github.com/CheyneyComputerScience/CREMA-D",
        )

    @property
    def num_folds(self):
        return len(FOLD_ACTORS)

    def _split_generators(self, dl_manager):
        root = self._manual_root(dl_manager)
        by_fold, unexpected, seen = {}, [], set()
        # Folders and .zip / .tar archives alike, `.flv` in any case (the shared discovery).
        for relative, path in self._find_clips(root, ".flv"):
            name = os.path.basename(relative.replace("\\", "/"))
            match = FILE_NAME.match(name)
            fold = fold_of(int(match.group(1))) if match else None
            if match is None or match.group(3) not in CLASS_NAMES or fold is None:
                unexpected.append(relative)
                continue
            clip = _clip(name, path)
            if clip[0] in seen:  # the same clip in an archive and an extracted folder
                continue
            seen.add(clip[0])
            by_fold.setdefault(fold, []).append(clip)
        if not by_fold:
            raise FileNotFoundError(f"No CREMA-D .flv clips under {root}.\n{_INSTRUCTIONS}")
        self._report_unexpected(unexpected)
        missing = [f"fold{k}" for k in range(len(FOLD_ACTORS)) if k not in by_fold]
        if missing:
            _LOG.warning("crema_d: no clips for %s; those splits are not written", missing)
        return {
            f"fold{fold}": self._generate_examples(sorted(clips, key=lambda c: c[0]), f"fold{fold}")
            for fold, clips in sorted(by_fold.items())
        }
