"""The type gate's one door (step 4): every caller gets the same verdict for the same bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

import safeload
from safeload.policy import TypePolicy
from safeload.typegate import ScanLimits, check_types
from safeload.typegate.compression import decompress
from tests.helpers import joblib_bytes
from tests.malicious import malicious_joblib

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
        passes.append(args[4])  # type: ignore[arg-type]
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


# -- check_types at unit level: which scan a file gets, what passes on -------------------------


@pytest.fixture(scope="module")
def skops_bytes(pipeline: Pipeline) -> bytes:
    import skops.io

    return skops.io.dumps(pipeline)


def test_a_bare_zip_is_scanned_as_skops_and_keeps_its_bytes(skops_bytes: bytes) -> None:
    checked = check_types(skops_bytes, TypePolicy.default())
    assert checked.format == "skops"
    assert checked.report.format == "skops"
    assert bytes(checked.payload) == skops_bytes
    from skops.io import get_untrusted_types

    assert checked.skops_trusted == tuple(sorted(get_untrusted_types(data=skops_bytes)))


def test_the_declared_format_wins_over_the_magic(skops_bytes: bytes) -> None:
    """A file declared joblib is scanned as a pickle even if it starts like a zip."""
    with pytest.raises(safeload.MalformedArtifactError):
        check_types(skops_bytes, TypePolicy.default(), format="joblib")
    with pytest.raises(safeload.MalformedArtifactError, match="zip"):
        check_types(joblib_bytes([1]), TypePolicy.default(), format="skops")


@pytest.mark.parametrize("compress", [0, 3])
def test_a_joblib_file_passes_on_its_decompressed_stream(compress: int) -> None:
    data = joblib_bytes({"a": [1, 2]}, compress=compress)
    checked = check_types(data, TypePolicy.default())
    assert checked.format == "joblib"
    assert checked.skops_trusted == ()
    assert (checked.report.compression is None) == (compress == 0)
    assert bytes(checked.payload) == (data if compress == 0 else decompress(data)[1])
    assert checked.report.safe


def test_untrusted_types_are_refused_in_either_format(skops_bytes: bytes, tmp_path: Path) -> None:
    with pytest.raises(safeload.UntrustedTypeError):
        check_types(malicious_joblib(tmp_path / "PWNED"), TypePolicy.default())
    with pytest.raises(safeload.UntrustedTypeError):
        check_types(skops_bytes, TypePolicy.of(["builtins:dict"]))
    assert not (tmp_path / "PWNED").exists()


def test_default_limits_apply_when_none_are_given(skops_bytes: bytes) -> None:
    """No limits means ScanLimits(), not no limits: the default ratio floor still holds."""
    bomb = joblib_bytes(bytes(64 << 20), compress=("zlib", 9))
    assert len(bomb) < (64 << 20) // 200
    with pytest.raises(safeload.MalformedArtifactError, match="ratio"):
        check_types(bomb, TypePolicy.default())


def test_the_callers_policy_decides_for_joblib_files() -> None:
    """A policy narrower than the default refuses what the default would accept."""
    data = joblib_bytes(np.arange(3))
    assert check_types(data, TypePolicy.default()).report.safe
    with pytest.raises(safeload.UntrustedTypeError):
        check_types(data, TypePolicy.of(["builtins:dict"]))


def test_the_callers_limits_bound_the_pickle_scan() -> None:
    data = joblib_bytes({"a": list(range(100))})
    check_types(data, TypePolicy.default())
    with pytest.raises(safeload.MalformedArtifactError, match="max_opcodes"):
        check_types(data, TypePolicy.default(), limits=ScanLimits(max_opcodes=10))


def test_the_callers_limits_bound_decompression() -> None:
    data = joblib_bytes(bytes(1 << 20), compress=3)
    check_types(data, TypePolicy.default())
    with pytest.raises(safeload.MalformedArtifactError, match="max_decompressed_bytes"):
        check_types(data, TypePolicy.default(), limits=ScanLimits(max_decompressed_bytes=4096))
