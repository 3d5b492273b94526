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


def test_mae_dfer_lgi_former_converts_and_reloads_with_parity(tmp_path, capsys):
    """A MAE-DFER pre-training .pth becomes an LGI-Former .weights.h5 that every loader reads."""
    import os

    from mtcae_keras import LGIFormerBackbone
    from mtcae_keras.models.encoders import load_encoder
    from tests.test_case import LGI_FORMER
    from tests.test_case import lgi_former_golden

    output = str(tmp_path / "lgi.weights.h5")
    argv = [os.path.join(LGI_FORMER, "base_pretrain.pth"), "--output", output,
            "--num-heads", "8"]  # fmt: skip
    # Regions of 2x5x5 tokens: 16 where the checkpoint has 8 representative tokens.
    with pytest.raises(ValueError, match=r"lg_region_tokens.*\(8, 64\).*\(16, 64\)"):
        tool.main(argv + ["--region-size", "2", "5", "5"])
    assert not (tmp_path / "lgi.config.json").exists()
    assert tool.main(argv) == 0
    assert "LGIFormerBackbone: ported 67 variables" in capsys.readouterr().out
    config = json.loads((tmp_path / "lgi.config.json").read_text())
    assert config["backbone_class"] == "LGIFormerBackbone" and config["num_heads"] == 8
    data = lgi_former_golden("base")
    for loaded in (LGIFormerBackbone.from_preset(output), load_encoder(output)):
        assert isinstance(loaded, LGIFormerBackbone)
        assert max_abs_diff(loaded(data["pixels"]), data["tokens"]) <= PARITY_ATOL


def test_region_size_is_refused_for_a_plain_vit(tmp_path):
    argv = [fixture_path("original_pretrain.pth"), "--output", str(tmp_path / "a.weights.h5"),
            "--region-size", "1", "2", "2"]  # fmt: skip
    with pytest.raises(SystemExit, match="LGI-Former checkpoints only"):
        tool.main(argv)
