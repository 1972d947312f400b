"""The one place in safeload that runs an unpickler. Dangerous: read before you call.

Unpickling executes whatever the stream asks for. This module is the *second* wall: it is only
ever called by :mod:`safeload.loading` after the signature, every hash and the static type scan
have passed, on the very bytes that were verified. Its ``find_class`` enforces the same exact-name
policy as the scanner, so a scanner bug alone cannot run code. Nothing else may import it.

Arrays are built as views on the verified buffer (no second copy, no re-read of the path), and
object-dtype arrays, which joblib stores as a nested pickle, go through this same restricted
unpickler rather than a plain one.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
from joblib.numpy_pickle import NDArrayWrapper, NumpyArrayWrapper, NumpyUnpickler

from safeload.errors import MalformedArtifactError, UntrustedTypeError, untrusted_types_message
from safeload.policy import TypePolicy, format_type_name


class _RestrictedUnpickler(NumpyUnpickler):  # type: ignore[misc]
    """joblib's unpickler with an exact-name ``find_class`` and zero-copy array reads."""

    dispatch = NumpyUnpickler.dispatch.copy()

    def __init__(self, buffer: memoryview, policy: TypePolicy, start: int = 0) -> None:
        self._buffer = buffer
        self._policy = policy
        handle = io.BytesIO(buffer)
        handle.seek(start)
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
        handle: io.BytesIO = self.file_handle
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
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
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
        return array


def unpickle_verified(buffer: bytes | bytearray | memoryview, policy: TypePolicy) -> Any:
    """Deserialize ``buffer`` (already verified and scanned) under ``policy``.

    Only :mod:`safeload.loading` may call this, and only after the gate has passed.
    """
    view = memoryview(buffer)
    unpickler = _RestrictedUnpickler(view, policy)
    try:
        obj = unpickler.load()
    except (UntrustedTypeError, MalformedArtifactError):
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, ImportError) as exc:
        raise MalformedArtifactError(f"the model stream could not be deserialized: {exc}") from exc
    if unpickler.file_handle.tell() != len(view):
        raise MalformedArtifactError(
            f"{len(view) - unpickler.file_handle.tell()} unexpected byte(s) after the end of the "
            "model stream"
        )
    return obj
