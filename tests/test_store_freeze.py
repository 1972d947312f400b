"""safeload.store: rollback protection, the Store's record of the highest version it served.

A signature binds name and version, so an old artifact cannot pose as a new one
(tests/test_contract.py); these tests cover the other half: an old artifact served as itself
because the newer one went missing. Every store here holds real signed pipelines.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

import safeload
from safeload.storestate import STATE_FILE, StoreState


@pytest.fixture
def ring(key: safeload.SigningKey) -> safeload.Keyring:
    return safeload.Keyring.of([key])


def _store(
    root: Path, pipeline: Pipeline, key: safeload.SigningKey, *versions: str, **kw: object
) -> safeload.Store:
    store = safeload.Store(root, **kw)  # type: ignore[arg-type]
    for version in versions:
        store.save(pipeline, "iris", version, key=key)
    return store


def _record(path: Path) -> dict[str, str]:
    doc = json.loads(path.read_text())
    return {name: entry["version"] for name, entry in doc["models"].items()}


# -- the rule: "latest" never goes below what was served --------------------------------------


def test_latest_after_the_newest_folder_is_deleted_is_refused(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    store = _store(tmp_path, pipeline, key, "1.0.0", "2.0.0")
    assert store.load_checked("iris", trusted=ring).metadata["version"] == "2.0.0"
    assert store.highest_served("iris") == "2.0.0"
    shutil.rmtree(store.path("iris", "2.0.0"))
    for call in (store.load, store.load_checked):
        with pytest.raises(safeload.RollbackError) as info:
            call("iris", trusted=ring)
        assert isinstance(info.value, safeload.ContractError)
        assert (info.value.name, info.value.served, info.value.found) == ("iris", "2.0.0", "1.0.0")
        message = str(info.value)
        assert "'2.0.0'" in message and "load_checked('iris', '1.0.0'" in message
    assert store.highest_served("iris") == "2.0.0"  # a refusal never lowers the record


def test_an_older_copy_of_the_model_folder_is_refused(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    """A backup of iris/ taken at 1.0.0, restored over it after 2.0.0 was served."""
    root = tmp_path / "models"
    store = _store(root, pipeline, key, "1.0.0")
    shutil.copytree(root / "iris", tmp_path / "backup")
    store.save(pipeline, "iris", "2.0.0", key=key)
    store.load("iris", trusted=ring)
    shutil.rmtree(root / "iris")
    shutil.copytree(tmp_path / "backup", root / "iris")
    with pytest.raises(safeload.RollbackError, match="'2.0.0'"):
        store.load("iris", trusted=ring)
    # Another process, another Store object: the record is on disk, not in the object.
    with pytest.raises(safeload.RollbackError):
        safeload.Store(root).load("iris", trusted=ring)


def test_a_whole_tree_replaced_is_refused_when_the_record_lives_elsewhere(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    """Whoever writes the store can delete a record kept in it; one kept elsewhere survives."""
    (tmp_path / "service").mkdir()
    state = tmp_path / "service" / "models-state.json"
    root = tmp_path / "models"
    store = _store(root, pipeline, key, "1.0.0", state=state)
    shutil.copytree(root, tmp_path / "old-tree")
    store.save(pipeline, "iris", "2.0.0", key=key)
    store.load("iris", trusted=ring)
    assert not (root / STATE_FILE).exists() and _record(state) == {"iris": "2.0.0"}
    shutil.rmtree(root)
    shutil.copytree(tmp_path / "old-tree", root)
    with pytest.raises(safeload.RollbackError):
        store.load("iris", trusted=ring)


def test_the_limit_a_record_beside_the_store_goes_with_the_tree(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    """The documented limit (threat model): replace the whole root, record included, and the
    older version is served. This is why ``state=`` should name a file the model writers
    cannot reach."""
    root = tmp_path / "models"
    store = _store(root, pipeline, key, "1.0.0")
    store.load("iris", trusted=ring)
    shutil.copytree(root, tmp_path / "old-tree")  # its record says 1.0.0
    store.save(pipeline, "iris", "2.0.0", key=key)
    store.load("iris", trusted=ring)
    shutil.rmtree(root)
    shutil.copytree(tmp_path / "old-tree", root)
    assert store.load_checked("iris", trusted=ring).metadata["version"] == "1.0.0"


# -- the escape hatches: a pinned version, roll_back, rollback="ignore" ------------------------


def test_a_pinned_version_is_served_even_if_lower(
    tmp_path: Path,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    store = _store(tmp_path, pipeline, key, "1.0.0", "2.0.0")
    store.load("iris", trusted=ring)
    shutil.rmtree(store.path("iris", "2.0.0"))
    model = store.load("iris", "1.0.0", trusted=ring)
    np.testing.assert_array_equal(model.predict(iris[0]), pipeline.predict(iris[0]))
    assert store.highest_served("iris") == "2.0.0"  # serving a lower version never lowers it
    with pytest.raises(safeload.RollbackError):
        store.load("iris", trusted=ring)


def test_the_record_only_rises_and_is_never_listed(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    store = _store(tmp_path, pipeline, key, "1.0.0", "1.10.0", "1.9.0")
    assert store.highest_served("iris") is None  # saving records nothing
    store.load("iris", "1.0.0", trusted=ring)
    assert store.highest_served("iris") == "1.0.0"
    store.load("iris", "1.10.0", trusted=ring)
    store.load("iris", "1.9.0", trusted=ring)
    assert store.highest_served("iris") == "1.10.0"  # ordered as versions, not strings
    assert store.names() == ["iris"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE_FILE, f"{STATE_FILE}.lock", "iris"]


def test_a_refused_load_records_nothing(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    store = _store(tmp_path, pipeline, key, "1.0.0", "2.0.0")
    (store.path("iris", "2.0.0") / "extra.txt").write_text("x")
    with pytest.raises(safeload.TamperedArtifactError):
        store.load("iris", trusted=ring)
    with pytest.raises(safeload.UntrustedSignerError):
        store.load("iris", "1.0.0", trusted=safeload.Keyring.of([safeload.generate_key()]))
    assert store.highest_served("iris") is None


def test_saving_a_version_lower_than_the_record_is_allowed(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    """A backport (1.9.1 after 2.0.0) is saved; latest stays 2.0.0, and 1.9.1 loads by name."""
    store = _store(tmp_path, pipeline, key, "2.0.0")
    store.load("iris", trusted=ring)
    store.save(pipeline, "iris", "1.9.1", key=key)
    assert store.load_checked("iris", trusted=ring).metadata["version"] == "2.0.0"
    assert store.load_checked("iris", "1.9.1", trusted=ring).metadata["version"] == "1.9.1"


def test_roll_back_lowers_the_record_deliberately(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    store = _store(tmp_path, pipeline, key, "1.0.0", "2.0.0")
    store.load("iris", trusted=ring)
    shutil.rmtree(store.path("iris", "2.0.0"))
    with pytest.raises(safeload.ArtifactNotFoundError):
        store.roll_back("iris", "2.0.0")  # only to a version that is there
    with pytest.raises(safeload.MalformedArtifactError):
        store.roll_back("iris", "../1.0.0")
    store.roll_back("iris", "1.0.0")
    assert store.highest_served("iris") == "1.0.0"
    assert store.load_checked("iris", trusted=ring).metadata["version"] == "1.0.0"


def test_rollback_ignore_neither_reads_nor_writes_the_record(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    store = _store(tmp_path, pipeline, key, "1.0.0", "2.0.0")
    store.load("iris", trusted=ring)
    shutil.rmtree(store.path("iris", "2.0.0"))
    (tmp_path / STATE_FILE).write_text("corrupt")
    loose = safeload.Store(tmp_path, rollback="ignore")
    assert loose.load_checked("iris", trusted=ring).metadata["version"] == "1.0.0"
    assert (tmp_path / STATE_FILE).read_text() == "corrupt"
    with pytest.raises(ValueError, match="rollback must be"):
        safeload.Store(tmp_path, rollback="warn")


# -- the record file: strict, fail closed, atomic, locked ---------------------------------------


def _valid_doc(version: str = "2.0.0") -> dict[str, object]:
    entry = {"version": version, "signer": "ab" * 32, "recorded_at": "2026-01-01T00:00:00Z"}
    return {"format": "safeload-store-state", "schema": 1, "models": {"iris": entry}}


def _corrupt_cases() -> dict[str, Callable[[Path], object]]:
    valid = json.dumps(_valid_doc())

    def dumped(change: Callable[[dict[str, object]], object]) -> Callable[[Path], object]:
        def write(path: Path) -> None:
            doc = _valid_doc()
            change(doc)
            path.write_text(json.dumps(doc))

        return write

    def entry(doc: dict[str, object]) -> dict[str, object]:
        return doc["models"]["iris"]  # type: ignore[index,no-any-return]

    def symlink(path: Path) -> None:
        (path.parent / "real.json").write_text(valid)
        path.symlink_to(path.parent / "real.json")

    return {
        "garbage": lambda p: p.write_bytes(b"\x00\xffnot json"),
        "truncated": lambda p: p.write_text(valid[: len(valid) // 2]),
        "empty": lambda p: p.write_bytes(b""),
        "duplicate-key": lambda p: p.write_text(valid[:-1] + ', "schema": 1}'),
        "nan": lambda p: p.write_text(valid.replace('"schema": 1', '"schema": NaN')),
        "other-format": dumped(lambda d: d.update(format="something-else")),
        "newer-schema": dumped(lambda d: d.update(schema=2)),
        "extra-top-key": dumped(lambda d: d.update(note="x")),
        "extra-entry-key": dumped(lambda d: entry(d).update(note="x")),
        "missing-entry-key": dumped(lambda d: entry(d).pop("signer")),
        "version-not-a-string": dumped(lambda d: entry(d).update(version=2)),
        "odd-version": dumped(lambda d: entry(d).update(version="../2.0.0")),
        "odd-name": dumped(lambda d: d.update(models={".iris": entry(d)})),
        "huge-text": dumped(lambda d: entry(d).update(signer="a" * 10_000)),
        "oversized": lambda p: p.write_text(valid + " " * (4 << 20)),
        "directory": lambda p: p.mkdir(),
        "symlink": symlink,
        "fifo": lambda p: os.mkfifo(p),
    }


CORRUPT = _corrupt_cases()


@pytest.mark.parametrize("damage", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_record_is_refused_never_reset(
    tmp_path: Path,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    damage: Callable[[Path], object],
) -> None:
    root = tmp_path / "models"
    store = _store(root, pipeline, key, "1.0.0")
    damage(root / STATE_FILE)
    before = sorted(p.name for p in root.iterdir())
    for call in (
        lambda: store.load("iris", trusted=ring),
        lambda: store.load("iris", "1.0.0", trusted=ring),  # a pinned load reads it too
        lambda: store.highest_served("iris"),
    ):
        with pytest.raises(safeload.StoreStateError) as info:
            call()
        assert isinstance(info.value, safeload.OperationalError)
        assert info.value.path == str(root / STATE_FILE)
        assert len(str(info.value)) < 1000
    assert sorted(p.name for p in root.iterdir()) == before  # nothing rewritten or added


def test_a_fifo_fed_a_valid_record_is_still_refused(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    """Only a regular file is a record: a pipe can say something else at every read."""
    store = _store(tmp_path, pipeline, key, "1.0.0")
    os.mkfifo(tmp_path / STATE_FILE)
    writer = os.open(tmp_path / STATE_FILE, os.O_RDWR)  # an open writer: reads get data
    try:
        os.write(writer, json.dumps(_valid_doc("0.1")).encode())
        with pytest.raises(safeload.StoreStateError, match="not a regular file"):
            store.load("iris", trusted=ring)
    finally:
        os.close(writer)


def test_the_valid_document_of_the_corrupt_cases_is_accepted(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    """The cases above differ from a good record only by their damage."""
    store = _store(tmp_path, pipeline, key, "1.0.0")
    (tmp_path / STATE_FILE).write_text(json.dumps(_valid_doc()))
    assert store.highest_served("iris") == "2.0.0"
    with pytest.raises(safeload.RollbackError):
        store.load("iris", trusted=ring)


def _failing_on_the_record(real: Callable[..., object], after: int) -> Callable[..., object]:
    """``os.write`` that writes ``after`` bytes of the record, then finds the disk full."""

    def write(fd: int, data: bytes) -> object:
        if STATE_FILE in os.readlink(f"/proc/self/fd/{fd}"):
            real(fd, bytes(data)[:after])
            raise OSError(28, "No space left on device")
        return real(fd, data)

    return write


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name the fd")
def test_a_full_disk_while_writing_keeps_the_old_record_whole(
    tmp_path: Path,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _store(tmp_path, pipeline, key, "1.0.0", "2.0.0")
    store.load("iris", "1.0.0", trusted=ring)
    old = (tmp_path / STATE_FILE).read_bytes()
    monkeypatch.setattr(os, "write", _failing_on_the_record(os.write, after=40))
    with pytest.raises(safeload.StoreStateError, match="previous record is kept"):
        store.load("iris", trusted=ring)
    monkeypatch.undo()
    assert (tmp_path / STATE_FILE).read_bytes() == old
    assert store.highest_served("iris") == "1.0.0"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no debris


def test_a_failed_rename_keeps_the_old_record_whole(
    tmp_path: Path,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _store(tmp_path, pipeline, key, "1.0.0", "2.0.0")
    store.load("iris", "1.0.0", trusted=ring)
    old = (tmp_path / STATE_FILE).read_bytes()

    def no_rename(src: object, dst: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(safeload.StoreStateError):
        store.load("iris", trusted=ring)
    monkeypatch.undo()
    assert (tmp_path / STATE_FILE).read_bytes() == old
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


VERSIONS = [f"1.{i}.0" for i in range(100)]


def _race_records(state: str, seed: int, failures: multiprocessing.Queue[str]) -> None:
    """Record every version in a shuffled order; after each, the record must be at least it."""
    record = StoreState(Path(state))
    order = list(VERSIONS)
    random.Random(seed).shuffle(order)  # noqa: S311 (an order, not a secret)
    for version in order:
        record.raise_to("iris", version, "ab" * 32)
        seen = record.highest("iris")
        if seen is None or VERSIONS.index(seen.version) < VERSIONS.index(version):
            failures.put(f"recorded {version}, then read {seen}")
            return


def test_concurrent_recorders_never_lower_the_record(tmp_path: Path) -> None:
    """Four processes raising one record at once, watched from here: without the lock, one
    process's write of a lower version lands after another's higher one (a lost update)."""
    context = multiprocessing.get_context("fork")
    failures: multiprocessing.Queue[str] = context.Queue()
    state = tmp_path / STATE_FILE
    workers = [
        context.Process(target=_race_records, args=(str(state), seed, failures))
        for seed in range(4)
    ]
    for worker in workers:
        worker.start()
    watched, highest = StoreState(state), -1
    while any(worker.is_alive() for worker in workers):
        seen = watched.highest("iris")
        now = -1 if seen is None else VERSIONS.index(seen.version)
        assert now >= highest, f"the record went down from {VERSIONS[highest]} to {seen}"
        highest = now
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert failures.empty(), failures.get()
    assert _record(state) == {"iris": VERSIONS[-1]}


def _hold_the_lock(state: str, held: Event, release: Event) -> None:
    fd = os.open(f"{state}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    held.set()
    release.wait(timeout=60)


def test_a_record_being_raised_holds_others_off(tmp_path: Path) -> None:
    """The mutual exclusion itself: while another process holds the lock, a raise waits.

    The holder is a process of its own: a lock taken here would be inherited by the fork."""
    state = tmp_path / STATE_FILE
    context = multiprocessing.get_context("fork")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_the_lock, args=(str(state), held, release))
    holder.start()
    assert held.wait(timeout=30)
    raiser = context.Process(target=StoreState(state).raise_to, args=("iris", "2.0.0", "ab"))
    try:
        raiser.start()
        raiser.join(timeout=1.0)
        assert raiser.is_alive() and not state.exists()  # waiting for the lock
    finally:
        release.set()
        holder.join(timeout=30)
        raiser.join(timeout=30)
        for process in (holder, raiser):
            if process.is_alive():
                process.kill()
    assert raiser.exitcode == 0 and _record(state) == {"iris": "2.0.0"}


def _race_loads(root: str, version: str, keyfile: str) -> None:
    ring = safeload.Keyring.from_dir(keyfile)
    safeload.Store(root).load("iris", version, trusted=ring)


def test_concurrent_loads_in_processes_end_with_the_highest(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey
) -> None:
    root = tmp_path / "models"
    versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    _store(root, pipeline, key, *versions)
    key.save(tmp_path / "keys" / "trainer")
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_race_loads, args=(str(root), v, str(tmp_path / "keys")))
        for v in reversed(versions)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert _record(root / STATE_FILE) == {"iris": "1.3.0"}


# -- a read-only store: the record kept elsewhere -----------------------------------------------

_READ_ONLY_CHILD = textwrap.dedent(
    """
    import json, sys
    import safeload, safeload.store

    bare, served, state = sys.argv[1:4]
    ring = safeload.Keyring.from_dir(sys.argv[4])
    loads = []
    real = safeload.store.load_checked
    safeload.store.load_checked = lambda *a, **k: loads.append(1) or real(*a, **k)
    verdicts = {}

    def attempt(label, store, version="latest"):
        try:
            verdicts[label] = store.load_checked("iris", version, trusted=ring).metadata["version"]
        except safeload.SafeloadError as exc:
            verdicts[label] = type(exc).__name__ + ": " + str(exc)
        verdicts[label + " gate runs"] = len(loads)
        loads.clear()

    attempt("no record, beside", safeload.Store(bare))
    attempt("no record, elsewhere", safeload.Store(bare, state=state))
    attempt("record, beside", safeload.Store(served))
    attempt("record, beside, pinned lower", safeload.Store(served), "1.0.0")
    attempt("ignore", safeload.Store(bare, rollback="ignore"))
    print(json.dumps(verdicts))
    """
)


def test_a_read_only_store_with_the_record_elsewhere(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    """A read-only volume (a real read-only bind mount, or a read-only folder when not root):
    with no record beside it and none given elsewhere, loads are refused before the gate runs;
    a record elsewhere works, and so does one already beside it that needs no raising."""
    volume = tmp_path / "volume"
    _store(volume / "bare", pipeline, key, "1.0.0", "2.0.0")
    _store(volume / "served", pipeline, key, "1.0.0", "2.0.0").load("iris", trusted=ring)
    (tmp_path / "service").mkdir()
    state = tmp_path / "service" / "state.json"
    key.save(tmp_path / "keys" / "trainer")
    args = [str(volume / "bare"), str(volume / "served"), str(state), str(tmp_path / "keys")]
    child = [sys.executable, "-c", _READ_ONLY_CHILD, *args]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if os.geteuid() == 0:  # root writes through permissions: mount the volume read-only
        if shutil.which("unshare") is None:
            pytest.skip("root without unshare: cannot make a read-only volume")
        mount = f'mount --bind -o ro "{volume}" "{volume}" && exec "$0" "$@"'
        child = ["unshare", "-rm", "sh", "-c", mount, *child]
    else:
        for folder in (volume, *volume.rglob("*")):
            if folder.is_dir():
                folder.chmod(0o555)
    try:
        result = subprocess.run(child, capture_output=True, text=True, timeout=300, env=env)
    finally:
        for folder in (volume, *volume.rglob("*")):
            if folder.is_dir():
                folder.chmod(0o755)
    if result.returncode != 0 and "unshare" in result.stderr:
        pytest.skip(f"no user namespaces here: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr
    verdicts = json.loads(result.stdout)
    assert verdicts["no record, beside"].startswith("StoreStateError")
    assert "state=" in verdicts["no record, beside"]
    assert verdicts["no record, beside gate runs"] == 0  # refused before the costly load
    assert verdicts["no record, elsewhere"] == "2.0.0"
    assert verdicts["record, beside"] == "2.0.0"
    assert verdicts["record, beside, pinned lower"] == "1.0.0"
    assert verdicts["ignore"] == "2.0.0"
    assert _record(state) == {"iris": "2.0.0"}
    assert not (volume / "bare" / STATE_FILE).exists()
