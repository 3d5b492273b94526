"""Reads PyTorch `torch.save` zip checkpoints into numpy arrays without torch and without
running any code from the file.

A `.pth` / `.bin` file is a zip holding `data.pkl` (a pickle of the object tree) and one raw
buffer per tensor storage under `data/`. Unpickling a hostile pickle can run arbitrary code,
so `data.pkl` is read by an `Unpickler` whose `find_class` never imports anything: the few
tensor-rebuilding functions are replaced by our own numpy versions, and every other global
becomes an inert placeholder (`OpaqueObject`) that only records its name and arguments.
"""

import collections
import pickle
import zipfile

import ml_dtypes
import numpy as np

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class OpaqueObject:
    """Stands in for any non-tensor global of a checkpoint (e.g. `argparse.Namespace`)."""

    qualified_name = "?"

    def __init__(self, *args, **kwargs):
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def __repr__(self):
        return f"<opaque {self.qualified_name}>"


def _opaque_class(module, name):
    return type(name, (OpaqueObject,), {"qualified_name": f"{module}.{name}"})


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    flat, _ = storage
    if not size:
        return np.array(flat[storage_offset])
    itemsize = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[storage_offset:],
        shape=tuple(size),
        strides=tuple(s * itemsize for s in stride),
        writeable=False,
    )
    return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


_REBUILDERS = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) in _REBUILDERS:
            return _REBUILDERS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        return _opaque_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"Unsupported persistent id {pid!r}.")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"Unsupported tensor storage type {storage_type!r}.")
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}/data/{key}")
            dtype = np.dtype(_STORAGE_DTYPES[storage_type.name])
            self._storages[key] = np.frombuffer(raw, dtype=dtype, count=numel)
        return self._storages[key], storage_type.name


def is_torch_zip(path):
    """Whether `path` is a zip-format `torch.save` file."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/data.pkl") or n == "data.pkl" for n in archive.namelist())


def read_torch_zip(path):
    """Returns the object tree of a zip-format `torch.save` file, tensors as numpy arrays.

    bfloat16 tensors come back as `ml_dtypes.bfloat16` arrays. Objects other than tensors,
    dicts, lists and plain values come back as `OpaqueObject`s.

    Args:
        path: str. The `.pth` / `.pt` / `.bin` file.
    """
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if not pickles:
            raise ValueError(f"{path}: not a torch.save zip archive (no data.pkl inside).")
        name = min(pickles, key=len)
        prefix = name[: -len("/data.pkl")] if "/" in name else ""
        byteorder = f"{prefix}/byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise ValueError(f"{path}: big-endian checkpoints are not supported.")
        with archive.open(name) as file:
            return _SafeUnpickler(file, archive, prefix).load()
