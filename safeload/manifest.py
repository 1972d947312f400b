"""The hash manifest: digests of every file, whole or in shards, and the subject digest.

The manifest follows the OpenSSF model-signing v1.0 predicate. ``resources`` lists every file
of the artifact except ``model.sig``; with the ``files`` serialization one resource per file
(``{name, algorithm: "sha256", digest}``), with the ``shards`` serialization one resource per
shard of ``shard_size`` bytes (``{name: "file:start:end", algorithm: "sha256-sharded-N",
digest}``), so that shards can be hashed in parallel. BLAKE3 is named as model_signing 1.1
names it: whole files only (``method: "files"``, ``hash_type`` and ``algorithm`` both
``"blake3"``), since BLAKE3 hashes one file on every core by itself. Resources are ordered by
file name, then shard start; the statement's single subject digest is the SHA-256 of their
concatenated raw digests in that order, whatever the files' algorithm. Writers use SHA-256
shards by default; artifacts signed by whole files still verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from safeload.errors import OperationalError

ALGORITHM = "sha256"  # the subject digest's, and the files' by default
SHA256 = "sha256"
BLAKE3 = "blake3"
HASH_TYPES = (SHA256, BLAKE3)
"""The file hashes a manifest may use: an allowlist, checked where statements are parsed."""
SHARD_SIZE = 16 << 20  # what writers use: a 100 MB file already hashes on two cores

Buffer = bytes | bytearray | memoryview


class Hasher(Protocol):
    """What hashlib's and blake3's hashers share."""

    def update(self, data: Buffer, /) -> Any: ...  # noqa: D102

    def hexdigest(self) -> str: ...  # noqa: D102


def blake3_hasher() -> Hasher:
    """A multi-threaded BLAKE3 hasher; the ``blake3`` package is the ``[blake3]`` extra.

    Without it a BLAKE3 artifact can be neither written nor verified: that is an operational
    error naming the extra, never a crash and never a pass.
    """
    try:
        import blake3
    except ImportError as exc:
        raise OperationalError(
            "this artifact's manifest is hashed with BLAKE3, which needs the 'blake3' package: "
            "pip install 'safeload[blake3]'"
        ) from exc
    hasher: Hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    return hasher


@dataclass(frozen=True)
class Hashing:
    """How an artifact's files are hashed: the algorithm, and the shard size (None: whole files).

    Only the allowlist: SHA-256 whole or sharded, and BLAKE3 whole (model_signing 1.1 never
    shards BLAKE3: it already runs on every core).
    """

    hash_type: str = SHA256
    shard_size: int | None = None

    def __post_init__(self) -> None:
        if self.hash_type not in HASH_TYPES:
            raise ValueError(f"unknown hash {self.hash_type!r}; supported: sha256, blake3")
        if self.hash_type == BLAKE3 and self.shard_size is not None:
            raise ValueError("BLAKE3 digests are by whole files")

    @property
    def resource_algorithm(self) -> str:
        """A resource's ``algorithm``: ``sha256``, ``sha256-sharded-N`` or ``blake3``."""
        if self.shard_size is None:
            return self.hash_type
        return f"{self.hash_type}-sharded-{self.shard_size}"

    def new(self) -> Hasher:
        """A fresh hasher of this algorithm."""
        return blake3_hasher() if self.hash_type == BLAKE3 else hashlib.sha256()

    def hexdigest(self, data: Buffer) -> str:
        """The hex digest of one buffer (both algorithms release the GIL on large buffers)."""
        hasher = self.new()
        hasher.update(data)
        return hasher.hexdigest()


def for_writing(hash: str = SHA256) -> Hashing:
    """What writers use for ``hash``: SHA-256 in 16 MiB shards, or BLAKE3 by whole files."""
    if hash == SHA256:
        return Hashing(SHA256, SHARD_SIZE)
    if hash == BLAKE3:
        blake3_hasher()  # without the package, refuse before anything is written
        return Hashing(BLAKE3)
    raise ValueError(f"unknown hash {hash!r}; supported: 'sha256' (the default), 'blake3'")


def resource_algorithm(shard_size: int | None, hash_type: str = SHA256) -> str:
    """A resource's ``algorithm``: ``sha256``, ``sha256-sharded-N``, or ``blake3``."""
    return Hashing(hash_type, shard_size).resource_algorithm


@dataclass(frozen=True)
class Resource:
    """One resource of the manifest: a whole file, or one shard of a file."""

    file: str
    digest: str
    start: int = 0
    end: int | None = None  # None: the whole file (``files`` serialization)
    shard_size: int | None = None
    hash_type: str = SHA256

    @property
    def name(self) -> str:
        """The resource name as it appears in the predicate."""
        return self.file if self.end is None else f"{self.file}:{self.start}:{self.end}"

    @property
    def algorithm(self) -> str:
        """The resource's ``algorithm``: ``sha256``, ``sha256-sharded-N`` or ``blake3``."""
        return resource_algorithm(self.shard_size, self.hash_type)

    def sort_key(self) -> tuple[bytes, int]:
        """Canonical order: by file name (UTF-8 bytes), then by shard start."""
        return self.file.encode(), self.start

    def to_json(self) -> dict[str, str]:
        """The resource as it appears in the predicate."""
        return {"name": self.name, "algorithm": self.algorithm, "digest": self.digest}


def shard_bounds(size: int, shard_size: int) -> list[tuple[int, int]]:
    """The canonical shards of a file: ``[0, n)``, ``[n, 2n)``, ... up to its size."""
    if size == 0:
        return [(0, 0)]
    return [(start, min(start + shard_size, size)) for start in range(0, size, shard_size)]


def sha256_hex(data: Buffer) -> str:
    """Hex SHA-256 of a buffer (hashlib releases the GIL on large buffers)."""
    return hashlib.sha256(data).hexdigest()


def file_digests(data: Buffer, hashing: Hashing) -> tuple[str, ...]:
    """The digests of one file's content, whole or per shard."""
    if hashing.shard_size is None:
        return (hashing.hexdigest(data),)
    view = memoryview(data).cast("B")
    bounds = shard_bounds(view.nbytes, hashing.shard_size)
    return tuple(hashing.hexdigest(view[a:b]) for a, b in bounds)


class ShardedSha256:
    """A streaming hasher that yields one SHA-256 per ``shard_size`` bytes of a stream."""

    def __init__(self, shard_size: int) -> None:
        self.shard_size = shard_size
        self._done: list[str] = []
        self._current = hashlib.sha256()
        self._filled = 0

    def update(self, data: Buffer) -> None:
        """Hash more of the stream, closing each shard as it fills."""
        view = memoryview(data).cast("B")
        while view.nbytes:
            take = min(view.nbytes, self.shard_size - self._filled)
            self._current.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.shard_size:
                self._done.append(self._current.hexdigest())
                self._current, self._filled = hashlib.sha256(), 0

    def digests(self) -> tuple[str, ...]:
        """The digests of the shards so far; a partial last shard counts as one."""
        if self._filled or not self._done:
            return (*self._done, self._current.hexdigest())
        return tuple(self._done)


class WholeFile:
    """A streaming hasher that yields one digest for the whole stream (``files`` method)."""

    def __init__(self, hashing: Hashing) -> None:
        self._hasher = hashing.new()

    def update(self, data: Buffer) -> None:
        """Hash more of the stream."""
        self._hasher.update(data)

    def digests(self) -> tuple[str, ...]:
        """The one digest of the stream so far."""
        return (self._hasher.hexdigest(),)


def stream_hasher(hashing: Hashing) -> ShardedSha256 | WholeFile:
    """The streaming hasher for ``hashing``: per shard, or one digest for the whole file."""
    if hashing.shard_size is None:
        return WholeFile(hashing)
    if hashing.hash_type != SHA256:
        raise ValueError("only SHA-256 is sharded")
    return ShardedSha256(hashing.shard_size)


def split_shards(pieces: Iterable[Buffer], shard_size: int | None) -> list[list[memoryview]]:
    """Views of consecutive buffers, regrouped by the shard of the stream they fall in."""
    if shard_size is None:
        return [[memoryview(piece).cast("B") for piece in pieces]]
    shards: list[list[memoryview]] = [[]]
    filled = 0
    for piece in pieces:
        view = memoryview(piece).cast("B")
        while view.nbytes:
            if filled == shard_size:
                shards.append([])
                filled = 0
            take = min(view.nbytes, shard_size - filled)
            shards[-1].append(view[:take])
            filled += take
            view = view[take:]
    return shards


def resources_for(
    digests: Mapping[str, Sequence[str]], sizes: Mapping[str, int], hashing: Hashing
) -> list[Resource]:
    """Resources, in canonical order, for files given their digests and sizes."""
    resources: list[Resource] = []
    shard_size = hashing.shard_size
    for name in sorted(digests, key=str.encode):
        if shard_size is None:
            (digest,) = digests[name]
            resources.append(Resource(name, digest, hash_type=hashing.hash_type))
            continue
        bounds = shard_bounds(sizes[name], shard_size)
        if len(bounds) != len(digests[name]):
            raise ValueError(f"{name}: {len(digests[name])} digests for {len(bounds)} shards")
        for (start, end), digest in zip(bounds, digests[name], strict=True):
            resources.append(Resource(name, digest, start, end, shard_size))
    return resources


def subject_digest(resources: Iterable[Resource]) -> str:
    """SHA-256 over the raw (binary) digests of the resources, in canonical order."""
    hasher = hashlib.sha256()
    for resource in sorted(resources, key=Resource.sort_key):
        hasher.update(bytes.fromhex(resource.digest))
    return hasher.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What a statement says of the files: their digests, whole or per shard."""

    resources: tuple[Resource, ...]
    shard_size: int | None
    hash_type: str = SHA256

    @property
    def hashing(self) -> Hashing:
        """How the signed digests were computed: what a verifier must hash the files with."""
        return Hashing(self.hash_type, self.shard_size)

    def digests(self) -> dict[str, tuple[str, ...]]:
        """Signed digests of each file, by file name (one, or one per shard in order)."""
        out: dict[str, list[str]] = {}
        for resource in self.resources:
            out.setdefault(resource.file, []).append(resource.digest)
        return {name: tuple(values) for name, values in out.items()}

    def sizes(self) -> dict[str, int]:
        """File sizes implied by the shard bounds (empty for whole-file digests)."""
        if self.shard_size is None:
            return {}
        return {r.file: int(r.end or 0) for r in self.resources}

    def files(self) -> list[str]:
        """The signed file names, sorted."""
        return sorted(self.digests(), key=str.encode)
