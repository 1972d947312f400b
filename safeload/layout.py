"""Step 1 of the gate: what an artifact directory may contain, and reading it safely.

An artifact is one flat directory. Every entry is opened relative to the directory's own file
descriptor with ``O_NOFOLLOW`` and checked to be a regular file *after* opening, so a symlink, a
device or a file swapped in between listing and opening is refused rather than followed. Each file
is read once into a buffer: later steps hash, scan and deserialize that buffer, never the path.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

import numpy as np

from safeload.errors import (
    ArtifactNotFoundError,
    MalformedArtifactError,
    UnsignedArtifactError,
    shown,
)
from safeload.manifest import Hashing

SIGNATURE_FILE = "model.sig"
METADATA_FILE = "safeload.json"
MODEL_FILES = {"joblib": "model.joblib", "skops": "model.skops", "onnx": "model.onnx"}
FORMATS = tuple(MODEL_FILES)

# Plain names only: no separators, no leading dot, nothing a shell or a zip would reinterpret.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class ReadLimits:
    """Size and count limits applied before anything is read into memory."""

    max_files: int = 16
    max_signature_bytes: int = 1 << 20
    max_metadata_bytes: int = 16 << 20
    max_model_bytes: int = 64 << 30


def is_plain_name(name: str) -> bool:
    """Whether ``name`` is a plain, portable, relative name (see :func:`check_name`)."""
    return bool(_NAME.fullmatch(name)) and name not in {".", ".."}


def check_name(name: str) -> None:
    """Refuse any file name that is not a plain, portable, relative name."""
    if not is_plain_name(name):
        raise MalformedArtifactError(
            f"odd file name {shown(name)} in the artifact: only plain names (letters, digits, '.', "
            "'_', '-', no path separators, no leading dot) are allowed"
        )


# Read in large chunks: few system calls, and a progress callback between them.
_CHUNK = 64 << 20
Progress = Callable[[str, int, int], None]
"""Called as ``progress(file_name, bytes_done, bytes_total)`` while a file is read."""

_OPEN_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_OPEN_FILE = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


_Listed = TypeVar("_Listed", bound="ListedArtifact")


class ListedArtifact:
    """An artifact opened and listed (names and sizes checked), its files readable by name.

    The rules that need only the listing live here, shared by a local directory
    (:class:`ArtifactDir`) and a version prefix on object storage
    (:class:`safeload.remote.RemoteArtifactDir`), so that the gate has one path for both.
    """

    path: object  # what messages name: a Path, or a URL
    limits: ReadLimits
    progress: Progress | None
    sizes: dict[str, int]

    def model_file(self) -> tuple[str, str]:
        """The artifact's format and model file name; exactly one model file must exist."""
        present = [(fmt, name) for fmt, name in MODEL_FILES.items() if name in self.sizes]
        if len(present) != 1:
            found = ", ".join(sorted(self.sizes)) or "nothing"
            raise MalformedArtifactError(
                f"{self.path} must hold exactly one of {', '.join(MODEL_FILES.values())}; "
                f"found {found}"
            )
        return present[0]

    def require_signature(self) -> None:
        """Refuse an artifact that carries no ``model.sig``."""
        if SIGNATURE_FILE not in self.sizes:
            raise UnsignedArtifactError(
                f"{self.path} is not signed (no {SIGNATURE_FILE}). Only load artifacts saved "
                "with safeload.save or signed with 'safeload sign' by a key you trust."
            )

    def limit_for(self, name: str) -> int:
        """The size limit that applies to this file name."""
        if name == SIGNATURE_FILE:
            return self.limits.max_signature_bytes
        if name == METADATA_FILE:
            return self.limits.max_metadata_bytes
        return self.limits.max_model_bytes

    def read(self, name: str) -> memoryview:
        """Read one file once, fully, into a fresh writable buffer."""
        return self.read_hashed(name, hashing=False)[0]

    def read_hashed(
        self, name: str, *, hashing: bool = True, scheme: Hashing | None = None
    ) -> tuple[memoryview, tuple[str, ...] | None]:
        """Read one file of the artifact once, hashing it while it is read (see read_fd)."""
        raise NotImplementedError

    def read_all(self, scheme: Hashing) -> tuple[dict[str, memoryview], dict[str, tuple[str, ...]]]:
        """Read and hash every file except ``model.sig``: buffers and digests by name."""
        buffers: dict[str, memoryview] = {}
        digests: dict[str, tuple[str, ...]] = {}
        for name in sorted(self.sizes):
            if name != SIGNATURE_FILE:
                buffers[name], digest = self.read_hashed(name, scheme=scheme)
                digests[name] = digest or ()
        return buffers, digests

    def close(self) -> None:
        """Release what the open artifact holds."""

    def __enter__(self: _Listed) -> _Listed:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ArtifactDir(ListedArtifact):
    """An open artifact directory: entries listed and checked, files readable by name."""

    path: Path

    def __init__(
        self,
        path: str | os.PathLike[str],
        limits: ReadLimits | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.path = Path(path)
        self.limits = limits or ReadLimits()
        self.progress = progress
        if self.path.is_symlink():
            raise MalformedArtifactError(
                f"{self.path} is a symlink; give the real artifact directory, symlinks are refused"
            )
        if not self.path.exists():
            raise ArtifactNotFoundError(
                f"no artifact at {self.path}: check the path (an artifact is a directory holding "
                "model.joblib, model.skops or model.onnx, safeload.json and model.sig)"
            )
        if not self.path.is_dir():
            raise MalformedArtifactError(f"{self.path} is not an artifact directory")
        try:
            self._fd = os.open(self.path, _OPEN_DIR)
        except OSError as exc:
            raise ArtifactNotFoundError(f"cannot open {self.path}: {exc.strerror}") from exc
        try:
            self.sizes = self._list()
        except BaseException:
            os.close(self._fd)
            raise

    def _list(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        with os.scandir(self._fd) as entries:
            for entry in entries:
                if len(sizes) >= self.limits.max_files:
                    self._refuse_wrong_folder()
                    raise MalformedArtifactError(
                        f"{self.path} holds more than {self.limits.max_files} entries"
                    )
                check_name(entry.name)
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(info.st_mode):
                    raise MalformedArtifactError(
                        f"{entry.name} in {self.path} is a symlink; artifacts hold regular "
                        "files only"
                    )
                if not stat.S_ISREG(info.st_mode):
                    if stat.S_ISDIR(info.st_mode):
                        self._refuse_wrong_folder()
                    raise MalformedArtifactError(
                        f"{entry.name} in {self.path} is not a regular file"
                    )
                sizes[entry.name] = info.st_size
        return sizes

    def _refuse_wrong_folder(self) -> None:
        """A model folder or a store given instead of one version: a usage error, not a refusal.

        Only when the folder holds none of an artifact's own file names: a subfolder or extra
        entries next to ``model.sig`` stay a refusal (something was added to an artifact).
        """
        for name in (SIGNATURE_FILE, METADATA_FILE, *MODEL_FILES.values()):
            try:
                os.stat(name, dir_fd=self._fd, follow_symlinks=False)
            except OSError:
                continue
            return
        if subfolders(self.path, limit=_MAX_LISTED):
            raise ArtifactNotFoundError(describe_folder(self.path))

    def read_hashed(
        self, name: str, *, hashing: bool = True, scheme: Hashing | None = None
    ) -> tuple[memoryview, tuple[str, ...] | None]:
        """Read one file of the artifact once, hashing it while it is read (see read_fd)."""
        check_name(name)
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=self._fd)
        except FileNotFoundError as exc:
            raise ArtifactNotFoundError(f"{name} vanished from {self.path} while reading") from exc
        except OSError as exc:
            raise MalformedArtifactError(
                f"cannot open {name} in {self.path} safely ({exc.strerror}); symlinks and "
                "special files are refused"
            ) from exc
        report = self.progress
        try:
            return read_fd(
                fd,
                f"{name} in {self.path}",
                self.limit_for(name),
                hashing=hashing,
                scheme=scheme,
                progress=None if report is None else lambda done, total: report(name, done, total),
            )
        finally:
            os.close(fd)

    def close(self) -> None:
        """Release the directory descriptor."""
        os.close(self._fd)


def version_key(text: str) -> tuple[int, object, str]:
    """Order folder names as versions (PEP 440: ``1.10.0`` after ``1.9.0``), others first."""
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(text), text)
    except InvalidVersion:
        return (0, text, text)


_MAX_LISTED = 4096


def subfolders(folder: Path, *, limit: int | None = None) -> list[str]:
    """Real (not symlinked), plainly named subfolders, ordered as versions; [] if unreadable.

    Anything else in the folder is not one of a store's own. ``limit`` stops the listing early
    (for messages only: a store's own listing must be whole, or "latest" could be wrong).
    """
    found: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if limit is not None and len(found) >= limit:
                    break
                if is_plain_name(entry.name) and entry.is_dir(follow_symlinks=False):
                    found.append(entry.name)
    except OSError:
        return []
    return sorted(found, key=version_key)


def describe_folder(folder: Path) -> str:
    """What a folder that is not an artifact holds, and which path to give instead."""
    inner = subfolders(folder, limit=_MAX_LISTED)
    shown_names = ", ".join(inner[-8:]) + (
        f" (and {len(inner) - 8} more)" if len(inner) > 8 else ""
    )
    versions = [v for v in inner if (folder / v / SIGNATURE_FILE).is_file()]
    if versions:
        return (
            f"{folder} is a model folder, not an artifact: it holds versions {shown_names}. "
            f"Pass one version, e.g. {folder / versions[-1]}"
        )
    for model in reversed(inner[-8:]):
        latest = subfolders(folder / model, limit=_MAX_LISTED)
        if latest:
            return (
                f"{folder} is a folder of models ({shown_names}), not an artifact. Pass one "
                f"version, e.g. {folder / model / latest[-1]} ('safeload ls {folder}' lists them)"
            )
    return (
        f"{folder} is not an artifact: it holds folders ({shown_names}) and none of "
        f"{SIGNATURE_FILE}, {METADATA_FILE} or a model file. Pass an artifact directory"
    )


def read_fd(
    fd: int,
    what: str,
    limit: int,
    *,
    hashing: bool = True,
    scheme: Hashing | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[memoryview, tuple[str, ...] | None]:
    """Read an open regular file once into a fresh writable buffer, hashing while reading.

    Returns the buffer and the file's digests as ``scheme`` says (default: one SHA-256 for the
    whole file): one for the whole file, or one per shard. Hashing runs in worker threads while
    the next chunk is read (both release the GIL); shards are hashed two at a time, and BLAKE3
    spreads each chunk over every core itself. The buffer is uninitialised
    memory (no zero-fill pass) that reading fills; later steps scan and deserialize it in place.
    """
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise MalformedArtifactError(f"{what} is not a regular file")
    with os.fdopen(fd, "rb", buffering=0, closefd=False) as handle:
        return read_stream(
            handle,
            info.st_size,
            what,
            limit,
            hashing=hashing,
            scheme=scheme,
            progress=progress,
        )


class Readable(Protocol):
    """What :func:`read_stream` reads from: a local file, or an object on storage."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...  # noqa: D102

    def read(self, size: int = -1, /) -> bytes: ...  # noqa: D102


def read_stream(
    handle: Readable,
    size: int,
    what: str,
    limit: int,
    *,
    hashing: bool = True,
    scheme: Hashing | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[memoryview, tuple[str, ...] | None]:
    """Read exactly ``size`` bytes (known before reading) once, hashing while reading.

    ``size`` is what the listing said (``fstat``, or an object store's listing); a stream that
    ends early or holds a byte more is refused as changed while read. See :func:`read_fd`.
    """
    if size > limit:
        raise MalformedArtifactError(
            f"{what} is {size} bytes, over the {limit}-byte limit for this file"
        )
    view = memoryview(np.empty(size, dtype=np.uint8).data).cast("B")
    how = scheme or Hashing()
    shard = how.shard_size if hashing else None
    whole = how.new() if hashing and shard is None else None
    if size <= _INLINE:
        return _read_small(handle, view, what, how if hashing else None, progress)
    # Hashing follows reading chunk by chunk, in lanes of one worker each (a hasher's updates
    # stay in file order): the whole file's hasher in one lane, or shards two at a time, each
    # shard's hasher fed in the lane of its index. Chunks are a sixteenth of the file (1 to 64
    # MiB): a 10 MB file hashes while it is read, not after.
    chunk = min(_CHUNK, max(_MIN_CHUNK, size // 16))
    lanes = [ThreadPoolExecutor(max_workers=1) for _ in range(1 if shard is None else 2)]
    shards: list[Future[str]] = []
    pending: list[Future[None]] = []
    done = 0
    try:
        hasher = whole
        while done < size:
            # Reads stop on shard bounds, so that each shard is closed as soon as it is read.
            shard_end = size if shard is None else min((done // shard + 1) * shard, size)
            lane = lanes[0] if shard is None else lanes[done // shard % 2]
            if hasher is None and hashing:
                hasher = how.new()
            got = handle.readinto(view[done : min(done + chunk, shard_end)])
            if not got:
                break
            if hasher is not None:
                pending.append(lane.submit(hasher.update, view[done : done + got]))
            done += got
            if shard is not None and done == shard_end and hasher is not None:
                shards.append(lane.submit(hasher.hexdigest))
                hasher = None
            if progress is not None:
                progress(done, size)
        extra = handle.read(1)
        for update in pending:
            update.result()
        digests = tuple(f.result() for f in shards)
    finally:
        for lane in lanes:
            lane.shutdown(wait=True, cancel_futures=True)  # all done, unless refused
    if done != size or extra:
        raise MalformedArtifactError(f"{what} changed size while it was being read")
    if not hashing:
        return view, None
    if whole is not None:
        return view, (whole.hexdigest(),)
    return view, digests if size else (how.hexdigest(b""),)


_MIN_CHUNK = 1 << 20

_INLINE = 1 << 20
"""Files up to this size are hashed by the reading thread: starting and joining hashing
threads costs more than hashing a megabyte (a few ms per load on a busy machine)."""


def _read_small(
    handle: Readable,
    view: memoryview,
    what: str,
    how: Hashing | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[memoryview, tuple[str, ...] | None]:
    """:func:`read_stream` for a small file: read whole, then hashed in this thread."""
    done = 0
    while done < len(view):
        got = handle.readinto(view[done : done + _CHUNK])
        if not got:
            break
        done += got
        if progress is not None:
            progress(done, len(view))
    if done != len(view) or handle.read(1):
        raise MalformedArtifactError(f"{what} changed size while it was being read")
    if how is None:
        return view, None
    if how.shard_size is None:
        return view, (how.hexdigest(view),)
    bounds = [(a, min(a + how.shard_size, done)) for a in range(0, done, how.shard_size)]
    return view, tuple(how.hexdigest(view[a:b]) for a, b in bounds) or (how.hexdigest(b""),)


def read_model_file(
    path: str | os.PathLike[str], limit: int = ReadLimits.max_model_bytes
) -> memoryview:
    """Read a bare model file (not an artifact) once into a writable buffer."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ArtifactNotFoundError(f"cannot read {name}: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArtifactNotFoundError(f"{name} is not a regular file")
        return read_fd(fd, name, limit, hashing=False)[0]
    finally:
        os.close(fd)
