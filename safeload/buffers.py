"""A read-only file interface over a verified buffer, without copying it.

``io.BytesIO(buffer)`` copies its input: for a 1 GB model that is a second gigabyte and a second
of memcpy. The unpickler only needs ``read``/``readline``/``readinto``/``seek``/``tell``; small
reads copy a few bytes, and array payloads are never read through here at all (they become
numpy views on the buffer).
"""

from __future__ import annotations

import io
from typing import Any

Buffer = bytes | bytearray | memoryview


def byte_view(data: Buffer) -> memoryview:
    """A flat, unsigned-byte view of ``data`` (no copy), whatever shape the caller's view had."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class _BufferRaw(io.RawIOBase):
    """The raw file under :class:`BufferReader`: copies only what it is asked to fill."""

    def __init__(self, view: memoryview, start: int) -> None:
        super().__init__()
        self._view = view
        self._size = len(view)
        self._pos = start

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        """Fill ``target`` from the buffer; returns the count copied."""
        out = memoryview(target).cast("B")
        count = min(len(out), max(self._size - self._pos, 0))
        out[:count] = self._view[self._pos : self._pos + count]
        self._pos += count
        return count

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


class BufferReader(io.BufferedReader):
    """File-like view of a buffer: reads return ``bytes``, the buffer is never copied whole.

    The unpickler reads one opcode byte at a time: through ``io.BufferedReader`` each read is
    a C call on a small window (``_WINDOW`` bytes, copied from the buffer when first needed),
    not a Python call. Array payloads are seeked over, never read through here.
    """

    _WINDOW = 4096

    def __init__(self, buffer: bytes | bytearray | memoryview, start: int = 0) -> None:
        if start < 0:
            raise ValueError("negative seek position")
        view = byte_view(buffer)
        self._size = len(view)
        super().__init__(_BufferRaw(view, start), buffer_size=self._WINDOW)

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all the rest when ``size`` is -1 or None).

        ``io.BufferedReader`` allocates what it is asked for before it reads: a length the file
        declares (BINBYTES8 says 2**60) must never decide an allocation, so a read past the
        window asks only for what is left.
        """
        if size is not None and size > self._WINDOW:
            size = min(size, max(self._size - self.tell(), 0))
        return _buffered_read(self, size)


_buffered_read = io.BufferedReader.read
