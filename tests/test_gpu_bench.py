"""`bench/gpu_speed.py`'s TensorFlow rows, the mission's GPU path (issue 19), run here on the
CPU at a tiny size so that a session lent a GPU finds them working."""

import json
import math

import pytest

from bench import gpu_speed

SPEC = {"frames": 4, "image_size": 32, "warmup": 1, "repeats": 1, "decoder": "paper",
        "frozen": False, "compile": False, "model": "encoder", "size": "tiny", "batch": 2,
        "dtype": "float32", "framework": "keras", "backend": "tensorflow"}  # fmt: skip


@pytest.mark.parametrize(
    "mode, mirrored, name",
    [("infer", False, "keras-tf XLA encoder float32"),
     ("train", False, "keras-tf XLA encoder float32"),
     ("train", True, "keras-tf XLA MirroredStrategy encoder float32")],
)  # fmt: skip
def test_tensorflow_rows_measure_a_step(capsys, mode, mirrored, name):
    """A row times XLA-compiled steps of our model on Keras' TensorFlow backend (one device or
    MirroredStrategy; a training loss that is not finite fails it), and reports no GPU memory
    where there is no GPU rather than a number from elsewhere."""
    gpu_speed.run_one({**SPEC, "mode": mode, "mirrored": mirrored})
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["clips_per_s"] > 0 and row["seconds"] > 0
    assert row["keras_flash_attention"] is None  # a JAX-only check
    assert math.isnan(row["peak_mb"])
    assert gpu_speed._name(row) == name
