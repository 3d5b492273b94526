"""Runs the synthetic_faces builder tests with the rest of the suite."""

from tfds_builders.synthetic_faces.synthetic_faces_dataset_builder_test import *  # noqa: F401,F403
