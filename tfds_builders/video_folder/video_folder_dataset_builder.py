"""video_folder: any folder of unlabelled videos (e.g. VoxCeleb2's), for masked pre-training."""

import dataclasses
import logging
import os

import tensorflow_datasets as tfds

from mtcae_keras.data.features import multitask_features
from mtcae_keras.data.labelled_video_builder import LabelledVideoBuilder

# The video formats searched for (any case), as OpenCV's FFmpeg reads them.
EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv", ".m4v", ".mpg", ".mpeg")
UNLABELLED = "unlabelled"

_LOG = logging.getLogger(__name__)

_INSTRUCTIONS = """
Pass any folder of videos as --manual_dir; every file with a video extension below it is
used (.mp4 .avi .mov .mkv .webm .flv .m4v .mpg .mpeg, any case), and so are the members of
.zip / .tar archives. VoxCeleb2's layout (`dev/mp4/id00012/<video>/00001.mp4`) works as it is:
the first folder level under DIR that differs between clips is taken as the speaker.

    tfds build tfds_builders/video_folder --manual_dir ~/data/voxceleb2 --config mae_dfer
"""


@dataclasses.dataclass
class VideoFolderConfig(tfds.core.BuilderConfig):
    """Clip size of a `video_folder` build."""

    image_size: int = 224
    num_frames: int = 16


class Builder(LabelledVideoBuilder, skip_registration=True):
    """Unlabelled videos: 16 sampled frames per clip, MTCNN labels, one `train` split.

    No expression label exists (`label` is always `unlabelled`); MTCNN still runs, so that
    clips without a face are counted and listed in the report like every other bad input
    (corrupt, empty, too short, truncated), and so that face boxes are there for later use.
    `actor` is the clip's first folder below the manual dir (VoxCeleb2's speaker id).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS
    TITLE = "the video folder"
    BUILDER_CONFIGS = [
        VideoFolderConfig(name="default", description="16x224x224 (VideoMAE's clip)."),
        VideoFolderConfig(
            name="mae_dfer", description="16x160x160 (MAE-DFER's clip).", image_size=160
        ),  # fmt: skip
        VideoFolderConfig(name="tiny", description="16x32x32: tests.", image_size=32),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"

    @property
    def IMAGE_SIZE(self):  # noqa: N802 (the base class's constant, per config here)
        return self.builder_config.image_size

    @property
    def num_folds(self):
        return None  # no cross-validation protocol: one split of everything

    def _info(self):
        return self.dataset_info_from_configs(
            features=multitask_features(
                self.num_frames, self.IMAGE_SIZE, (UNLABELLED,), source=tfds.features.Text()
            ),
            supervised_keys=None,
        )

    def _split_generators(self, dl_manager):
        root = self._manual_root(dl_manager)
        found, seen = [], set()
        for relative, path in self._find_clips(root, EXTENSIONS):
            key = os.path.splitext(relative.replace("\\", "/"))[0]
            if key in seen:  # the same clip in two containers (e.g. .mp4 and .avi)
                continue
            seen.add(key)
            found.append((key, path, relative))
        if not found:
            raise FileNotFoundError(f"No video files under {root}.\n{_INSTRUCTIONS}")
        # The speaker: the first folder level below the one every clip shares.
        folders = [key.split("/")[:-1] for key, _, _ in found]
        shared = 0
        while all(len(f) > shared and f[shared] == folders[0][shared] for f in folders):
            shared += 1
        clips = [(key, path, {"label": UNLABELLED, "source": relative,
                              "actor": folder[shared] if len(folder) > shared else ""})
                 for (key, path, relative), folder in zip(found, folders, strict=True)]  # fmt: skip
        _LOG.info("video_folder: %d clips under %s", len(clips), root)
        return {"train": self._generate_examples(sorted(clips, key=lambda c: c[0]), "train")}
