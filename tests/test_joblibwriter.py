"""The fast joblib writer: whatever it writes, ``joblib.load`` reads back as joblib.dump's file."""

from __future__ import annotations

import io
import pickle
import pickletools
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import safeload
from safeload.joblibwriter import Unsupported, joblib_pieces


def _write(obj: Any, path: Path) -> Path:
    with path.open("wb") as out:
        for piece in joblib_pieces(obj):
            out.write(piece)
    return path


def _same(a: Any, b: Any) -> None:
    """Deep equality that understands arrays (type, dtype, shape and values)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        if a.dtype.hasobject:
            assert a.tolist() == b.tolist()
        else:
            assert a.tobytes() == b.tobytes()
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b


rng = np.random.default_rng(0)
big = rng.normal(size=(17 << 20) // 8 + 3)  # more than one 16 MiB chunk, odd length
base = rng.normal(size=(30, 40))
ARRAYS: dict[str, Any] = {
    "c_order": base,
    "f_order": np.asfortranarray(base),
    "strided": base[::2, ::3],
    "scalar": np.array(3.5),
    "empty": np.zeros((0, 5)),
    "structured": np.zeros(7, dtype=[("a", "<i8"), ("b", "<f4"), ("c", "S3")]),
    "big_endian": np.arange(11, dtype=">i4"),
    "bool": base > 0,
    "complex": base[:3, :3] * 1j,
    "datetime": np.array(["2026-01-01", "2026-11-22"], dtype="datetime64[D]"),
    "object": np.array(["a", 1, None, 2.5], dtype=object),
    "matrix": np.asarray([[1.0, 2.0], [3.0, 4.0]]).view(np.matrix),
    "uint8_odd": np.arange(13, dtype=np.uint8),
    "big": big,
}


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_every_array_kind_reads_back_as_joblib_dump_wrote_it(tmp_path: Path, name: str) -> None:
    obj = {"before": [1, "x"], "value": ARRAYS[name], "after": (ARRAYS["uint8_odd"], 2)}
    fast = joblib.load(_write(obj, tmp_path / "fast.joblib"))
    joblib.dump(obj, tmp_path / "ref.joblib")
    reference = joblib.load(tmp_path / "ref.joblib")
    _same(fast, reference)  # joblib's own round trip (it converts to native byte order)


def test_array_payloads_are_aligned_for_memory_mapping(tmp_path: Path) -> None:
    obj = [ARRAYS["uint8_odd"], ARRAYS["structured"], base, ARRAYS["big_endian"], big[:1001]]
    loaded = joblib.load(_write(obj, tmp_path / "fast.joblib"), mmap_mode="r")
    for original, mapped in zip(obj, loaded, strict=True):
        assert isinstance(mapped, np.memmap), type(mapped)
        assert np.array_equal(original, mapped)


def test_memmap_input_is_written_as_joblib_writes_it(tmp_path: Path) -> None:
    mapped = np.memmap(tmp_path / "data.bin", dtype=np.float64, mode="w+", shape=(9,))
    mapped[:] = np.arange(9)
    fast = joblib.load(_write({"m": mapped}, tmp_path / "fast.joblib"))
    joblib.dump({"m": mapped}, tmp_path / "ref.joblib")
    _same(fast, joblib.load(tmp_path / "ref.joblib"))


def test_shared_subobjects_and_repeated_arrays_survive(tmp_path: Path) -> None:
    shared = {"k": 1}
    obj = [shared, shared, base, base, [shared]]
    loaded = joblib.load(_write(obj, tmp_path / "fast.joblib"))
    assert loaded[0] is loaded[1] is loaded[4][0]
    assert np.array_equal(loaded[2], loaded[3])


def test_fitted_models_predict_the_same_and_pass_the_scan(tmp_path: Path) -> None:
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] > 0).astype(int)
    models = [
        make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(X, y),
        RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y),
    ]
    for i, model in enumerate(models):
        path = _write(model, tmp_path / f"m{i}.joblib")
        report = safeload.scan(path)
        assert report.safe, report
        assert np.array_equal(joblib.load(path).predict(X), model.predict(X))


def test_the_stream_has_no_frames_and_names_the_wrapper_class(tmp_path: Path) -> None:
    """joblib puts arrays between frames; this stream has none, which the protocol allows."""
    data = b"".join(bytes(piece) for piece in joblib_pieces({"a": base}))
    ops = []
    stream = io.BytesIO(data)
    for opcode, arg, _pos in pickletools.genops(stream):
        ops.append((opcode.name, arg))
        if opcode.name == "BUILD":
            break  # what follows is the array payload, not opcodes
    assert ("FRAME", None) not in [(name, None) for name, _ in ops]
    assert ("SHORT_BINUNICODE", "NumpyArrayWrapper") in ops


def test_a_graph_the_c_pickler_refuses_is_unsupported_and_save_reports_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(Unsupported):
        joblib_pieces({"f": lambda x: x})
    key = safeload.generate_key()
    with pytest.raises(safeload.SafeloadError, match="joblib could not serialize"):
        safeload.save({"f": lambda x: x}, tmp_path / "m" / "1.0", key=key)
    assert not (tmp_path / "m" / "1.0").exists()
    assert not (tmp_path / "m").exists()  # no staging directory, nor the folder it created


def test_protocol_5_skeleton_is_rewritten_too(tmp_path: Path) -> None:
    path = tmp_path / "p5.joblib"
    with path.open("wb") as out:
        for piece in joblib_pieces({"a": base, "o": ARRAYS["object"]}, protocol=5):
            out.write(piece)
    _same(joblib.load(path), {"a": base, "o": ARRAYS["object"]})
    assert pickle.DEFAULT_PROTOCOL in (4, 5)


def test_wrapper_state_straddling_a_frame_boundary(tmp_path: Path) -> None:
    """The C pickler may end a frame inside an array's state dict; the rewrite must not care.

    Regression: a freshly fitted 300-tree forest hit this and its stream was refused.
    """
    from safeload.joblibwriter import _SkeletonPickler

    straddled = 0
    for n in range(8200, 8500, 3):
        obj = [[f"s{i}" for i in range(n)], np.arange(3), {"k": np.ones(2)}]
        buffer = io.BytesIO()
        _SkeletonPickler(buffer, pickle.DEFAULT_PROTOCOL).dump(obj)
        ops = list(pickletools.genops(buffer.getvalue()))
        frames = [pos for op, _, pos in ops if op.name == "FRAME"]
        persids = [pos for op, _, pos in ops if op.name == "BINPERSID"]
        # A state dict pickle is about 100 bytes: a frame starting just before its BINPERSID.
        straddled += any(0 < p - f < 100 for f in frames for p in persids)
        path = _write(obj, tmp_path / f"s{n}.joblib")
        _same(joblib.load(path), obj)
        assert safeload.scan(path).safe
    assert straddled, "no case put a frame boundary inside a state dict; widen the range"
