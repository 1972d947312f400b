"""``.npy`` headers, read without compiling each one.

numpy parses a header with ``ast.literal_eval``, which compiles it: 0.05 ms a header, most of
a skops forest's array reading. numpy writes one form only, ``{'descr': D, 'fortran_order':
B, 'shape': (N, ...), }`` then spaces and a newline; a header in exactly that form is split
here, its ``descr`` evaluated by ``literal_eval`` once per distinct text (a forest's trees share
a handful) and turned into a dtype by numpy's own ``descr_to_dtype``. The split agrees with
``literal_eval`` of the whole header: what follows ``descr`` is fixed text, and ``descr`` must
be one complete literal by itself. Any other form goes to numpy's parser, unchanged.
"""

from __future__ import annotations

import ast
import re
import struct
from typing import Any

import numpy as np

from safeload.buffers import BufferReader

MAGIC = b"\x93NUMPY"
_MAX_HEADER = 10000  # numpy's default max_header_size
_FORM = re.compile(
    r"\{'descr': (?P<descr>.+?), 'fortran_order': (?P<fortran>True|False), 'shape': "
    r"\((?:(?P<one>0|[1-9][0-9]*),|(?P<many>(?:(?:0|[1-9][0-9]*), )+(?:0|[1-9][0-9]*)),?|)\)"
    r", \} *\n",
    re.DOTALL,
)
# A descr that is one quoted run of these characters is its own value (no quote, backslash or
# space can be inside), read without ``literal_eval``: a fresh process compiled every new one.
_PLAIN_DESCR = re.compile(r"'([<>|=]?[A-Za-z][A-Za-z0-9]{0,15})'")
Header = tuple[tuple[int, ...], bool, np.dtype[Any], int]
_DTYPES: dict[str, np.dtype[Any]] = {}
_MAX_CACHED = 256


def read_header(entry: memoryview) -> Header:
    """Shape, Fortran order, dtype and data offset of an ``.npy`` file; ``ValueError`` if odd."""
    if bytes(entry[:6]) != MAGIC or len(entry) < 10:
        raise ValueError("not an .npy file")
    major, minor = entry[6], entry[7]
    if minor != 0 or major not in (1, 2, 3):
        raise ValueError(f"npy version {major}.{minor}")
    if major == 1:
        (length,), start = struct.unpack_from("<H", entry, 8), 10
    else:
        (length,), start = struct.unpack_from("<I", entry, 8), 12
    end = start + length
    if length <= _MAX_HEADER and end <= len(entry) and major < 3:
        text = bytes(entry[start:end]).decode("latin1")
        form = _FORM.fullmatch(text)
        if form is not None:
            dtype = _dtype(form["descr"])
            if dtype is not None:
                many = form["many"]
                shape = (
                    tuple(int(n) for n in many.split(", "))
                    if many
                    else ((int(form["one"]),) if form["one"] else ())
                )
                return shape, form["fortran"] == "True", dtype, end
    return _numpy_header(entry, major)


def _dtype(descr: str) -> np.dtype[Any] | None:
    """The dtype ``descr`` names (cached), or None when it is not one literal by itself."""
    known = _DTYPES.get(descr)
    if known is not None:
        return known
    plain = _PLAIN_DESCR.fullmatch(descr)
    if plain is not None:
        value: Any = plain[1]
    else:
        try:
            value = ast.literal_eval(descr)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    try:
        dtype = np.lib.format.descr_to_dtype(value)
    except Exception as exc:  # numpy's own parser would refuse the same descr
        raise ValueError(f"odd dtype description: {type(exc).__name__}") from exc
    if len(_DTYPES) >= _MAX_CACHED:
        _DTYPES.clear()
    _DTYPES[descr] = dtype
    return dtype


def _numpy_header(entry: memoryview, major: int) -> Header:
    reader = BufferReader(entry)
    np.lib.format.read_magic(reader)
    if major == 1:
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(reader)
    elif major == 2:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(reader)
    else:
        raise ValueError("npy version 3.0 is not read")
    return shape, fortran, dtype, reader.tell()
