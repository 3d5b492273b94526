"""DatasetBuilderTestCase for crema_d on dummy clips generated when the test runs."""

import os
import tempfile

import cv2
import tensorflow_datasets as tfds

from mtcae_keras.data.synthetic_face_renderer import SyntheticFaceRenderer
from tfds_builders.crema_d import crema_d_dataset_builder
from tfds_builders.generated_dummy_data import FoundByName
from tfds_builders.generated_dummy_data import GeneratedDummyData

# One or two actors from each fold block, in CREMA-D's naming.
CLIPS = [
    ("1001_DFA_ANG_XX", "ANG"), ("1001_IEO_HAP_HI", "HAP"), ("1019_ITS_DIS_XX", "DIS"),
    ("1037_TIE_FEA_LO", "FEA"), ("1055_WSI_NEU_XX", "NEU"), ("1073_MTI_SAD_MD", "SAD"),
]  # fmt: skip


def write_dummy_clips(folder):
    """Synthetic-face clips as FLV files named like CREMA-D's, plus one unparsable name."""
    os.makedirs(folder, exist_ok=True)
    renderer = SyntheticFaceRenderer(image_size=96, num_frames=20, seed=11)
    for index, (name, emotion) in enumerate(CLIPS):
        writer = cv2.VideoWriter(
            os.path.join(folder, name + ".flv"), cv2.VideoWriter_fourcc(*"FLV1"), 30.0, (96, 96)
        )
        for frame in renderer.render(index, emotion, 0)["video"]:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
    with open(os.path.join(folder, "1001_DFA_XYZ_XX.flv"), "wb") as file:
        file.write(b"an unknown emotion code: skipped and reported")


def _write_dummy_manual_dir(folder):
    write_dummy_clips(os.path.join(folder, "VideoFlash"))


class CremaDDatasetBuilderTest(
    FoundByName, GeneratedDummyData, tfds.testing.DatasetBuilderTestCase
):
    """Five actor-block folds from CREMA-D-named files under VideoFlash/."""

    DATASET_CLASS = crema_d_dataset_builder.Builder
    SPLITS = {"fold0": 2, "fold1": 1, "fold2": 1, "fold3": 1, "fold4": 1}
    SKIP_CHECKSUMS = True
    # Set at class definition: TFDS memoises the dummy-data path on first use.
    EXAMPLE_DIR = tempfile.mkdtemp(prefix="crema_d_dummy_")

    write_dummy_data = staticmethod(_write_dummy_manual_dir)
