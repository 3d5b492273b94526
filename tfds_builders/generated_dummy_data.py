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
