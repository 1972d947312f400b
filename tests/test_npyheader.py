"""``.npy`` headers read without compiling each one agree with numpy's own parser."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from safeload.typegate.npyheader import read_header

NODE = np.dtype(
    [("left_child", "<i8"), ("threshold", "<f8"), ("missing_go_to_left", "u1")], align=True
)


def _npy(array: np.ndarray[Any, Any], version: tuple[int, int] | None = None) -> bytes:
    out = io.BytesIO()
    if version is None:
        np.save(out, array, allow_pickle=False)
    else:
        np.lib.format.write_array(out, array, version=version, allow_pickle=False)
    return out.getvalue()


def _numpy_reads(data: bytes) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    read = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }[version]
    shape, fortran, dtype = read(stream)
    return shape, fortran, dtype, stream.tell()


ARRAYS = [
    np.arange(5.0),
    np.zeros((3, 4), dtype=np.int32),
    np.asfortranarray(np.ones((3, 4))),
    np.array(3.5),
    np.zeros((0,)),
    np.zeros((2, 0, 3), dtype=">u2"),
    np.zeros(7, dtype=NODE),
    np.array(["ab", "c"]),
    np.zeros((10,) * 5, dtype=np.bool_),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
@pytest.mark.parametrize("version", [None, (2, 0)])
def test_every_form_numpy_writes_reads_as_numpy_reads_it(
    array: np.ndarray[Any, Any], version: tuple[int, int] | None
) -> None:
    data = _npy(array, version)
    assert read_header(memoryview(data)) == _numpy_reads(data)


def _with_header(text: str) -> bytes:
    body = text.encode("latin1")
    pad = 64 - (10 + len(body) + 1) % 64
    header = body + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


@pytest.mark.parametrize(
    "text",
    [
        # Written by hand, not by numpy: each must read exactly as numpy reads it, or be refused.
        "{'descr': '<f8', 'fortran_order': False, 'shape': (5), }",  # an int, not a tuple
        "{'descr': '<f8', 'fortran_order': False, 'shape': (007,), }",
        "{'descr': '<f8', 'fortran_order': 0, 'shape': (5,), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-5,), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), 'extra': 1, }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), 'shape': (6,), }",
        "{'descr': '<f8', 'fortran_order': True, 'fortran_order': False, 'shape': (5,), }",
        "{'descr': [('a', '<f8'), ('b', '<i4')], 'fortran_order': False, 'shape': (2, 3), }",
        "{'descr': \"<f8', 'fortran_order': True, 'shape': (9,), }\", 'fortran_order': False, "
        "'shape': (5,), }",
        "{'descr': 'O', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), } junk",
        "{'descr': '<x9', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': '>U3', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': '=f8', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': '<f8 ', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': ' <f8', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': '<f\\x38', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': '<f8' '', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': '<f8'+'', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': u'<f8', 'fortran_order': False, 'shape': (5,), }",
        "{'descr': b'<f8', 'fortran_order': False, 'shape': (5,), }",
    ],
)
def test_a_hand_written_header_reads_as_numpy_reads_it_or_is_refused(text: str) -> None:
    data = _with_header(text)
    try:
        expected: object = _numpy_reads(data)
    except Exception:
        expected = ValueError
    if expected is ValueError:
        with pytest.raises(ValueError):
            read_header(memoryview(data))
    else:
        assert read_header(memoryview(data)) == expected


@pytest.mark.parametrize(
    "data",
    [b"", b"\x93NUMPY", b"\x93NUMPY\x04\x00\x00\x00", b"\x93NUMPY\x01\x01\x10\x00", b"PK\x03\x04"],
)
def test_what_is_not_an_npy_header_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        read_header(memoryview(data + bytes(16)))


def test_the_plain_descrs_numpy_writes_are_read_without_compiling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fresh process compiled each new descr with ``literal_eval``: 0.05 ms, inside the load."""
    from safeload.typegate import npyheader

    def no_compiling(text: str) -> object:
        raise AssertionError(f"literal_eval({text!r})")

    monkeypatch.setattr(npyheader, "_DTYPES", {})
    monkeypatch.setattr(npyheader.ast, "literal_eval", no_compiling)
    for array in (np.arange(5.0), np.zeros(3, dtype=">i4"), np.array(["ab"]), np.zeros(2, bool)):
        data = _npy(array)
        assert read_header(memoryview(data))[2] == array.dtype
