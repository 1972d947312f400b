"""skops' construction from the scan's plan: arrays straight from the verified buffer."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.neighbors import KNeighborsClassifier

import safeload
from safeload import _skops_load, _unpickle
from safeload.errors import MalformedArtifactError
from safeload.policy import TypePolicy
from safeload.typegate import check_types
from safeload.typegate.limits import ScanLimits
from safeload.typegate.skops import open_zip
from tests.helpers import edit_skops_schema

DEFAULT = TypePolicy.default()


def _knn() -> KNeighborsClassifier:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    return KNeighborsClassifier(algorithm="brute").fit(X, (X[:, 0] > 0).astype(int))


def test_arrays_come_from_the_verified_buffer_writable_and_equal(
    tmp_path: Path, key: safeload.SigningKey
) -> None:
    model = _knn()
    path = safeload.save(model, tmp_path / "m", key=key, format="skops")
    loaded = safeload.load(path, trusted=safeload.Keyring.of([key]))
    np.testing.assert_array_equal(loaded._fit_X, model._fit_X)
    assert loaded._fit_X.flags.writeable and loaded._fit_X.flags.aligned
    np.testing.assert_array_equal(loaded.predict(model._fit_X), model.predict(model._fit_X))


def test_a_tampered_array_byte_is_refused_before_the_direct_path(
    tmp_path: Path, key: safeload.SigningKey
) -> None:
    """Zip CRCs are not checked on this path: the signed manifest hash is what refuses."""
    model = _knn()
    path = safeload.save(model, tmp_path / "m", key=key, format="skops")
    data = bytearray((path / "model.skops").read_bytes())
    _, _, spans = open_zip(memoryview(data), ScanLimits())
    arrays = [span for name, span in spans.items() if name.endswith(".npy")]
    _, end = max(arrays, key=lambda span: span[1] - span[0])  # _fit_X
    data[end - 8] ^= 0x40  # a float of the array, not its header
    (path / "model.skops").write_bytes(bytes(data))
    with pytest.raises(safeload.RefusedError):
        safeload.load(path, trusted=safeload.Keyring.of([key]))


def _shared_entry_file() -> bytes:
    """A skops dict whose bytes value names the ``.npy`` entry of its array value."""
    data = skops.io.dumps({"array": np.arange(6.0), "raw": b"xyz"})

    def share(schema: dict[str, Any]) -> None:
        content = schema["content"]
        content["raw"]["file"] = content["array"]["file"]

    return edit_skops_schema(data, share)


def test_an_entry_another_loader_reads_is_never_handed_out_as_a_marker() -> None:
    data = _shared_entry_file()
    checked = check_types(data, DEFAULT, format="skops")
    assert checked.skops_plan is not None and checked.skops_plan.arrays == frozenset()
    loaded = _unpickle.deserialize_checked(checked, DEFAULT)
    np.testing.assert_array_equal(loaded["array"], np.arange(6.0))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        npy = archive.read(next(n for n in archive.namelist() if n.endswith(".npy")))
    assert loaded["raw"] == npy


def test_a_marker_read_by_another_loader_is_refused() -> None:
    """If a plan ever marked an entry another loader reads, the count of markers refuses it."""
    data = _shared_entry_file()
    checked = check_types(data, DEFAULT, format="skops")
    assert checked.skops_plan is not None
    shared = next(name for name in checked.skops_plan.spans if name.endswith(".npy"))
    wrong = dataclasses.replace(checked.skops_plan, arrays=frozenset({shared}))
    with pytest.raises(MalformedArtifactError, match="did not expect"):
        _skops_load.construct(checked.payload, wrong)


def _npy(array: np.ndarray[Any, Any]) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


@pytest.mark.parametrize(
    "array",
    [np.arange(12.0).reshape(3, 4), np.asfortranarray(np.arange(12).reshape(3, 4)), np.zeros(0)],
)
@pytest.mark.parametrize("shift", [0, 1, 3])
def test_an_npy_entry_reads_as_numpy_loads_it_aligned(
    array: np.ndarray[Any, Any], shift: int
) -> None:
    raw = bytearray(shift) + _npy(array)
    got = _skops_load.npy_array(memoryview(raw)[shift:])
    expected = np.load(io.BytesIO(_npy(array)), allow_pickle=False)
    np.testing.assert_array_equal(got, expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert got.flags.aligned and got.flags.writeable
    assert got.flags.f_contiguous == expected.flags.f_contiguous


@pytest.mark.parametrize("cut", [-1, 1])
def test_an_npy_entry_whose_data_does_not_fill_it_exactly_is_refused(cut: int) -> None:
    raw = _npy(np.arange(4.0))
    raw = raw[:cut] if cut < 0 else raw + bytes(cut)
    with pytest.raises(MalformedArtifactError, match="bytes of data"):
        _skops_load.npy_array(memoryview(raw))


def test_an_npy_entry_of_python_objects_is_refused() -> None:
    body = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header = body + b" " * (64 - (10 + len(body) + 1) % 64) + b"\n"
    raw = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(8)
    with pytest.raises(MalformedArtifactError, match="Python objects"):
        _skops_load.npy_array(memoryview(raw))


def test_overlapping_stored_entries_are_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("schema.json", b"{}")
        archive.writestr("a.npy", b"x" * 100)
        archive.writestr("b.npy", b"y" * 100)
    data = bytearray(out.getvalue())
    open_zip(memoryview(data), ScanLimits())
    # a.npy's central record claims 40 more bytes: past b.npy's local header, into its data.
    a_npy = [i for i in range(len(data)) if data.startswith(b"PK\x01\x02", i)][1]
    assert data[a_npy + 46 : a_npy + 51] == b"a.npy"
    for field in (20, 24):  # compressed and uncompressed sizes
        data[a_npy + field : a_npy + field + 4] = (140).to_bytes(4, "little")
    with pytest.raises(MalformedArtifactError, match="overlapping"):
        open_zip(memoryview(data), ScanLimits())


def test_the_audited_tree_builds_one_model_and_a_second_construction_another() -> None:
    """The tree skops' audit built is constructed once; skops' nodes cache what they built."""
    data = skops.io.dumps({"array": np.arange(6.0), "raw": b"xyz", "n": np.float64(2.5)})
    checked = check_types(data, DEFAULT, format="skops")
    first = _unpickle.deserialize_checked(checked, DEFAULT)
    second = _unpickle.deserialize_checked(checked, DEFAULT)
    assert first is not second and first["array"] is not second["array"]
    first["array"][0] = 99.0
    assert second["array"][0] == 0.0 and second["n"] == 2.5


def test_a_construction_over_another_buffer_reads_that_buffer() -> None:
    """The audited tree read the scanned buffer: another one gets a tree of its own."""
    data = _shared_entry_file()
    checked = check_types(data, DEFAULT, format="skops")
    assert checked.skops_plan is not None
    other = bytearray(data)
    start, end = checked.skops_plan.spans[
        next(n for n in checked.skops_plan.spans if n.endswith(".npy"))
    ]
    other[end - 1] ^= 0x01  # the last byte of the array, read by the bytes node as it is
    loaded = _skops_load.construct(memoryview(other), checked.skops_plan)
    assert loaded["raw"] == bytes(other[start:end])
