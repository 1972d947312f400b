"""A bounded, pure-Python reader of the UBJSON XGBoost writes (its pickled Booster's model).

XGBoost's ``Booster.__getstate__`` stores the model as the bytes of
``XGBoosterSerializeToBuffer``: UBJSON (``{"Config": ..., "Model": ...}``), which
``__setstate__`` hands to C++ (``XGBoosterUnserializeFromBuffer``). That parser allocates what
a length says before it reads the data, and the model it builds is trusted by prediction (child
and feature indices are not checked again), so :mod:`safeload.typegate.boosters` reads the bytes
here first, in Python, and checks them before the library sees them.

Only the forms XGBoost writes are read: objects ``{`` ``key value ... }`` (keys as a length
and UTF-8 bytes), arrays counted (``[#``), typed (``[$T#``, returned as a read-only numpy view,
no copy) or ended by ``]``, strings, the integer and float markers, ``T``, ``F`` and ``Z``. No
length is trusted: every count is checked against the bytes left before anything is built
(a typed array's count times its item size, any other item at least one byte), nesting is
bounded, a key given twice and any byte after the value are refused.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

__all__ = ["UBJSONError", "read_ubjson"]

#: Deeper than any model XGBoost writes (its Config nests 6 levels).
MAX_DEPTH = 32

_INTS = {"i": ">b", "U": ">B", "I": ">h", "l": ">i", "L": ">q"}
_FLOATS = {"d": ">f", "D": ">d"}
_TYPED = {"i": "i1", "U": "u1", "I": ">i2", "l": ">i4", "L": ">i8", "d": ">f4", "D": ">f8"}


class UBJSONError(ValueError):
    """The bytes are not UBJSON of the form XGBoost writes (the message says where)."""


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def fail(self, why: str) -> UBJSONError:
        return UBJSONError(f"{why} at byte {self.pos}")

    def take(self, n: int) -> memoryview:
        if n < 0 or n > len(self.data) - self.pos:
            raise self.fail(f"{n} bytes declared, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def marker(self) -> str:
        return chr(self.take(1)[0])

    def number(self, marker: str) -> int | float:
        if marker in _INTS:
            fmt = _INTS[marker]
        elif marker in _FLOATS:
            fmt = _FLOATS[marker]
        else:
            raise self.fail(f"marker {marker!r} is not a number")
        value: int | float = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        return value

    def length(self) -> int:
        marker = self.marker()
        if marker not in _INTS:
            raise self.fail(f"a length with marker {marker!r}, not an integer")
        value = int(self.number(marker))
        if value < 0:
            raise self.fail(f"a negative length {value}")
        return value

    def text(self) -> str:
        raw = self.take(self.length())
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a string that is not UTF-8") from None

    def value(self, depth: int) -> Any:
        marker = self.marker()
        if marker == "{":
            return self.obj(depth + 1)
        if marker == "[":
            return self.array(depth + 1)
        if marker == "S":
            return self.text()
        if marker in _INTS or marker in _FLOATS:
            return self.number(marker)
        if marker in "TFZ":
            return {"T": True, "F": False, "Z": None}[marker]
        raise self.fail(f"marker {marker!r}, which XGBoost does not write")

    def obj(self, depth: int) -> dict[str, Any]:
        if depth > MAX_DEPTH:
            raise self.fail(f"objects nested deeper than {MAX_DEPTH}")
        out: dict[str, Any] = {}
        while True:
            if self.pos >= len(self.data):
                raise self.fail("an object that never ends")
            if self.data[self.pos] == ord("}"):
                self.pos += 1
                return out
            key = self.text()
            if key in out:
                raise self.fail(f"the key {key[:40]!r} twice in one object")
            out[key] = self.value(depth)

    def array(self, depth: int) -> list[Any] | np.ndarray[Any, Any]:
        if depth > MAX_DEPTH:
            raise self.fail(f"arrays nested deeper than {MAX_DEPTH}")
        head = self.data[self.pos] if self.pos < len(self.data) else None
        if head == ord("$"):
            self.pos += 1
            kind = self.marker()
            if kind not in _TYPED or self.marker() != "#":
                raise self.fail(f"a typed array of {kind!r}, which XGBoost does not write")
            dtype = np.dtype(_TYPED[kind])
            count = self.length()
            if count > (len(self.data) - self.pos) // dtype.itemsize:
                raise self.fail(f"a typed array of {count} items, past the end of the bytes")
            raw = self.take(count * dtype.itemsize)
            return np.frombuffer(raw, dtype=dtype, count=count)
        if head == ord("#"):
            self.pos += 1
            count = self.length()
            if count > len(self.data) - self.pos:  # every item takes at least one byte
                raise self.fail(f"an array of {count} items, past the end of the bytes")
            return [self.value(depth) for _ in range(count)]
        items: list[Any] = []
        while True:
            if self.pos >= len(self.data):
                raise self.fail("an array that never ends")
            if self.data[self.pos] == ord("]"):
                self.pos += 1
                return items
            items.append(self.value(depth))


def read_ubjson(data: bytes | bytearray | memoryview) -> Any:
    """The value ``data`` holds, refusing anything but one whole value in XGBoost's forms."""
    reader = _Reader(memoryview(data).cast("B"))
    value = reader.value(0)
    if reader.pos != len(reader.data):
        raise reader.fail(f"{len(reader.data) - reader.pos} bytes after the value")
    return value
