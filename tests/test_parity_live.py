"""Live parity against Hugging Face transformers (skipped when torch is not installed)."""

import numpy as np
import pytest

from mtcae_keras import VideoMAEBackbone
from mtcae_keras.conversion import port_videomae_weights
from mtcae_keras.models.videomae_layers import sinusoid_position_embedding
from tests.test_case import PARITY_ATOL
from tests.test_case import has_reference
from tests.test_case import max_abs_diff

pytestmark = pytest.mark.skipif(
    not has_reference(),
    reason="torch/transformers not installed (pip install -r requirements-dev.txt)",
)

# Unlike the golden fixture: non-square frames, 3 heads, 3 layers, eps 1e-12, final norm.
CONFIG = {
    "image_size": (48, 32),
    "num_frames": 6,
    "patch_size": 16,
    "tubelet_size": 2,
    "hidden_dim": 48,
    "num_layers": 3,
    "num_heads": 3,
    "intermediate_dim": 96,
    "layer_norm_epsilon": 1e-12,
}


@pytest.mark.parametrize("use_final_norm", [False, True])
@pytest.mark.parametrize("spelling", ["huggingface", "original"])
def test_live_parity_with_transformers(spelling, use_final_norm):
    from tools import videomae_reference as ref

    config = dict(CONFIG, use_final_norm=use_final_norm)
    model = ref.random_hf_model(config, seed=7)
    state_dict = ref.state_dict_numpy(model)
    if spelling == "original":
        state_dict = {"encoder." + k: v for k, v in ref.hf_to_original(state_dict).items()}
    assert any("bias" in k and np.abs(v).max() > 0.1 for k, v in state_dict.items())
    backbone = VideoMAEBackbone(**config)
    port_videomae_weights(backbone, state_dict)
    pixels = np.random.default_rng(3).standard_normal((2, 6, 48, 32, 3)).astype(np.float32)
    assert max_abs_diff(backbone(pixels), ref.run_hf(model, pixels)) <= PARITY_ATOL


def test_position_table_equals_transformers():
    from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

    expected = get_sinusoid_encoding_table(1568, 768)[0].numpy()
    np.testing.assert_array_equal(sinusoid_position_embedding(1568, 768), expected)


def test_convert_tool_verify_passes_and_fails_on_tolerance(tmp_path, capsys):
    from tests.test_case import fixture_path
    from tools import convert_videomae_checkpoint as tool

    args = [fixture_path("original_layer_scale.pth"), "--num-heads", "4", "--image-size", "32",
            "--num-frames", "4", "--verify", "--batch-size", "2"]  # fmt: skip
    assert tool.main(args + ["--output", str(tmp_path / "a.weights.h5")]) == 0
    assert "PASS" in capsys.readouterr().out
    strict = ["--atol", "0", "--rtol", "0", "--output", str(tmp_path / "b.weights.h5")]
    assert tool.main(args + strict) == tool.EXIT_MISMATCH
    assert "FAIL" in capsys.readouterr().out
