"""Pre-train a video encoder by masked video modelling (VideoMAE; MAE-DFER's joint target).

`python pretrain.py --help`; installed: `mtcae-pretrain`.

The command lives in `mtcae_keras.cli.pretrain`; importing this file gives that module.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtcae_keras.cli import pretrain  # noqa: E402

if __name__ == "__main__":
    sys.exit(pretrain.main())
sys.modules[__name__] = pretrain  # `import pretrain`: the command's module itself
