"""A mixin for `tfds.testing.DatasetBuilderTestCase`s whose dummy data is written at test time.

No clip of a real dataset may be stored in the repository (MEAD's licence forbids it outright),
so each builder test renders synthetic-face clips under the dataset's naming and layout into
a temporary `EXAMPLE_DIR` when the test class starts, and removes them when it ends.
"""

import shutil


class GeneratedDummyData:
    """Put before `DatasetBuilderTestCase` in the bases; set `EXAMPLE_DIR` (a fresh temporary
    folder, at class definition: TFDS memoises the path) and `write_dummy_data =
    staticmethod(fn)`, where `fn(folder)` writes the dummy manual dir."""

    @classmethod
    def setUpClass(cls):
        cls.write_dummy_data(cls.EXAMPLE_DIR)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.EXAMPLE_DIR, ignore_errors=True)


class FoundByName:
    """Put before `DatasetBuilderTestCase` in the bases: our builders are found by name
    through `tfds_builders`' provider, not TFDS's class registry (which `test_registered`
    looks in), so that name is what is tested."""

    def test_registered(self):
        import tensorflow_datasets as tfds

        import tfds_builders  # noqa: F401 (adds the provider)

        self.assertIs(tfds.builder_cls(self.DATASET_CLASS.name), self.DATASET_CLASS)
