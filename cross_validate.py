"""Train and test every fold of a dataset's protocol; print the table of the paper's form.

`python cross_validate.py --help`; installed: `mtcae-cross-validate`.

The command lives in `mtcae_keras.cli.cross_validate`; importing this file gives that module.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtcae_keras.cli import cross_validate  # noqa: E402

if __name__ == "__main__":
    sys.exit(cross_validate.main())
sys.modules[__name__] = cross_validate  # `import cross_validate`: the command's module itself
