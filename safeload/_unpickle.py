"""The one place in safeload that runs an unpickler. Dangerous: read before you call.

Unpickling executes whatever the stream asks for. This module is the *second* wall: it is only
ever called by :mod:`safeload.loading` after the signature, every hash and the static type scan
have passed, on the very bytes that were verified (and by :mod:`safeload.convert`, after the same
scan). Its ``find_class`` enforces the same exact-name policy as the scanner, so a scanner bug
alone cannot run code. Nothing else may import it.

Arrays are built as views on the verified buffer (no second copy, no re-read of the path), and
object-dtype arrays, which joblib stores as a nested pickle, go through this same restricted
unpickler rather than a plain one.
"""

from __future__ import annotations

import io
import math
import pickle
from typing import Any

import numpy as np
from joblib.numpy_pickle import NDArrayWrapper, NumpyArrayWrapper, NumpyUnpickler

from safeload.buffers import BufferReader
from safeload.errors import (
    MalformedArtifactError,
    SafeloadError,
    UntrustedTypeError,
    untrusted_types_message,
)
from safeload.policy import TypePolicy, format_type_name


class _RestrictedUnpickler(NumpyUnpickler):  # type: ignore[misc]
    """joblib's unpickler with an exact-name ``find_class`` and zero-copy array reads."""

    dispatch = NumpyUnpickler.dispatch.copy()

    def __init__(self, buffer: memoryview, policy: TypePolicy, start: int = 0) -> None:
        self._buffer = buffer
        self._policy = policy
        handle = BufferReader(buffer, start)
        super().__init__("", handle, ensure_native_byte_order=True)

    def find_class(self, module: str, name: str) -> Any:
        if not self._policy.allows(module, name):
            found = format_type_name((module, name))
            raise UntrustedTypeError(
                untrusted_types_message([found], "The model stream (at load time)"),
                types=[found],
            )
        return super().find_class(module, name)

    def load_build(self) -> None:
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        top = self.stack[-1]
        if isinstance(top, NDArrayWrapper):
            raise MalformedArtifactError(
                "legacy joblib array wrapper (joblib < 0.10) refused: its reader calls "
                "np.load(allow_pickle=True). Re-save the model with a current joblib."
            )
        if isinstance(top, NumpyArrayWrapper):
            self.stack[-1] = self._read_array(top)

    dispatch[pickle.BUILD[0]] = load_build

    def _read_array(self, wrapper: NumpyArrayWrapper) -> Any:
        """Build the array that follows ``wrapper`` in the stream, as a view on the buffer."""
        handle: BufferReader = self.file_handle
        dtype = np.dtype(wrapper.dtype)
        if dtype.hasobject:
            inner = _RestrictedUnpickler(self._buffer, self._policy, handle.tell())
            array = inner.load()
            handle.seek(inner.file_handle.tell())
            if not isinstance(array, np.ndarray):
                raise MalformedArtifactError("object-dtype array payload is not an array")
            return array
        if getattr(wrapper, "numpy_array_alignment_bytes", None) is not None:
            pad = handle.read(1)
            if len(pad) != 1:
                raise MalformedArtifactError("truncated array padding in the model stream")
            handle.seek(pad[0], io.SEEK_CUR)
        shape = tuple(int(s) for s in wrapper.shape)
        if any(s < 0 for s in shape):
            raise MalformedArtifactError(f"negative array shape {shape} in the model stream")
        count = math.prod(shape)  # exact Python ints: an int64 product can wrap to 0
        nbytes = count * dtype.itemsize
        start = handle.tell()
        if start + nbytes > len(self._buffer):
            raise MalformedArtifactError(
                f"array of {nbytes} bytes declared at offset {start} runs past the end of the file"
            )
        array = np.frombuffer(self._buffer, dtype=dtype, count=count, offset=start)
        handle.seek(start + nbytes)
        if wrapper.order == "F":
            array = array.reshape(shape[::-1]).transpose()
        else:
            array = array.reshape(shape)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        elif not array.flags.aligned:
            # Files written without alignment padding: a misaligned view is slow in numpy and
            # refused by scipy and Cython code, so pay for one copy here.
            array = array.copy(order="K")
        return array


def unpickle_verified(buffer: bytes | bytearray | memoryview, policy: TypePolicy) -> Any:
    """Deserialize ``buffer`` (already verified and scanned) under ``policy``.

    Only :mod:`safeload.loading` may call this, and only after the gate has passed.
    """
    view = memoryview(buffer)
    unpickler = _RestrictedUnpickler(view, policy)
    try:
        obj = unpickler.load()
    except SafeloadError:
        raise
    except Exception as exc:  # bad input never escapes as a bare traceback (MemoryError too)
        raise MalformedArtifactError(f"the model stream could not be deserialized: {exc}") from exc
    frame = getattr(getattr(unpickler, "_unframer", None), "current_frame", None)
    if frame is not None and frame.read(1):
        raise MalformedArtifactError("unexpected bytes after the end of the model stream")
    if unpickler.file_handle.tell() != len(view):
        raise MalformedArtifactError(
            f"{len(view) - unpickler.file_handle.tell()} unexpected byte(s) after the end of the "
            "model stream"
        )
    return obj


def load_skops_verified(buffer: bytes | bytearray | memoryview, trusted_types: list[str]) -> Any:
    """Construct a skops file (already verified, zip-checked and type-checked).

    ``trusted_types`` is the exact list of names skops asks for, each already checked against
    the caller's policy by :mod:`safeload.skopsscan`; nothing broader is ever passed.
    Only :mod:`safeload.loading` may call this, and only after the gate has passed.
    """
    import skops.io

    try:
        return skops.io.loads(bytes(buffer), trusted=list(trusted_types))
    except Exception as exc:
        from skops.io.exceptions import UntrustedTypesFoundException

        if isinstance(exc, UntrustedTypesFoundException):
            raise UntrustedTypeError(
                f"skops refused types at load time: {exc}", types=[str(exc)]
            ) from exc
        raise MalformedArtifactError(f"skops could not construct the model: {exc}") from exc
