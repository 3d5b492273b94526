"""Runs the crema_d DatasetBuilderTestCase with the rest of the suite."""

from tfds_builders.crema_d.crema_d_dataset_builder_test import *  # noqa: F401,F403
