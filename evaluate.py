"""Evaluate train.py runs on their test folds; with several runs, pool them or ensemble them.

`python evaluate.py --help`; installed: `mtcae-evaluate`.

The command lives in `mtcae_keras.cli.evaluate`; importing this file gives that module.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtcae_keras.cli import evaluate  # noqa: E402

if __name__ == "__main__":
    sys.exit(evaluate.main())
sys.modules[__name__] = evaluate  # `import evaluate`: the command's module itself
