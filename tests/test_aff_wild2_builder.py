"""Collects the aff_wild2 builder's tests (TFDS layout keeps them beside the builder)."""

from tfds_builders.aff_wild2.aff_wild2_dataset_builder_test import *  # noqa: F401,F403
