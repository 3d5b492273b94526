"""Predict the expression (and per-frame face box and landmarks) of one video file.

`python predict.py --help`; installed: `mtcae-predict`.

The command lives in `mtcae_keras.cli.predict`; importing this file gives that module.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtcae_keras.cli import predict  # noqa: E402

if __name__ == "__main__":
    sys.exit(predict.main())
sys.modules[__name__] = predict  # `import predict`: the command's module itself
