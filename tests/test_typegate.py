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
