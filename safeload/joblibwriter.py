"""Write joblib's file format with CPython's C pickler, arrays straight from their memory.

``joblib.dump`` runs the pure-Python pickler (it has to, to interleave raw array bytes with
the opcode stream) and copies every array through ``tobytes`` before writing it. This writer
produces the same format, which any ``joblib.load`` reads, at a fraction of the cost:

1. the C pickler pickles the object graph; each array that joblib would wrap (exact
   ``ndarray``, ``matrix``, ``memmap``) becomes a persistent id whose value is the state dict
   of joblib's ``NumpyArrayWrapper`` (so dtypes, classes and key strings are memoized once,
   exactly as joblib's own pickler memoizes them);
2. one walk over the opcodes rewrites each ``<state dict> BINPERSID`` into
   ``NumpyArrayWrapper() <state dict> BUILD`` followed by the array's payload (a padding byte,
   padding to joblib's 16-byte alignment, the raw bytes; a nested pickle for object arrays),
   which is exactly what joblib writes, and drops the protocol-4 frames, which are optional;
3. the result is a list of buffers to write in order, array bytes as views on the arrays
   (no copy of C- or Fortran-contiguous data), so that the caller can hash and write them
   in parallel.

What the C pickler refuses is left to ``joblib.dump`` (:class:`Unsupported`), which then
reports the problem in its own words.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
from joblib.numpy_pickle import NUMPY_ARRAY_ALIGNMENT_BYTES

# STACK_GLOBAL of joblib.numpy_pickle.NumpyArrayWrapper, EMPTY_TUPLE, NEWOBJ: what joblib's
# pickler writes for a wrapper (it memoizes the class; this stream names it every time).
_WRAPPER_PREFIX = (
    b"\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper"
    + pickle.STACK_GLOBAL
    + pickle.EMPTY_TUPLE
    + pickle.NEWOBJ
)
_WRAPPED_TYPES = (np.ndarray, np.matrix, np.memmap)
_CHUNK = 1 << 24  # array data are handed out in views of at most this many bytes
_SMALL = 1 << 16  # smaller pieces are joined into one buffer


class Unsupported(Exception):
    """The fast path cannot write this object; nothing was written, use ``joblib.dump``."""


class _Slot:
    """Where an array's payload goes in the rewritten stream."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray[Any, Any]) -> None:
        self.array = array


class _SkeletonPickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, protocol: int) -> None:
        super().__init__(file, protocol=protocol)
        self.arrays: list[np.ndarray[Any, Any]] = []  # in the order of their BINPERSID opcodes

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) not in _WRAPPED_TYPES:
            return None
        array = np.asanyarray(obj) if type(obj) is np.memmap else obj
        self.arrays.append(array)
        # A plain dict (pickled as joblib pickles the wrapper's __dict__), never a subclass.
        return dict(
            subclass=type(array),
            shape=array.shape,
            order="F" if (array.flags.f_contiguous and not array.flags.c_contiguous) else "C",
            dtype=array.dtype,
            allow_mmap=not array.dtype.hasobject,
            numpy_array_alignment_bytes=NUMPY_ARRAY_ALIGNMENT_BYTES,
        )


def _payload(array: np.ndarray[Any, Any], position: int) -> Iterator[bytes | memoryview]:
    """The bytes joblib writes after a wrapper's BUILD that ends at file offset ``position``."""
    if array.dtype.hasobject:
        yield pickle.dumps(array, protocol=5)  # what joblib's write_array does
        return
    padding = NUMPY_ARRAY_ALIGNMENT_BYTES - ((position + 1) % NUMPY_ARRAY_ALIGNMENT_BYTES)
    yield bytes([padding]) + b"\xff" * padding
    if array.size == 0:
        return
    if array.flags.c_contiguous:
        flat = array.reshape(-1)
    elif array.flags.f_contiguous:
        flat = array.T.reshape(-1)
    else:  # joblib writes it in C order through a buffered iterator: the same bytes
        flat = np.ascontiguousarray(array).reshape(-1)
    data = memoryview(flat.view(np.uint8).data)
    for start in range(0, data.nbytes, _CHUNK):  # chunks: hashing overlaps with writing
        yield data[start : start + _CHUNK]


def _opcode_table() -> dict[int, tuple[int, int, int, bool]]:
    """Per opcode of protocols 2-5: (argument, items popped, items pushed, pops to a mark first).

    Argument: n >= 0 is a fixed size; -1, -4, -8 a little-endian length of 1, 4 or 8 bytes
    followed by that many bytes. The text opcodes of protocols 0-1 are absent: the C pickler
    does not write them at protocol 4 or 5, and an absent opcode means :class:`Unsupported`.
    """
    p = pickle
    groups: list[tuple[tuple[int, int, int, bool], bytes]] = [
        ((0, 0, 0, False), p.MARK),
        ((0, 0, 0, True), p.POP_MARK),
        ((1, 0, 0, False), p.PROTO),
        ((8, 0, 0, False), p.FRAME),
        ((0, 1, 0, False), p.POP + p.STOP),
        ((0, 1, 2, False), p.DUP),
        ((0, 0, 1, False), p.NONE + p.NEWTRUE + p.NEWFALSE + p.NEXT_BUFFER),
        ((0, 0, 1, False), p.EMPTY_TUPLE + p.EMPTY_LIST + p.EMPTY_DICT + p.EMPTY_SET),
        ((1, 0, 1, False), p.BININT1 + p.BINGET + p.EXT1),
        ((2, 0, 1, False), p.BININT2 + p.EXT2),
        ((4, 0, 1, False), p.BININT + p.LONG_BINGET + p.EXT4),
        ((8, 0, 1, False), p.BINFLOAT),
        ((-1, 0, 1, False), p.LONG1 + p.SHORT_BINSTRING + p.SHORT_BINBYTES + p.SHORT_BINUNICODE),
        ((-4, 0, 1, False), p.LONG4 + p.BINSTRING + p.BINBYTES + p.BINUNICODE),
        ((-8, 0, 1, False), p.BINBYTES8 + p.BINUNICODE8 + p.BYTEARRAY8),
        ((0, 0, 1, True), p.TUPLE + p.LIST + p.DICT + p.FROZENSET + p.OBJ),
        ((0, 1, 1, True), p.APPENDS + p.SETITEMS + p.ADDITEMS),
        ((0, 1, 1, False), p.TUPLE1 + p.MEMOIZE + p.BINPERSID + p.READONLY_BUFFER),
        ((1, 1, 1, False), p.BINPUT),
        ((4, 1, 1, False), p.LONG_BINPUT),
        ((0, 2, 1, False), p.TUPLE2 + p.APPEND + p.STACK_GLOBAL + p.REDUCE + p.BUILD + p.NEWOBJ),
        ((0, 3, 1, False), p.TUPLE3 + p.SETITEM + p.NEWOBJ_EX),
    ]
    return {code: effect for effect, codes in groups for code in codes}


_OPCODES = _opcode_table()
_MARK, _FRAME, _BINPERSID, _STOP = b"(\x95Q."


def _rewrite(skeleton: bytes, arrays: list[np.ndarray[Any, Any]]) -> Iterator[bytes | _Slot]:
    """Walk the skeleton's opcodes; yield the joblib stream's opcode bytes and array slots.

    A stack of start offsets follows the pickle machine's stack, so that where the pickle of
    each persistent id (its wrapper state dict) begins is known when its BINPERSID comes. The
    edits (drop each FRAME, put the wrapper's class before each state dict, turn each
    BINPERSID into BUILD + payload) are collected first and applied in offset order: a state
    dict's pickle may straddle a frame boundary, so an insertion can precede a dropped FRAME.
    """
    pending = iter(arrays)
    starts: list[int] = []  # offset where each stack item's opcodes begin; a mark is -1-offset
    edits: list[tuple[int, int, tuple[bytes | _Slot, ...]]] = []  # replace [a, b) by pieces
    table, size, pos = _OPCODES, len(skeleton), 0
    try:
        while True:
            code = skeleton[pos]
            argument, pops, pushes, to_mark = table[code]
            end = pos + 1
            if argument >= 0:
                end += argument
            else:
                end += -argument
                end += int.from_bytes(skeleton[end + argument : end], "little")
            first = pos
            if to_mark:
                while starts[-1] >= 0:
                    starts.pop()
                first = -1 - starts.pop()
            if pops:
                first = starts[-pops]  # the deepest item popped began first
                del starts[-pops:]
            if code == _BINPERSID:
                edits.append((first, first, (_WRAPPER_PREFIX,)))
                edits.append((pos, end, (pickle.BUILD, _Slot(next(pending)))))
            elif code == _FRAME:  # frames are optional; array payloads may not sit in one
                edits.append((pos, end, ()))
            elif code == _MARK:
                starts.append(-1 - pos)
            elif code == _STOP:
                break
            if pushes == 1:
                starts.append(first)
            elif pushes:
                starts.extend([first] * pushes)
            pos = end
    except (KeyError, IndexError, StopIteration) as exc:
        raise Unsupported(f"unexpected skeleton opcode stream at offset {pos}") from exc
    if end != size or starts or next(pending, None) is not None:
        raise Unsupported("the skeleton does not end where its STOP is")
    cut = 0
    for start, stop, pieces in sorted(edits, key=lambda edit: (edit[0], edit[1])):
        yield skeleton[cut:start]
        yield from pieces
        cut = stop
    yield skeleton[cut:]


def joblib_pieces(obj: Any, *, protocol: int | None = None) -> list[bytes | memoryview]:
    """``obj`` in joblib's file format, as the list of buffers to write in order.

    Array data are views on the arrays (they must not change until written); small pieces are
    joined so that there are few writes. Raises :class:`Unsupported` if the C pickler cannot
    pickle the object graph (``joblib.dump`` then reports the problem in its own words).
    """
    buffer = io.BytesIO()
    pickler = _SkeletonPickler(buffer, pickle.DEFAULT_PROTOCOL if protocol is None else protocol)
    try:
        pickler.dump(obj)
    except Exception as exc:
        raise Unsupported(str(exc)) from exc
    pieces: list[bytes | memoryview] = []
    small: list[bytes | memoryview] = []
    position = 0
    for piece in _rewrite(buffer.getvalue(), pickler.arrays):
        chunks = _payload(piece.array, position) if isinstance(piece, _Slot) else (piece,)
        for chunk in chunks:
            size = len(chunk) if isinstance(chunk, bytes) else chunk.nbytes
            if size >= _SMALL:
                if small:
                    pieces.append(b"".join(small))
                    small = []
                pieces.append(chunk)
            elif size:
                small.append(chunk)
            position += size
    if small:
        pieces.append(b"".join(small))
    return pieces
