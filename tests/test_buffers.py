"""BufferReader: a file over the verified buffer that behaves like ``io.BytesIO`` without copying.

The restricted unpickler reads the model through it, and builds arrays as views at the offsets
it reports, so its positions must be exact, it must never read outside the buffer, and it must
see the very bytes that were hashed (a copy taken at any other moment could differ).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeload.buffers import BufferReader

chunks = st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\x00", b"\xff" * 3, b"line\n"]))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.none() | st.integers(-1, 40)),
        st.tuples(st.just("readline"), st.none()),
        st.tuples(st.just("readinto"), st.integers(0, 40)),
        st.tuples(st.just("seek_set"), st.integers(0, 120)),
        st.tuples(st.just("seek_cur"), st.integers(-40, 40)),
        st.tuples(st.just("seek_end"), st.integers(-120, 20)),
        st.tuples(st.just("tell"), st.none()),
    ),
    max_size=30,
)
WHENCE = {"seek_set": io.SEEK_SET, "seek_cur": io.SEEK_CUR, "seek_end": io.SEEK_END}


def apply(handle: Any, op: str, arg: int | None) -> object:
    if op == "read":
        return handle.read() if arg is None else handle.read(arg)
    if op == "readline":
        return handle.readline()
    if op == "readinto":
        target = bytearray(b"\xee" * arg)  # type: ignore[operator]
        return handle.readinto(target), bytes(target)
    if op == "tell":
        return handle.tell()
    return handle.seek(arg, WHENCE[op])


@settings(max_examples=300, deadline=None)
@given(chunks, operations)
def test_behaves_like_bytesio(pieces: list[bytes], ops: list[tuple[str, int | None]]) -> None:
    data = b"".join(pieces)
    reader, reference = BufferReader(bytearray(data)), io.BytesIO(data)
    for op, arg in ops:
        target = {"seek_cur": reference.tell(), "seek_end": len(data)}.get(op, 0) + (arg or 0)
        if op.startswith("seek") and target < 0:
            # BytesIO clamps a relative seek before the start to 0; BufferReader refuses it.
            with pytest.raises(ValueError, match="negative seek position"):
                reader.seek(arg or 0, WHENCE[op])
            continue
        assert apply(reader, op, arg) == apply(reference, op, arg), (op, arg)
        assert reader.tell() == reference.tell()


def test_reads_return_bytes_and_advance() -> None:
    reader = BufferReader(b"0123456789")
    assert reader.read(3) == b"012" and reader.tell() == 3
    assert isinstance(reader.read(0), bytes) and reader.tell() == 3
    assert reader.read(100) == b"3456789" and reader.tell() == 10
    assert reader.read() == b"" and reader.read(5) == b"" and reader.tell() == 10


def test_a_length_below_minus_one_is_refused_not_read_backwards() -> None:
    # BytesIO reads everything for any negative length; io.BufferedReader (under BufferReader)
    # refuses all but -1. pickle never asks for one (it refuses negative counts itself).
    reader = BufferReader(b"abc", start=1)
    with pytest.raises(ValueError, match="non-negative"):
        reader.read(-2)
    assert reader.tell() == 1 and reader.read() == b"bc"


def test_a_huge_declared_length_allocates_nothing_beyond_the_buffer() -> None:
    # io.BufferedReader allocates a read's size before reading: BINBYTES8 declaring 2**60
    # bytes would be a MemoryError (or a huge mapping), not the short read the stream is.
    reader = BufferReader(b"abcdef", start=2)
    assert reader.read(2**60) == b"cdef" and reader.tell() == 6
    assert reader.read(2**60) == b""
    reader.seek(10)
    assert reader.read(2**40) == b"" and reader.tell() == 10


def test_nothing_is_read_past_the_end_after_seeking_beyond_it() -> None:
    reader = BufferReader(b"abc")
    assert reader.seek(10) == 10
    target = bytearray(b"zzzz")
    assert reader.readinto(target) == 0 and target == b"zzzz"
    assert reader.read(4) == b"" and reader.readline() == b""
    assert reader.tell() == 10


@pytest.mark.parametrize("whence", [io.SEEK_SET, io.SEEK_CUR, io.SEEK_END])
def test_position_never_goes_negative(whence: int) -> None:
    reader = BufferReader(b"abc", start=1)
    with pytest.raises(ValueError, match="negative seek position"):
        reader.seek(-4, whence)
    assert reader.tell() == 1


def test_readinto_copies_at_most_what_is_left() -> None:
    reader = BufferReader(b"abcdef", start=4)
    target = bytearray(b"......")
    assert reader.readinto(target) == 2 and target == b"ef...."
    assert reader.tell() == 6


def test_readinto_counts_bytes_for_typed_targets() -> None:
    reader = BufferReader(np.arange(4, dtype=np.float64).tobytes())
    target = np.zeros(3, dtype=np.float64)
    assert reader.readinto(memoryview(target)) == 24
    assert target.tolist() == [0.0, 1.0, 2.0]


def test_start_offset() -> None:
    reader = BufferReader(b"header|body", start=7)
    assert reader.tell() == 7 and reader.read() == b"body"


@pytest.mark.parametrize("newline_at", [0, 4094, 4095, 4096, 4097, 8191, 8192, 10_000])
def test_readline_finds_a_newline_on_either_side_of_its_search_window(newline_at: int) -> None:
    data = b"x" * newline_at + b"\n" + b"tail"
    reader = BufferReader(data)
    assert reader.readline() == data[: newline_at + 1]
    assert reader.tell() == newline_at + 1
    assert reader.readline() == b"tail" and reader.readline() == b""


def test_readline_without_newline_returns_the_rest() -> None:
    data = b"y" * 20_000
    reader = BufferReader(data, start=5)
    assert reader.readline() == data[5:] and reader.tell() == len(data)


def test_reads_see_the_callers_buffer_not_a_copy() -> None:
    """What is read is what is in the verified buffer now: nothing was snapshotted."""
    buffer = bytearray(b"verified bytes\n")
    reader = BufferReader(buffer)
    buffer[:8] = b"VERIFIED"
    assert reader.readline() == b"VERIFIED bytes\n"


def test_wraps_numpy_buffers_by_bytes() -> None:
    array = np.arange(6, dtype=np.uint32).reshape(2, 3)
    reader = BufferReader(memoryview(array))
    assert reader.seek(0, io.SEEK_END) == array.nbytes
    reader.seek(0)
    assert reader.read() == array.tobytes()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_reads_every_protocol_through_it(protocol: int) -> None:
    value = {"a": [1, 2.5, "text\nwith newline", b"\x00\n"], "b": (None, True), "c": 10**30}
    reader = BufferReader(pickle.dumps(value, protocol=protocol) + b"trailing")
    assert pickle.Unpickler(reader).load() == value
    assert reader.read() == b"trailing"
