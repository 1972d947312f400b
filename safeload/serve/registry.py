"""Which models a server serves: each one loaded through the whole gate, or refused and said why.

No web framework here: the registry is what ``safeload serve`` keeps between requests, and it
is tested through the server. A model is served only as a :class:`~safeload.LoadedArtifact`
that passed every gate step; a refused load (at start-up or on reload) never replaces what is
being served, so a bad upload cannot take a good model down, nor sneak in beside it.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from safeload.drift import DriftAccumulator
from safeload.errors import SafeloadError, shown
from safeload.keys import Keyring
from safeload.loading import LoadedArtifact
from safeload.policy import TypePolicy
from safeload.store import Store

# What the provenance shows of the signed metadata, as it was signed (JSON data, not code).
_PROVENANCE_FIELDS = ("estimator", "format", "created_at", "metrics", "config", "versions")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def refusal_reason(exc: BaseException) -> str:
    """One line a person can act on: the refusal's type and message, bounded.

    safeload's own messages are already bounded; anything else (a bug, a library error on a
    hostile file) is shown by type and a cut message, never rendered at the file's length.
    """
    message = str(exc) if isinstance(exc, SafeloadError) else shown(str(exc))
    return f"{type(exc).__name__}: {message[:2000]}"


@dataclass
class Entry:
    """A model name of the store: what is served under it, and what the last load attempt said.

    ``served`` stays the last artifact that passed the gate; ``refused`` is the reason the
    latest attempt failed (None when it succeeded).
    """

    name: str
    served: LoadedArtifact | None = None
    loaded_at: str | None = None
    refused: str | None = None
    refused_version: str | None = None
    attempted_at: str | None = None
    history: list[dict[str, str | None]] = field(default_factory=list)
    drift: DriftAccumulator | None = field(default=None, repr=False)
    """Running counts of the inputs scored by the served version (None: no statistics)."""

    @property
    def version(self) -> str | None:
        """The version being served, if any."""
        return str(self.served.metadata.get("version")) if self.served is not None else None

    def provenance(self) -> dict[str, Any]:
        """Who signed what is served, when it was made, how it scored: the JSON of the routes."""
        doc: dict[str, Any] = {
            "name": self.name,
            "verdict": "served" if self.served is not None else "refused",
            "version": self.version,
            "refused": None,
            "loaded_at": self.loaded_at,
        }
        if self.refused is not None:
            doc["refused"] = {
                "version": self.refused_version,
                "reason": self.refused,
                "at": self.attempted_at,
            }
        artifact = self.served
        if artifact is None:
            return doc
        meta = artifact.metadata
        statement = artifact.statement
        signers = (
            [check.to_dict() for check in statement.signatures if check.status == "valid"]
            if statement is not None
            else []
        )
        doc["signer"] = artifact.signer
        doc["signers"] = signers or [{"hint": artifact.signer, "name": None, "status": "valid"}]
        doc.update({key: meta.get(key) for key in _PROVENANCE_FIELDS})
        doc["schema"] = artifact.schema
        doc["methods"] = methods_of(artifact)
        return doc


PREDICT_METHODS = ("predict", "predict_proba")


def methods_of(artifact: LoadedArtifact) -> list[str]:
    """The prediction routes this model answers (``predict_proba`` only where it has one)."""
    return [m for m in PREDICT_METHODS if _has_method(artifact.model, m)]


def _has_method(model: object, method: str) -> bool:
    # hasattr runs scikit-learn's available_if checks (a Pipeline whose last step has no
    # predict_proba has none); the model already passed structural validation.
    try:
        return callable(getattr(model, method, None))
    except Exception:
        return False


class ModelRegistry:
    """The models of one store, each verified and loaded; reloaded one by one on request.

    ``pins`` maps a name to the version to serve (a deploy decides, not a file copy); other
    names serve their newest version, under the store's rollback record.
    """

    def __init__(
        self,
        store: Store,
        *,
        trusted: Keyring,
        policy: TypePolicy | None = None,
        pins: Mapping[str, str] | None = None,
        versions: str | None = None,
    ) -> None:
        self.store = store
        self.trusted = trusted
        self.policy = policy
        self.pins = dict(pins or {})
        self.versions = versions
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()  # one load at a time: loads are heavy, and write state

    def load_all(self) -> list[Entry]:
        """Load every model of the store (and every pinned one); return them all, refused too."""
        names = sorted(set(self.store.names()) | set(self.pins))
        for name in names:
            self.reload(name)
        return self.entries()

    def entries(self) -> list[Entry]:
        """Every model name known, sorted, served or refused."""
        return [self._entries[n] for n in sorted(self._entries)]

    def get(self, name: str) -> Entry | None:
        """The entry of ``name``, or None for a name this server never loaded."""
        return self._entries.get(name)

    def served(self) -> list[Entry]:
        """The entries with a model being served."""
        return [e for e in self.entries() if e.served is not None]

    def reload(self, name: str) -> dict[str, Any]:
        """Verify and load the pinned or newest version of ``name``; on refusal keep the old one.

        Returns what happened: ``reloaded`` (bool), the version served now and the previous one,
        and the reason of a refusal.
        """
        with self._lock:
            entry = self._entries.get(name) or Entry(name)
            previous = entry.version
            wanted = self.pins.get(name, "latest")
            attempted: str | None = wanted
            try:
                attempted = self.store.resolve(name, wanted)
                loaded = self.store.load_checked(
                    name,
                    wanted,
                    trusted=self.trusted,
                    policy=self.policy,
                    versions=self.versions,
                )
            except Exception as exc:  # any doubt is a refusal: the old model keeps serving
                entry.refused, entry.refused_version = refusal_reason(exc), attempted
                entry.attempted_at = _now()
                entry.history.append({"at": entry.attempted_at, "refused": entry.refused})
                del entry.history[:-20]
                self._entries[name] = entry
                return {
                    "name": name,
                    "reloaded": False,
                    "version": previous,
                    "previous": previous,
                    "attempted": attempted,
                    "refused": entry.refused,
                }
            entry.served, entry.loaded_at = loaded, _now()
            stats = loaded.metadata.get("training_stats")
            entry.drift = DriftAccumulator(stats) if isinstance(stats, dict) else None
            entry.refused = entry.refused_version = None
            entry.attempted_at = entry.loaded_at
            entry.history.append({"at": entry.loaded_at, "loaded": entry.version})
            del entry.history[:-20]
            self._entries[name] = entry
            return {
                "name": name,
                "reloaded": True,
                "version": entry.version,
                "previous": previous,
                "attempted": attempted,
                "refused": None,
            }

    def reload_all(self) -> list[dict[str, Any]]:
        """Reload every name (SIGHUP): new names in the store are loaded too."""
        names = sorted(set(self.store.names()) | set(self.pins) | set(self._entries))
        return [self.reload(name) for name in names]
