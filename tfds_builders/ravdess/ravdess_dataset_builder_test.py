"""DatasetBuilderTestCase for ravdess on dummy clips generated when the test runs."""

import os
import shutil
import tempfile
import zipfile

import cv2
import numpy as np
import tensorflow_datasets as tfds

from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
from mtcae_keras.data.video_reader import write_video
from tfds_builders.generated_dummy_data import FoundByName
from tfds_builders.generated_dummy_data import GeneratedDummyData
from tfds_builders.ravdess import ravdess_dataset_builder

# (file name, synthetic expression drawn, frames): RAVDESS naming, one clip per class.
FOLDER_CLIPS = [
    ("Actor_06/02-01-03-02-01-01-06.mp4", "HAP", 20),
    ("Actor_11/02-01-05-01-02-01-11.mp4", "ANG", 20),
    ("Actor_16/02-01-04-01-01-02-16.mp4", "SAD", 20),
    ("Actor_18/02-01-07-01-01-01-18.mp4", "DIS", 20),
    ("Actor_21/02-01-06-01-01-01-21.mp4", "FEA", 20),
    ("Actor_21/02-01-08-01-01-01-21.mp4", "FEA", 10),  # shorter than 16 frames: still kept
    ("Actor_21/02-02-03-01-01-01-21.mp4", "HAP", 20),  # song: not used
]
GRAYSCALE, ODD_SIZE, NO_FACE = (  # bad input that is kept (and, without a face, reported)
    "02-01-05-02-02-02-16", "02-01-03-01-02-02-16", "02-01-01-01-02-02-16")  # fmt: skip
ZIP_CLIPS = [  # inside Video_Speech_Actor_01.zip, as downloaded
    ("Actor_01/02-01-01-01-01-01-01.mp4", "NEU", 20),
    ("Actor_01/02-01-02-01-01-01-01.mp4", "NEU", 20),  # calm
    ("Actor_01/01-01-03-01-01-01-01.mp4", "HAP", 20),  # audio-video: not used
]


def write_dummy_data(root):
    """RAVDESS-named synthetic clips: one archive as downloaded, extracted folders, and bad
    input (an empty clip, an unexpected name, a grayscale, an odd-size and a no-face clip)."""
    renderer = SyntheticFaceRenderer(image_size=64, num_frames=20, seed=5)
    for index, (name, emotion, frames) in enumerate(FOLDER_CLIPS + ZIP_CLIPS):
        path = os.path.join(root, "staging" if (name, emotion, frames) in ZIP_CLIPS else "", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_video(path, renderer.render(index, emotion, 0)["video"][:frames])
    with zipfile.ZipFile(os.path.join(root, "Video_Speech_Actor_01.zip"), "w") as archive:
        for name, _, _ in ZIP_CLIPS:
            archive.write(os.path.join(root, "staging", name), name)
    shutil.rmtree(os.path.join(root, "staging"))
    clip = renderer.render(30, "ANG", 0)["video"]
    gray = np.repeat(cv2.cvtColor(clip.reshape(-1, 64, 3), cv2.COLOR_RGB2GRAY)[..., None], 3, -1)
    write_video(os.path.join(root, "Actor_16", GRAYSCALE + ".mp4"), gray.reshape(clip.shape))
    odd = np.stack([cv2.resize(frame, (90, 50)) for frame in clip])  # not square, not 16:9
    write_video(os.path.join(root, "Actor_16", ODD_SIZE + ".mp4"), odd)
    noise = np.random.default_rng(0).integers(0, 255, (20, 64, 64, 3), dtype=np.uint8)
    write_video(os.path.join(root, "Actor_16", NO_FACE + ".mp4"), noise)
    open(os.path.join(root, "Actor_21", "02-01-04-01-01-01-21.mp4"), "wb").close()  # empty
    with open(os.path.join(root, "Actor_06", "notes.mp4"), "wb") as file:
        file.write(b"not a RAVDESS name")


class RavdessPaperTest(FoundByName, GeneratedDummyData, tfds.testing.DatasetBuilderTestCase):
    """7 classes, 5 contiguous actor blocks; the archive and the folders both read."""

    DATASET_CLASS = ravdess_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["paper"]
    SPLITS = {"fold0": 2, "fold1": 1, "fold2": 1, "fold3": 5, "fold4": 2}
    SKIP_CHECKSUMS = True
    # Set at class definition: TFDS memoises the dummy-data path on first use.
    EXAMPLE_DIR = tempfile.mkdtemp(prefix="ravdess_dummy_")

    write_dummy_data = staticmethod(write_dummy_data)


class RavdessMaeDferTest(RavdessPaperTest):
    """8 classes, MAE-DFER's 6 blocks of 4 actors."""

    BUILDER_CONFIG_NAMES_TO_TEST = ["mae_dfer"]
    SPLITS = {"fold0": 2, "fold1": 1, "fold2": 1, "fold3": 4, "fold4": 1, "fold5": 2}
    EXAMPLE_DIR = tempfile.mkdtemp(prefix="ravdess_dummy_")
