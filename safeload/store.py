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
from safeload.errors import ArtifactNotFoundError, RollbackError, StoreStateError
from safeload.keys import SigningKey, TrustSource
from safeload.layout import ReadLimits, check_name
from safeload.loading import LoadedArtifact, load_checked
from safeload.options import LoadOptions
from safeload.policy import PolicySource
from safeload.saving import save
from safeload.storestate import STATE_FILE, StoreState, is_lower
from safeload.typegate import ScanLimits

ROLLBACK_POLICIES = ("refuse", "ignore")


class Store:
    """Versioned artifacts under one root folder.

    ``options`` (:class:`~safeload.LoadOptions`) are the load-time knobs for every load from
    this store; each load may still override them. ``root`` may be a URL
    (``s3://bucket/models``): names and versions then come from a bounded listing, and
    ``options.storage_options`` configure its filesystem (:mod:`safeload.remote`).

    ``state`` is the file that records the highest version of each name this store has
    verified (default ``ROOT/.safeload-state.json``; a store on a URL needs a local ``state``).
    Keep it where those who can write the models cannot (the serving process's own folder):
    beside the store, anyone who can delete a version folder can delete the record too.
    ``rollback="refuse"`` (default) refuses to serve "latest" when it is lower than that
    record (:class:`~safeload.RollbackError`); ``"ignore"`` neither reads nor writes it.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        options: LoadOptions | None = None,
        state: str | os.PathLike[str] | None = None,
        rollback: str = "refuse",
    ) -> None:
        if rollback not in ROLLBACK_POLICIES:
            raise ValueError(f"rollback must be one of {ROLLBACK_POLICIES}, not {rollback!r}")
        self.root = remote.local_or_url(root)
        self.options = options or LoadOptions()
        self.rollback = rollback
        self.state_path: Path | None = None
        if state is not None:
            self.state_path = Path(state)
        elif not isinstance(self.root, remote.Url):
            self.state_path = self.root / STATE_FILE

    @property
    def _state(self) -> StoreState:
        """The rollback record; a store on a URL has none unless ``state`` names a local file."""
        if self.state_path is None:
            raise StoreStateError(
                f"a Store on {self.root} keeps its rollback record in a local file: pass "
                "state='/path/of/the/record.json' (in a folder the serving process owns), or "
                "rollback='ignore'",
                path="",
            )
        return StoreState(self.state_path)

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

    def highest_served(self, name: str) -> str | None:
        """The highest version of ``name`` this store has verified, from its record."""
        check_name(name)
        served = self._state.highest(name)
        return served.version if served else None

    def roll_back(self, name: str, version: str) -> None:
        """Lower the record of ``name`` to ``version``, so that "latest" may serve it again.

        For a deliberate rollback: remove the bad version's folder, then call this (a load
        pinned to ``version`` needs no call). Nothing is deleted or verified here.
        """
        check_name(name)
        check_name(version)
        if version not in self.versions(name):
            raise ArtifactNotFoundError(f"no version {version!r} of {name!r} in {self.root}")
        self._state.lower(name, version)

    def save(
        self, obj: Any, name: str, version: str, *, key: SigningKey, **options: Any
    ) -> Path | remote.Url:
        """Save a new version; an existing version is never overwritten.

        A version lower than the one recorded as served is saved (a backport is legitimate);
        it is only guarded when served.
        """
        if version == "latest":
            raise ValueError("'latest' is not a version; give a concrete version")
        options.setdefault("storage_options", self.options.storage_options)
        return save(obj, self.path(name, version), key=key, name=name, version=version, **options)

    def load_checked(
        self,
        name: str,
        version: str = "latest",
        *,
        trusted: TrustSource,
        options: LoadOptions | None = None,
        policy: PolicySource = None,
        versions: str | None = None,
        read_limits: ReadLimits | None = None,
        scan_limits: ScanLimits | None = None,
    ) -> LoadedArtifact:
        """Load for production: the whole gate, then input-checked predictions.

        As :func:`~safeload.load_checked`, also checking that the signed name and version are
        the ones asked for. For "latest", the version found must not be lower than the highest
        one this store has verified (:class:`~safeload.RollbackError`); a version asked for by
        name is served even if lower. After the load, a version higher than the record raises
        it.
        """
        concrete = self.resolve(name, version)
        path = self.path(name, concrete)
        guarded = self.rollback == "refuse"
        if guarded:
            served = self._state.highest(name)
            if version == "latest" and served and is_lower(concrete, served.version):
                raise RollbackError(
                    f"the newest version of {name!r} in {self.root} is {concrete!r}, but this "
                    f"store has served {served.version!r} before (recorded in "
                    f"{self.state_path}): a newer version was removed, or the folder replaced "
                    "by an older copy. If the rollback is deliberate, ask for the version: "
                    f"load_checked({name!r}, {concrete!r}, ...), or record it as the newest "
                    f"with Store.roll_back({name!r}, {concrete!r})",
                    name=name,
                    served=served.version,
                    found=concrete,
                )
            exists = isinstance(path, remote.Url) or path.is_dir()
            if exists and (served is None or is_lower(served.version, concrete)):
                self._state.check_writable()  # before the load's cost, not after it
        loaded = load_checked(
            path,
            trusted=trusted,
            options=options or self.options,
            policy=policy,
            name=name,
            version=concrete,
            versions=versions,
            read_limits=read_limits,
            scan_limits=scan_limits,
        )
        if guarded:
            self._state.raise_to(name, concrete, loaded.signer)
        return loaded

    def load(
        self,
        name: str,
        version: str = "latest",
        *,
        trusted: TrustSource,
        options: LoadOptions | None = None,
        policy: PolicySource = None,
        versions: str | None = None,
        read_limits: ReadLimits | None = None,
        scan_limits: ScanLimits | None = None,
    ) -> Any:
        """Like :meth:`load_checked` (rollback rules included), returning the bare model."""
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
