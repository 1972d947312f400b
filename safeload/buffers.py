"""A read-only file interface over a verified buffer, without copying it.

``io.BytesIO(buffer)`` copies its input: for a 1 GB model that is a second gigabyte and a second
of memcpy. The unpickler only needs ``read``/``readline``/``readinto``/``seek``/``tell``; small
reads copy a few bytes, and array payloads are never read through here at all (they become
numpy views on the buffer).
"""

from __future__ import annotations

import io

Buffer = bytes | bytearray | memoryview


def byte_view(data: Buffer) -> memoryview:
    """A flat, unsigned-byte view of ``data`` (no copy), whatever shape the caller's view had."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class BufferReader:
    """File-like view of a buffer: reads return ``bytes`` slices, the buffer is never copied."""

    def __init__(self, buffer: bytes | bytearray | memoryview, start: int = 0) -> None:
        self._view = memoryview(buffer).cast("B")
        self._size = len(self._view)
        self._pos = start

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all the rest when ``n`` is negative)."""
        end = self._size if n is None or n < 0 else min(self._pos + n, self._size)
        data = self._view[self._pos : end].tobytes()
        self._pos = max(self._pos, end)
        return data

    def readinto(self, target: bytearray | memoryview) -> int:
        """Fill ``target`` from the buffer; returns the count copied."""
        out = memoryview(target).cast("B")
        count = min(len(out), max(self._size - self._pos, 0))
        out[:count] = self._view[self._pos : self._pos + count]
        self._pos += count
        return count

    def readline(self) -> bytes:
        """Up to and including the next newline (pickle protocol 0 text opcodes)."""
        # Search a bounded window at a time: a missing newline must not copy the whole buffer.
        end = self._pos
        while end < self._size:
            window = self._view[end : min(end + 4096, self._size)]
            index = window.tobytes().find(b"\n")
            if index >= 0:
                end += index + 1
                break
            end += len(window)
        data = self._view[self._pos : end].tobytes()
        self._pos = end
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position like a file (``SEEK_SET``, ``SEEK_CUR``, ``SEEK_END``)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        """The current position."""
        return self._pos
