"""The static scanner accepts every legitimate model file and refuses every evasion.

Legitimate files are real scikit-learn objects dumped by joblib and pickle; for those the
scanner must name exactly the globals that a real unpickler asks for. Hostile files are built
opcode by opcode with the small assembler below and are never unpickled.
"""

from __future__ import annotations

import bz2
import copyreg
import gzip
import io
import json
import lzma
import os
import pickle
import pickletools
import struct
import time
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import lz4.frame
import numpy as np
import pytest

from safeload.errors import (
    ArtifactNotFoundError,
    MalformedArtifactError,
    UntrustedTypeError,
)
from safeload.policy import TypePolicy
from safeload.typegate import ScanLimits, ScanReport, scan, scan_bytes, scan_payload
from tests.helpers import joblib_bytes, recorded_globals

MIB = 1 << 20

# --- what a real unpickler asks for ----------------------------------------------------------


def everything(report: ScanReport) -> TypePolicy:
    """A policy trusting exactly what this report found (to test the non-type verdict)."""
    return TypePolicy.of(f"{g.rpartition('.')[0]}:{g.rpartition('.')[2]}" for g in report.globals)


# --- a tiny pickle assembler (hostile streams are built, never unpickled) ---------------------

OP = pickle


def su(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    assert len(raw) < 256
    return OP.SHORT_BINUNICODE + bytes([len(raw)]) + raw


def bu(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    return OP.BINUNICODE + struct.pack("<I", len(raw)) + raw


def glob(module: str, name: str) -> bytes:
    return OP.GLOBAL + f"{module}\n{name}\n".encode()


def sglob(module: str, name: str) -> bytes:
    return su(module) + su(name) + OP.STACK_GLOBAL


def stream(*parts: bytes, proto: int = 4) -> bytes:
    return OP.PROTO + bytes([proto]) + b"".join(parts) + OP.STOP


def framed(body: bytes) -> bytes:
    return OP.FRAME + struct.pack("<Q", len(body)) + body


EVIL_CALL = glob("os", "system") + su("echo pwned") + OP.TUPLE1 + OP.REDUCE
EVIL = stream(EVIL_CALL, proto=2)


class Raw(bytes):
    """Opcodes to splice in as they are."""


_MISSING = object()


def enc(value: object) -> bytes:
    """Opcodes that push ``value`` (plain data, numpy dtypes, or Raw opcodes)."""
    if isinstance(value, Raw):
        return bytes(value)
    if value is None:
        return OP.NONE
    if value is True:
        return OP.NEWTRUE
    if value is False:
        return OP.NEWFALSE
    if isinstance(value, int):
        if 0 <= value < 256:
            return OP.BININT1 + bytes([value])
        if -(2**31) <= value < 2**31:
            return OP.BININT + struct.pack("<i", value)
        raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return OP.LONG1 + bytes([len(raw)]) + raw
    if isinstance(value, float):
        return OP.BINFLOAT + struct.pack(">d", value)
    if isinstance(value, str):
        return bu(value)
    if isinstance(value, bytes):
        return OP.SHORT_BINBYTES + bytes([len(value)]) + value
    if isinstance(value, tuple):
        return OP.MARK + b"".join(enc(v) for v in value) + OP.TUPLE
    if isinstance(value, list):
        return OP.EMPTY_LIST + OP.MARK + b"".join(enc(v) for v in value) + OP.APPENDS
    if isinstance(value, dict):
        body = b"".join(enc(k) + enc(v) for k, v in value.items())
        return OP.EMPTY_DICT + OP.MARK + body + OP.SETITEMS
    if isinstance(value, np.dtype):
        reduced: Any = value.__reduce__()
        return dtype_ops(args=reduced[1], state=reduced[2])
    raise TypeError(value)


def dtype_ops(
    code: str = "f8",
    *,
    state: object = (3, "<", None, None, None, -1, -1, 0),
    args: object = None,
) -> Raw:
    """numpy.dtype(*args) then BUILD(state), as numpy pickles a dtype."""
    build = b"" if state is _MISSING else enc(state) + OP.BUILD
    call_args = (code, False, True) if args is None else args
    return Raw(sglob("numpy", "dtype") + enc(call_args) + OP.REDUCE + build)


NAW = ("joblib.numpy_pickle", "NumpyArrayWrapper")


def wrapper_state(
    shape: object, dtype: object, order: object = "C", align: object = 16
) -> dict[str, object]:
    state: dict[str, object] = {
        "subclass": Raw(sglob("numpy", "ndarray")),
        "shape": shape,
        "order": order,
        "dtype": dtype,
        "allow_mmap": False,
    }
    if align is not _MISSING:
        state["numpy_array_alignment_bytes"] = align
    return state


def wrapper_ops(
    shape: object,
    dtype: object = None,
    *,
    order: object = "C",
    align: object = 16,
    how: str = "newobj",
) -> bytes:
    """A joblib NumpyArrayWrapper for an array; the raw payload must follow."""
    dtype = dtype_ops() if dtype is None else dtype
    if how == "newobj":
        state = wrapper_state(shape, dtype, order, align)
        return sglob(*NAW) + OP.EMPTY_TUPLE + OP.NEWOBJ + enc(state) + OP.BUILD
    if how == "reduce":  # NumpyArrayWrapper(subclass, shape, order, dtype): alignment 16
        init = (Raw(sglob("numpy", "ndarray")), shape, order, dtype)
        return sglob(*NAW) + enc(init) + OP.REDUCE + OP.EMPTY_DICT + OP.BUILD
    if how == "inst":
        pushed = Raw(sglob("numpy", "ndarray")) + enc(shape) + enc(order) + enc(dtype)
        return (
            OP.MARK
            + pushed
            + OP.INST
            + b"joblib.numpy_pickle\nNumpyArrayWrapper\n"
            + (OP.EMPTY_DICT + OP.BUILD)
        )
    if how == "obj":
        state = wrapper_state(shape, dtype, order, align)
        return OP.MARK + sglob(*NAW) + OP.OBJ + enc(state) + OP.BUILD
    if how == "reconstructor":
        state = wrapper_state(shape, dtype, order, align)
        args = (Raw(glob(*NAW)), Raw(glob("builtins", "object")), None)
        call = glob("copyreg", "_reconstructor") + enc(args) + OP.REDUCE
        return call + enc(state) + OP.BUILD
    raise ValueError(how)


def padded(data: bytes, pad: int = 7) -> bytes:
    return bytes([pad]) + b"\xff" * pad + data


BASE = TypePolicy.of(
    [
        "joblib.numpy_pickle:NumpyArrayWrapper",
        "numpy:dtype",
        "numpy:ndarray",
        "numpy._core.multiarray:_reconstruct",
        "copyreg:_reconstructor",
        "builtins:object",
    ]
)


def check(data: bytes, **kwargs: Any) -> ScanReport:
    report = scan_bytes(data, policy=kwargs.pop("policy", BASE), **kwargs)
    assert isinstance(report, ScanReport)
    json.dumps(report.to_dict())
    return report


# --- legitimate models ----------------------------------------------------------------------


def _models() -> dict[str, Callable[[], object]]:
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        IsolationForest,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    X = rng.random((60, 4))
    y = (X[:, 0] > 0.5).astype(int)
    text = ["the cat sat", "a dog ran", "cats and dogs", "the end"] * 5

    def frame() -> object:
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        data = pd.DataFrame({"color": ["r", "g", "b"] * 20, "size": rng.random(60)})
        pre = ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
                ("num", "passthrough", ["size"]),
            ]
        )
        return make_pipeline(pre, LogisticRegression()).fit(data, y)

    return {
        "scaler+logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        "forest": lambda: RandomForestClassifier(n_estimators=3, max_depth=3).fit(X, y),
        "pca+knn": lambda: make_pipeline(PCA(2), KNeighborsClassifier(3)).fit(X, y),
        "gbm": lambda: GradientBoostingClassifier(n_estimators=3).fit(X, y),
        "hgb": lambda: HistGradientBoostingClassifier(max_iter=3).fit(X, y),
        "svc": lambda: SVC().fit(X, y),
        "kmeans": lambda: KMeans(2, n_init=1, random_state=0).fit(X),
        "tfidf+nb": lambda: make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(text, y[:20]),
        "columns": frame,
        "tree+ridge": lambda: [
            DecisionTreeRegressor(max_depth=2).fit(X, X[:, 1]),
            Ridge().fit(X, y),
        ],
        "iforest": lambda: IsolationForest(n_estimators=3, random_state=0).fit(X),
        "mlp": lambda: MLPClassifier((3,), max_iter=3).fit(X, y),
        "mixed": lambda: {
            "objects": np.array([1, "a", None, (2, 3)], dtype=object),
            "structured": np.zeros(3, dtype=[("a", "<i8"), ("b", "O")]),
            "fortran": np.asfortranarray(rng.random((3, 4))),
            "big_endian": np.arange(5, dtype=">f4"),
            "scalar": np.float32(1.5),
            "empty": np.empty((0, 3)),
            "zero_d": np.array(7),
            "dates": np.array(["2024-01-01"], dtype="M8[D]"),
            "text": np.array(["ab", "c"]),
        },
    }


MODELS = _models()


@pytest.fixture(scope="module")
def fitted() -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: make() for name, make in MODELS.items()}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("compress", [0, "zlib", "gzip", "bz2", "lzma", "xz", "lz4"])
def test_joblib_files_name_exactly_what_the_unpickler_loads(
    fitted: dict[str, object], name: str, compress: str | int
) -> None:
    data = joblib_bytes(fitted[name], (compress, 3) if compress else 0)
    report = scan_bytes(data, policy=TypePolicy.of([]))
    _, payload = scan_payload_input(data)
    assert set(report.globals) == recorded_globals(payload)
    assert report.problems == ()
    assert report.format == "joblib"
    assert report.compression == (compress or None)
    trusted = TypePolicy.default().extend(report.globals)
    assert scan_bytes(data, policy=trusted).safe


def scan_payload_input(data: bytes) -> tuple[str | None, bytes]:
    from safeload.typegate.compression import decompress

    found, payload = decompress(data, limits=ScanLimits())
    return found, bytes(payload)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("protocol", range(6))
def test_joblib_every_protocol(fitted: dict[str, object], name: str, protocol: int) -> None:
    data = joblib_bytes(fitted[name], protocol=protocol)
    report = scan_bytes(data, policy=TypePolicy.of([]))
    assert set(report.globals) == recorded_globals(data)
    assert report.problems == ()


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("protocol", range(6))
def test_plain_pickles_every_protocol(fitted: dict[str, object], name: str, protocol: int) -> None:
    data = pickle.dumps(fitted[name], protocol=protocol)
    report = scan_bytes(data, policy=TypePolicy.of([]))
    assert set(report.globals) == recorded_globals(data)
    assert report.problems == ()
    assert report.format == "pickle"
    assert scan_bytes(data, policy=everything(report)).safe


def _estimator_cases() -> dict[str, Any]:
    """Every estimator of ``all_estimators()``, built the way test_all_estimators builds it
    (meta-estimators with a sub-estimator, text/label/multi-output inputs where they need them),
    unfitted: no estimator is left out because it does not fit with defaults."""
    from tests.test_all_estimators import build_cases, make_data

    return {case.name: case for case in build_cases(make_data())}


ESTIMATOR_CASES = _estimator_cases()


def test_globals_agreement_covers_every_estimator() -> None:
    from sklearn.utils import all_estimators

    listed = {name for name, _ in all_estimators()}
    assert set(ESTIMATOR_CASES) == listed
    assert len(listed) >= 150


@pytest.mark.parametrize("name", sorted(ESTIMATOR_CASES))
def test_every_estimator_names_exactly_what_the_unpickler_loads(name: str) -> None:
    """Every fitted estimator scans clean and names exactly the globals the loader resolves."""
    from tests.test_all_estimators import fit_case

    fitted = fit_case(ESTIMATOR_CASES[name])  # no fallback: a case that cannot fit fails here
    for data in (joblib_bytes(fitted), pickle.dumps(fitted, protocol=5)):
        report = scan_bytes(data, policy=TypePolicy.of([]))
        assert report.problems == (), name
        assert set(report.globals) == recorded_globals(data), name


def test_default_policy_accepts_a_plain_pipeline(fitted: dict[str, object]) -> None:
    report = scan_bytes(joblib_bytes(fitted["scaler+logreg"]), policy=None)
    assert report.problems == ()
    assert set(report.untrusted) <= set(report.globals)


def test_uint8_array_spelling_a_malicious_pickle_is_data_not_opcodes() -> None:
    payload = np.frombuffer(EVIL * 50, dtype=np.uint8)
    data = joblib_bytes({"weights": payload})
    # A naive opcode walk over the file would "see" os.system in the array bytes ...
    assert b"os\nsystem" in data
    # ... the scanner skips the payload exactly as the loader reads it.
    report = check(data)
    assert report.safe, report
    assert "os.system" not in report.globals


def test_array_bytes_are_never_walked_so_cost_follows_opcodes(tmp_path: Path) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    model = KNeighborsClassifier(algorithm="brute").fit(
        rng.random((125_000, 100)), rng.integers(0, 3, 125_000)
    )
    path = tmp_path / "knn.joblib"
    joblib.dump(model, path)
    assert path.stat().st_size > 100_000_000
    data = path.read_bytes()
    scan_payload(data)  # warm up
    start = time.perf_counter()
    report = scan_payload(data)
    elapsed = time.perf_counter() - start
    assert report.problems == ()
    assert elapsed < 0.05, f"scan of 100 MB took {elapsed * 1000:.1f} ms"
    tracemalloc.start()
    scan_payload(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < MIB  # the payload is never copied
    start = time.perf_counter()
    from_file = scan(path)
    assert time.perf_counter() - start < 0.25
    assert from_file.globals == report.globals
    assert from_file.path == str(path)


# --- evasions -------------------------------------------------------------------------------


def test_plain_global_is_found() -> None:
    report = check(EVIL)
    assert report.untrusted == ("os.system",)
    assert not report.safe


def test_memoised_stack_global_is_resolved() -> None:
    body = (
        su("os")
        + OP.MEMOIZE
        + su("system")
        + OP.MEMOIZE
        + OP.POP
        + OP.POP
        + OP.BINGET
        + b"\x00"
        + OP.BINGET
        + b"\x01"
        + OP.STACK_GLOBAL
        + su("x")
        + OP.TUPLE1
        + OP.REDUCE
    )
    assert check(stream(body)).untrusted == ("os.system",)


@pytest.mark.parametrize(
    "module_ops",
    [
        pytest.param(b"S'os'\n", id="STRING"),
        pytest.param(OP.BINSTRING + struct.pack("<i", 2) + b"os", id="BINSTRING"),
        pytest.param(OP.SHORT_BINSTRING + b"\x02os", id="SHORT_BINSTRING"),
        pytest.param(b"Vos\n", id="UNICODE"),
        pytest.param(OP.BINUNICODE + struct.pack("<I", 2) + b"os", id="BINUNICODE"),
        pytest.param(OP.BINUNICODE8 + struct.pack("<Q", 2) + b"os", id="BINUNICODE8"),
        pytest.param(b"S'o\\x73'\n", id="STRING-escaped"),
        pytest.param(b"V\\u006fs\n", id="UNICODE-escaped"),
    ],
)
@pytest.mark.parametrize(
    "memo",
    [
        pytest.param((b"p7\n", b"g7\n"), id="PUT/GET"),
        pytest.param((OP.BINPUT + b"\x07", OP.BINGET + b"\x07"), id="BINPUT/BINGET"),
        pytest.param(
            (OP.LONG_BINPUT + struct.pack("<I", 70000), OP.LONG_BINGET + struct.pack("<I", 70000)),
            id="LONG_BINPUT/LONG_BINGET",
        ),
        pytest.param((OP.MEMOIZE, OP.BINGET + b"\x00"), id="MEMOIZE"),
        pytest.param((OP.DUP, b""), id="DUP"),
    ],
)
def test_stack_global_strings_from_every_opcode_and_memo_path(
    module_ops: bytes, memo: tuple[bytes, bytes]
) -> None:
    put, get = memo
    keep = OP.POP + get if get else OP.POP  # DUP leaves a copy under the popped one
    body = module_ops + put + keep + su("system") + OP.STACK_GLOBAL + OP.EMPTY_TUPLE + OP.REDUCE
    report = check(stream(body))
    assert report.untrusted == ("os.system",), report
    assert report.problems == ()


@pytest.mark.parametrize(
    "module_ops",
    [
        pytest.param(glob("builtins", "str") + su("os") + OP.TUPLE1 + OP.REDUCE, id="call-result"),
        pytest.param(OP.SHORT_BINBYTES + b"\x02os", id="bytes"),
        pytest.param(OP.BININT1 + b"\x05", id="int"),
        pytest.param(bu("o" * 70_000), id="too-long"),
        pytest.param(OP.EXT1 + b"\x01", id="extension"),
    ],
)
def test_stack_global_from_values_the_scanner_cannot_read_is_refused(module_ops: bytes) -> None:
    body = module_ops + su("system") + OP.STACK_GLOBAL + OP.EMPTY_TUPLE + OP.REDUCE
    report = check(stream(body))
    assert not report.safe
    assert any("STACK_GLOBAL" in p or "extension" in p for p in report.problems), report


def test_inst_names_its_class() -> None:
    data = stream(OP.MARK + su("echo") + OP.INST + b"os\nsystem\n", proto=0)
    assert check(data).untrusted == ("os.system",)


def test_obj_calls_a_class_from_the_stack() -> None:
    data = stream(OP.MARK + sglob("subprocess", "Popen") + su("ls") + OP.OBJ)
    assert check(data).untrusted == ("subprocess.Popen",)


@pytest.mark.parametrize(
    "ops",
    [
        pytest.param(OP.EMPTY_TUPLE + OP.REDUCE, id="REDUCE"),
        pytest.param(OP.EMPTY_TUPLE + OP.NEWOBJ, id="NEWOBJ"),
        pytest.param(OP.EMPTY_TUPLE + OP.EMPTY_DICT + OP.NEWOBJ_EX, id="NEWOBJ_EX"),
    ],
)
def test_calling_a_value_that_is_not_a_named_global_is_refused(ops: bytes) -> None:
    made = glob("operator", "attrgetter") + su("x") + OP.TUPLE1 + OP.REDUCE
    policy = BASE.extend(["operator:attrgetter"], unsafe=True)
    report = check(stream(made + ops), policy=policy)
    assert report.untrusted == ()
    assert any("not a named global" in p for p in report.problems)
    obj = check(stream(OP.MARK + made + OP.OBJ), policy=policy)
    assert any("not a named global" in p for p in obj.problems)
    data = check(stream(OP.MARK + su("os.system") + OP.OBJ), policy=policy)
    assert any("not a named global" in p for p in data.problems)


def test_newobj_and_newobj_ex_name_their_class() -> None:
    data = stream(
        sglob("builtins", "eval") + OP.EMPTY_TUPLE + OP.NEWOBJ + OP.POP,
        sglob("builtins", "exec") + OP.EMPTY_TUPLE + OP.EMPTY_DICT + OP.NEWOBJ_EX,
    )
    assert check(data).untrusted == ("builtins.eval", "builtins.exec")


@pytest.mark.parametrize(
    "ext",
    [OP.EXT1 + b"\xfe", OP.EXT2 + struct.pack("<H", 0xBEEF), OP.EXT4 + struct.pack("<i", 0x7FFE)],
)
def test_extension_codes_are_refused_even_when_registered(ext: bytes) -> None:
    codes = {OP.EXT1[0]: 0xFE, OP.EXT2[0]: 0xBEEF, OP.EXT4[0]: 0x7FFE}
    code = codes[ext[0]]
    copyreg.add_extension("builtins", "len", code)
    try:
        report = check(stream(ext + su("x") + OP.TUPLE1 + OP.REDUCE))
    finally:
        copyreg.remove_extension("builtins", "len", code)
    assert not report.safe
    assert any("extension registry" in p for p in report.problems)


@pytest.mark.parametrize("persid", [b"Pfoo\n", su("foo") + OP.BINPERSID])
def test_persistent_ids_are_refused(persid: bytes) -> None:
    report = check(stream(persid))
    assert not report.safe
    assert any("persistent id" in p for p in report.problems)


def test_next_buffer_is_refused() -> None:
    assert not check(stream(OP.NEXT_BUFFER + OP.READONLY_BUFFER, proto=5)).safe


def test_bytes_after_stop_are_refused_and_their_globals_reported() -> None:
    legit = pickle.dumps({"a": 1}, protocol=4)
    report = check(legit + EVIL)
    assert not report.safe
    assert "os.system" in report.untrusted
    assert any(f"{len(EVIL)} byte(s) follow the end" in p for p in report.problems)
    garbage = check(legit + b"\x00garbage")
    assert any("follow the end" in p for p in garbage.problems)


def test_bytes_after_stop_inside_the_last_frame_are_refused() -> None:
    body = OP.NONE + OP.STOP + glob("os", "system")
    report = check(OP.PROTO + b"\x04" + framed(body))
    assert any("after STOP inside the last frame" in p for p in report.problems)


def test_malicious_pickle_after_a_joblib_array() -> None:
    array = np.arange(4, dtype="f8").tobytes()
    data = stream(wrapper_ops((4,)) + padded(array) + OP.POP + EVIL_CALL)
    report = check(data)
    assert report.untrusted == ("os.system",)


def test_array_declared_shorter_than_its_bytes_exposes_the_rest_as_opcodes() -> None:
    # The attacker declares a 0-length array and hides opcodes where data would be.
    data = stream(wrapper_ops((0,), align=None) + OP.POP + EVIL_CALL)
    assert check(data).untrusted == ("os.system",)


def test_malicious_object_inside_an_object_array_is_found() -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (eval, ("1+1",))

    data = joblib_bytes({"column": np.array([1, Evil(), "x"], dtype=object)})
    report = check(data)
    assert "builtins.eval" in report.untrusted
    compressed = check(joblib_bytes({"c": np.array([Evil()], dtype=object)}, ("xz", 3)))
    assert "builtins.eval" in compressed.untrusted


def test_object_dtype_reached_through_a_structured_dtype_is_a_nested_pickle() -> None:
    nested = pickle.dumps(np.zeros(1, dtype=[("a", "O")]), protocol=2)
    dtype = np.dtype([("a", "O")])
    data = stream(wrapper_ops((1,), enc(dtype)) + nested[:-1] + EVIL_CALL + OP.STOP)
    report = check(data)
    assert "os.system" in report.untrusted


@pytest.mark.parametrize("legacy", ["NDArrayWrapper", "ZNDArrayWrapper"])
def test_legacy_joblib_wrappers_are_refused(legacy: str) -> None:
    data = stream(sglob("joblib.numpy_pickle", legacy) + OP.EMPTY_TUPLE + OP.NEWOBJ)
    policy = BASE.extend([f"joblib.numpy_pickle:{legacy}"], unsafe=True)
    report = check(data, policy=policy)
    assert not report.safe
    assert any("legacy joblib array wrapper" in p for p in report.problems)


@pytest.mark.parametrize(
    "alias",
    [
        ("joblib", "numpy_pickle.NumpyArrayWrapper"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper.__call__"),
        ("joblib.numpy_pickle_utils", "NumpyArrayWrapper"),
    ],
)
def test_an_alias_of_the_wrapper_is_refused(alias: tuple[str, str]) -> None:
    data = stream(sglob(*alias) + OP.EMPTY_TUPLE + OP.REDUCE)
    report = check(data, policy=BASE.extend([":".join(alias)], unsafe=True))
    assert not report.safe
    assert any("another name" in p for p in report.problems)


@pytest.mark.parametrize(
    "name",
    [("numpy", "dtype.__call__"), ("numpy.dtypes", "Float64DType"), ("numpy", "float64.dtype")],
)
def test_other_ways_to_a_dtype_cannot_be_built(name: tuple[str, str]) -> None:
    made = sglob(*name) + enc(("f8", False, True)) + OP.REDUCE
    state = enc((3, "<", None, None, None, -1, -1, 63)) + OP.BUILD
    report = check(stream(made + state), policy=BASE.extend([":".join(name)], unsafe=True))
    assert not report.safe
    assert report.problems
    bare = check(stream(sglob(*name) + state), policy=BASE.extend([":".join(name)], unsafe=True))
    assert any("BUILD sets attributes on the class" in p for p in bare.problems)


@pytest.mark.parametrize(
    "compress",
    [
        zlib.compress,
        gzip.compress,
        bz2.compress,
        lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
        lambda d: lzma.compress(d, format=lzma.FORMAT_XZ),
        lz4.frame.compress,
    ],
)
def test_compressed_malicious_streams_are_found(compress: Callable[[bytes], bytes]) -> None:
    report = check(compress(EVIL))
    assert report.untrusted == ("os.system",)
    assert report.compression is not None
    assert report.format == "joblib"


@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_decompression_bomb_is_a_problem_not_an_allocation() -> None:
    comp = bz2.BZ2Compressor(9)
    bomb = b"".join(comp.compress(bytes(MIB)) for _ in range(64)) + comp.flush()
    start = time.monotonic()
    report = check(bomb, limits=ScanLimits(ratio_floor_bytes=4 * MIB))
    assert time.monotonic() - start < 5
    assert not report.safe
    assert any("decompression bomb" in p for p in report.problems)


@pytest.mark.parametrize(
    "shape",
    [(10**12,), (2**32, 2**32), (-1,), (2**62, 4)],
)
@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_huge_or_negative_declared_shapes_are_refused(shape: tuple[int, ...]) -> None:
    report = check(stream(wrapper_ops(shape) + padded(b"")))
    assert not report.safe
    assert report.problems


def test_declared_array_must_fit_max_array_bytes_and_the_file() -> None:
    data = stream(wrapper_ops((100,)) + padded(bytes(800)))
    assert check(data).safe
    limited = check(data, limits=ScanLimits(max_array_bytes=799))
    assert any("max_array_bytes" in p for p in limited.problems)
    short = stream(wrapper_ops((101,)) + padded(bytes(800)))
    assert any("remain in the file" in p for p in check(short).problems)


def _nested_object_arrays(depth: int) -> bytes:
    inner = stream(OP.NONE)
    for _ in range(depth):
        inner = stream(wrapper_ops((1,), enc(np.dtype("O"))) + inner)
    return inner


def test_nested_object_arrays_within_limits_are_followed() -> None:
    assert check(_nested_object_arrays(5)).safe


@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_deep_nesting_is_refused_within_limits() -> None:
    report = check(_nested_object_arrays(40), limits=ScanLimits(max_nesting=10))
    assert any("max_nesting" in p for p in report.problems)
    report = check(_nested_object_arrays(200))
    assert not report.safe


@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_deep_marks_hit_the_stack_limit() -> None:
    start = time.monotonic()
    report = check(stream(OP.MARK * 200_000), limits=ScanLimits(max_stack_depth=10_000))
    assert any("max_stack_depth" in p for p in report.problems)
    assert time.monotonic() - start < 2


@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_opcode_memo_and_time_limits() -> None:
    many = stream((OP.NONE + OP.POP) * 50_000 + OP.NONE)
    assert check(many).safe
    assert any(
        "max_opcodes" in p for p in check(many, limits=ScanLimits(max_opcodes=1000)).problems
    )
    slow = check(many, limits=ScanLimits(max_seconds=0.0))
    assert any("max_seconds" in p for p in slow.problems)
    memo = stream(OP.NONE + OP.MEMOIZE * 100)
    assert any("memo" in p for p in check(memo, limits=ScanLimits(max_memo=10)).problems)


def test_every_truncation_of_a_joblib_file_is_refused(fitted: dict[str, object]) -> None:
    data = joblib_bytes(fitted["scaler+logreg"])
    assert check(data, policy=everything(check(data))).safe
    policy = everything(check(data))
    for cut in range(len(data)):
        assert not scan_bytes(data[:cut], policy=policy).safe


def test_protocol_higher_than_5_is_refused() -> None:
    assert any("higher than 5" in p for p in check(OP.PROTO + b"\x06N.").problems)


def test_opcodes_from_a_higher_protocol_than_declared_are_followed() -> None:
    data = stream(sglob("os", "system") + OP.EMPTY_TUPLE + OP.REDUCE, proto=0)
    assert check(data).untrusted == ("os.system",)
    assert check(b"N" + OP.POP + glob("os", "system") + OP.STOP).untrusted == ("os.system",)


def test_unknown_opcode_is_refused() -> None:
    report = check(b"\x80\x04\xff.")
    assert any("unknown opcode 0xff" in p for p in report.problems)


def test_pop_on_an_empty_segment_discards_the_mark_like_the_loader() -> None:
    # pickle._Unpickler: POP with an empty segment pops the MARK; the TUPLE then needs another.
    data = stream(OP.MARK + OP.MARK + OP.POP + OP.NONE + OP.TUPLE + OP.POP + EVIL_CALL)
    assert check(data).untrusted == ("os.system",)
    assert check(data).problems == ()
    # The loader returns None here; a scanner keeping the MARK would see an empty segment.
    assert check(stream(OP.NONE + OP.MARK + OP.POP)).safe


def test_frames_are_followed_and_their_bounds_enforced() -> None:
    inside = framed(sglob("os", "system") + OP.EMPTY_TUPLE + OP.REDUCE + OP.STOP)
    assert check(OP.PROTO + b"\x04" + inside).untrusted == ("os.system",)
    crossing = OP.PROTO + b"\x04" + framed(OP.SHORT_BINUNICODE + b"\x05os") + b"tem" + OP.STOP
    assert any("end of its frame" in p for p in check(crossing).problems)
    too_long = OP.PROTO + b"\x04" + OP.FRAME + struct.pack("<Q", 10**6) + OP.NONE + OP.STOP
    assert any("runs past the end" in p for p in check(too_long).problems)
    early = OP.PROTO + b"\x04" + framed(OP.FRAME + struct.pack("<Q", 2) + OP.NONE) + b"N."
    assert any("before the current one ends" in p for p in check(early).problems)


def test_array_payload_in_the_middle_of_a_frame_is_refused() -> None:
    body = wrapper_ops((1,), align=None) + OP.POP + OP.NONE
    data = OP.PROTO + b"\x04" + framed(body) + bytes(8) + OP.STOP
    assert any("middle of a pickle frame" in p for p in check(data).problems)


def test_odd_global_names_are_refused_and_never_echoed() -> None:
    """A name that is not dotted identifiers is the file's own bytes: counted, not shown."""
    data = stream(
        sglob("os\n", "system") + OP.POP + sglob("", "") + OP.POP + sglob("numpy", "os.system")
    )
    report = check(data, policy=BASE.extend(["numpy:ndarray"]))
    assert not report.safe
    assert report.untrusted == ("numpy.os.system",)
    assert "2 global name(s) that are not Python names (dotted identifiers): refused." in (
        report.problems
    )
    assert not any("os\n" in text for text in (*report.globals, *report.problems))


def test_reexported_dangerous_names_in_trusted_modules_are_untrusted() -> None:
    names = [("numpy", "testing._private.utils.os"), ("sklearn.utils", "getattr")]
    data = stream(*(sglob(m, n) + OP.POP for m, n in names), OP.NONE)
    policy = TypePolicy.default().extend(["numpy:ndarray"])
    report = check(data, policy=policy)
    assert set(report.untrusted) == {"numpy.testing._private.utils.os", "sklearn.utils.getattr"}


# dtype states that a numpy dtype's __reduce__ never produces; both walls refuse each one.
DTYPE_STATES_NUMPY_NEVER_WRITES = [
    pytest.param((3, "<", None, None, None, -1, -1, 63), id="float-claims-objects"),
    pytest.param((3, "|", None, None, None, -1, -1, 0), id="wrong-endian"),
    pytest.param((3, "<", None, None, None, 16, 8, 0), id="float-with-elsize"),
    pytest.param((2, "<", None, None, None, -1, -1), id="old-version"),
    pytest.param((3, "<", None, ("a",), None, -1, -1, 0), id="names-without-fields"),
]


# --- joblib's array wrapper and numpy dtypes cannot be abused to desynchronise ---------------


@pytest.mark.parametrize(
    "state",
    DTYPE_STATES_NUMPY_NEVER_WRITES,
)
def test_dtype_states_numpy_never_writes_are_refused(state: tuple[object, ...]) -> None:
    data = stream(dtype_ops("f8", state=state))
    report = check(data)
    assert any("numpy never writes" in p for p in report.problems), report


def test_object_dtype_without_its_object_flag_is_refused() -> None:
    state = (3, "|", None, None, None, -1, -1, 0)
    report = check(stream(dtype_ops("O8", state=state)))
    assert any("numpy never writes" in p for p in report.problems)


def test_structured_dtype_with_lying_offsets_or_size_is_refused() -> None:
    real = np.dtype([("a", "<f8"), ("b", "<i4")])
    reduced: Any = real.__reduce__()
    args, state = reduced[1], reduced[2]
    fields = {"a": (np.dtype("<f8"), 0), "b": (np.dtype("<i4"), 100)}
    lying = (state[0], state[1], state[2], state[3], fields, state[5], state[6], state[7])
    assert check(stream(dtype_ops(args=args, state=state))).safe
    assert not check(stream(dtype_ops(args=args, state=lying))).safe
    small = (*state[:5], 4, *state[6:])
    assert not check(stream(dtype_ops(args=args, state=small))).safe


def test_dtype_built_twice_or_after_use_is_refused() -> None:
    twice = stream(dtype_ops() + enc((3, "<", None, None, None, -1, -1, 63)) + OP.BUILD)
    assert any("already set up or used" in p for p in check(twice).problems)
    dtype = dtype_ops() + OP.MEMOIZE
    array = wrapper_ops((1,), Raw(dtype)) + padded(bytes(8))
    later = OP.POP + OP.BINGET + b"\x00" + enc((3, "<", None, None, None, -1, -1, 63)) + OP.BUILD
    assert any("already set up or used" in p for p in check(stream(array + later)).problems)


def test_dtype_changed_after_an_array_or_dtype_holds_it_is_refused() -> None:
    bad_state = enc((3, "<", None, None, None, -1, -1, 63)) + OP.BUILD
    # a structured dtype takes the field dtype, which is then changed
    field = dtype_ops(state=_MISSING) + OP.MEMOIZE
    fields = {"a": Raw(enc((Raw(field), 0)))}
    parent_state = (3, "|", None, ("a",), fields, 8, 1, 0)
    parent = dtype_ops(args=("V8", False, True), state=parent_state)
    data = stream(parent + OP.POP + OP.BINGET + b"\x00" + bad_state)
    assert any("already set up or used" in p for p in check(data).problems)
    # an ndarray state (plain pickle) takes the dtype, which is then changed
    reconstruct = sglob("numpy._core.multiarray", "_reconstruct")
    array = reconstruct + enc((Raw(sglob("numpy", "ndarray")), (0,), b"b")) + OP.REDUCE
    dtype = dtype_ops(state=_MISSING).replace(OP.REDUCE, OP.REDUCE + OP.MEMOIZE, 1)
    array += enc((1, (1,), Raw(dtype), False, bytes(8))) + OP.BUILD
    data = stream(array + OP.POP + OP.BINGET + b"\x00" + bad_state)
    assert check(stream(array)).safe
    assert any("already set up or used" in p for p in check(data).problems)
    # a dtype whose state contains itself
    selfref = dtype_ops(state=_MISSING) + OP.MEMOIZE
    selfref += enc((3, "|", Raw(enc((Raw(OP.BINGET + b"\x00"), (2,)))), None, None, 16, 8, 0))
    assert not check(stream(selfref + OP.BUILD)).safe


def test_dtype_made_with_other_arguments_cannot_be_built() -> None:
    # numpy.dtype("f8") returns numpy's shared float64: a BUILD would change it for everyone.
    data = stream(dtype_ops(args=("f8",)))
    assert not check(data).safe


@pytest.mark.parametrize(
    "misuse",
    [
        pytest.param(glob("builtins", "len") + sglob(*NAW) + OP.TUPLE1 + OP.REDUCE, id="call-arg"),
        pytest.param(sglob(*NAW) + OP.EMPTY_DICT + OP.BUILD, id="build-the-class"),
        pytest.param(
            OP.EMPTY_LIST
            + sglob(*NAW)
            + OP.APPEND
            + glob("builtins", "len")
            + OP.MARK
            + OP.BINGET
            + b"\x00"
            + OP.TUPLE
            + OP.REDUCE,
            id="via-container",
        ),
        pytest.param(
            sglob(*NAW)
            + OP.EMPTY_TUPLE
            + OP.NEWOBJ
            + OP.MEMOIZE
            + glob("copy", "copy")
            + OP.MARK
            + OP.BINGET
            + b"\x01"
            + OP.TUPLE
            + OP.REDUCE,
            id="copy-an-instance",
        ),
        pytest.param(
            glob("builtins", "object")
            + OP.EMPTY_TUPLE
            + OP.NEWOBJ
            + OP.MARK
            + OP.NONE
            + OP.EMPTY_DICT
            + su("__class__")
            + sglob(*NAW)
            + OP.SETITEM
            + OP.TUPLE
            + OP.BUILD,
            id="assign-__class__",
        ),
    ],
)
def test_wrapper_used_where_joblib_never_puts_it_is_refused(misuse: bytes) -> None:
    body = misuse.replace(sglob(*NAW), sglob(*NAW) + OP.MEMOIZE, 1)
    report = check(stream(body), policy=BASE.extend(["builtins:len", "copy:copy"], unsafe=True))
    assert not report.safe, report
    assert report.problems
    assert not any("memo entry" in p or "stack holds" in p for p in report.problems), report


F8 = dtype_ops()


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(Raw(glob("builtins", "dict") + OP.EMPTY_TUPLE + OP.REDUCE), id="opaque"),
        pytest.param({"shape": (1,), "order": "C", "dtype": F8, "extra": 1}, id="extra-field"),
        pytest.param({"shape": (1,), "order": "C", "dtype": F8, "__class__": 1}, id="__class__"),
        pytest.param({"shape": ("1",), "order": "C", "dtype": F8}, id="str-shape"),
        pytest.param({"shape": (1.0,), "order": "C", "dtype": F8}, id="float-shape"),
        pytest.param({"shape": (1,), "order": "X", "dtype": F8}, id="bad-order"),
        pytest.param({"shape": (1,), "order": "C"}, id="no-dtype"),
        pytest.param({"shape": (1,), "order": "C", "dtype": "f8,O"}, id="structured-str"),
        pytest.param(
            {"shape": (1,), "order": "C", "dtype": Raw(glob("numpy", "float64"))}, id="class"
        ),
        pytest.param([1], id="list"),
        pytest.param((None, {"shape": (1,), "order": "C", "dtype": F8, "x": 1}), id="slots"),
    ],
)
def test_wrapper_states_the_scanner_cannot_be_sure_of_are_refused(state: object) -> None:
    ops = sglob(*NAW) + OP.EMPTY_TUPLE + OP.NEWOBJ + enc(state) + OP.BUILD
    report = check(stream(ops + bytes(8)), policy=BASE.extend(["builtins:dict"]))
    assert not report.safe, report


def test_wrapper_built_twice_is_refused() -> None:
    ops = wrapper_ops((1,), align=None).replace(OP.NEWOBJ, OP.NEWOBJ + OP.MEMOIZE, 1)
    data = stream(
        ops + bytes(8) + OP.POP + OP.BINGET + b"\x00" + OP.EMPTY_DICT + OP.BUILD + bytes(8)
    )
    report = check(data)
    assert any("built twice" in p for p in report.problems)


# --- the skip rule matches the loader byte for byte --------------------------------------------


def _array_cases() -> dict[str, bytes]:
    f8 = np.arange(6, dtype="<f8").tobytes()
    nested = pickle.dumps(np.array([1, "a", None], dtype=object), protocol=5)
    structured = np.dtype([("left", "<i8"), ("v", "<f8"), ("flag", "u1")], align=True)
    return {
        "newobj-aligned": wrapper_ops((6,)) + padded(f8, 3),
        "newobj-align-none": wrapper_ops((6,), align=None) + f8,
        "newobj-no-align-field": wrapper_ops((6,), align=_MISSING) + f8,
        "newobj-align-zero-still-pads": wrapper_ops((6,), align=0) + padded(f8, 0),
        "reduce-defaults-to-16": wrapper_ops((2, 3), how="reduce") + padded(f8, 16),
        "inst-defaults-to-16": wrapper_ops((2, 3), how="inst") + padded(f8, 9),
        "obj": wrapper_ops((3, 2), how="obj") + padded(f8, 1),
        "copyreg-reconstructor": wrapper_ops((6,), how="reconstructor") + padded(f8),
        "fortran": wrapper_ops((2, 3), order="F") + padded(f8),
        "zero-d": wrapper_ops(()) + padded(f8[:8]),
        "empty": wrapper_ops((0, 4)) + padded(b""),
        "dtype-as-string": wrapper_ops((3,), "<i4") + padded(bytes(12)),
        "big-endian": wrapper_ops((6,), enc(np.dtype(">f8"))) + padded(f8),
        "structured": wrapper_ops((2,), enc(structured)) + padded(bytes(2 * structured.itemsize)),
        "unicode": wrapper_ops((2,), enc(np.dtype("<U3"))) + padded(bytes(24)),
        "object-nested-pickle": wrapper_ops((3,), enc(np.dtype("O"))) + nested,
        "shape-as-list": wrapper_ops([6], align=None) + f8,
        "frames": framed(wrapper_ops((6,))) + padded(f8),
    }


ARRAY_CASES = _array_cases()


@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
def test_skip_rule_matches_the_loader(case: str) -> None:
    """After the array, both the scanner and the loader must reach the same next opcode."""
    from safeload._unpickle import unpickle_verified

    marker = OP.POP + glob("builtins", "len")
    data = stream(ARRAY_CASES[case] + marker)
    report = check(data)
    assert report.untrusted == ("builtins.len",), report
    assert report.problems == ()
    # These streams name only numpy/joblib types and the marker, which the loader refuses.
    with pytest.raises(UntrustedTypeError) as info:
        unpickle_verified(data, BASE)
    assert info.value.types == ("builtins.len",)


def test_skip_rule_matches_joblib_itself_for_real_files(fitted: dict[str, object]) -> None:
    for name, obj in fitted.items():
        data = joblib_bytes(obj)
        assert check(data, policy=TypePolicy.of([])).problems == (), name


# --- skops ----------------------------------------------------------------------------------


class CustomEstimator:
    """A class skops does not trust by default."""

    def __init__(self) -> None:
        self.weights = [1, 2]


def test_skops_file_reports_skops_untrusted_types() -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    plain = sio.dumps(LogisticRegression().fit(np.random.rand(20, 2), np.arange(20) % 2))
    # Every type skops names must be in *safeload's* policy, including those skops trusts.
    report = check(plain, policy=TypePolicy.of([]))
    assert report.format == "skops"
    assert report.untrusted == ("sklearn.linear_model._logistic.LogisticRegression",)
    assert check(plain, policy=TypePolicy.default()).safe
    custom = sio.dumps(CustomEstimator())
    report = check(custom)
    expected = f"{CustomEstimator.__module__}.{CustomEstimator.__qualname__}"
    assert report.untrusted == (expected,)
    module, _, name = expected.rpartition(".")
    assert check(custom, policy=BASE.extend([f"{module}:{name}"])).safe


def _zip(entries: dict[str, bytes]) -> bytes:
    handle = io.BytesIO()
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return handle.getvalue()


@pytest.mark.parametrize("name", ["../evil", "/abs", "a\\b", "C:x", "a/../../b"])
def test_skops_zip_with_unsafe_names_is_refused(name: str) -> None:
    report = check(_zip({"schema.json": b"{}", name: b"x"}))
    assert report.format == "skops"
    assert any("entry name" in p for p in report.problems)


def test_skops_zip_bomb_and_entry_count_are_refused() -> None:
    bomb = _zip({"schema.json": b"{}", "big": bytes(64 * MIB)})
    report = check(bomb, limits=ScanLimits(max_decompressed_bytes=MIB))
    assert any("bomb" in p or "over the limit" in p for p in report.problems)
    many = _zip({f"f{i}": b"" for i in range(50)})
    report = check(many, limits=ScanLimits(max_zip_entries=10))
    assert any("entries, over the limit of 10" in p for p in report.problems)


def test_corrupt_skops_file_is_a_problem() -> None:
    report = check(b"PK\x03\x04" + os.urandom(200))
    assert report.format == "skops"
    assert not report.safe
    assert report.problems


# --- the report and the file entry point ------------------------------------------------------


def test_report_verdict_and_exceptions() -> None:
    bad = check(EVIL)
    with pytest.raises(UntrustedTypeError) as info:
        bad.raise_if_unsafe()
    assert info.value.types == ("os.system",)
    malformed = check(b"\x80\x04\xff")
    assert malformed.untrusted == ()
    with pytest.raises(MalformedArtifactError, match="unknown opcode"):
        malformed.raise_if_unsafe()
    good = check(pickle.dumps([1, "a"], protocol=5))
    assert good.safe
    good.raise_if_unsafe()
    assert list(good.to_dict()) == [
        "path",
        "format",
        "compression",
        "safe",
        "globals",
        "untrusted",
        "problems",
    ]


def test_scan_reads_files_and_refuses_what_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(EVIL)
    report = scan(path, policy=BASE)
    assert report.untrusted == ("os.system",)
    assert report.path == str(path)
    with pytest.raises(ArtifactNotFoundError):
        scan(tmp_path / "missing.pkl")
    with pytest.raises(ArtifactNotFoundError):
        scan(tmp_path)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        with pytest.raises(ArtifactNotFoundError):
            scan(fifo)  # must not block waiting for a writer
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    assert any("empty" in p for p in scan(empty).problems)


def test_scan_payload_accepts_any_buffer_and_never_raises() -> None:
    import array

    data = pickle.dumps({"a": [1, 2]}, protocol=4)
    for buffer in (data, bytearray(data), memoryview(data), array.array("B", data)):
        assert scan_payload(buffer).safe  # type: ignore[arg-type]
    odd = array.array("i", [0x2E4E0480])  # 4-byte items: scanned as bytes
    assert isinstance(scan_payload(odd), ScanReport)  # type: ignore[arg-type]


def test_pickletools_agrees_on_globals_for_plain_pickles(fitted: dict[str, object]) -> None:
    """Cross-check with the stdlib disassembler on streams it can read (no joblib arrays)."""
    data = pickle.dumps(fitted["forest"], protocol=2)
    names = set()
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            module, name = str(arg).split(" ", 1)
            names.add(f"{module}.{name}")
    assert names <= set(check(data).globals)


# --- references and callables: both walls refuse a call the policy does not allow ------------
#
# Every stream below names only default-policy globals. Each call would allocate what the file
# chooses, or launder a call to a reference-only name; both the scanner and the restricted
# unpickler (alone, as if the scanner had a bug) must refuse it, each naming the reason. The
# sizes are absurd (10**15) so that an unguarded call fails fast rather than allocating.

NDARRAY = Raw(sglob("numpy", "ndarray"))
HUGE = 10**15


def call(module: str, name: str, *args: object) -> Raw:
    return Raw(sglob(module, name) + enc(tuple(args)) + OP.REDUCE)


def newobj(module: str, name: str, *args: object) -> Raw:
    return Raw(sglob(module, name) + enc(tuple(args)) + OP.NEWOBJ)


def second_wall(data: bytes, policy: TypePolicy | None = None) -> Any:
    from safeload._unpickle import unpickle_verified

    return unpickle_verified(bytearray(data), policy or TypePolicy.default())


F8_FRESH = dtype_ops(state=_MISSING)  # numpy.dtype("f8", False, True), not BUILD-ed
MT19937 = Raw(sglob("numpy.random._mt19937", "MT19937"))

# id -> (opcodes, what the scanner says, what the unpickler says)
FORBIDDEN_CALLS: dict[str, tuple[bytes, str, str]] = {
    "ndarray-huge": (call("numpy", "ndarray", (HUGE,)), "only as a stored reference", "reference"),
    "ndarray-newobj": (
        newobj("numpy", "ndarray", (HUGE,)),
        "only as a stored reference",
        "reference",
    ),
    "ndarray-obj": (
        OP.MARK + NDARRAY + enc((HUGE,)) + OP.OBJ,
        "only as a stored reference",
        "reference",
    ),
    "ndarray-inst": (
        OP.MARK + enc((HUGE,)) + OP.INST + b"numpy\nndarray\n",
        "only as a stored reference",
        "reference",
    ),
    "ufunc": (call("numpy", "square", 3), "only as a stored reference", "reference"),
    "scalar-type": (call("numpy", "float64", "1e3"), "only as a stored reference", "reference"),
    "metric": (
        call("sklearn.metrics._regression", "r2_score", [1.0], [1.0]),
        "only as a stored reference",
        "reference",
    ),
    "seed-sequence-pool": (
        Raw(sglob("numpy.random.bit_generator", "SeedSequence") + OP.EMPTY_TUPLE)
        + enc({"pool_size": HUGE})
        + OP.NEWOBJ_EX,
        "only as a stored reference",
        "reference",
    ),
    "reconstruct-huge-shape": (
        call("numpy._core.multiarray", "_reconstruct", NDARRAY, (HUGE,), b"b"),
        "numpy._core.multiarray._reconstruct with other than",
        "(0,)",
    ),
    "mareconstruct-huge-shape": (
        call(
            "numpy.ma.core",
            "_mareconstruct",
            Raw(sglob("numpy.ma", "MaskedArray")),
            NDARRAY,
            (HUGE,),
            "b",
        ),
        "_mareconstruct with other than",
        "(0,)",
    ),
    "scalar-zero-filled-itemsize": (
        call("numpy._core.multiarray", "scalar", Raw(dtype_ops("V999999999", state=_MISSING))),
        "the one-argument form allocates",
        "<raw bytes>",
    ),
    "frombuffer-of-a-tuple": (
        call("numpy._core.numeric", "_frombuffer", (1, 2), F8_FRESH, (2,), "C"),
        "other than bytes",
        "other than bytes",
    ),
    "bit-generator-ctor-calls-its-argument": (
        call("numpy.random._pickle", "__bit_generator_ctor", NDARRAY),
        "bit generator's name or class",
        "bit generator",
    ),
    "generator-ctor-launders-a-call": (
        call(
            "numpy.random._pickle",
            "__generator_ctor",
            (HUGE,),
            NDARRAY,
        ),
        "__generator_ctor with something other than a bit generator",
        "bit generator",
    ),
    "randomstate-ctor-with-another-ctor": (
        call("numpy.random._pickle", "__randomstate_ctor", "MT19937", NDARRAY),
        "constructor other than numpy's __bit_generator_ctor",
        "__bit_generator_ctor",
    ),
    "newobj-of-another-module": (
        call(
            "sklearn.neighbors._kd_tree",
            "newObj",
            Raw(sglob("sklearn.neighbors._ball_tree", "BallTree")),
        ),
        "one class of sklearn.neighbors._kd_tree",
        "its own module",
    ),
    "pyx-unpickle-of-another-class": (
        call("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence", MT19937, 0, None),
        "numpy.random.bit_generator.SeedSequence, <checksum>",
        "<its class>",
    ),
    "tree-without-class-counts": (
        call("sklearn.tree._tree", "Tree", 4, 2, HUGE),
        "class counts that are not an array",
        "class counts",
    ),
    "estimator-init-by-reduce": (
        call("sklearn.linear_model._logistic", "LogisticRegression"),
        "by REDUCE, which would run its constructor",
        "by REDUCE",
    ),
    "sparse-init-allocates-indptr": (
        call("scipy.sparse._csr", "csr_matrix", (HUGE, 1)),
        "by REDUCE",
        "by REDUCE",
    ),
    "sparse-newobj-with-arguments": (
        newobj("scipy.sparse._csr", "csr_matrix", (HUGE, 1)),
        "by NEWOBJ with arguments",
        "NEWOBJ with arguments",
    ),
    "ordered-dict-with-items": (
        call("collections", "OrderedDict", [(1, 2)]),
        "collections.OrderedDict with arguments",
        "with arguments",
    ),
    "dtype-from-a-spec": (
        call("numpy", "dtype", [("a", "O")]),
        "other than a plain numpy type code",
        "other than a plain numpy type code",
    ),
    "call-a-value-a-call-returned": (
        F8_FRESH + enc(()) + OP.REDUCE,
        "not a named global",
        "not a class or function the policy names",
    ),
    "build-a-class": (NDARRAY + enc({"x": 1}) + OP.BUILD, "BUILD sets attributes", "itself"),
}


@pytest.mark.parametrize("case", sorted(FORBIDDEN_CALLS))
def test_both_walls_refuse_calls_the_policy_does_not_allow(case: str) -> None:
    ops, scanner_says, unpickler_says = FORBIDDEN_CALLS[case]
    data = stream(ops)
    report = check(data, policy=TypePolicy.default())
    assert not report.safe
    assert report.untrusted == (), report.untrusted  # only default-policy names
    assert any(scanner_says in p for p in report.problems), report.problems
    with pytest.raises(MalformedArtifactError) as refused:
        second_wall(data)
    assert unpickler_says in str(refused.value)


def test_both_walls_refuse_a_call_rule_they_do_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    # A rule added to _default_types before either wall learns it must refuse, not allow.
    import safeload.policy

    monkeypatch.setitem(safeload.policy._RULES, ("collections", "OrderedDict"), "from-the-future")
    data = stream(call("collections", "OrderedDict"))
    report = check(data, policy=TypePolicy.default())
    assert any("under an unknown call rule 'from-the-future'" in p for p in report.problems)
    with pytest.raises(MalformedArtifactError, match="does not know \\('from-the-future'\\)"):
        second_wall(data)


@pytest.mark.parametrize(
    "ops",
    [
        pytest.param(
            call("copyreg", "_reconstructor", NDARRAY, Raw(glob("builtins", "object")), None),
            id="copyreg-reconstructor",
        ),
        pytest.param(call("copyreg", "__newobj__", NDARRAY, HUGE), id="copyreg-newobj"),
        pytest.param(
            call("copyreg", "__newobj_ex__", NDARRAY, (HUGE,), {}), id="copyreg-newobj-ex"
        ),
    ],
)
def test_copyreg_helpers_cannot_launder_a_call(ops: bytes) -> None:
    # Even a user who trusts copyreg's helpers does not make reference-only classes callable.
    policy = TypePolicy.default().extend(
        ["copyreg:_reconstructor", "copyreg:__newobj__", "copyreg:__newobj_ex__"]
    )
    data = stream(ops)
    report = check(data, policy=policy)
    assert any(
        "numpy.ndarray, which the policy trusts only as a reference" in p for p in report.problems
    )
    with pytest.raises(MalformedArtifactError, match="does not let the file call"):
        second_wall(data, policy)


def test_second_wall_checks_tree_class_counts_against_outputs() -> None:
    # Tree(n_features, n_classes, n_outputs) allocates n_outputs and reads n_classes[0..n).
    counts = Raw(
        call("numpy._core.multiarray", "_reconstruct", NDARRAY, (0,), b"b")
        + enc((1, (1,), np.dtype("<i8"), False, struct.pack("<q", 2)))
        + OP.BUILD
    )
    for n_outputs, ok in ((1, True), (HUGE, False), (2, False)):
        data = stream(call("sklearn.tree._tree", "Tree", 4, counts, n_outputs))
        assert check(data, policy=TypePolicy.default()).safe  # the scanner cannot see lengths
        if ok:
            assert second_wall(data).n_outputs == 1
        else:
            with pytest.raises(MalformedArtifactError, match="one integer per output"):
                second_wall(data)


def test_second_wall_builds_only_instances_of_named_classes() -> None:
    # iter() hands back a list_iterator, whose __setstate__ no policy name vouches for.
    policy = TypePolicy.default().extend(["builtins:iter"])
    data = stream(call("builtins", "iter", [1, 2]) + enc(1) + OP.BUILD)
    with pytest.raises(MalformedArtifactError, match="builtins.list_iterator"):
        second_wall(data, policy)


LEGITIMATE_CALLS = {
    "array": call("numpy._core.multiarray", "_reconstruct", NDARRAY, (0,), b"b")
    + enc((1, (2,), np.dtype("<f8"), False, bytes(16)))
    + OP.BUILD,
    "set-protocol-2": call("builtins", "set", [1, "a", (2, 3)]),
    "frozenset-protocol-2": call("builtins", "frozenset", (1, 2)),
    "ordered-dict": call("collections", "OrderedDict") + enc({"a": 1})[1:],
    "slice": call("builtins", "slice", 1, 2, None),
    "complex": call("builtins", "complex", 1.0, 2.0),
    "bit-generator-by-name": call("numpy.random._pickle", "__bit_generator_ctor", "PCG64"),
    "bit-generator-by-class": call("numpy.random._pickle", "__bit_generator_ctor", MT19937),
    "masked": call("numpy.ma.core", "MaskedConstant"),
    "estimator": newobj("sklearn.linear_model._logistic", "LogisticRegression"),
    "scalar": call("numpy._core.multiarray", "scalar", Raw(F8_FRESH), struct.pack("<d", 1.5)),
}


@pytest.mark.parametrize("case", sorted(LEGITIMATE_CALLS))
def test_both_walls_accept_the_forms_the_libraries_write(case: str) -> None:
    data = stream(LEGITIMATE_CALLS[case])
    report = check(data, policy=TypePolicy.default())
    assert report.safe, report.to_dict()
    second_wall(data)


def _real_objects() -> dict[str, object]:
    from collections import OrderedDict

    rng = np.random.default_rng(0)
    return {
        "masked-array": np.ma.masked_array([1.0, 2.0], mask=[False, True]),
        "masked-constant": np.ma.masked,
        "ordered-dict": OrderedDict(a=1, b=[2]),
        "set-and-frozenset": ({1, "a", (2, 3)}, frozenset({4})),
        "complex-and-slice": (1 + 2j, slice(1, None, 2)),
        "generator": rng,
        "random-state": np.random.RandomState(0),
        "seed-sequence": np.random.SeedSequence(1234),
        "scalars": (np.float64(1.5), np.int32(3), np.str_("x")),
        "object-array": np.array([1, "a", None, (2, 3)], dtype=object),
        "structured": np.zeros(2, dtype=[("a", "<i8"), ("b", "O"), ("c", "<f4", (2,))]),
        "datetimes": np.array(["2024-01-01T10"], dtype="M8[h]"),
    }


@pytest.mark.parametrize("protocol", [3, 4, 5])
@pytest.mark.parametrize("name", sorted(_real_objects()))
def test_real_pickles_of_numpy_and_builtin_types_pass_both_walls(name: str, protocol: int) -> None:
    obj = _real_objects()[name]
    plain = pickle.dumps(obj, protocol=protocol)
    dumped = joblib_bytes(obj, protocol=protocol)
    for data, real in ((plain, pickle.loads(plain)), (dumped, joblib.load(io.BytesIO(dumped)))):
        assert check(data, policy=TypePolicy.default()).safe, name
        loaded = second_wall(data)  # the very object the unrestricted loader builds
        assert pickle.dumps(loaded, protocol=4) == pickle.dumps(real, protocol=4)


# --- hashing and nesting: what the loader's C code would recurse through ----------------------


def _tuple_dag(levels: int) -> bytes:
    """t[i] = (t[i-1], t[i-1]) through the memo: ``levels`` opcodes, 2**levels tuples."""
    body = OP.EMPTY_TUPLE + OP.BINPUT + b"\x00"
    for i in range(1, levels + 1):
        body += OP.POP + OP.BINGET + bytes([i - 1]) + OP.DUP + OP.TUPLE2 + OP.BINPUT + bytes([i])
    return body


def _deep_tuple(depth: int) -> bytes:
    return OP.MARK * depth + OP.TUPLE * depth


HASHED_PLACES = {
    "dict-key": lambda key: OP.EMPTY_DICT + key + OP.NONE + OP.SETITEM,
    "dict-opcode": lambda key: OP.MARK + key + OP.NONE + OP.DICT,
    "setitems": lambda key: OP.EMPTY_DICT + OP.MARK + key + OP.NONE + OP.SETITEMS,
    "frozenset": lambda key: OP.MARK + key + OP.FROZENSET,
    "additems": lambda key: OP.EMPTY_SET + OP.MARK + key + OP.ADDITEMS,
    "set-call": lambda key: (
        sglob("builtins", "set") + OP.EMPTY_LIST + key + OP.APPEND + OP.TUPLE1 + OP.REDUCE
    ),
}


@pytest.mark.parametrize("place", sorted(HASHED_PLACES))
@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_memo_shared_tuple_dags_are_refused_where_the_loader_hashes(place: str) -> None:
    data = stream(HASHED_PLACES[place](_tuple_dag(64)))
    start = time.monotonic()
    report = check(data, policy=TypePolicy.default())
    assert any("max_hash_work" in p for p in report.problems), report.problems
    assert time.monotonic() - start < 1
    # The same DAG that is only stored (never hashed) is harmless to load.
    assert check(stream(_tuple_dag(64)), policy=TypePolicy.default()).safe


@pytest.mark.parametrize("place", sorted(HASHED_PLACES))
@pytest.mark.timeout(60, method="signal")  # fails fast if the bound regresses
def test_second_wall_bounds_hashing_on_its_own(place: str) -> None:
    # 2**26 expanded tuples (~67M hash steps): over the budget. Were the guard gone, this would
    # still finish (slowly), so it is safe to run in-process.
    with pytest.raises(MalformedArtifactError, match="hash"):
        second_wall(stream(HASHED_PLACES[place](_tuple_dag(26))))
    with pytest.raises(MalformedArtifactError, match="nests more than 1000 deep"):
        second_wall(stream(HASHED_PLACES[place](_deep_tuple(1001))))
    small = second_wall(stream(HASHED_PLACES[place](_tuple_dag(10))))
    assert small is not None


_HOSTILE_CHILD = """
import sys
import safeload
from safeload._unpickle import unpickle_verified
try:
    unpickle_verified(bytearray(open(sys.argv[1], "rb").read()), safeload.TypePolicy.default())
except safeload.SafeloadError as exc:
    print("refused", exc)
    sys.exit(0)
print("accepted")
"""


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(HASHED_PLACES["dict-key"](_tuple_dag(64)), id="dag-key"),
        pytest.param(HASHED_PLACES["frozenset"](_tuple_dag(64)), id="dag-frozenset"),
        pytest.param(HASHED_PLACES["dict-key"](_deep_tuple(200_000)), id="deep-key"),
        pytest.param(HASHED_PLACES["set-call"](_deep_tuple(200_000)), id="deep-set-call"),
    ],
)
def test_second_wall_survives_hashing_bombs_in_a_child(body: bytes, tmp_path: Path) -> None:
    # Unguarded, these hang forever (2**64 hash steps) or crash the interpreter (C recursion).
    import subprocess
    import sys

    path = tmp_path / "bomb.pkl"
    path.write_bytes(stream(body))
    child = subprocess.run(
        [sys.executable, "-c", _HOSTILE_CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0 and child.stdout.startswith("refused"), (child, child.stderr)


def _nested_lists(depth: int) -> bytes:
    return OP.EMPTY_LIST * depth + OP.APPEND * (depth - 1)


def _nested_dicts(depth: int) -> bytes:
    return (OP.EMPTY_DICT + su("k")) * (depth - 1) + OP.EMPTY_DICT + OP.SETITEM * (depth - 1)


@pytest.mark.parametrize(
    "nested",
    [
        pytest.param(_deep_tuple, id="tuples"),
        pytest.param(_nested_lists, id="lists"),
        pytest.param(_nested_dicts, id="dicts"),
        pytest.param(lambda d: OP.MARK * d + OP.FROZENSET * d, id="frozensets"),
    ],
)
@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_nesting_depth_is_bounded(nested: Callable[[int], bytes]) -> None:
    assert check(stream(nested(1000))).safe
    report = check(stream(nested(1001)))
    assert any("max_depth" in p for p in report.problems), report.problems
    assert check(stream(nested(10)), limits=ScanLimits(max_depth=10)).safe
    limited = check(stream(nested(11)), limits=ScanLimits(max_depth=10))
    assert any("ScanLimits.max_depth" in p for p in limited.problems)


@pytest.mark.timeout(30, method="signal")  # fails fast if the bound regresses
def test_hash_work_is_counted_over_the_whole_file() -> None:
    keys = {f"k{i}": i for i in range(100)}
    assert check(stream(enc(keys))).safe
    limited = check(stream(enc(keys)), limits=ScanLimits(max_hash_work=99))
    assert any("max_hash_work" in p for p in limited.problems)
    # a tuple key costs one step per item, and a shared one costs it again at each use
    pair = enc((1, 2)) + OP.MEMOIZE
    uses = OP.EMPTY_DICT + pair + OP.NONE + OP.SETITEM
    uses += (OP.BINGET + b"\x00" + OP.NONE + OP.SETITEM) * 4
    assert check(stream(uses), limits=ScanLimits(max_hash_work=15)).safe
    assert not check(stream(uses), limits=ScanLimits(max_hash_work=14)).safe


# --- dtypes: the second wall runs the scanner's own check -------------------------------------


@pytest.mark.parametrize(
    "state",
    DTYPE_STATES_NUMPY_NEVER_WRITES,
)
def test_second_wall_refuses_dtype_states_numpy_never_writes(state: tuple[object, ...]) -> None:
    with pytest.raises(MalformedArtifactError, match="numpy never writes"):
        second_wall(stream(dtype_ops("f8", state=state)))


def test_second_wall_refuses_a_structured_dtype_hiding_an_object_field() -> None:
    # The corpus attack, rebuilt here: field "a" holds objects, the flags say it holds none.
    real = np.dtype({"names": ["a"], "formats": ["O"], "offsets": [0], "itemsize": 8})
    reduced: Any = real.__reduce__()
    args, state = reduced[1], reduced[2]
    forged = dtype_ops(args=args, state=(*state[:7], 0))
    frombuffer = call("numpy._core.numeric", "_frombuffer", b"A" * 8, forged, (1,), "C")
    with pytest.raises(MalformedArtifactError, match="numpy never writes"):
        second_wall(stream(frombuffer))
    assert second_wall(stream(dtype_ops(args=args, state=state))) == real


def test_second_wall_refuses_dtype_builds_in_any_other_form() -> None:
    bad_state = enc((3, "<", None, None, None, -1, -1, 63)) + OP.BUILD
    good_state = enc((3, "<", None, None, None, -1, -1, 0)) + OP.BUILD
    # built twice
    with pytest.raises(MalformedArtifactError, match="already built or used"):
        second_wall(stream(dtype_ops() + good_state))
    # built after an array took it (fetched again from the memo)
    dtype = dtype_ops(state=_MISSING) + OP.MEMOIZE
    held = Raw(OP.BINGET + b"\x00")
    array = call("numpy._core.numeric", "_frombuffer", bytes(8), held, (1,), "C")
    data = stream(dtype + OP.POP + array + OP.POP + OP.BINGET + b"\x00" + good_state)
    with pytest.raises(MalformedArtifactError, match="already built or used"):
        second_wall(data)
    # made with other arguments: numpy.dtype("f8") is numpy's shared float64
    with pytest.raises(MalformedArtifactError, match="never writes"):
        second_wall(stream(dtype_ops(args=("f8",))))
    # made by NEWOBJ, or by a call that is not numpy.dtype
    made = sglob("numpy", "dtype") + enc(("f8", False, True)) + OP.NEWOBJ
    with pytest.raises(MalformedArtifactError, match="NEWOBJ"):
        second_wall(stream(made + bad_state))
    policy = TypePolicy.default().extend(["numpy.dtypes:Float64DType"])
    other = sglob("numpy.dtypes", "Float64DType") + OP.EMPTY_TUPLE + OP.REDUCE
    with pytest.raises(MalformedArtifactError, match="numpy.dtype did not just make"):
        second_wall(stream(other + bad_state), policy)
    # and the honest form still works
    assert second_wall(stream(dtype_ops())) == np.dtype("<f8")


@pytest.mark.parametrize(
    "dtype",
    [
        "<f8",
        ">i4",
        "O",
        "U7",
        "S3",
        "M8[ms]",
        "m8[10D]",
        [("a", "<i4"), ("b", ">f8")],
        [("a", "O"), ("b", "u1", (2,))],
        ("<f4", (2, 3)),
    ],
)
def test_second_wall_accepts_every_dtype_numpy_writes(dtype: Any) -> None:
    real = np.dtype(dtype)
    for aligned in (False, True):
        value = np.dtype(dtype, align=aligned) if isinstance(dtype, list) else real
        data = pickle.dumps(value, protocol=4)
        assert check(data, policy=TypePolicy.default()).safe
        loaded = second_wall(data)
        assert loaded == value and loaded.__reduce__() == value.__reduce__()


@pytest.mark.parametrize("levels", [6, 12])
@pytest.mark.timeout(30, method="signal")
def test_a_memo_shared_graph_in_a_dtype_state_is_refused_quickly_by_the_scanner(
    levels: int,
) -> None:
    """Regression: the scanner realized the graph before comparing (2.5 s at 6 levels, tenfold
    per level) and ScanLimits.max_seconds is only checked between opcodes."""
    from tests.test_unpickle import dtype_state_dag_stream

    started = time.monotonic()
    report = scan_bytes(dtype_state_dag_stream(levels))
    assert not report.safe
    assert any("more than 100000 values" in p for p in report.problems), report.problems
    assert time.monotonic() - started < 1


# --- NEWOBJ_EX hands both its arguments and its keywords to the call rule ----------------------


def _newobj_ex(args: bytes, kwargs: bytes) -> bytes:
    cls = glob("scipy.sparse._csr", "csr_matrix")  # rule "new": cls.__new__(cls) only
    return OP.PROTO + b"\x04" + cls + args + kwargs + OP.NEWOBJ_EX + OP.STOP


def test_newobj_ex_without_arguments_passes_a_new_only_rule() -> None:
    report = check(_newobj_ex(OP.EMPTY_TUPLE, OP.EMPTY_DICT), policy=TypePolicy.default())
    assert report.safe, report.problems


def test_newobj_ex_with_keywords_breaks_a_new_only_rule() -> None:
    kwargs = OP.EMPTY_DICT + su("shape") + OP.BININT1 + b"\x05" + OP.SETITEM
    report = check(_newobj_ex(OP.EMPTY_TUPLE, kwargs), policy=TypePolicy.default())
    assert any("with keyword arguments" in p for p in report.problems), report.problems


def test_newobj_ex_with_arguments_breaks_a_new_only_rule() -> None:
    args = OP.BININT1 + b"\x05" + OP.TUPLE1
    report = check(_newobj_ex(args, OP.EMPTY_DICT), policy=TypePolicy.default())
    assert any("by NEWOBJ with arguments" in p for p in report.problems), report.problems


# --- raise_if_unsafe: which refusal a report stands for ------------------------------------------


def _report(untrusted: tuple[str, ...], problems: tuple[str, ...], path: str | None) -> ScanReport:
    return ScanReport(path, "pickle", None, untrusted, untrusted, problems)


@pytest.mark.parametrize("path", ["models/m.joblib", None])
def test_untrusted_types_with_other_problems_raise_untrusted_type_error_naming_both(
    path: str | None,
) -> None:
    report = _report(("os.system",), ("bytes after STOP.", "Too deep."), path)
    with pytest.raises(UntrustedTypeError) as err:
        report.raise_if_unsafe()
    assert err.value.types == ("os.system",)
    message = str(err.value)
    assert message.startswith(f"{path or 'The model stream'} names 1 type(s)")
    assert message.endswith(" Other problems: bytes after STOP. Too deep.")


def test_problems_alone_raise_malformed_and_a_clean_report_nothing() -> None:
    with pytest.raises(MalformedArtifactError, match="refused by the static scan.*bytes after"):
        _report((), ("bytes after STOP",), None).raise_if_unsafe()
    clean = _report((), (), None)
    assert clean.safe
    clean.raise_if_unsafe()
    assert not _report(("os.system",), (), None).safe
    assert not _report((), ("x",), None).safe


def test_problems_past_the_cap_are_counted_and_still_refused() -> None:
    ext = b"".join(OP.EXT1 + bytes([code]) + OP.POP for code in range(1, 61))
    report = check(OP.PROTO + b"\x02" + ext + OP.NONE + OP.STOP)
    assert len(report.problems) == 51
    assert report.problems[-1] == "... and 10 more problem(s) of the same kinds."
    with pytest.raises(MalformedArtifactError, match="copyreg extension registry"):
        report.raise_if_unsafe()
