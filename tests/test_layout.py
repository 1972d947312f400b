"""Step 1 at unit level: names, entry kinds, counts and size limits of an artifact directory.

Each limit is checked at its boundary (the limit itself passes, one more is refused), so that a
limit loosened or tightened by one fails a test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import safeload
from safeload import layout
from safeload.errors import ArtifactNotFoundError, MalformedArtifactError, UnsignedArtifactError
from safeload.layout import ArtifactDir, ReadLimits, check_name, read_fd, read_model_file

FILES = {"model.joblib": b"m" * 10, "safeload.json": b"j" * 20, "model.sig": b"s" * 30}


def _artifact(tmp_path: Path, files: dict[str, bytes] = FILES) -> Path:
    folder = tmp_path / "artifact"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize(
    "name", ["", ".", "..", ".hidden", "a/b", "a\\b", "-rf", "_x", "a" * 129, "é.txt", "a b"]
)
def test_odd_names_are_refused(name: str) -> None:
    with pytest.raises(MalformedArtifactError, match="odd file name"):
        check_name(name)


@pytest.mark.parametrize("name", ["model.joblib", "a", "A-1_b.c", "a" * 128, "a.."])
def test_plain_names_are_accepted(name: str) -> None:
    check_name(name)


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
        buffers, digests = artifact.read_all(None)
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
            read_fd(fd, "f", 1 << 20, shard_size=shard_size, progress=meddle)
    finally:
        os.close(fd)
