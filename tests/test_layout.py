"""Step 1 of the gate: what an artifact directory may hold, and reading it without races.

``tests/test_artifact.py`` covers entries that are odd when the directory is listed (a symlink
in place of the model, a symlinked artifact, a sub-directory, a hidden file). The tests here
change the directory *after* it was listed and checked, right before a file is opened: only
``O_NOFOLLOW``, ``O_NONBLOCK`` and the ``fstat`` after opening stand between that swap and the
bytes that get hashed and deserialized.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest

import safeload
from safeload import layout
from safeload.errors import ArtifactNotFoundError, MalformedArtifactError, UnsignedArtifactError
from safeload.layout import ArtifactDir, ReadLimits, check_name, read_fd, read_model_file
from safeload.manifest import Hashing
from tests.helpers import forbid_deserializing
from tests.malicious import malicious_joblib

ARTIFACT_FILES = ["model.joblib", "model.sig", "safeload.json"]
REFUSED_AT_OPEN = "symlinks and special files are refused"


class OpenSpy:
    """Wraps ``os.open``: runs ``swap`` right before the first real open of ``name``.

    ``name`` is matched as given to ``os.open`` (a file name relative to the artifact's
    directory descriptor, or the artifact's own path). Every descriptor opened is recorded by
    (device, inode), so a test can tell whether a given file was ever opened at all.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, swap: Callable[[], None]):
        self.name = name
        self.swap = swap
        self.swapped = False
        self.opened: list[tuple[int, int]] = []
        self._real_open = os.open
        monkeypatch.setattr(os, "open", self)

    def __call__(
        self,
        path: str | os.PathLike[str],
        flags: int,
        mode: int = 0o777,
        *,
        dir_fd: int | None = None,
    ) -> int:
        if not self.swapped and os.fspath(path) == self.name:
            self.swapped = True
            self.swap()
        fd = self._real_open(path, flags, mode, dir_fd=dir_fd)
        info = os.fstat(fd)
        self.opened.append((info.st_dev, info.st_ino))
        return fd

    def never_opened(self, path: Path) -> bool:
        info = os.stat(path, follow_symlinks=False)
        return (info.st_dev, info.st_ino) not in self.opened


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail with TimeoutError instead of hanging (a blocked open() is interrupted by SIGALRM)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def replace_with_symlink(entry: Path, target: Path) -> Callable[[], None]:
    def swap() -> None:
        entry.unlink()
        entry.symlink_to(target)

    return swap


# --- swapped between listing and opening ---------------------------------------------------


@pytest.mark.parametrize("name", ARTIFACT_FILES)
def test_file_swapped_for_symlink_to_its_own_bytes_after_listing_is_refused(
    artifact: Path, keydir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The symlink points at the genuine bytes: followed, the artifact would verify and load."""
    elsewhere = tmp_path / f"elsewhere-{name}"
    shutil.copy(artifact / name, elsewhere)
    spy = OpenSpy(monkeypatch, name, replace_with_symlink(artifact / name, elsewhere))
    forbid_deserializing(monkeypatch)
    with pytest.raises(safeload.MalformedArtifactError, match=REFUSED_AT_OPEN) as err:
        safeload.load(artifact, trusted=keydir)
    assert spy.swapped and name in str(err.value)
    assert spy.never_opened(elsewhere)


def test_model_swapped_for_symlink_to_malicious_model_after_listing_is_refused(
    artifact: Path,
    keydir: Path,
    tmp_path: Path,
    marker: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(malicious_joblib(marker))
    spy = OpenSpy(
        monkeypatch, "model.joblib", replace_with_symlink(artifact / "model.joblib", evil)
    )
    forbid_deserializing(monkeypatch)
    with pytest.raises(safeload.MalformedArtifactError, match=REFUSED_AT_OPEN):
        safeload.load(artifact, trusted=keydir)
    assert spy.swapped and spy.never_opened(evil)
    assert not marker.exists()


def test_artifact_directory_swapped_for_symlink_after_check_is_refused(
    artifact: Path, keydir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ArtifactDir checks ``is_symlink()`` then opens the path: a swap in between is refused."""
    real = tmp_path / "real-artifact"

    def swap() -> None:
        artifact.rename(real)
        artifact.symlink_to(real, target_is_directory=True)

    spy = OpenSpy(monkeypatch, os.fspath(artifact), swap)
    forbid_deserializing(monkeypatch)
    # Linux reports O_DIRECTORY|O_NOFOLLOW on a symlink as ENOTDIR, other systems as ELOOP.
    refused = "cannot open .*(Not a directory|Too many levels of symbolic links)"
    with pytest.raises(safeload.SafeloadError, match=refused):
        safeload.load(artifact, trusted=keydir)
    assert spy.swapped and spy.never_opened(real / "model.joblib") and spy.never_opened(real)


def test_file_swapped_for_directory_after_listing_is_refused(
    artifact: Path, keydir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory opens fine with O_RDONLY: the fstat after opening is what refuses it."""
    model = artifact / "model.joblib"

    def swap() -> None:
        model.unlink()
        model.mkdir()

    spy = OpenSpy(monkeypatch, "model.joblib", swap)
    forbid_deserializing(monkeypatch)
    with pytest.raises(safeload.MalformedArtifactError, match="model.joblib .*not a regular file"):
        safeload.load(artifact, trusted=keydir)
    assert spy.swapped


def test_file_swapped_for_fifo_after_listing_is_refused_without_hanging(
    artifact: Path, keydir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a FIFO with no writer blocks forever unless O_NONBLOCK is given."""
    model = artifact / "model.joblib"

    def swap() -> None:
        model.unlink()
        os.mkfifo(model)

    spy = OpenSpy(monkeypatch, "model.joblib", swap)
    forbid_deserializing(monkeypatch)
    with (
        deadline(10),
        pytest.raises(safeload.MalformedArtifactError, match="model.joblib .*not a regular file"),
    ):
        safeload.load(artifact, trusted=keydir)
    assert spy.swapped


def test_directory_replaced_after_opening_is_still_read_from_the_opened_one(
    artifact: Path, tmp_path: Path
) -> None:
    """Files are opened relative to the directory descriptor, never by path again."""
    genuine = (artifact / "model.joblib").read_bytes()
    with ArtifactDir(artifact) as opened:
        artifact.rename(tmp_path / "moved")
        artifact.mkdir()
        (artifact / "model.joblib").write_bytes(b"another model")
        assert bytes(opened.read("model.joblib")) == genuine


def test_file_growing_while_read_is_refused(artifact: Path) -> None:
    model = artifact / "model.joblib"

    def grow(name: str, done: int, total: int) -> None:
        with model.open("ab") as handle:
            handle.write(b"\x00")

    with (
        ArtifactDir(artifact, progress=grow) as opened,
        pytest.raises(
            safeload.MalformedArtifactError, match="changed size while it was being read"
        ),
    ):
        opened.read("model.joblib")


# --- odd entries present when the directory is listed --------------------------------------


@pytest.mark.parametrize("kind", ["dangling", "to-directory", "to-device"])
def test_symlink_present_at_listing_is_refused_before_any_open(
    artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    target = {
        "dangling": tmp_path / "nothing-here",
        "to-directory": tmp_path,
        "to-device": Path("/dev/zero"),
    }[kind]
    (artifact / "model.joblib").unlink()
    (artifact / "model.joblib").symlink_to(target)
    spy = OpenSpy(monkeypatch, "model.joblib", lambda: None)
    with pytest.raises(safeload.MalformedArtifactError, match="model.joblib .*is a symlink"):
        ArtifactDir(artifact)
    assert not spy.swapped


def test_fifo_present_at_listing_is_refused_without_hanging(artifact: Path, keydir: Path) -> None:
    os.mkfifo(artifact / "extra")
    with (
        deadline(10),
        pytest.raises(safeload.MalformedArtifactError, match="extra .*not a regular file"),
    ):
        safeload.load(artifact, trusted=keydir)


def test_bare_model_file_that_is_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "model.joblib"
    os.mkfifo(fifo)
    with deadline(10), pytest.raises(safeload.ArtifactNotFoundError, match="not a regular file"):
        read_model_file(fifo)


@pytest.mark.parametrize(
    "name",
    [
        ".hidden",
        "..",
        ".",
        "",
        "-rf",
        "_private",
        "model.joblib ",
        "model.joblib\n",
        "a\x00b",
        "a/b",
        "a\\b",
        "model:joblib",
        "modèle.joblib",
        "model.joblib~",
        "x" * 129,
        "",
        ".",
        "..",
        ".hidden",
        "-rf",
        "_x",
        "é.txt",
        "a b",
    ],
)
def test_odd_names_are_refused(name: str) -> None:
    with pytest.raises(safeload.MalformedArtifactError, match="odd file name"):
        check_name(name)


@pytest.mark.parametrize(
    "name", ["model.joblib", "a", "A-1_b.c", "x" * 128, "model..joblib", "a.."]
)
def test_plain_names_are_accepted(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize("name", ["-rf", "model.joblib~", "model joblib", "modèle"])
def test_odd_name_on_disk_is_refused_at_listing(artifact: Path, keydir: Path, name: str) -> None:
    (artifact / name).write_bytes(b"x")
    with pytest.raises(safeload.MalformedArtifactError, match="odd file name"):
        safeload.load(artifact, trusted=keydir)


def test_hard_link_to_a_file_outside_is_read_as_the_regular_file_it_is(
    artifact: Path, keydir: Path, tmp_path: Path
) -> None:
    """Layout does not look at link counts: a hard link is a regular file with signed bytes."""
    outside = tmp_path / "outside.joblib"
    os.link(artifact / "model.joblib", outside)
    assert os.stat(artifact / "model.joblib").st_nlink == 2
    assert safeload.verify_artifact(artifact, trusted=keydir).format == "joblib"


# --- limits --------------------------------------------------------------------------------


def test_more_entries_than_the_limit_are_refused(artifact: Path) -> None:
    with pytest.raises(safeload.MalformedArtifactError, match="more than 2 entries"):
        ArtifactDir(artifact, ReadLimits(max_files=2))
    ArtifactDir(artifact, ReadLimits(max_files=3)).close()
    (artifact / "extra").write_bytes(b"x")
    with pytest.raises(safeload.MalformedArtifactError, match="more than 3 entries"):
        ArtifactDir(artifact, ReadLimits(max_files=3))


@pytest.mark.parametrize(
    ("limits", "name"),
    [
        (ReadLimits(max_model_bytes=100), "model.joblib"),
        (ReadLimits(max_metadata_bytes=100), "safeload.json"),
        (ReadLimits(max_signature_bytes=100), "model.sig"),
    ],
)
def test_file_over_its_size_limit_is_refused_before_reading(
    artifact: Path, keydir: Path, limits: ReadLimits, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_deserializing(monkeypatch)
    with pytest.raises(safeload.MalformedArtifactError, match=rf"{name} .*over the 100-byte limit"):
        safeload.load(artifact, trusted=keydir, read_limits=limits)


# --- decisions that mutation testing found unpinned (mutmut, see docs/architecture.md) ---
FILES = {"model.joblib": b"m" * 10, "safeload.json": b"j" * 20, "model.sig": b"s" * 30}


def _artifact(tmp_path: Path, files: dict[str, bytes] = FILES) -> Path:
    folder = tmp_path / "artifact"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_entry_count_limit_is_inclusive(tmp_path: Path) -> None:
    folder = _artifact(tmp_path)
    with ArtifactDir(folder, ReadLimits(max_files=3)) as artifact:
        assert artifact.sizes == {name: len(data) for name, data in FILES.items()}
    with pytest.raises(MalformedArtifactError, match="more than 2 entries"):
        ArtifactDir(folder, ReadLimits(max_files=2))


def test_default_entry_count_limit_is_16(tmp_path: Path) -> None:
    folder = _artifact(tmp_path, {f"f{i:02d}": b"" for i in range(16)})
    ArtifactDir(folder).close()
    (folder / "f16").write_bytes(b"")
    with pytest.raises(MalformedArtifactError, match="more than 16 entries"):
        ArtifactDir(folder)


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("model.sig", "max_signature_bytes"),
        ("safeload.json", "max_metadata_bytes"),
        ("model.joblib", "max_model_bytes"),
    ],
)
def test_each_file_is_read_within_its_own_limit(tmp_path: Path, name: str, field: str) -> None:
    """The limit that applies is the one for that file, and a file of exactly it is read."""
    size = len(FILES[name])
    roomy = {"max_signature_bytes": 100, "max_metadata_bytes": 100, "max_model_bytes": 100}
    folder = _artifact(tmp_path)
    with ArtifactDir(folder, ReadLimits(**{**roomy, field: size})) as artifact:
        assert bytes(artifact.read(name)) == FILES[name]
    with ArtifactDir(folder, ReadLimits(**{**roomy, field: size - 1})) as artifact:
        with pytest.raises(MalformedArtifactError, match=f"over the {size - 1}-byte limit"):
            artifact.read(name)


def test_default_read_limits() -> None:
    limits = ReadLimits()
    assert limits.max_signature_bytes == 1 << 20
    assert limits.max_metadata_bytes == 16 << 20
    assert limits.max_model_bytes == 64 << 30


def test_read_all_reads_every_file_but_the_signature(tmp_path: Path) -> None:
    with ArtifactDir(_artifact(tmp_path)) as artifact:
        buffers, digests = artifact.read_all(Hashing())
    assert sorted(buffers) == ["model.joblib", "safeload.json"]
    assert sorted(digests) == ["model.joblib", "safeload.json"]


def test_missing_signature_is_unsigned(tmp_path: Path) -> None:
    folder = _artifact(tmp_path, {k: v for k, v in FILES.items() if k != "model.sig"})
    with ArtifactDir(folder) as artifact:
        with pytest.raises(UnsignedArtifactError):
            artifact.require_signature()
    with ArtifactDir(_artifact(tmp_path / "signed")) as artifact:
        artifact.require_signature()


@pytest.mark.parametrize("models", [[], ["model.joblib", "model.skops"]], ids=["none", "both"])
def test_exactly_one_model_file(tmp_path: Path, models: list[str]) -> None:
    files = {"safeload.json": b"{}", "model.sig": b"", **{m: b"" for m in models}}
    with ArtifactDir(_artifact(tmp_path, files)) as artifact:
        with pytest.raises(MalformedArtifactError, match="exactly one of"):
            artifact.model_file()


@pytest.mark.parametrize(("model", "fmt"), [("model.joblib", "joblib"), ("model.skops", "skops")])
def test_model_file_names_its_format(tmp_path: Path, model: str, fmt: str) -> None:
    files = {"safeload.json": b"{}", "model.sig": b"", model: b""}
    with ArtifactDir(_artifact(tmp_path, files)) as artifact:
        assert artifact.model_file() == (fmt, model)


def test_symlink_entry_is_refused_when_listing(tmp_path: Path) -> None:
    folder = _artifact(tmp_path)
    (tmp_path / "elsewhere").write_bytes(b"x")
    (folder / "extra").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(MalformedArtifactError, match="is a symlink"):
        ArtifactDir(folder)


def test_fifo_entry_is_refused_when_listing(tmp_path: Path) -> None:
    folder = _artifact(tmp_path)
    os.mkfifo(folder / "pipe")
    with pytest.raises(MalformedArtifactError, match="not a regular file"):
        ArtifactDir(folder)


def test_artifact_path_kinds(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError):
        ArtifactDir(tmp_path / "nothing")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(MalformedArtifactError, match="not an artifact directory"):
        ArtifactDir(tmp_path / "file")
    (tmp_path / "link").symlink_to(_artifact(tmp_path))
    with pytest.raises(MalformedArtifactError, match="is a symlink"):
        ArtifactDir(tmp_path / "link")


def test_bare_model_file_limit_is_inclusive(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"x" * 10)
    assert bytes(read_model_file(path, limit=10)) == b"x" * 10
    with pytest.raises(MalformedArtifactError, match="over the 9-byte limit"):
        read_model_file(path, limit=9)


def test_read_limits_reach_the_load_gate(artifact: Path, keydir: Path) -> None:
    """``safeload.load(read_limits=...)`` bounds the model file before it is read."""
    size = (artifact / "model.joblib").stat().st_size
    with pytest.raises(MalformedArtifactError, match="limit"):
        safeload.load(artifact, trusted=keydir, read_limits=ReadLimits(max_model_bytes=size - 1))


@pytest.mark.parametrize("change", ["shrinks", "grows"])
@pytest.mark.parametrize("shard_size", [None, 8])
def test_a_file_that_changes_size_while_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str, shard_size: int | None
) -> None:
    """Read in 4-byte chunks; after the first chunk the file is truncated or appended to."""
    monkeypatch.setattr(layout, "_CHUNK", 4)
    path = tmp_path / "f"
    path.write_bytes(b"x" * 16)

    def meddle(done: int, total: int) -> None:
        if done == 4:
            with path.open("r+b") as handle:
                if change == "shrinks":
                    handle.truncate(6)
                else:
                    handle.seek(0, os.SEEK_END)
                    handle.write(b"more")

    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(MalformedArtifactError, match="changed size while it was being read"):
            read_fd(fd, "f", 1 << 20, scheme=Hashing(shard_size=shard_size), progress=meddle)
    finally:
        os.close(fd)
