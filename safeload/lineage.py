"""Lineage: which data a model was trained on, and which code trained it, signed with it.

The data is recorded as a fingerprint, never itself: row and column counts and a SHA-256 over
the values in a documented canonical form (``safeload-table-v1``, docs/format.md), so that the
same data in the same column order gives the same digest whatever pandas or numpy version
produced it, and whether it came as a DataFrame or an array. The code is recorded as the git
commit of the caller's work tree and whether it had uncommitted changes, read with the ``git``
command when there is one; a save never fails because git is missing, slow or not a repository.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEME = "safeload-table-v1"
CHUNK_ROWS = 1 << 16
GIT_TIMEOUT = 5.0
MAX_TEXT = 1024  # data_uri, run_id and source, as recorded
_NAN_BITS = 0x7FF8_0000_0000_0000  # the one NaN written, whatever NaN the data held
_FLAG = {False: b"\x00", True: b"\x01"}
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class DataDigest:
    """The fingerprint of a table: its digest under :data:`SCHEME`, row and column counts."""

    sha256: str
    rows: int
    columns: int

    def to_dict(self) -> dict[str, Any]:
        """The ``lineage.data`` fields (the caller adds ``uri``)."""
        return {"scheme": SCHEME, "sha256": self.sha256, "rows": self.rows, "columns": self.columns}


def is_frame(data: object) -> bool:
    """A pandas DataFrame, recognised without importing pandas."""
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns") and hasattr(data, "iloc")


def is_sparse(data: object) -> bool:
    """A scipy sparse matrix or array, recognised without importing scipy."""
    return type(data).__module__.startswith("scipy.sparse") and hasattr(data, "tocsr")


def columns_of(data: Any) -> tuple[int, list[tuple[str, Any]]]:
    """Rows and ``(name, column)`` pairs, in order, each column a Series or a 1-D array view.

    An array's column ``j`` is named ``str(j)``, as ``pandas.DataFrame(array)`` names it, so an
    array and the frame made from it are the same table. A 1-D array is one column.
    """
    if is_frame(data):
        return len(data), [(str(data.columns[j]), data.iloc[:, j]) for j in range(data.shape[1])]
    array = np.asarray(data)
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(f"training data must be 2-D, got an array of shape {array.shape}")
    return int(array.shape[0]), [(str(j), array[:, j]) for j in range(array.shape[1])]


def _lp(data: bytes) -> bytes:
    """Length-prefixed bytes: the length as 8 bytes little-endian, then the bytes."""
    return struct.pack("<Q", len(data)) + data


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def table_digest(data: Any) -> DataDigest:
    """The ``safeload-table-v1`` digest of a DataFrame, an array or a scipy sparse matrix.

    Reads one column at a time in chunks of :data:`CHUNK_ROWS` rows (only a chunk is ever
    converted), so hashing costs no copy of the table.
    """
    hasher = hashlib.sha256(_text(SCHEME) + b"\x00")
    if is_sparse(data):
        return _sparse_digest(hasher, data)
    rows, columns = columns_of(data)
    hasher.update(struct.pack("<QQ", rows, len(columns)))
    for name, column in columns:
        kind, chunks = _canonical(column, rows)
        hasher.update(_lp(_text(name)) + _lp(_text(kind)))
        for chunk in chunks:
            hasher.update(chunk)
    return DataDigest(hasher.hexdigest(), rows, len(columns))


def _sparse_digest(hasher: Any, data: Any) -> DataDigest:
    """Sparse input: its canonical CSR form (sorted indices, int64 and float64 little-endian)."""
    csr = data.tocsr(copy=True)
    csr.sum_duplicates()
    csr.sort_indices()
    rows, cols = (int(n) for n in csr.shape)
    hasher.update(struct.pack("<QQ", rows, cols) + _lp(b"sparse-csr"))
    for part in (csr.indptr.astype("<i8"), csr.indices.astype("<i8")):
        hasher.update(part.tobytes())
    hasher.update(_floats(np.asarray(csr.data)))
    return DataDigest(hasher.hexdigest(), rows, cols)


def _floats(values: np.ndarray) -> bytes:
    """float64 little-endian, every NaN as one bit pattern and -0.0 as 0.0."""
    out = values.astype("<f8", copy=True)
    out[out == 0] = 0.0
    bits = out.view("<u8")
    bits[np.isnan(out)] = _NAN_BITS
    return bits.tobytes()


_WIDE = {"b": ("bool", "u1"), "i": ("int", "<i8"), "u": ("uint", "<u8")}


def _canonical(column: Any, rows: int) -> tuple[str, Iterator[bytes]]:
    """The column's canonical kind and its values as a stream of canonical bytes."""
    dtype = getattr(column, "dtype", None)
    if hasattr(column, "iloc") and not isinstance(dtype, np.dtype):
        return _extension(column, rows)
    values = np.asarray(column)
    kind = values.dtype.kind
    if kind in _WIDE:
        name, wide = _WIDE[kind]
        return name, _fixed(values, wide, rows, None)
    if kind == "f":
        return "float", (_floats(values[i : i + CHUNK_ROWS]) for i in range(0, rows, CHUNK_ROWS))
    if kind in "mM":
        unit = np.datetime_data(values.dtype)[0]
        label = f"{'datetime' if kind == 'M' else 'timedelta'}64[{unit}]"
        return label, _fixed(values.view("<i8"), "<i8", rows, None)
    return "values", _tagged(column, rows)


def _extension(series: Any, rows: int) -> tuple[str, Iterator[bytes]]:
    """Pandas extension dtypes: nullable integers and booleans keep their kind, missing marked."""
    kind = getattr(series.dtype, "kind", "O")
    if kind in _WIDE:
        name, wide = _WIDE[kind]
        mask = np.asarray(series.isna(), dtype=bool)
        values = series.to_numpy(dtype=wide, na_value=0)
        return name, _fixed(values, wide, rows, mask)
    if kind == "f":
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return "float", (_floats(values[i : i + CHUNK_ROWS]) for i in range(0, rows, CHUNK_ROWS))
    return "values", _tagged(series, rows)


def _fixed(values: np.ndarray, wide: str, rows: int, mask: np.ndarray | None) -> Iterator[bytes]:
    """Fixed-width values, then a flag and, for a column with missing values, the packed mask."""
    for i in range(0, rows, CHUNK_ROWS):
        yield values[i : i + CHUNK_ROWS].astype(wide).tobytes()
    missing = mask is not None and bool(mask.any())
    yield _FLAG[missing]
    if missing and mask is not None:
        yield np.packbits(mask, bitorder="little").tobytes()


def _tagged(column: Any, rows: int) -> Iterator[bytes]:
    """Object, string and categorical values, one tagged value at a time (docs/format.md)."""
    if str(getattr(column, "dtype", "")) == "category":
        # Each category tagged once; code -1 (missing) picks the last entry, the missing tag.
        tags = np.array([*(_tag(c) for c in column.cat.categories.tolist()), b"\x00"], object)
        codes = column.cat.codes.to_numpy()
        for i in range(0, rows, CHUNK_ROWS):
            yield b"".join(tags[codes[i : i + CHUNK_ROWS]].tolist())
        return
    for i in range(0, rows, CHUNK_ROWS):
        part = (
            column.iloc[i : i + CHUNK_ROWS]
            if hasattr(column, "iloc")
            else column[i : i + CHUNK_ROWS]
        )
        items = part.tolist() if hasattr(part, "tolist") else list(part)
        yield b"".join(_tag(value) for value in items)


def _tag(value: Any) -> bytes:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return b"\x00"
    if isinstance(value, str):
        return b"s" + _lp(_text(value))
    if isinstance(value, bool):
        return b"b" + _FLAG[value]
    if isinstance(value, int):
        return b"i" + _lp(str(value).encode())
    if isinstance(value, float):
        return b"\x00" if value != value else b"f" + _floats(np.array([value]))
    if isinstance(value, bytes):
        return b"y" + _lp(value)
    kind = type(value)
    return b"o" + _lp(_text(f"{kind.__module__}.{kind.__qualname__}")) + _lp(_text(str(value)))


# ---- the code ----------------------------------------------------------------------------------


def git_record(where: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The git commit of the work tree at ``where`` (default: the current directory).

    ``{"git_commit": ..., "git_dirty": bool}``, or ``{"git_unrecorded": reason}`` when there is
    no git command, no work tree, or git fails or takes longer than :data:`GIT_TIMEOUT`
    seconds. Never raises. One ``git status --porcelain=v2 --branch`` answers both (its
    ``# branch.oid`` line, and whether any other line follows). The repository's configuration
    cannot run a command here: ``core.fsmonitor`` (the one setting ``git status`` would
    execute) is switched off.
    """
    with GitProbe(where) as probe:
        return probe.result()


class GitProbe:
    """:func:`git_record`'s git, started now and answered when asked: a save writes meanwhile.

    No thread: a thread reading git's output would wait for the GIL the save holds (up to a
    switch interval, 5 ms, each time), which cost a small save more than git itself. The
    process runs alone; :meth:`result` reads it, :meth:`close` ends it if nobody will.
    """

    def __init__(self, where: str | os.PathLike[str] | None = None) -> None:
        self._answer: dict[str, Any] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._started = time.monotonic()
        git = shutil.which("git")
        if git is None:
            self._answer = {"git_unrecorded": "no git command on PATH"}
            return
        folder = os.path.abspath(os.fspath(where) if where is not None else os.getcwd())
        if "GIT_DIR" not in os.environ and not _inside_repository(folder):
            self._answer = {"git_unrecorded": "not a git work tree with a commit"}
            return  # and no process started
        command = [git, "-c", "core.fsmonitor=false", "-C", folder]
        command += ["status", "--porcelain=v2", "--branch"]
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
        try:
            self._process = subprocess.Popen(  # noqa: S603 - git found on PATH, fixed arguments
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            self._answer = {"git_unrecorded": f"git could not run ({type(exc).__name__})"}

    def result(self) -> dict[str, Any]:
        """The record; waits for git at most what is left of :data:`GIT_TIMEOUT`."""
        if self._answer is None:
            self._answer = self._read()
        return dict(self._answer)

    def _read(self) -> dict[str, Any]:
        process = self._process
        if process is None:
            return {"git_unrecorded": "git could not run"}
        left = max(0.0, GIT_TIMEOUT - (time.monotonic() - self._started))
        try:
            out, _ = process.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            self.close()
            return {"git_unrecorded": f"git took longer than {GIT_TIMEOUT:g} s"}
        lines = out.decode("utf-8", "replace").splitlines()
        commit = next(
            (ln[len("# branch.oid ") :] for ln in lines if ln.startswith("# branch.oid ")), ""
        )
        if process.returncode != 0 or not _COMMIT.fullmatch(commit):
            return {"git_unrecorded": "not a git work tree with a commit"}
        return {"git_commit": commit, "git_dirty": any(not ln.startswith("#") for ln in lines)}

    def __enter__(self) -> GitProbe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End git if it still runs (a save that failed first), and reap it."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        if process.poll() is None:
            process.kill()
        process.communicate()


def _inside_repository(folder: str) -> bool:
    """Whether ``folder`` or a parent holds a ``.git`` (a folder, or a worktree's file)."""
    while True:
        if os.path.lexists(os.path.join(folder, ".git")):
            return True
        parent = os.path.dirname(folder)
        if parent == folder:
            return False
        folder = parent


def lineage_record(
    training_data: Any,
    *,
    data_uri: str | None = None,
    run_id: str | None = None,
    source: str | os.PathLike[str] | None = None,
    code: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``lineage`` block of ``safeload.json``.

    ``source`` is the folder of the training code (its git work tree is read there; default:
    the current directory) and is recorded as given. ``code`` is a :func:`git_record` already
    taken (by :class:`GitProbe`); without it git is asked here.

    Raises:
        ValueError: a caller-given text is too long or not a string.
    """
    record: dict[str, Any] = {"code": git_record(source) if code is None else dict(code)}
    if training_data is not None:
        record["data"] = table_digest(training_data).to_dict()
        if data_uri is not None:
            record["data"]["uri"] = _bounded(data_uri, "data_uri")
    elif data_uri is not None:
        raise ValueError("data_uri names the training data: pass training_data too")
    if run_id is not None:
        record["run_id"] = _bounded(run_id, "run_id")
    if source is not None:
        record["source"] = _bounded(os.fspath(source), "source")
    return record


def _bounded(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    if not value or len(value) > MAX_TEXT:
        raise ValueError(f"{what} must have 1 to {MAX_TEXT} characters")
    return value
