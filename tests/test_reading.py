"""The one reader: load, sign and inspect open an artifact, decide, then read each file once."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest
from sklearn.pipeline import Pipeline

import safeload
from safeload import layout
from safeload.errors import OperationalError
from safeload.manifest import BLAKE3, Hashing
from safeload.reading import read_artifact
from safeload.saving import sign_directory


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Count every file the layout opens inside an artifact, by name."""
    counts: Counter[str] = Counter()
    real = os.open

    def spy(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if kwargs.get("dir_fd") is not None:
            counts[os.fspath(path)] += 1  # type: ignore[arg-type]
        return real(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(layout.os, "open", spy)
    yield counts


FILES = {"model.joblib", "safeload.json", "model.sig"}


def test_load_opens_each_file_exactly_once(
    artifact: Path, key: safeload.SigningKey, opened: Counter[str]
) -> None:
    safeload.load(artifact, trusted=safeload.Keyring.of([key]))
    assert dict(opened) == dict.fromkeys(FILES, 1)


def test_inspect_opens_each_file_exactly_once(
    artifact: Path, key: safeload.SigningKey, opened: Counter[str]
) -> None:
    assert safeload.inspect(artifact, trusted=safeload.Keyring.of([key])).verdict == "verified"
    assert dict(opened) == dict.fromkeys(FILES, 1)


def test_nothing_but_the_signature_is_read_when_the_signer_is_unknown(
    artifact: Path, opened: Counter[str]
) -> None:
    with pytest.raises(safeload.UntrustedSignerError):
        safeload.load(artifact, trusted=safeload.Keyring.of([safeload.generate_key()]))
    assert dict(opened) == {"model.sig": 1}


def test_before_runs_on_the_listing_before_any_file_is_read(
    artifact: Path, opened: Counter[str]
) -> None:
    seen: list[dict[str, int]] = []

    def before(found: layout.ArtifactDir) -> None:
        seen.append(dict(found.sizes))
        assert not opened, "a file was read before the caller decided"
        raise OperationalError("stop here")

    with pytest.raises(OperationalError, match="stop here"):
        read_artifact(artifact, before)
    assert set(seen[0]) == FILES
    assert not opened


def test_files_are_read_with_the_hashing_the_caller_chose(artifact: Path) -> None:
    whole = read_artifact(artifact, lambda _: Hashing())
    sharded = read_artifact(artifact, lambda _: Hashing(shard_size=16))
    blake = read_artifact(artifact, lambda _: Hashing(BLAKE3))
    assert whole.scheme.shard_size is None and sharded.scheme.shard_size == 16
    data = bytes(whole.buffers["model.joblib"])
    assert whole.digests["model.joblib"] == (hashlib.sha256(data).hexdigest(),)
    assert len(sharded.digests["model.joblib"]) == -(-len(data) // 16)
    assert blake.digests["model.joblib"] == (blake3.blake3(data).hexdigest(),)
    assert "model.sig" not in whole.buffers and whole.format == "joblib"


def test_sign_reads_through_the_same_reader(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, opened: Counter[str]
) -> None:
    artifact = safeload.save(pipeline, tmp_path / "a", key=key)
    (artifact / "model.sig").unlink()
    opened.clear()
    sign_directory(artifact, key=key)
    assert dict(opened) == {"model.joblib": 1, "safeload.json": 1}
    with pytest.raises(safeload.ArtifactExistsError, match="already signed"):
        sign_directory(artifact, key=key)
    assert safeload.load(artifact, trusted=safeload.Keyring.of([key])) is not None


def test_a_missing_model_file_is_refused_unless_tolerated(artifact: Path) -> None:
    (artifact / "model.joblib").unlink()
    with pytest.raises(safeload.MalformedArtifactError, match="exactly one of"):
        read_artifact(artifact, lambda _: Hashing())
    files = read_artifact(artifact, lambda _: Hashing(), tolerate_no_model=True)
    assert files.model_name is None and "exactly one of" in str(files.model_problem)
    with pytest.raises(safeload.MalformedArtifactError, match="exactly one of"):
        files.model  # noqa: B018
