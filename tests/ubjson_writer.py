"""Write UBJSON in XGBoost's own forms: tests edit a real Booster's model and write it back.

The inverse of :func:`safeload.typegate.ubjson.read_ubjson` (numpy arrays become typed arrays of
their dtype, lengths are ``L``): a genuine model read and written back is byte-identical, so
an edited one differs from what XGBoost wrote only where the test edited it.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

_TYPED = {"i1": "i", "u1": "U", ">i2": "I", ">i4": "l", ">i8": "L", ">f4": "d", ">f8": "D"}


def _len(n: int) -> bytes:
    return b"L" + struct.pack(">q", n)


def _str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _len(len(raw)) + raw


def write_ubjson(value: Any) -> bytes:
    """``value`` as XGBoost's UBJSON."""
    if isinstance(value, dict):
        return b"{" + b"".join(_str(k) + write_ubjson(v) for k, v in value.items()) + b"}"
    if isinstance(value, np.ndarray):
        dtype = value.dtype.newbyteorder(">") if value.dtype.itemsize > 1 else value.dtype
        code = _TYPED[dtype.str.replace("|", "")]
        return b"[$" + code.encode() + b"#" + _len(len(value)) + value.astype(dtype).tobytes()
    if isinstance(value, list):
        return b"[#" + _len(len(value)) + b"".join(write_ubjson(v) for v in value)
    if isinstance(value, str):
        return b"S" + _str(value)
    if value is True or value is False or value is None:
        return {True: b"T", False: b"F", None: b"Z"}[value]
    if isinstance(value, int):
        for code, fmt in (("i", ">b"), ("I", ">h"), ("l", ">i"), ("L", ">q")):
            try:
                return code.encode() + struct.pack(fmt, value)
            except struct.error:
                continue
    if isinstance(value, float):  # XGBoost's floats are float32 ('d') where that is exact
        single = struct.pack(">f", value)
        exact = struct.unpack(">f", single)[0] == value or value != value
        return b"d" + single if exact else b"D" + struct.pack(">d", value)
    raise TypeError(f"cannot write {type(value).__name__}")
