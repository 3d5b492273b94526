"""DatasetBuilderTestCase for crema_d on generated dummy_data (tools/make_crema_d_dummy_data.py)."""

import tensorflow_datasets as tfds

from tfds_builders.crema_d import crema_d_dataset_builder


class CremaDDatasetBuilderTest(tfds.testing.DatasetBuilderTestCase):
    """Five actor-block folds from CREMA-D-named files under VideoFlash/."""

    DATASET_CLASS = crema_d_dataset_builder.Builder
    SPLITS = {"fold0": 2, "fold1": 1, "fold2": 1, "fold3": 1, "fold4": 1}
    SKIP_CHECKSUMS = True
