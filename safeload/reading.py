"""One reader for every artifact: open, decide what to trust, then read and hash each file once.

Load (gate steps 1 to 3), ``sign`` and ``inspect`` all read an artifact the same way, through
:func:`read_artifact`: the directory is opened and listed (step 1, :class:`ArtifactDir`, or
:class:`~safeload.remote.RemoteArtifactDir` for a URL), the
caller's ``before`` step runs on the listing alone and says how to hash (load verifies the
signature and the signed file set here, so that nothing unsigned is read; sign refuses an
artifact that is already signed; inspect only reads the unverified claims), and then every file
but ``model.sig`` is read once into its own buffer, hashed while it is read. Those buffers are
what is later checked, scanned and deserialized: no file is ever opened twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from safeload.errors import MalformedArtifactError, RefusedError, SafeloadError, shown
from safeload.layout import METADATA_FILE, ListedArtifact, Progress, ReadLimits
from safeload.manifest import Hashing
from safeload.metadata import JSONValue, parse_metadata
from safeload.remote import StorageOptions, open_artifact

Before = Callable[[ListedArtifact], Hashing]
"""Runs on the open, listed artifact before any file but ``model.sig`` is read; returns how
to hash the files (the signed manifest's hash and shard size)."""


@dataclass
class ArtifactFiles:
    """An artifact's files, each read once: buffers and digests by name (``model.sig`` apart)."""

    path: str
    buffers: dict[str, memoryview] = field(repr=False)
    digests: dict[str, tuple[str, ...]]
    scheme: Hashing  # what the digests were computed with
    format: str | None
    model_name: str | None
    model_problem: str | None = None  # why there is no single model file, when tolerated

    @property
    def model(self) -> memoryview:
        """The model file's bytes (the one file an artifact must hold exactly once)."""
        if self.model_name is None:
            raise MalformedArtifactError(self.model_problem or f"{self.path} has no model file")
        return self.buffers[self.model_name]

    def metadata(self, error: type[SafeloadError] = MalformedArtifactError) -> dict[str, JSONValue]:
        """``safeload.json``, parsed strictly and matching the model file's format.

        ``error`` is what a missing or mismatched metadata file is: a refusal for an artifact
        someone else signed, an operational error for one the caller is about to sign.
        """
        if METADATA_FILE not in self.buffers:
            raise error(
                f"{self.path} has no {METADATA_FILE}; every artifact carries its metadata (a "
                "model folder signed by OpenSSF model_signing: safeload.load_model_signing, or "
                "'safeload verify --model-signing')"
            )
        metadata = parse_metadata(self.buffers[METADATA_FILE])
        if metadata["format"] != self.format:
            raise error(
                f"{METADATA_FILE} says format {shown(metadata['format'])} but the model file is "
                f"{self.model_name}"
            )
        return metadata


def read_artifact(
    path: str | os.PathLike[str],
    before: Before,
    *,
    limits: ReadLimits | None = None,
    progress: Progress | None = None,
    tolerate_no_model: bool = False,
    storage_options: StorageOptions | None = None,
) -> ArtifactFiles:
    """Open ``path``, run ``before`` on its listing, then read and hash every file once.

    Raises what ``before`` raises, and the layout's refusals. An artifact without exactly one
    model file is refused unless ``tolerate_no_model`` (inspect reports it instead). ``path``
    may be a URL (:mod:`safeload.remote`), opened with the caller's ``storage_options``.
    """
    with open_artifact(path, limits, progress, storage_options) as artifact:
        scheme = before(artifact)
        fmt: str | None = None
        model_name: str | None = None
        problem: str | None = None
        try:
            fmt, model_name = artifact.model_file()
        except RefusedError as exc:
            if not tolerate_no_model:
                raise
            problem = str(exc)
        buffers, digests = artifact.read_all(scheme)
        return ArtifactFiles(
            os.fspath(path),
            buffers,
            digests,
            scheme,
            fmt,
            model_name,
            problem,
        )
