"""The Store's memory: the highest version of each name it has verified, to refuse rollbacks.

A signature binds a name and a version, so an old artifact cannot pose as a new one; but an old
artifact is still validly signed as itself, and "latest" is only the highest folder present.
Delete the newest folder (or restore an old copy of the model's folder) and "latest" would
quietly serve the old model. This file remembers what was served so that cannot pass unseen.

The record is one small JSON file, ``.safeload-state.json`` beside the store by default (a
leading dot: never listed as a model). Rules, each for a reason:

* read strictly (:mod:`safeload.strictjson`, exact keys, plain names, size-bounded); a record
  that cannot be read is an error, never an empty record: resetting it silently would switch
  the protection off for whoever can corrupt the file;
* changed only under an exclusive ``flock`` on ``<state>.lock`` (read, compare, write), so
  concurrent loads in any number of processes and threads leave the highest version any of
  them verified: a record never goes down except by :meth:`StoreState.lower`;
* replaced atomically: written to a temporary file in the same folder, fsynced, renamed over
  the record, the folder fsynced; a reader sees the old record or the new one, whole, and a
  crash or a full disk leaves the old one.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from safeload import strictjson
from safeload.errors import MalformedArtifactError, StoreStateError, shown
from safeload.layout import is_plain_name, version_key

STATE_FILE = ".safeload-state.json"
FORMAT = "safeload-store-state"
SCHEMA = 1
#: ~25,000 models: far more than a store holds, small enough to read on every load.
MAX_STATE_BYTES = 4 << 20
_MAX_TEXT = 256
_ENTRY_KEYS = {"version", "signer", "recorded_at"}
_OPEN_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_OPEN_LOCK = os.O_RDONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_TEMP = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class Served:
    """The highest version of one name verified so far, who signed it and when it was seen."""

    version: str
    signer: str
    recorded_at: str


def is_lower(version: str, than: str) -> bool:
    """Whether ``version`` comes before ``than`` in the Store's own order (PEP 440)."""
    return version_key(version) < version_key(than)


class StoreState:
    """The record file of one store: read on every "latest" load, raised after each load."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def _error(self, problem: str, advice: str | None = None) -> StoreStateError:
        return StoreStateError(
            f"the rollback record {self.path} {problem}. "
            + (
                advice
                or "It records the highest version of each model this store has served; fix "
                "or restore it (deleting it forgets those versions: a rollback made since "
                "would then go unnoticed)"
            ),
            path=str(self.path),
        )

    # -- reading -------------------------------------------------------------------------------

    def read(self) -> dict[str, Served]:
        """Every name's record; ``{}`` only when the file does not exist."""
        try:
            fd = os.open(self.path, _OPEN_READ)
        except FileNotFoundError:
            return {}  # nothing served yet (a lost record is the documented limit)
        except OSError as exc:
            raise self._error(f"cannot be opened ({exc.strerror}; symlinks are refused)") from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise self._error("is not a regular file")
            if info.st_size > MAX_STATE_BYTES:
                raise self._error(f"is {info.st_size} bytes, over {MAX_STATE_BYTES}")
            data = os.read(fd, MAX_STATE_BYTES + 1)
        except OSError as exc:
            raise self._error(f"cannot be read ({exc.strerror})") from exc
        finally:
            os.close(fd)
        if len(data) > MAX_STATE_BYTES:
            raise self._error(f"grew over {MAX_STATE_BYTES} bytes while read")
        return self._parse(data)

    def _parse(self, data: bytes) -> dict[str, Served]:
        try:
            doc = strictjson.loads(data, str(self.path))
        except MalformedArtifactError as exc:
            raise self._error(f"is not valid strict JSON ({shown(str(exc.__cause__))})") from exc
        if not (
            isinstance(doc, dict)
            and set(doc) == {"format", "schema", "models"}
            and doc["format"] == FORMAT
            and doc["schema"] == SCHEMA
            and isinstance(doc["models"], dict)
        ):
            raise self._error(f"is not a {FORMAT} document of schema {SCHEMA}")
        record: dict[str, Served] = {}
        for name, entry in doc["models"].items():
            if not (
                is_plain_name(name)
                and isinstance(entry, dict)
                and set(entry) == _ENTRY_KEYS
                and all(isinstance(v, str) and len(v) <= _MAX_TEXT for v in entry.values())
                and is_plain_name(entry["version"])
            ):
                raise self._error(f"has a malformed entry for {shown(name)}")
            record[name] = Served(entry["version"], entry["signer"], entry["recorded_at"])
        return record

    def highest(self, name: str) -> Served | None:
        """What was recorded for ``name``, if anything."""
        return self.read().get(name)

    # -- writing -------------------------------------------------------------------------------

    def check_writable(self) -> None:
        """Fail before a load whose record could not be kept (a read-only store, say)."""
        folder = self.path.parent
        if not folder.is_dir():
            raise self._error(
                "is in a folder that does not exist",
                "Create the folder (Store(..., state=...) names a file in a folder you own)",
            )
        if not os.access(folder, os.W_OK):
            raise self._error(
                "cannot be written (its folder is read-only)",
                "Give the Store a record in a folder this process can write, "
                "Store(root, state='/var/lib/<service>/models-state.json'), or "
                "Store(root, rollback='ignore') to serve without rollback protection",
            )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self.lock_path, _OPEN_LOCK, 0o644)
        except OSError as exc:
            raise self._error(
                f"cannot be locked: {self.lock_path} cannot be opened ({exc.strerror}; "
                "symlinks are refused)"
            ) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:  # ENOLCK: a filesystem without locks
                raise self._error(f"cannot be locked ({exc.strerror})") from exc
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def raise_to(self, name: str, version: str, signer: str) -> None:
        """Record ``version`` for ``name`` if it is higher than the record (never lowers it)."""
        known = self.highest(name)
        if known is not None and not is_lower(known.version, version):
            return  # no lock, no write: a read-only store whose record is current still serves
        with self._locked():
            record = self.read()
            known = record.get(name)
            if known is not None and not is_lower(known.version, version):
                return
            record[name] = Served(version, signer, _now())
            self._write(record)

    def lower(self, name: str, version: str) -> None:
        """Set ``name``'s record to ``version`` even if lower: a deliberate rollback.

        The signer is left empty: nothing was verified, a person decided.
        """
        with self._locked():
            record = self.read()
            record[name] = Served(version, "", _now())
            self._write(record)

    def _write(self, record: dict[str, Served]) -> None:
        doc = {
            "format": FORMAT,
            "schema": SCHEMA,
            "models": {
                name: {"version": s.version, "signer": s.signer, "recorded_at": s.recorded_at}
                for name, s in sorted(record.items())
            },
        }
        data = strictjson.dumps(doc)
        if len(data) > MAX_STATE_BYTES:
            raise self._error(f"would grow over {MAX_STATE_BYTES} bytes")
        temp = self.path.with_name(f"{self.path.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(temp, _OPEN_TEMP, 0o644)
        except OSError as exc:
            raise self._error(f"cannot be written ({exc.strerror})") from exc
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.path)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise self._error(
                f"cannot be written ({exc.strerror}); the previous record is kept"
            ) from exc
        _fsync_folder(self.path.parent)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable: without it a power cut may bring the old record back."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot sync a folder; the record itself is already in place
    finally:
        os.close(fd)
