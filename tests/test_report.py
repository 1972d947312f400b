"""``safeload.typegate.report`` and ``limits``: the verdict of a scan and the bounds it keeps.

``test_scanning`` checks reports that real scans produce; here the report's own contract:
``safe``, the exception each verdict maps to, the stable ``to_dict`` keys, how
:func:`make_report` sorts, dedups and applies the policy, and that :class:`ScanLimits`' defaults
are the values its docstring documents.
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from safeload.errors import MalformedArtifactError, UntrustedTypeError
from safeload.policy import TypePolicy
from safeload.typegate.limits import ScanLimits
from safeload.typegate.report import ScanReport, make_report

POLICY = TypePolicy.of(["numpy:ndarray", "builtins:dict"])


def report(
    untrusted: tuple[str, ...] = (), problems: tuple[str, ...] = (), path: str | None = None
) -> ScanReport:
    return ScanReport(
        path=path,
        format="joblib",
        compression=None,
        globals=tuple(sorted({"numpy.ndarray", *untrusted})),
        untrusted=untrusted,
        problems=problems,
    )


def test_safe_only_without_untrusted_names_and_problems() -> None:
    assert report().safe
    assert not report(untrusted=("os.system",)).safe
    assert not report(problems=("truncated",)).safe
    report().raise_if_unsafe()  # nothing to raise


def test_untrusted_names_raise_untrusted_type_error_with_types() -> None:
    with pytest.raises(UntrustedTypeError) as refused:
        report(untrusted=("builtins.eval", "os.system"), path="m/model.joblib").raise_if_unsafe()
    assert refused.value.types == ("builtins.eval", "os.system")
    assert "m/model.joblib" in str(refused.value)
    assert "Other problems" not in str(refused.value)


def test_problems_alone_raise_malformed_artifact_error() -> None:
    with pytest.raises(MalformedArtifactError) as refused:
        report(problems=("first problem.", "second problem.")).raise_if_unsafe()
    assert not isinstance(refused.value, UntrustedTypeError)
    message = str(refused.value)
    assert message.startswith("The model stream was refused by the static scan")
    assert "first problem. second problem." in message


def test_both_raise_the_untrusted_error_carrying_the_problems() -> None:
    with pytest.raises(UntrustedTypeError) as refused:
        report(untrusted=("os.system",), problems=("bytes after STOP.",)).raise_if_unsafe()
    assert refused.value.types == ("os.system",)
    assert "Other problems: bytes after STOP." in str(refused.value)


def test_to_dict_has_stable_keys_and_is_json() -> None:
    doc = report(untrusted=("os.system",), problems=("p",), path="x.pkl").to_dict()
    assert list(doc) == [
        "path",
        "format",
        "compression",
        "safe",
        "globals",
        "untrusted",
        "problems",
    ]
    assert doc["safe"] is False
    assert doc["globals"] == ["numpy.ndarray", "os.system"]
    assert isinstance(doc["untrusted"], list) and isinstance(doc["problems"], list)
    assert json.loads(json.dumps(doc)) == doc


def test_make_report_sorts_dedups_and_applies_the_policy() -> None:
    names = [("os", "system"), ("numpy", "ndarray"), ("os", "system"), ("builtins", "eval")]
    names += [("builtins", "dict"), ("numpy", "ndarray")]
    made = make_report(
        path="f.pkl",
        fmt="pickle",
        compression="zlib",
        policy=POLICY,
        names=iter(names),
        problems=iter(["z first", "a second"]),
    )
    assert made.globals == ("builtins.dict", "builtins.eval", "numpy.ndarray", "os.system")
    assert made.untrusted == ("builtins.eval", "os.system")
    assert made.problems == ("z first", "a second")  # the order found, not sorted
    assert (made.path, made.format, made.compression) == ("f.pkl", "pickle", "zlib")
    assert not made.safe


def test_make_report_trusts_by_exact_name_only() -> None:
    reexport = ("numpy", "os.system")  # an allowlisted module re-exporting a dangerous name
    made = make_report(path=None, fmt="pickle", compression=None, policy=POLICY, names=[reexport])
    assert made.untrusted == ("numpy.os.system",)
    clean = make_report(path=None, fmt="pickle", compression=None, policy=POLICY)
    assert clean.safe and clean.globals == () and clean.untrusted == ()


def test_report_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        report().untrusted = ("os.system",)  # type: ignore[misc]


# --- ScanLimits -------------------------------------------------------------------------------


def test_every_limit_is_documented() -> None:
    doc = ScanLimits.__doc__ or ""
    for field in dataclasses.fields(ScanLimits):
        assert re.search(rf"^\s+{field.name}: ", doc, re.M), field.name


def test_defaults_match_what_the_docstring_says() -> None:
    limits = ScanLimits()
    doc = " ".join((ScanLimits.__doc__ or "").split())
    assert "accept multi-gigabyte models" in doc
    assert limits.max_array_bytes >= 1 << 30 and limits.max_decompressed_bytes >= 1 << 30
    # "no model nests this deep", "A legitimate file spends about one step per key": the
    # second wall's own safety nets are documented as the same values
    from safeload import _unpickle_budget

    assert limits.max_depth == _unpickle_budget._MAX_DEPTH == 1000
    assert limits.max_hash_work == _unpickle_budget._MAX_HASH_WORK
    # "Real models compress less than 20x ... zlib reaches ~1032x and lz4 ~255x"
    assert 20 < limits.max_ratio < 255
    assert "stops after about ``ratio_floor_bytes``" in doc
    assert limits.ratio_floor_bytes == 16 << 20
    assert limits.max_string_bytes == 64 * 1024
    assert limits.max_seconds > 0 and limits.max_nesting > 0
    assert ScanLimits() == limits  # plain values: equal limits compare equal


def test_limits_are_frozen_and_overridable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ScanLimits().max_depth = 5  # type: ignore[misc]
    lowered = dataclasses.replace(ScanLimits(), max_zip_entries=10)
    assert lowered.max_zip_entries == 10 and lowered.max_depth == ScanLimits().max_depth
