"""The collector pause around save and load leaves the process as it found it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

import safeload
from safeload.gcpause import paused_gc


def test_collector_is_off_inside_and_restored_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_the_caller_disabled_stays_disabled() -> None:
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_save_and_a_refused_load_restore_the_collector(
    artifact: Path, keydir: Path, tmp_path: Path
) -> None:
    (artifact / "safeload.json").write_bytes(b"{}")  # tampered: the load is refused
    with pytest.raises(safeload.TamperedArtifactError):
        safeload.load(artifact, trusted=keydir)
    assert gc.isenabled()
    key = safeload.load_signing_key(keydir / "trainer.key")
    safeload.save({"a": [1, 2]}, tmp_path / "m" / "1.0", key=key)
    assert gc.isenabled()


def test_metadata_records_the_versions_of_the_running_modules() -> None:
    import joblib
    import numpy
    import sklearn

    from safeload.metadata import library_versions

    versions = library_versions()
    assert versions["scikit-learn"] == sklearn.__version__
    assert versions["numpy"] == numpy.__version__
    assert versions["joblib"] == joblib.__version__
    assert versions["safeload"] == safeload.__version__
