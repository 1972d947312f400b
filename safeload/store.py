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

from safeload.errors import ArtifactNotFoundError
from safeload.keys import Keyring, SigningKey
from safeload.layout import ReadLimits, check_name, subfolders
from safeload.loading import LoadedArtifact, load_checked
from safeload.options import LoadOptions
from safeload.policy import PolicySource
from safeload.saving import save
from safeload.typegate import ScanLimits


class Store:
    """Versioned artifacts under one root folder.

    ``options`` (:class:`~safeload.LoadOptions`) are the load-time knobs for every load from
    this store; each load may still override them.
    """

    def __init__(self, root: str | os.PathLike[str], *, options: LoadOptions | None = None) -> None:
        self.root = Path(root)
        self.options = options or LoadOptions()

    def names(self) -> list[str]:
        """Model names in the store, sorted."""
        return sorted(subfolders(self.root))

    def versions(self, name: str) -> list[str]:
        """Versions of ``name``, oldest first, ordered as versions (PEP 440), not as strings."""
        check_name(name)
        return subfolders(self.root / name)

    def resolve(self, name: str, version: str = "latest") -> str:
        """The concrete version: ``latest`` is the highest version present."""
        if version != "latest":
            check_name(version)
            return version
        versions = self.versions(name)
        if not versions:
            raise ArtifactNotFoundError(f"no versions of {name!r} in {self.root}")
        return versions[-1]

    def path(self, name: str, version: str) -> Path:
        """Where ``name``/``version`` lives (or would live)."""
        check_name(name)
        check_name(version)
        return self.root / name / version

    def save(self, obj: Any, name: str, version: str, *, key: SigningKey, **options: Any) -> Path:
        """Save a new version; an existing version is never overwritten."""
        if version == "latest":
            raise ValueError("'latest' is not a version; give a concrete version")
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
