import json

import pytest

from mtcae_keras import VideoMAEBackbone
from tests.test_case import PARITY_ATOL
from tests.test_case import fixture_path
from tests.test_case import golden
from tests.test_case import max_abs_diff
from tools import convert_videomae_checkpoint as tool


def test_converted_weights_reload_with_parity(tmp_path, capsys):
    output = str(tmp_path / "tiny.weights.h5")
    source = fixture_path("original_pretrain.pth")
    argv = [source, "--output", output, "--num-heads", "4", "--image-size", "32",
            "--num-frames", "4"]  # fmt: skip
    assert tool.main(argv) == 0
    assert "ported 30 variables" in capsys.readouterr().out
    with open(str(tmp_path / "tiny.config.json")) as file:
        config = json.load(file)
    assert config["use_final_norm"] is True and config["num_heads"] == 4
    backbone = VideoMAEBackbone.from_preset(output)
    data = golden()
    assert max_abs_diff(backbone(data["pixels"]), data["last_hidden_state_final_norm"]) <= (
        PARITY_ATOL
    )


def test_output_name_is_checked(tmp_path):
    with pytest.raises(SystemExit):
        tool.main([fixture_path("hf"), "--output", str(tmp_path / "tiny.h5")])
