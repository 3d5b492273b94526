"""Train MTCAE-DFER on one cross-validation fold.

`python train.py --help`; installed: `mtcae-train`.

The command lives in `mtcae_keras.cli.train`; importing this file gives that module.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtcae_keras.cli import train  # noqa: E402

if __name__ == "__main__":
    sys.exit(train.main())
sys.modules[__name__] = train  # `import train`: the command's module itself
