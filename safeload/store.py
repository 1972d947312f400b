"""A folder of versioned artifacts: ``root/<name>/<version>/``.

Versions are immutable (saving never overwrites), ordered as versions rather than strings
(``1.10.0`` after ``1.9.0``), and every load goes through the full gate with the name and version
that were asked for, so that an older or a different signed artifact copied to a newer path is
refused (rollback and swap attacks).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from safeload import remote
from safeload.errors import ArtifactNotFoundError
from safeload.keys import Keyring, SigningKey
from safeload.layout import ReadLimits, check_name
from safeload.loading import LoadedArtifact, load_checked
from safeload.options import LoadOptions
from safeload.policy import PolicySource
from safeload.saving import save
from safeload.typegate import ScanLimits


class Store:
    """Versioned artifacts under one root folder.

    ``options`` (:class:`~safeload.LoadOptions`) are the load-time knobs for every load from
    this store; each load may still override them. ``root`` may be a URL
    (``s3://bucket/models``): names and versions then come from a bounded listing, and
    ``options.storage_options`` configure its filesystem (:mod:`safeload.remote`).
    """

    def __init__(self, root: str | os.PathLike[str], *, options: LoadOptions | None = None) -> None:
        self.root = remote.local_or_url(root)
        self.options = options or LoadOptions()

    def names(self) -> list[str]:
        """Model names in the store, sorted."""
        return sorted(remote.folders(self.root, self.options.storage_options))

    def versions(self, name: str) -> list[str]:
        """Versions of ``name``, oldest first, ordered as versions (PEP 440), not as strings."""
        check_name(name)
        return remote.folders(self.root / name, self.options.storage_options)

    def resolve(self, name: str, version: str = "latest") -> str:
        """The concrete version: ``latest`` is the highest version present."""
        if version != "latest":
            check_name(version)
            return version
        versions = self.versions(name)
        if not versions:
            raise ArtifactNotFoundError(f"no versions of {name!r} in {self.root}")
        if isinstance(self.root, remote.Url):
            # An upload in progress (or failed) has no model.sig yet: it is not "latest".
            signed = (v for v in reversed(versions) if self._signed(name, v))
            return next(signed, versions[-1])
        return versions[-1]

    def _signed(self, name: str, version: str) -> bool:
        path = self.root / name / version
        return isinstance(path, remote.Url) and remote.is_signed(path, self.options.storage_options)

    def path(self, name: str, version: str) -> Path | remote.Url:
        """Where ``name``/``version`` lives (or would live)."""
        check_name(name)
        check_name(version)
        return self.root / name / version

    def save(
        self, obj: Any, name: str, version: str, *, key: SigningKey, **options: Any
    ) -> Path | remote.Url:
        """Save a new version; an existing version is never overwritten."""
        if version == "latest":
            raise ValueError("'latest' is not a version; give a concrete version")
        options.setdefault("storage_options", self.options.storage_options)
        return save(obj, self.path(name, version), key=key, name=name, version=version, **options)

    def load_checked(
        self,
        name: str,
        version: str = "latest",
        *,
        trusted: Keyring | str | os.PathLike[str],
        options: LoadOptions | None = None,
        policy: PolicySource = None,
        versions: str | None = None,
        read_limits: ReadLimits | None = None,
        scan_limits: ScanLimits | None = None,
    ) -> LoadedArtifact:
        """Load for production: the whole gate, then input-checked predictions.

        As :func:`~safeload.load_checked`, also checking that the signed name and version are
        the ones asked for.
        """
        concrete = self.resolve(name, version)
        return load_checked(
            self.path(name, concrete),
            trusted=trusted,
            options=options or self.options,
            policy=policy,
            name=name,
            version=concrete,
            versions=versions,
            read_limits=read_limits,
            scan_limits=scan_limits,
        )

    def load(
        self,
        name: str,
        version: str = "latest",
        *,
        trusted: Keyring | str | os.PathLike[str],
        options: LoadOptions | None = None,
        policy: PolicySource = None,
        versions: str | None = None,
        read_limits: ReadLimits | None = None,
        scan_limits: ScanLimits | None = None,
    ) -> Any:
        """Like :meth:`load_checked`, returning the bare model (no input checks)."""
        return self.load_checked(
            name,
            version,
            trusted=trusted,
            options=options,
            policy=policy,
            versions=versions,
            read_limits=read_limits,
            scan_limits=scan_limits,
        ).model

    load_artifact = load_checked
