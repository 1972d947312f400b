"""The type gate's one door (step 4): every caller gets the same verdict for the same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.pipeline import Pipeline

import safeload
from safeload.typegate import ScanLimits

ONE_ENTRY = ScanLimits(max_zip_entries=1)


@pytest.fixture
def skops_artifact(tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey) -> Path:
    return safeload.save(pipeline, tmp_path / "m" / "1", key=key, format="skops")


def test_scan_bytes_applies_the_callers_zip_limit(skops_artifact: Path) -> None:
    data = (skops_artifact / "model.skops").read_bytes()
    report = safeload.scan_bytes(data, limits=ONE_ENTRY)
    assert not report.safe
    assert any("over the limit of 1" in p for p in report.problems), report.problems


def test_load_applies_the_callers_zip_limit(skops_artifact: Path, key: safeload.SigningKey) -> None:
    """Regression: the load path used skops' own defaults and ignored ``scan_limits``."""
    trusted = safeload.Keyring.of([key])
    with pytest.raises(safeload.MalformedArtifactError, match="over the limit of 1"):
        safeload.load(skops_artifact, trusted=trusted, scan_limits=ONE_ENTRY)
    # The same artifact loads under the default limits: the refusal is the limit's.
    assert safeload.load(skops_artifact, trusted=trusted).predict is not None


def test_verify_and_load_file_apply_the_callers_zip_limit(
    skops_artifact: Path, key: safeload.SigningKey
) -> None:
    trusted = safeload.Keyring.of([key])
    with pytest.raises(safeload.MalformedArtifactError, match="over the limit of 1"):
        safeload.verify_artifact(skops_artifact, trusted=trusted, scan_limits=ONE_ENTRY)
    with (
        pytest.raises(safeload.MalformedArtifactError, match="over the limit of 1"),
        pytest.warns(safeload.UnsafeUnsignedLoadWarning),
    ):
        safeload.load_file(
            skops_artifact / "model.skops", unsafe_allow_unsigned=True, scan_limits=ONE_ENTRY
        )


# --- one door: every entry point reaches step 4 through typegate._examine --------------------


@pytest.fixture
def door(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The declared formats every pass through the door was made with."""
    from safeload import typegate

    passes: list[str | None] = []
    real = typegate._examine

    def spy(*args: object) -> object:
        passes.append(args[-1])  # type: ignore[arg-type]
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(typegate, "_examine", spy)
    return passes


def test_every_entry_point_passes_through_the_one_door(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, door: list[str | None]
) -> None:
    import joblib

    from safeload._cli import main
    from safeload.saving import sign_directory

    trusted = safeload.Keyring.of([key])
    for fmt in ("joblib", "skops"):
        artifact = safeload.save(pipeline, tmp_path / fmt / "1", key=key, format=fmt)
        assert door and door[-1] == fmt, f"save ({fmt}) bypassed the door"
        for entry in (safeload.load, safeload.verify_artifact, safeload.inspect):
            door.clear()
            entry(artifact, trusted=trusted)
            assert door == [fmt], f"{entry.__name__} ({fmt}) bypassed the door: {door}"
        door.clear()
        (artifact / "model.sig").unlink()
        sign_directory(artifact, key=key)
        assert door == [fmt], "sign bypassed the door"
    bare = tmp_path / "bare.joblib"
    joblib.dump(pipeline, bare)
    door.clear()
    safeload.scan(bare)
    assert door == [None], "scan bypassed the door"
    door.clear()
    assert main(["scan", str(bare), "--json"]) == 0
    assert door == [None], "the scan verb bypassed the door"
    door.clear()
    safeload.convert(bare, tmp_path / "converted" / "1", key=key, sample=None)
    # the joblib source, the converted bytes, and save's own check of what it writes
    assert door == ["joblib", "skops", "skops"], "convert bypassed the door"
