"""safeload.store: a folder of versioned artifacts, ``root/<name>/<version>/``.

The basics (listing, ``1.10.0`` after ``1.9.0``, latest, rollback and swap refused) are also
exercised end to end in ``tests/test_contract.py``; this module pins the Store's own contract.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

import safeload


@pytest.fixture
def ring(key: safeload.SigningKey) -> safeload.Keyring:
    return safeload.Keyring.of([key])


def _folders(root: Path, *paths: str) -> safeload.Store:
    """A store whose version folders are empty: enough for listing and resolving."""
    for path in paths:
        (root / path).mkdir(parents=True)
    return safeload.Store(root)


# -- listing and ordering -----------------------------------------------------------------------


def test_empty_or_missing_root_lists_nothing(tmp_path: Path) -> None:
    assert safeload.Store(tmp_path / "absent").names() == []
    assert safeload.Store(tmp_path).names() == []
    assert safeload.Store(tmp_path).versions("iris") == []


def test_versions_are_ordered_as_versions_not_strings(tmp_path: Path) -> None:
    shuffled = ["1.10.0", "1.2.0", "2.0.0", "1.9.0", "1.0.0rc1", "0.9", "1.0.0", "10.0.0"]
    store = _folders(tmp_path, *(f"iris/{v}" for v in shuffled))
    assert store.versions("iris") == [
        "0.9",
        "1.0.0rc1",
        "1.0.0",
        "1.2.0",
        "1.9.0",
        "1.10.0",
        "2.0.0",
        "10.0.0",
    ]
    assert store.resolve("iris") == "10.0.0"
    assert store.resolve("iris", "latest") == "10.0.0"


def test_a_folder_that_is_no_version_never_becomes_latest(tmp_path: Path) -> None:
    store = _folders(tmp_path, "iris/nightly", "iris/1.0.0", "iris/zzz-experiment")
    assert store.versions("iris")[-1] == "1.0.0"
    assert store.resolve("iris") == "1.0.0"


def test_hidden_partial_and_symlinked_folders_are_not_listed(tmp_path: Path) -> None:
    store = _folders(tmp_path, "iris/1.0.0", "iris/.2.0.0.abc123.partial", ".trash/1.0.0")
    (tmp_path / "README.txt").write_text("not a model")
    (tmp_path / "iris" / "notes.txt").write_text("not a version")
    os.symlink(tmp_path / "iris", tmp_path / "alias")
    os.symlink(tmp_path / "iris" / "1.0.0", tmp_path / "iris" / "9.0.0")
    assert store.names() == ["iris"]
    assert store.versions("iris") == ["1.0.0"]
    assert store.resolve("iris") == "1.0.0"  # an in-progress save is never "latest"


def test_resolve_latest_of_nothing_is_not_found(tmp_path: Path) -> None:
    store = _folders(tmp_path, "iris")
    with pytest.raises(safeload.ArtifactNotFoundError):
        store.resolve("iris")
    with pytest.raises(safeload.ArtifactNotFoundError):
        store.resolve("churn")


def test_resolve_a_concrete_version_returns_it_unchanged(tmp_path: Path) -> None:
    store = _folders(tmp_path, "iris/1.0.0")
    assert store.resolve("iris", "3.1.4") == "3.1.4"  # existence is load's business


# -- names: nothing outside the root ------------------------------------------------------------


ODD = ["..", ".", "../etc", "a/b", "/abs", "a\\b", ".hidden", "", "x" * 129, "sp ace", "nul\0"]


@pytest.mark.parametrize("odd", ODD)
def test_odd_names_and_versions_are_refused_everywhere(
    tmp_path: Path, odd: str, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    store = safeload.Store(tmp_path / "models")
    for call in (
        lambda: store.path(odd, "1.0.0"),
        lambda: store.path("iris", odd),
        lambda: store.versions(odd),
        lambda: store.resolve("iris", odd),
        lambda: store.load(odd, "1.0.0", trusted=ring),
        lambda: store.load("iris", odd, trusted=ring),
        lambda: store.save(pipeline, odd, "1.0.0", key=key),
        lambda: store.save(pipeline, "iris", odd, key=key),
    ):
        with pytest.raises(safeload.MalformedArtifactError):
            call()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written anywhere


def test_latest_is_not_a_version_to_save(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey
) -> None:
    with pytest.raises(ValueError, match="latest"):
        safeload.Store(tmp_path).save(pipeline, "iris", "latest", key=key)
    assert list(tmp_path.iterdir()) == []


def test_only_usable_names_and_versions_are_listed(tmp_path: Path) -> None:
    """Regression: one stray folder ('my model') made versions() raise and `safeload ls` refuse
    the whole listing; an odd one ('v 1') could be resolved as latest."""
    store = _folders(tmp_path, "iris/1.0.0", "iris/v 1", "my model/1.0.0")
    assert store.names() == ["iris"]
    assert store.versions("iris") == ["1.0.0"]
    assert store.resolve("iris") == "1.0.0"
    for name in store.names():
        for version in store.versions(name):
            store.path(name, version)


# -- saving and loading go through the gate -----------------------------------------------------


def test_save_records_the_name_and_version_and_passes_options(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    store = safeload.Store(tmp_path)
    path = store.save(pipeline, "iris", "1.0.0", key=key, format="skops", metrics={"acc": 1.0})
    assert path == tmp_path / "iris" / "1.0.0" == store.path("iris", "1.0.0")
    assert sorted(p.name for p in path.iterdir()) == ["model.sig", "model.skops", "safeload.json"]
    loaded = store.load_artifact("iris", trusted=ring)
    assert loaded.metadata["name"] == "iris" and loaded.metadata["version"] == "1.0.0"
    assert loaded.metadata["format"] == "skops" and loaded.metadata["metrics"] == {"acc": 1.0}


def test_a_version_folder_copied_under_another_version_is_refused(
    tmp_path: Path,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    """A newer artifact planted under an older version's name (the reverse of the rollback test
    in test_contract.py) is refused too, by load and load_artifact alike."""
    store = safeload.Store(tmp_path)
    store.save(pipeline, "iris", "2.0.0", key=key)
    shutil.copytree(store.path("iris", "2.0.0"), store.path("iris", "1.5.0"))
    for call in (
        lambda: store.load("iris", "1.5.0", trusted=ring),
        lambda: store.load_artifact("iris", "1.5.0", trusted=ring),
    ):
        with pytest.raises(safeload.ContractError, match="'2.0.0'"):
            call()
    model = store.load("iris", trusted=ring)  # latest is still the real 2.0.0
    np.testing.assert_array_equal(model.predict(iris[0]), pipeline.predict(iris[0]))


def _tamper(path: Path) -> None:
    data = bytearray((path / "model.joblib").read_bytes())
    data[len(data) // 2] ^= 1
    (path / "model.joblib").write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda p: (p / "model.sig").unlink(), safeload.UnsignedArtifactError),
        (_tamper, safeload.TamperedArtifactError),
        (lambda p: (p / "extra.txt").write_text("x"), safeload.TamperedArtifactError),
    ],
    ids=["unsigned", "tampered", "extra-file"],
)
def test_load_runs_the_full_gate(
    tmp_path: Path,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    damage: Callable[[Path], object],
    error: type[Exception],
) -> None:
    store = safeload.Store(tmp_path)
    path = store.save(pipeline, "iris", "1.0.0", key=key)
    damage(path)
    with pytest.raises(error):
        store.load("iris", trusted=ring)


def test_load_needs_a_trusted_signer(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey
) -> None:
    store = safeload.Store(tmp_path)
    store.save(pipeline, "iris", "1.0.0", key=key)
    stranger = safeload.Keyring.of([safeload.generate_key()])
    with pytest.raises(safeload.UntrustedSignerError):
        store.load("iris", trusted=stranger)


def test_a_concrete_version_that_is_not_there_is_not_found(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    store = safeload.Store(tmp_path)
    store.save(pipeline, "iris", "1.0.0", key=key)
    with pytest.raises(safeload.ArtifactNotFoundError):
        store.load("iris", "1.0.1", trusted=ring)


def test_version_policy_is_passed_through(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    store = safeload.Store(tmp_path)
    store.save(pipeline, "iris", "1.0.0", key=key)
    with pytest.raises(ValueError, match="versions must be"):
        store.load("iris", trusted=ring, versions="sometimes")
