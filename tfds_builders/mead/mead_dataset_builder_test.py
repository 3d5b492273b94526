"""DatasetBuilderTestCase for mead on dummy clips generated when the test runs (MEAD's licence
forbids copying any clip)."""

import os
import shutil
import tarfile
import tempfile

import tensorflow_datasets as tfds

from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
from mtcae_keras.data.video_reader import write_video
from tfds_builders.generated_dummy_data import FoundByName
from tfds_builders.generated_dummy_data import GeneratedDummyData
from tfds_builders.mead import mead_dataset_builder

# (path under the manual dir, synthetic expression drawn, frames), in MEAD's layout.
CLIPS = [
    ("M003/video/front/happy/level_1/001.mp4", "HAP", 20),
    ("M003/video/left_30/happy/level_1/001.mp4", "HAP", 20),  # another view: not in `front`
    ("M007/video/front/sad/level_2/001.mp4", "SAD", 20),
    ("W009/video/front/contempt/level_1/003.mp4", "DIS", 20),
    ("W011/video/video/front/surprised/level_3/001.mp4", "FEA", 20),  # the nested-folder quirk
    ("W014/video/front/neutral/level_1/001.mp4", "NEU", 20),
    ("W014/video/front/fear/level_2/001.mp4", "FEA", 10),  # shorter than 16 frames: kept
]
TAR_CLIPS = [("video/front/angry/level_3/002.mp4", "ANG", 20)]  # inside M005/video.tar


def write_dummy_data(root):
    """MEAD-layout synthetic clips: folders, one actor's video.tar, and bad input (empty,
    truncated and undecodable clips, an unknown emotion)."""
    renderer = SyntheticFaceRenderer(image_size=64, num_frames=20, seed=7)
    for index, (name, emotion, frames) in enumerate(CLIPS + TAR_CLIPS):
        folder = "M005_staging" if (name, emotion, frames) in TAR_CLIPS else ""
        path = os.path.join(root, folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_video(path, renderer.render(index, emotion, 0)["video"][:frames])
    os.makedirs(os.path.join(root, "M005"))
    with tarfile.open(os.path.join(root, "M005", "video.tar"), "w") as archive:
        for name, _, _ in TAR_CLIPS:
            archive.add(os.path.join(root, "M005_staging", name), name)
    shutil.rmtree(os.path.join(root, "M005_staging"))
    front = os.path.join(root, "W014", "video", "front")
    open(os.path.join(front, "neutral", "level_1", "002.mp4"), "wb").close()  # empty: skipped
    with open(os.path.join(front, "fear", "level_2", "001.mp4"), "rb") as file:
        head = file.read(600)  # the container header without the frames: truncated
    with open(os.path.join(front, "neutral", "level_1", "003.mp4"), "wb") as file:
        file.write(head)
    with open(os.path.join(front, "neutral", "level_1", "004.mp4"), "wb") as file:
        file.write(bytes(range(256)) * 20)  # not a video at all: undecodable
    os.makedirs(os.path.join(front, "bored", "level_1"))
    with open(os.path.join(front, "bored", "level_1", "001.mp4"), "wb") as file:
        file.write(b"not a MEAD emotion")


class MeadFrontTest(FoundByName, GeneratedDummyData, tfds.testing.DatasetBuilderTestCase):
    """Front view; six actors dealt into 5 folds (M003 and W014 share fold 0)."""

    DATASET_CLASS = mead_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["front"]
    SPLITS = {"fold0": 3, "fold1": 1, "fold2": 1, "fold3": 1, "fold4": 1}
    SKIP_CHECKSUMS = True
    # Set at class definition: TFDS memoises the dummy-data path on first use.
    EXAMPLE_DIR = tempfile.mkdtemp(prefix="mead_dummy_")

    write_dummy_data = staticmethod(write_dummy_data)
