"""Read a CTranslate2 ``model.bin`` into numpy arrays, without CTranslate2.

The layout is the one ``ctranslate2.specs.model_spec.ModelSpec._serialize`` writes
(binary version 6): a header, then each variable as name, rank, dims, dtype id, byte
count and raw little-endian bytes, then the aliases (name -> variable name).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

# Order of ctranslate2's DataType enum (include/ctranslate2/types.h).
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


def _read(f: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    (value,) = struct.unpack("<" + fmt, f.read(size))
    return int(value)


def _read_string(f: BinaryIO) -> str:
    length = _read(f, "H")  # includes the trailing NUL
    return f.read(length)[:-1].decode("utf-8")


def read_model_bin(path: str | Path) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """Parse a CTranslate2 model file.

    Parameters
    ----------
    path : str or Path
        The ``model.bin`` file.

    Returns
    -------
    header : dict
        ``binary_version``, ``spec_name``, ``spec_revision``, ``aliases``.
    variables : dict of str to ndarray
        Every stored variable in its stored dtype and shape (float16 stays float16;
        bfloat16 is widened to float32 since numpy has no bfloat16).
    """
    variables: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        version = _read(f, "I")
        if version < 5:
            raise ValueError(f"binary version {version} not handled (expected >= 5)")
        spec_name = _read_string(f)
        revision = _read(f, "I")
        count = _read(f, "I")
        for _ in range(count):
            name = _read_string(f)
            rank = _read(f, "B")
            shape = tuple(_read(f, "I") for _ in range(rank))
            dtype = _DTYPES[_read(f, "B")]
            nbytes = _read(f, "I")
            raw = f.read(nbytes)
            if dtype == "bfloat16":
                bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                array = bits.view(np.float32)
            else:
                array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
            variables[name] = array.reshape(shape)
        aliases = {}
        n_alias = _read(f, "I")
        for _ in range(n_alias):
            alias = _read_string(f)
            aliases[alias] = _read_string(f)
        trailing = f.read()
    if trailing:
        raise ValueError(f"{len(trailing)} unread bytes at the end of {path}")
    header = {
        "binary_version": version,
        "spec_name": spec_name,
        "spec_revision": revision,
        "aliases": aliases,
    }
    return header, variables
