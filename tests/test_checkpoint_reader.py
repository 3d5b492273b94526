import io
import json
import os
import pickle
import zipfile

import ml_dtypes
import numpy as np
import pytest

from mtcae_keras.conversion import load_videomae_checkpoint
from mtcae_keras.conversion import read_torch_zip
from mtcae_keras.conversion.torch_zip_reader import OpaqueObject
from tests.test_case import fixture_path


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_reader_never_runs_code_from_the_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"model": {}, "evil": _Exploit(marker)}, protocol=2)
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", payload)
    obj = read_torch_zip(str(path))
    assert not marker.exists()
    assert isinstance(obj["evil"], OpaqueObject)
    assert obj["evil"].qualified_name in ("posix.system", "os.system", "nt.system")


def test_reader_returns_exact_tensors_and_inert_extras():
    obj = read_torch_zip(fixture_path("original_finetune.pth"))
    assert obj["epoch"] == 7
    assert isinstance(obj["args"], OpaqueObject)
    assert obj["args"].qualified_name == "argparse.Namespace"
    _, reference = load_videomae_checkpoint(fixture_path("hf"))
    qkv = obj["module"]["blocks.0.attn.qkv.weight"]
    query = reference["encoder.layer.0.attention.attention.query.weight"]
    assert qkv.shape == (96, 32) and qkv.dtype == np.float32
    np.testing.assert_array_equal(qkv[:32], query)


def _write_safetensors(path, tensors):
    """Writes the safetensors format by hand (8-byte header length, JSON header, buffers)."""
    header, buffers, offset = {}, [], 0
    for key, (dtype, array) in tensors.items():
        data = array.tobytes()
        header[key] = {"dtype": dtype, "shape": list(array.shape),
                       "data_offsets": [offset, offset + len(data)]}  # fmt: skip
        buffers.append(data)
        offset += len(data)
    encoded = json.dumps(header).encode()
    with open(path, "wb") as file:
        file.write(len(encoded).to_bytes(8, "little") + encoded + b"".join(buffers))


def test_bfloat16_safetensors_are_read_as_float32(tmp_path):
    values = np.array([[1.5, -2.0], [0.25, 3.0]], np.float32)
    path = str(tmp_path / "model.safetensors")
    _write_safetensors(path, {
        "blocks.0.norm1.weight": ("BF16", values.astype(ml_dtypes.bfloat16)),
        "patch_embed.proj.weight": ("F32", np.zeros((4, 3, 2, 2, 2), np.float32)),
    })  # fmt: skip
    config, state_dict = load_videomae_checkpoint(path)
    assert state_dict["blocks.0.norm1.weight"].dtype == np.float32
    np.testing.assert_array_equal(state_dict["blocks.0.norm1.weight"], values)
    assert (config["hidden_dim"], config["patch_size"], config["num_layers"]) == (4, 2, 1)


def test_missing_and_empty_sources_say_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        load_videomae_checkpoint(str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match="model.safetensors"):
        load_videomae_checkpoint(str(tmp_path))
    not_a_checkpoint = tmp_path / "x.pth"
    with zipfile.ZipFile(not_a_checkpoint, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="legacy|no data.pkl"):
        load_videomae_checkpoint(str(not_a_checkpoint))


def test_state_dict_without_model_field_names_what_it_found(tmp_path):
    path = tmp_path / "ckpt.pth"
    buffer = io.BytesIO()
    pickle.dump({"optimizer": {}, "epoch": 3}, buffer, protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ckpt/data.pkl", buffer.getvalue())
    with pytest.raises(ValueError, match=r"no state dict found .*'epoch', 'optimizer'"):
        load_videomae_checkpoint(str(path))
