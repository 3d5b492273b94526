"""Live parity against MAE-DFER's own PyTorch code, imported from a checkout named by
MAE_DFER_DIR (skipped without it, or without torch and einops). CI uses the golden fixture."""

import importlib.util
import os

import numpy as np
import pytest

from mtcae_keras import LGIFormerBackbone
from mtcae_keras.conversion import port_lgi_former_weights
from tests.test_case import PARITY_ATOL
from tests.test_case import max_abs_diff

MAE_DFER_DIR = os.environ.get("MAE_DFER_DIR")
pytestmark = pytest.mark.skipif(
    not (MAE_DFER_DIR and all(importlib.util.find_spec(m) for m in ("torch", "einops"))),
    reason="set MAE_DFER_DIR to a checkout of github sunlicai/MAE-DFER (needs torch, einops)",
)

# Unlike the fixture: 8 frames, 48x80 frames, 2 heads, eps 1e-5, regions 1x3x5 (4 of them).
CONFIG = {
    "image_size": (48, 80), "num_frames": 8, "patch_size": 16, "tubelet_size": 2,
    "hidden_dim": 32, "num_layers": 2, "num_heads": 2, "intermediate_dim": 64,
    "region_size": (1, 3, 5), "layer_norm_epsilon": 1e-5,
}  # fmt: skip


def test_live_parity_with_mae_dfer():
    from tools import lgi_former_reference as ref

    modeling_finetune, _ = ref.import_mae_dfer(MAE_DFER_DIR)
    reference = ref.finetune_model(modeling_finetune, CONFIG, seed=5)
    pixels = np.random.default_rng(2).standard_normal((2, 8, 48, 80, 3)).astype(np.float32)
    expected = ref.run_finetune(reference, CONFIG, pixels)
    backbone = LGIFormerBackbone(**CONFIG, return_region_tokens=True)
    report = port_lgi_former_weights(backbone, ref.state_dict_numpy(reference))
    assert len(report["ignored"]) == 4  # fc_norm and head
    out = backbone(pixels)
    assert max_abs_diff(out["tokens"], expected["tokens"]) <= PARITY_ATOL
    assert max_abs_diff(out["region_tokens"], expected["region_tokens"]) <= PARITY_ATOL


def test_convert_tool_verify_passes_and_fails_on_tolerance(tmp_path, capsys):
    from tests.test_case import LGI_FORMER
    from tools import convert_videomae_checkpoint as tool

    args = [os.path.join(LGI_FORMER, "base_finetune.pth"), "--num-heads", "8", "--verify",
            "--mae-dfer", MAE_DFER_DIR]  # fmt: skip
    assert tool.main(args + ["--output", str(tmp_path / "a.weights.h5")]) == 0
    assert "PASS" in capsys.readouterr().out
    strict = ["--atol", "0", "--rtol", "0", "--output", str(tmp_path / "b.weights.h5")]
    assert tool.main(args + strict) == tool.EXIT_MISMATCH
    assert "FAIL" in capsys.readouterr().out
