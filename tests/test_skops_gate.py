"""The skops gate (``safeload.typegate.skops``) at unit level: zip limits, and which (loader,
type) pairs pass without the policy."""

from __future__ import annotations

import io
import warnings
import zipfile

import pytest

from safeload.errors import MalformedArtifactError
from safeload.policy import TypePolicy
from safeload.typegate import ScanLimits
from safeload.typegate.skops import SkopsNode, check_zip, untrusted_skops_types

EMPTY = TypePolicy.of([])


@pytest.mark.parametrize(
    "type_name", [("numpy", "ndarray"), ("numpy", "float64"), ("numpy", "int8")]
)
def test_arrays_and_numpy_scalars_need_no_policy_entry(type_name: tuple[str, str]) -> None:
    assert untrusted_skops_types([SkopsNode("NdArrayNode", type_name)], EMPTY) == []


@pytest.mark.parametrize(
    "type_name",
    [("os", "system"), ("numpy", "load"), ("numpy", "ndarray.tofile"), ("builtins", "eval")],
)
def test_an_array_node_naming_any_other_type_needs_the_policy(type_name: tuple[str, str]) -> None:
    """The exemption is for the array loader with numpy's own array or scalar types only."""
    name = ".".join(type_name)
    assert untrusted_skops_types([SkopsNode("NdArrayNode", type_name)], EMPTY) == [name]
    allowed = TypePolicy.of([f"{type_name[0]}:{type_name[1]}"], unsafe=True)
    assert untrusted_skops_types([SkopsNode("NdArrayNode", type_name)], allowed) == []


@pytest.mark.parametrize("kind", ["ObjectNode", "ReduceNode", "TypeNode"])
def test_numpy_types_through_other_loaders_need_the_policy(kind: str) -> None:
    found = [SkopsNode(kind, ("numpy", "ndarray")), SkopsNode(kind, ("numpy", "float64"))]
    assert untrusted_skops_types(found, EMPTY) == ["numpy.float64", "numpy.ndarray"]


def test_container_loaders_pass_only_their_own_type() -> None:
    assert untrusted_skops_types([SkopsNode("DictNode", ("builtins", "dict"))], EMPTY) == []
    assert untrusted_skops_types([SkopsNode("DictNode", ("os", "system"))], EMPTY) == ["os.system"]


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_zip_entry_count_limit_is_inclusive() -> None:
    data = _zip({"schema.json": b"{}", "a.npy": b"", "b.npy": b""})
    check_zip(data, ScanLimits(max_zip_entries=3))
    with pytest.raises(MalformedArtifactError, match="3 entries, over the limit of 2"):
        check_zip(data, ScanLimits(max_zip_entries=2))


def test_zip_total_size_limit_is_inclusive() -> None:
    data = _zip({"schema.json": b"{}", "a.npy": b"x" * 98})
    check_zip(data, ScanLimits(max_decompressed_bytes=100))
    with pytest.raises(MalformedArtifactError, match="expands to 100 bytes, over the limit of 99"):
        check_zip(data, ScanLimits(max_decompressed_bytes=99))


def test_zip_ratio_is_enforced_above_the_floor_only() -> None:
    floor = 1000
    limits = ScanLimits(max_ratio=10, ratio_floor_bytes=floor)
    check_zip(_zip({"schema.json": b"{}", "a.npy": bytes(floor)}, zipfile.ZIP_DEFLATED), limits)
    bomb = _zip({"schema.json": b"{}", "a.npy": bytes(floor + 1)}, zipfile.ZIP_DEFLATED)
    with pytest.raises(MalformedArtifactError, match="decompression bomb"):
        check_zip(bomb, limits)
    # Stored (ratio 1) above the floor is fine.
    check_zip(_zip({"schema.json": b"{}", "a.npy": bytes(floor + 1)}), limits)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"schema.json": b"{}", "../x": b""}, "odd or duplicate entry name"),
        ({"schema.json": b"{}", ".hidden": b""}, "odd or duplicate entry name"),
        ({"a.npy": b""}, "no schema.json"),
    ],
)
def test_zip_names_are_checked(entries: dict[str, bytes], message: str) -> None:
    with pytest.raises(MalformedArtifactError, match=message):
        check_zip(_zip(entries), ScanLimits())


def test_duplicate_zip_entry_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        archive.writestr("schema.json", b"{}")
        archive.writestr("schema.json", b"{}")
    with pytest.raises(MalformedArtifactError, match="odd or duplicate entry name"):
        check_zip(out.getvalue(), ScanLimits())


def test_not_a_zip_is_malformed() -> None:
    with pytest.raises(MalformedArtifactError, match="not a valid zip archive"):
        check_zip(b"PK\x03\x04 not really", ScanLimits())


def test_a_name_only_skops_asks_for_must_be_a_policy_name() -> None:
    """A Generator's bit generator is named only in its state: skops' audit asks for it."""
    import json

    import numpy as np
    import skops.io

    from safeload.typegate import scan_bytes
    from tests.helpers import edit_skops_schema

    def rename(schema: dict[str, object]) -> None:
        state = schema["content"]["g"]["content"]["bit_generator"]  # type: ignore[index]
        state["content"]["bit_generator"]["content"] = json.dumps("RandomState")

    data = edit_skops_schema(skops.io.dumps({"g": np.random.default_rng(0)}), rename)
    assert skops.io.get_untrusted_types(data=data) == ["numpy.random.RandomState"]
    report = scan_bytes(data, policy=TypePolicy.default())
    assert not report.safe
    assert "numpy.random.RandomState" in report.untrusted
