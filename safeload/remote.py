"""Artifacts on object storage: an fsspec URL (``s3://bucket/models/churn/1.2.0``) as a path.

A version prefix is held to the rules of a local artifact directory, with keys for files: the
listing (names, sizes, at most ``max_files + 1`` keys) is checked before any byte is read, so a
nested key (``a/b``), an odd name (``../x``), an extra object or one over its size limit is
refused from the listing alone. Each object is then read once into a fresh buffer and hashed
while it is read (:func:`safeload.layout.read_stream`), and those bytes are what the gate scans
and deserializes: no temporary file, no second fetch. On S3 every read is pinned to the object
the listing saw (``If-Match`` on its ETag), so an object replaced in between is refused.

Saving builds the artifact locally first (the same atomic, scanned, signed save), then uploads
it file by file with ``model.sig`` last, each upload refusing to replace an existing object
(``If-None-Match: *`` on S3; a check before the write elsewhere). ``file://`` URLs are local
paths and take the local code path.

fsspec (and s3fs) are imported only when a URL is used: ``import safeload`` never pulls them in.
Where credentials and the endpoint come from: the filesystem's own configuration (for S3, the
AWS environment and config files, ``AWS_ENDPOINT_URL``, or ``FSSPEC_S3_ENDPOINT_URL``), and the
caller's ``storage_options``, never the artifact.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from safeload.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    MalformedArtifactError,
    OperationalError,
    SafeloadError,
    shown,
)
from safeload.layout import (
    METADATA_FILE,
    MODEL_FILES,
    SIGNATURE_FILE,
    ArtifactDir,
    ListedArtifact,
    Progress,
    ReadLimits,
    check_name,
    is_plain_name,
    read_stream,
    subfolders,
    version_key,
)
from safeload.manifest import Hashing

StorageOptions = Mapping[str, Any]
"""Keyword arguments for the fsspec filesystem (``endpoint_url``, ``key``, ``secret``, ...)."""

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(::[A-Za-z][A-Za-z0-9+.-]*)*://")
_LOCAL = "file://"

MAX_LISTED = 4096
"""Model names and versions a remote Store lists at most (then it refuses, never guesses)."""


class Url(str):
    """A storage URL that joins like a path: ``Url("s3://b/models") / "churn"``."""

    __slots__ = ()

    def __truediv__(self, part: str) -> Url:
        return Url(f"{self.rstrip('/')}/{part}")

    @property
    def name(self) -> str:
        """The last component (a version, for an artifact)."""
        return self.rstrip("/").rsplit("/", 1)[-1]


def is_url(path: object) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path.

    Only a ``str`` can be one (a ``Path`` is always local), and only with the scheme at its
    start: ``./s3://x`` is a local folder.
    """
    return isinstance(path, str) and _URL.match(path) is not None


def local_or_url(path: str | os.PathLike[str]) -> Path | Url:
    """A local path (``file://`` URLs included: they take the local code path) or a URL."""
    if not is_url(path):
        return Path(path)
    text = str(path)
    if text.startswith(_LOCAL):
        return Path(text[len(_LOCAL) :])
    return Url(text)


@dataclass(frozen=True)
class _Entry:
    name: str  # relative to the prefix, as listed: not checked yet
    size: int
    etag: str | None
    folder: bool = False


class _Storage:
    """One prefix of one fsspec filesystem: list (bounded), read, write new, delete.

    The generic implementation works for any fsspec filesystem; :class:`_S3Storage` uses S3's
    own bounded listing, pinned reads and conditional writes.
    """

    def __init__(self, fs: Any, prefix: str, url: str) -> None:
        self.fs = fs
        self.prefix = prefix
        self.url = url

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def entries(self, limit: int) -> list[_Entry]:
        """Entries under the prefix, at most ``limit + 1`` (more means: over the limit)."""
        try:
            found = self.fs.ls(self.prefix, detail=True)
        except FileNotFoundError:
            return []
        entries = []
        for info in found[: limit + 1]:
            full = str(info["name"]).rstrip("/")
            name = full[len(self.prefix) + 1 :] if full.startswith(self.prefix + "/") else full
            folder = info.get("type") == "directory"
            entries.append(_Entry(name, int(info.get("size") or 0), None, folder))
        return entries

    def folders(self, limit: int) -> list[str]:
        """Names of the "folders" (common prefixes) right under the prefix, at most limit+1."""
        return [e.name for e in self.entries(limit) if e.folder]

    def open(self, entry: _Entry) -> Any:
        """A stream to read the object from (``readinto``, ``read``)."""
        return self.fs.open(self.key(entry.name), "rb")

    def put_new(self, local: Path, name: str) -> None:
        """Upload a file to a key that must not exist yet (checked, then written)."""
        self.fs.put_file(str(local), self.key(name), mode="create")

    def delete(self, name: str) -> None:
        self.fs.rm_file(self.key(name))

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self.key(name)))


class _S3Storage(_Storage):
    """S3: a listing that stops at ``limit + 1`` keys, pinned reads, conditional writes.

    Reads are pinned to the listed ETag; uploads carry ``If-None-Match: *``, so the store
    itself refuses to replace an object.
    """

    def __init__(self, fs: Any, prefix: str, url: str) -> None:
        super().__init__(fs, prefix, url)
        self.bucket, _, self.base = prefix.partition("/")

    def _list_page(self, limit: int, **extra: Any) -> dict[str, Any]:
        # One page of at most limit + 1 keys (S3 caps a page at 1000): never the whole prefix.
        result: dict[str, Any] = self.fs.call_s3(
            "list_objects_v2",
            Bucket=self.bucket,
            Prefix=f"{self.base}/" if self.base else "",
            MaxKeys=min(limit + 1, 1000),
            **extra,
        )
        return result

    def entries(self, limit: int) -> list[_Entry]:
        start = len(self.base) + 1 if self.base else 0
        entries: list[_Entry] = []
        token: dict[str, Any] = {}
        while len(entries) <= limit:
            page = self._list_page(limit - len(entries), **token)
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if self.base and not key.startswith(f"{self.base}/"):
                    raise MalformedArtifactError(
                        f"the listing of {self.url} holds {shown(key)}, outside the prefix"
                    )
                entries.append(_Entry(key[start:], int(item["Size"]), item.get("ETag")))
            if not page.get("IsTruncated"):
                break
            token = {"ContinuationToken": page["NextContinuationToken"]}
        return entries[: limit + 1]

    def folders(self, limit: int) -> list[str]:
        start = len(self.base) + 1 if self.base else 0
        found: list[str] = []
        token: dict[str, Any] = {}
        seen = 0  # keys and folders: loose objects count too, so the listing stays bounded
        while seen <= limit:
            page = self._list_page(limit - seen, Delimiter="/", **token)
            folders = [p["Prefix"][start:].rstrip("/") for p in page.get("CommonPrefixes", [])]
            found.extend(folders)
            seen += len(folders) + len(page.get("Contents", []))
            if not page.get("IsTruncated"):
                return found
            token = {"ContinuationToken": page["NextContinuationToken"]}
        return found + [""] * (limit + 1 - len(found))  # over the limit: the caller refuses

    def open(self, entry: _Entry) -> Any:
        return _S3Object(self, entry)

    def put_new(self, local: Path, name: str) -> None:
        # s3fs sends If-None-Match: * (PutObject, or CompleteMultipartUpload for large files).
        self.fs.put_file(str(local), self.key(name), mode="create")


class _S3Object:
    """One object read by ranged GETs, each pinned to the listed ETag (``If-Match``).

    The listing gave the size and ETag; a GET of a replaced object fails (412) and a range
    answer for another total size is refused, so the bytes read are the listed object's.
    """

    def __init__(self, storage: _S3Storage, entry: _Entry) -> None:
        self.storage = storage
        self.entry = entry
        self.offset = 0

    def readinto(self, buffer: memoryview, /) -> int:
        size = self.entry.size
        if self.offset >= size or not buffer.nbytes:
            return 0
        end = min(self.offset + buffer.nbytes, size)
        got = self._get_into(buffer[: end - self.offset], self.offset)
        self.offset += got
        return got

    def read(self, size: int = -1, /) -> bytes:
        # Past the listed size there is nothing: the ETag pins the object (and its size).
        if self.offset >= self.entry.size:
            return b""
        want = self.entry.size - self.offset if size < 0 else size
        view = memoryview(bytearray(min(want, self.entry.size - self.offset)))
        return bytes(view[: self.readinto(view)])

    def _get_into(self, buffer: memoryview, start: int) -> int:
        """One ranged GET, pinned to the listed ETag, streamed into ``buffer`` (no copy of it)."""
        from fsspec.asyn import sync

        storage = self.storage
        pinned = {"IfMatch": self.entry.etag} if self.entry.etag else {}
        end = start + buffer.nbytes

        async def fetch() -> tuple[int, str]:
            response = await storage.fs._call_s3(
                "get_object",
                Bucket=storage.bucket,
                Key=storage.key(self.entry.name).partition("/")[2],
                Range=f"bytes={start}-{end - 1}",
                **pinned,
            )
            body = response["Body"]
            done = 0
            try:
                while True:
                    # Never more than was asked for, whatever the server sends.
                    piece = await body.read(min(_PIECE, buffer.nbytes - done + 1))
                    if not piece or done + len(piece) > buffer.nbytes:
                        done += len(piece)
                        break
                    buffer[done : done + len(piece)] = piece
                    done += len(piece)
            finally:
                body.close()
            return done, str(response.get("ContentRange", ""))

        got: int
        content_range: str
        got, content_range = sync(storage.fs.loop, fetch)
        total = content_range.rpartition("/")[2]
        if got != buffer.nbytes or (total and total != str(self.entry.size)):
            raise MalformedArtifactError(
                f"{self.entry.name} in {storage.url} changed while it was being read "
                f"(listed as {self.entry.size} bytes)"
            )
        return got


_PIECE = 1 << 20


def _filesystem(url: str, storage_options: StorageOptions | None) -> _Storage:
    """The storage for ``url``'s prefix; fsspec is imported here, and only here."""
    scheme, _, rest = url.partition("://")
    if "::" in scheme:
        raise OperationalError(
            f"{shown(url)}: chained URLs ({scheme}::) are not supported: a caching layer would "
            "read the artifact through a local copy. Give the storage URL itself"
        )
    try:
        import fsspec
    except ImportError as exc:
        raise OperationalError(
            f"{shown(url)} is a URL, and reading URLs needs fsspec: pip install "
            "'safeload[s3]' (or fsspec with the package for your storage)"
        ) from exc
    try:
        cls = fsspec.get_filesystem_class(scheme)
        fs = fsspec.filesystem(scheme, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise OperationalError(
            f"cannot open {scheme}:// URLs: {shown(str(exc))} (for s3://, pip install "
            "'safeload[s3]')"
        ) from exc
    prefix = str(cls._strip_protocol(url)).rstrip("/")
    parts = prefix.lstrip("/").split("/")
    if not rest.strip("/") or any(part in ("", ".", "..") for part in parts):
        raise OperationalError(
            f"{shown(url)}: give a plain prefix (no empty, '.' or '..' components), such as "
            "s3://bucket/models/churn/1.2.0"
        )
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    storage = _S3Storage if {"s3", "s3a"} & set(protocols) else _Storage
    return storage(fs, prefix, url)


def read_object(url: str, bound: int, storage_options: StorageOptions | None = None) -> bytes:
    """One whole object (a model file to scan), read once and refused beyond ``bound`` bytes.

    The URL is checked as an artifact URL is (no chained caching URLs, no ``..``); at most
    ``bound + 1`` bytes are ever read, so an object larger than its listing is caught too.
    """
    storage = _filesystem(url, storage_options)
    try:
        with storage.fs.open(storage.prefix, "rb") as handle:
            data: bytes = handle.read(bound + 1)
    except Exception as exc:  # any storage failure is an error of this URL
        raise _storage_error(f"cannot read {shown(url)}", exc) from exc
    if len(data) > bound:
        raise OperationalError(f"{shown(url)} is larger than {bound} bytes: not scanned")
    return data


def _storage_error(what: str, exc: Exception) -> SafeloadError:
    """A storage failure as safeload's error: not found, or operational (exit 2)."""
    if isinstance(exc, SafeloadError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return ArtifactNotFoundError(f"{what}: not found ({shown(str(exc))})")
    return OperationalError(f"{what}: {type(exc).__name__}: {shown(str(exc))}")


class RemoteArtifactDir(ListedArtifact):
    """A version prefix on object storage, listed and checked as an artifact directory is.

    The listing stops at ``max_files + 1`` keys. Every key must be a plain name right under
    the prefix (a nested key, ``..`` or an odd name is refused), and each size is checked
    against its limit from the listing, before any object is read.
    """

    def __init__(
        self,
        url: str,
        limits: ReadLimits | None = None,
        progress: Progress | None = None,
        storage_options: StorageOptions | None = None,
    ) -> None:
        self.path = url
        self.limits = limits or ReadLimits()
        self.progress = progress
        self._storage = _filesystem(url, storage_options)
        try:
            entries = self._storage.entries(self.limits.max_files)
        except Exception as exc:
            raise _storage_error(f"cannot list {url}", exc) from exc
        if not entries:
            raise ArtifactNotFoundError(
                f"no artifact at {url}: nothing is stored under that prefix (an artifact holds "
                "model.joblib or model.skops, safeload.json and model.sig)"
            )
        own = [e for e in entries if is_plain_name(e.name) and not e.folder]
        if len(own) < len(entries) and not self._holds_artifact_files(own):
            raise ArtifactNotFoundError(
                f"{url} is not an artifact: it holds folders and none of an artifact's files. "
                f"Pass one version (e.g. {url.rstrip('/')}/NAME/VERSION; 'safeload ls {url}' "
                "lists them)"
            )
        if len(entries) > self.limits.max_files:
            raise MalformedArtifactError(f"{url} holds more than {self.limits.max_files} objects")
        self.sizes: dict[str, int] = {}
        self._entries: dict[str, _Entry] = {}
        for entry in entries:
            if entry.folder:
                raise MalformedArtifactError(
                    f"{shown(entry.name)} under {url} is a folder; an artifact is flat (one "
                    "object per file, right under the version prefix)"
                )
            check_name(entry.name)
            self.sizes[entry.name] = entry.size
            self._entries[entry.name] = entry
        for name, size in self.sizes.items():
            # Sizes from the listing, before anything is read.
            if size > self.limit_for(name):
                raise MalformedArtifactError(
                    f"{name} in {url} is {size} bytes, over the {self.limit_for(name)}-byte "
                    "limit for this file"
                )

    def _holds_artifact_files(self, listed: list[_Entry]) -> bool:
        """Whether an artifact's own files are here: then extra keys are a refusal, not usage.

        A cut listing may not reach them (keys come sorted), so they are asked for by name.
        """
        names = {e.name for e in listed}
        own = {SIGNATURE_FILE, METADATA_FILE, *MODEL_FILES.values()}
        if names & own:
            return True
        try:
            return any(self._storage.exists(name) for name in sorted(own))
        except Exception:
            return True  # cannot tell: stay a refusal

    def read_hashed(
        self, name: str, *, hashing: bool = True, scheme: Hashing | None = None
    ) -> tuple[memoryview, tuple[str, ...] | None]:
        """Read one object once into a fresh buffer, hashing it while it is read."""
        check_name(name)
        entry = self._entries.get(name)
        if entry is None:
            raise ArtifactNotFoundError(f"{name} is not in {self.path}")
        report = self.progress
        what = f"{name} in {self.path}"
        try:
            handle = self._storage.open(entry)
            try:
                return read_stream(
                    handle,
                    entry.size,
                    what,
                    self.limit_for(name),
                    hashing=hashing,
                    scheme=scheme,
                    progress=None if report is None else lambda d, t: report(name, d, t),
                )
            finally:
                close = getattr(handle, "close", None)
                if close is not None:
                    close()
        except OSError as exc:
            if isinstance(exc, FileNotFoundError):
                raise ArtifactNotFoundError(f"{what} vanished while reading") from exc
            if exc.errno == errno.EINVAL:  # s3fs: 412, the object is not the one listed
                raise MalformedArtifactError(
                    f"{what} changed since it was listed; refusing to read another object"
                ) from exc
            raise _storage_error(f"cannot read {what}", exc) from exc
        except SafeloadError:
            raise
        except Exception as exc:
            raise _storage_error(f"cannot read {what}", exc) from exc


def open_artifact(
    path: str | os.PathLike[str],
    limits: ReadLimits | None = None,
    progress: Progress | None = None,
    storage_options: StorageOptions | None = None,
) -> ListedArtifact:
    """Open and list an artifact: a local directory, or a version prefix behind a URL."""
    where = local_or_url(path)
    if isinstance(where, Url):
        return RemoteArtifactDir(where, limits, progress, storage_options)
    return ArtifactDir(where, limits, progress)


def folders(root: Path | Url, storage_options: StorageOptions | None = None) -> list[str]:
    """A Store's subfolders (model names, or versions), ordered as versions.

    Local: :func:`safeload.layout.subfolders`. Remote: the common prefixes, listed up to
    :data:`MAX_LISTED` (more is refused: a partial listing could make "latest" wrong).
    """
    if isinstance(root, Path):
        return subfolders(root)
    storage = _filesystem(root, storage_options)
    try:
        found = storage.folders(MAX_LISTED)
    except Exception as exc:
        raise _storage_error(f"cannot list {root}", exc) from exc
    if len(found) > MAX_LISTED:
        raise OperationalError(
            f"{root} holds more than {MAX_LISTED} entries; a store lists them whole (or "
            "'latest' could be wrong): load an artifact by its full URL instead"
        )
    return sorted((f for f in found if is_plain_name(f)), key=version_key)


def is_signed(path: Url, storage_options: StorageOptions | None = None) -> bool:
    """Whether a version prefix holds ``model.sig`` (its upload finished)."""
    storage = _filesystem(path, storage_options)
    try:
        return storage.exists(SIGNATURE_FILE)
    except Exception as exc:
        raise _storage_error(f"cannot read {path}", exc) from exc


def publish(
    url: Url,
    build: Callable[[Path], Path],
    storage_options: StorageOptions | None = None,
) -> Url:
    """Build an artifact in a private local folder, then upload it, ``model.sig`` last.

    ``build(target)`` writes a complete signed artifact at ``target`` (the local, atomic save).
    The version must hold nothing yet; each upload refuses to replace an object (a conditional
    write on S3). Until ``model.sig`` is uploaded nothing under the prefix verifies; if any
    upload fails, the objects this save uploaded are deleted again (best effort).
    """
    try:
        check_name(url.name)
    except MalformedArtifactError as exc:
        raise OperationalError(
            f"cannot save to {url}: the last component must be a plain name (letters, digits, "
            "'.', '_', '-'), such as a version like 1.2.0"
        ) from exc
    storage = _filesystem(url, storage_options)
    try:
        present = storage.entries(0)
    except Exception as exc:
        raise _storage_error(f"cannot list {url}", exc) from exc
    if present:
        raise ArtifactExistsError(
            f"{url} already holds objects; saved versions are never overwritten. Save under a "
            "new version (a prefix without model.sig is a failed upload: delete it first)"
        )
    with tempfile.TemporaryDirectory(prefix="safeload-upload-") as private:
        local = build(Path(private) / url.name)
        names = sorted(n for n in os.listdir(local) if n != SIGNATURE_FILE)
        uploaded: list[str] = []
        for name in [*names, SIGNATURE_FILE]:
            try:
                storage.put_new(local / name, name)
            except BaseException as exc:
                if not isinstance(exc, FileExistsError):
                    uploaded.append(name)  # it may have been stored before the error
                _remove(storage, uploaded)
                if isinstance(exc, FileExistsError):
                    raise ArtifactExistsError(
                        f"{url} was written by someone else while saving ({name} exists); "
                        "versions are never overwritten"
                    ) from exc
                if isinstance(exc, Exception):
                    raise _storage_error(f"cannot upload {name} to {url}", exc) from exc
                raise
            uploaded.append(name)
    return url


def put_new(
    url: Url, name: str, data: bytes, storage_options: StorageOptions | None = None
) -> None:
    """Write one new object (``model.sig`` when signing in place); never replace one."""
    storage = _filesystem(url, storage_options)
    try:
        storage.fs.pipe_file(storage.key(name), data, mode="create")
    except FileExistsError as exc:
        raise ArtifactExistsError(f"{url} was signed concurrently ({name} exists)") from exc
    except Exception as exc:
        raise _storage_error(f"cannot upload {name} to {url}", exc) from exc


def _remove(storage: _Storage, names: list[str]) -> None:
    """Delete what a failed save uploaded, the signature first; errors are ignored."""
    for name in sorted(names, key=lambda n: n != SIGNATURE_FILE):
        try:
            storage.delete(name)
        except Exception:  # noqa: S112 - best effort: the save's own error is what matters
            continue


def staged_identity(url: Url) -> PurePosixPath:
    """The URL's key path, for deriving name and version as a local path would."""
    return PurePosixPath(url.partition("://")[2].rstrip("/"))
