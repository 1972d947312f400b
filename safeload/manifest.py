"""The hash manifest: SHA-256 digests of every file, whole or in shards, and the subject digest.

The manifest follows the OpenSSF model-signing v1.0 predicate. ``resources`` lists every file
of the artifact except ``model.sig``; with the ``files`` serialization one resource per file
(``{name, algorithm: "sha256", digest}``), with the ``shards`` serialization one resource per
shard of ``shard_size`` bytes (``{name: "file:start:end", algorithm: "sha256-sharded-N",
digest}``), so that shards can be hashed in parallel. Resources are ordered by file name, then
shard start; the statement's single subject digest is the SHA-256 of their concatenated raw
digests in that order. Writers use shards; artifacts signed by files still verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

ALGORITHM = "sha256"
SHARD_SIZE = 16 << 20  # what writers use: a 100 MB file already hashes on two cores

Buffer = bytes | bytearray | memoryview


def resource_algorithm(shard_size: int | None) -> str:
    """A resource's ``algorithm``: ``sha256`` for whole files, ``sha256-sharded-N`` for shards."""
    return ALGORITHM if shard_size is None else f"{ALGORITHM}-sharded-{shard_size}"


@dataclass(frozen=True)
class Resource:
    """One resource of the manifest: a whole file, or one shard of a file."""

    file: str
    digest: str
    start: int = 0
    end: int | None = None  # None: the whole file (``files`` serialization)
    shard_size: int | None = None

    @property
    def name(self) -> str:
        """The resource name as it appears in the predicate."""
        return self.file if self.end is None else f"{self.file}:{self.start}:{self.end}"

    @property
    def algorithm(self) -> str:
        """The resource's ``algorithm``: ``sha256`` or ``sha256-sharded-N``."""
        return resource_algorithm(self.shard_size)

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


def file_digests(data: Buffer, shard_size: int | None) -> tuple[str, ...]:
    """The digests of one file's content, whole (``shard_size`` None) or per shard."""
    if shard_size is None:
        return (sha256_hex(data),)
    view = memoryview(data).cast("B")
    return tuple(sha256_hex(view[a:b]) for a, b in shard_bounds(view.nbytes, shard_size))


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


def split_shards(pieces: Iterable[Buffer], shard_size: int) -> list[list[memoryview]]:
    """Views of consecutive buffers, regrouped by the shard of the stream they fall in."""
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
    digests: Mapping[str, Sequence[str]], sizes: Mapping[str, int], shard_size: int | None
) -> list[Resource]:
    """Resources, in canonical order, for files given their digests and sizes."""
    resources: list[Resource] = []
    for name in sorted(digests, key=str.encode):
        if shard_size is None:
            (digest,) = digests[name]
            resources.append(Resource(name, digest))
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
