"""mtcae-keras's TFDS builders, found by name: `tfds.builder("crema_d")` after this import.

Importing this package adds a TFDS dataset-builder provider for our builders (ahead of TFDS's
own), and imports no builder module until one is asked for: `import mtcae_keras` stays light
and no import cycle forms with `mtcae_keras.data`, which the builders import.

TFDS ships an audio-only `crema_d`; ours (the video clips with MTCNN labels) is the one
`tfds.builder("crema_d")` gives once this package is imported. Our builder classes therefore
do not enter TFDS's class registry (`skip_registration`): two `crema_d` there collide, and
importing ours after TFDS's, or TFDS's after ours, would raise "already registered".
"""

import importlib

from tensorflow_datasets.core import registered

BUILDER_MODULES = {
    "aff_wild2": "tfds_builders.aff_wild2.aff_wild2_dataset_builder",
    "synthetic_faces": "tfds_builders.synthetic_faces.synthetic_faces_dataset_builder",
    "crema_d": "tfds_builders.crema_d.crema_d_dataset_builder",
    "ravdess": "tfds_builders.ravdess.ravdess_dataset_builder",
    "mead": "tfds_builders.mead.mead_dataset_builder",
    "video_folder": "tfds_builders.video_folder.video_folder_dataset_builder",
}


def builder_class(name):
    """The builder class of dataset `name` (a key of `BUILDER_MODULES`)."""
    if name not in BUILDER_MODULES:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(BUILDER_MODULES)}.")
    return importlib.import_module(BUILDER_MODULES[name]).Builder


class BuilderProvider(registered.DatasetBuilderProvider):
    """TFDS's hook for builders found by name: ours, imported on first use."""

    def has_dataset(self, name):
        return name in BUILDER_MODULES

    def get_builder_cls(self, name):
        return builder_class(name)


registered.add_dataset_builder_provider(BuilderProvider(), index=0)
