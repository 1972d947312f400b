"""LoadOptions: one object for the load-time knobs, accepted by every entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.pipeline import Pipeline

import safeload

ONE_ENTRY = safeload.ScanLimits(max_zip_entries=1)
TINY_FILES = safeload.ReadLimits(max_model_bytes=10)


@pytest.fixture
def skops_store(tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey) -> Path:
    safeload.Store(tmp_path).save(pipeline, "iris", "1.0.0", key=key, format="skops")
    return tmp_path


@pytest.fixture
def ring(key: safeload.SigningKey) -> safeload.Keyring:
    return safeload.Keyring.of([key])


def test_defaults_are_the_documented_ones() -> None:
    options = safeload.LoadOptions()
    assert options.versions == "warn"
    assert options.read_limits == safeload.ReadLimits()
    assert options.scan_limits == safeload.ScanLimits()
    assert options.types == safeload.TypePolicy.default()


def test_unknown_version_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="versions must be one of"):
        safeload.LoadOptions(versions="sometimes")


def test_extra_names_extend_the_default_policy() -> None:
    options = safeload.LoadOptions(policy=["mylib.features:TextCleaner"])
    assert options.types.allows("mylib.features", "TextCleaner")
    assert options.types.allows("sklearn.preprocessing._data", "StandardScaler")


@pytest.mark.parametrize("entry", ["load", "load_artifact", "verify_artifact", "inspect"])
def test_scan_limits_from_options_bound_every_entry_point(
    skops_store: Path, ring: safeload.Keyring, entry: str
) -> None:
    path = skops_store / "iris" / "1.0.0"
    options = safeload.LoadOptions(scan_limits=ONE_ENTRY)
    if entry == "inspect":
        report = safeload.inspect(path, trusted=ring, options=options)
        assert report.verdict == "refused"
        assert any("over the limit of 1" in r for r in report.reasons), report.reasons
        assert safeload.inspect(path, trusted=ring).verdict == "verified"
        return
    with pytest.raises(safeload.MalformedArtifactError, match="over the limit of 1"):
        getattr(safeload, entry)(path, trusted=ring, options=options)
    getattr(safeload, entry)(path, trusted=ring)  # the refusal was the limit's


@pytest.mark.parametrize("entry", ["load", "verify_artifact", "inspect"])
def test_read_limits_from_options_bound_every_entry_point(
    skops_store: Path, ring: safeload.Keyring, entry: str
) -> None:
    path = skops_store / "iris" / "1.0.0"
    options = safeload.LoadOptions(read_limits=TINY_FILES)
    if entry == "inspect":
        report = safeload.inspect(path, trusted=ring, options=options)
        assert report.verdict != "verified" and report.reasons
        return
    with pytest.raises(safeload.SafeloadError, match="limit"):
        getattr(safeload, entry)(path, trusted=ring, options=options)


def test_store_takes_options_and_a_load_may_override_them(
    skops_store: Path, ring: safeload.Keyring
) -> None:
    """Store and inspect used to accept no limits at all."""
    strict = safeload.Store(skops_store, options=safeload.LoadOptions(scan_limits=ONE_ENTRY))
    with pytest.raises(safeload.MalformedArtifactError, match="over the limit of 1"):
        strict.load("iris", trusted=ring)
    with pytest.raises(safeload.MalformedArtifactError, match="over the limit of 1"):
        safeload.Store(skops_store).load("iris", trusted=ring, scan_limits=ONE_ENTRY)
    assert strict.load("iris", trusted=ring, scan_limits=safeload.ScanLimits()) is not None
    assert strict.load("iris", trusted=ring, options=safeload.LoadOptions()) is not None


def test_a_keyword_wins_over_the_same_option(skops_store: Path, ring: safeload.Keyring) -> None:
    path = skops_store / "iris" / "1.0.0"
    options = safeload.LoadOptions(scan_limits=ONE_ENTRY, versions="strict")
    assert safeload.load(path, trusted=ring, options=options, scan_limits=safeload.ScanLimits())
    with pytest.raises(safeload.MalformedArtifactError, match="over the limit of 1"):
        safeload.load(path, trusted=ring, scan_limits=ONE_ENTRY, options=safeload.LoadOptions())


def test_version_policy_from_options(
    skops_store: Path, ring: safeload.Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safeload import loading

    monkeypatch.setattr(loading, "running_sklearn_version", lambda: "0.0.1")
    path = skops_store / "iris" / "1.0.0"
    with pytest.raises(safeload.ContractError, match="saved with scikit-learn"):
        safeload.load(path, trusted=ring, options=safeload.LoadOptions(versions="strict"))
    with pytest.warns(safeload.VersionMismatchWarning):
        safeload.load(path, trusted=ring, options=safeload.LoadOptions())
    safeload.load(path, trusted=ring, options=safeload.LoadOptions(), versions="ignore")
