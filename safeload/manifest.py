"""The hash manifest: one SHA-256 per file, and the subject digest that binds them together.

The manifest follows the OpenSSF model-signing v1.0 predicate: ``resources`` lists every file of
the artifact except ``model.sig`` as ``{name, algorithm, digest}``, sorted by name, and the
statement's single subject digest is the SHA-256 of the concatenated raw digests in that order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

ALGORITHM = "sha256"

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, order=True)
class Resource:
    """One file of the manifest."""

    name: str
    digest: str
    algorithm: str = ALGORITHM

    def to_json(self) -> dict[str, str]:
        """The resource as it appears in the predicate."""
        return {"name": self.name, "algorithm": self.algorithm, "digest": self.digest}


def sha256_hex(data: Buffer) -> str:
    """Hex SHA-256 of a buffer (hashlib releases the GIL on large buffers)."""
    return hashlib.sha256(data).hexdigest()


def subject_digest(resources: Iterable[Resource]) -> str:
    """SHA-256 over the raw (binary) digests of the sorted resources."""
    hasher = hashlib.sha256()
    for resource in sorted(resources):
        hasher.update(bytes.fromhex(resource.digest))
    return hasher.hexdigest()
