#!/usr/bin/python3
"""Run llama.cpp's convert_hf_to_gguf.py with Debian's python (torch 1.13, no `safetensors`).

The upstream converter wants the `safetensors` Python package and a torch new
enough to have float8 dtypes. Debian 12 has neither, and PyPI is not reachable
here, so this wrapper supplies both before running the converter unchanged:

* a minimal `safetensors.safe_open` (keys / get_slice / get_tensor) that reads
  the file per the public format with numpy memory maps;
* placeholder `torch.float8_*` attributes: the converter only names them in a
  lookup table, and our F16 models never use them.

Usage (the remaining arguments go to the converter):
    /usr/bin/python3 bench/llama_cpp_convert.py LLAMA_CPP_DIR MODEL_DIR --outtype f16 --outfile OUT.gguf
"""

from __future__ import annotations

import json
import runpy
import struct
import sys
import types
from pathlib import Path

import numpy as np
import torch

_NUMPY_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
    "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}


class _Slice:
    """What safetensors' get_slice returns: dtype/shape up front, data on indexing."""

    def __init__(self, array: np.ndarray, dtype: str):
        self._array, self._dtype = array, dtype

    def get_dtype(self) -> str:
        return self._dtype

    def get_shape(self) -> list[int]:
        return list(self._array.shape)

    def __getitem__(self, index):
        return torch.from_numpy(np.array(self._array[index]))  # a writable copy


class _SafeOpen:
    def __init__(self, path, framework="pt", device="cpu"):
        del framework, device
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        self._header = header
        self._data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def keys(self):
        return list(self._header)

    def get_slice(self, name: str) -> _Slice:
        info = self._header[name]
        dtype = info["dtype"]
        if dtype not in _NUMPY_DTYPES:
            raise ValueError(f"{name}: dtype {dtype} not supported by this reader")
        begin, end = info["data_offsets"]
        array = self._data[begin:end].view(_NUMPY_DTYPES[dtype]).reshape(info["shape"])
        return _Slice(array, dtype)

    def get_tensor(self, name: str):
        return self.get_slice(name)[...]


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    llama_cpp = Path(sys.argv[1]).resolve()
    for name in ("float8_e4m3fn", "float8_e5m2"):
        if not hasattr(torch, name):
            setattr(torch, name, torch.float16)  # table entry only; never used for F16 inputs
    module = types.ModuleType("safetensors")
    module.safe_open = _SafeOpen
    sys.modules["safetensors"] = module
    sys.path.insert(0, str(llama_cpp / "gguf-py"))
    script = llama_cpp / "convert_hf_to_gguf.py"
    sys.argv = [str(script)] + sys.argv[2:]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
