"""``safeload._unpickle``, the quarantined second wall, tested at its own level.

The attack suite and ``test_scanning`` drive this module through crafted streams next to the
scanner; here is its own contract: genuine joblib bytes round-trip with arrays as views on the
buffer, trailing bytes are refused, ``find_class`` refuses without importing, the format
dispatch, the hashing budget and depth bound, and the :class:`ConcreteSite` that
``safeload.typegate.callrules`` asks about the values the unpickler holds.
"""

from __future__ import annotations

import inspect
import io
import pickle
import struct
import sys
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from safeload import _default_types as rules
from safeload._unpickle import (
    _RestrictedUnpickler,
    deserialize_checked,
    load_skops_verified,
    unpickle_verified,
)
from safeload.errors import MalformedArtifactError, UntrustedTypeError
from safeload.policy import TypePolicy
from safeload.typegate import TypeChecked, check_types
from safeload.typegate.callrules import RULES, ConcreteSite
from safeload.typegate.report import make_report
from tests.helpers import joblib_bytes

OP = pickle
DEFAULT = TypePolicy.default()


def su(text: str) -> bytes:
    raw = text.encode()
    return OP.SHORT_BINUNICODE + bytes([len(raw)]) + raw


def sglob(module: str, name: str) -> bytes:
    return su(module) + su(name) + OP.STACK_GLOBAL


def stream(*parts: bytes, proto: int = 4) -> bytes:
    return OP.PROTO + bytes([proto]) + b"".join(parts) + OP.STOP


def aligned_copy(data: bytes, shift: int = 0) -> tuple[np.ndarray, memoryview]:
    """``data`` in numpy-owned memory (16-byte aligned), starting ``shift`` bytes in."""
    raw = np.zeros(len(data) + shift, dtype=np.uint8)
    raw[shift:] = np.frombuffer(data, dtype=np.uint8)
    return raw, memoryview(raw)[shift:]


def arrays_of(pipeline: Pipeline) -> dict[str, np.ndarray]:
    scaler, clf = pipeline[0], pipeline[-1]
    return {"mean_": scaler.mean_, "scale_": scaler.scale_, "coef_": clf.coef_}


# --- genuine bytes ----------------------------------------------------------------------------


def test_genuine_pipeline_round_trips(pipeline: Pipeline, iris: tuple[Any, Any]) -> None:
    data = joblib_bytes(pipeline)
    loaded = unpickle_verified(data, DEFAULT)
    assert type(loaded) is Pipeline
    X, _ = iris
    np.testing.assert_array_equal(loaded.predict_proba(X), pipeline.predict_proba(X))
    reference = joblib.load(io.BytesIO(data))
    assert pickle.dumps(loaded, protocol=4) == pickle.dumps(reference, protocol=4)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_every_buffer_type_is_accepted(pipeline: Pipeline, wrap: type) -> None:
    loaded = unpickle_verified(wrap(joblib_bytes(pipeline)), DEFAULT)
    np.testing.assert_array_equal(loaded[-1].coef_, pipeline[-1].coef_)


def test_arrays_are_views_on_the_verified_buffer(pipeline: Pipeline) -> None:
    raw, view = aligned_copy(joblib_bytes(pipeline))
    loaded = unpickle_verified(view, DEFAULT)
    for name, array in arrays_of(loaded).items():
        assert np.shares_memory(array, raw), name
        assert array.flags.aligned, name
        np.testing.assert_array_equal(array, arrays_of(pipeline)[name])


def test_a_misaligned_buffer_gives_aligned_copies(pipeline: Pipeline) -> None:
    # The one promised exception: a misaligned view is refused by Cython/scipy code, so copy.
    raw, view = aligned_copy(joblib_bytes(pipeline), shift=1)
    loaded = unpickle_verified(view, DEFAULT)
    for name, array in arrays_of(loaded).items():
        assert array.flags.aligned, name
        assert not np.shares_memory(array, raw), name
        np.testing.assert_array_equal(array, arrays_of(pipeline)[name])


def test_non_native_arrays_come_out_native_as_joblib_load_does() -> None:
    big = np.arange(6, dtype=">f8").reshape(2, 3)
    fortran = np.asfortranarray(np.arange(12, dtype="<i4").reshape(3, 4))
    raw, view = aligned_copy(joblib_bytes({"big": big, "fortran": fortran}))
    loaded = unpickle_verified(view, DEFAULT)
    expected = joblib.load(io.BytesIO(bytes(view)))
    assert loaded["big"].dtype == expected["big"].dtype == np.dtype("=f8")
    np.testing.assert_array_equal(loaded["big"], big)
    assert loaded["fortran"].flags.f_contiguous
    assert np.shares_memory(loaded["fortran"], raw)
    np.testing.assert_array_equal(loaded["fortran"], fortran)


def test_record_arrays_keep_or_change_byte_order_exactly_as_joblib_load_does() -> None:
    # joblib swaps a record array only when every field is non-native; native records (the
    # HistGradientBoosting node records) skip its test, which must not change the answer.
    records = {
        name: np.array([(1, 2.0), (3, 4.0)], dtype=[("a", order + "i8"), ("b", order2 + "f8")])
        for name, order, order2 in (("native", "<", "<"), ("mixed", ">", "<"), ("big", ">", ">"))
    }
    raw, view = aligned_copy(joblib_bytes(records))
    loaded = unpickle_verified(view, DEFAULT)
    expected = joblib.load(io.BytesIO(bytes(view)))
    for name, array in records.items():
        assert loaded[name].dtype == expected[name].dtype, name
        np.testing.assert_array_equal(loaded[name], array)
    assert np.shares_memory(loaded["native"], raw)


# --- the end of the stream --------------------------------------------------------------------


@pytest.mark.parametrize("junk", [b"\x00", b".", pickle.dumps(1, protocol=2)])
def test_bytes_after_the_stream_are_refused(pipeline: Pipeline, junk: bytes) -> None:
    with pytest.raises(MalformedArtifactError, match="after the end of the model stream"):
        unpickle_verified(joblib_bytes(pipeline) + junk, DEFAULT)


def test_bytes_after_stop_inside_the_last_frame_are_refused() -> None:
    body = OP.NONE + OP.STOP + b"hidden"
    framed = OP.PROTO + b"\x04" + OP.FRAME + struct.pack("<Q", len(body)) + body
    assert pickle.loads(framed) is None  # a plain unpickler never notices
    with pytest.raises(MalformedArtifactError, match="after the end"):
        unpickle_verified(framed, DEFAULT)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(stream(OP.NONE)[:-1], id="no-stop"),
        pytest.param(OP.PROTO + b"\x04\xff" + OP.STOP, id="unknown-opcode"),
        pytest.param(stream(OP.BINGET + b"\x07"), id="memo-miss"),
        pytest.param(stream(OP.TUPLE), id="mark-missing"),
        pytest.param(stream(OP.BINUNICODE + b"\xff\xff\xff\x7f"), id="string-past-end"),
    ],
)
def test_broken_streams_are_refusals_not_tracebacks(data: bytes) -> None:
    with pytest.raises(MalformedArtifactError):
        unpickle_verified(data, DEFAULT)


# --- find_class -------------------------------------------------------------------------------

_MARKER_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")
def thing(*args):
    return args
"""


def test_find_class_refuses_without_importing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "IMPORTED"
    (tmp_path / "safeload_marker_mod.py").write_text(_MARKER_MODULE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "safeload_marker_mod", raising=False)
    data = stream(sglob("safeload_marker_mod", "thing"))
    with pytest.raises(UntrustedTypeError) as refused:
        unpickle_verified(data, DEFAULT)
    assert refused.value.types == ("safeload_marker_mod.thing",)
    assert not marker.exists()
    assert "safeload_marker_mod" not in sys.modules
    # Control: trusted by its exact name, the same stream does import it.
    unpickle_verified(data, DEFAULT.extend(["safeload_marker_mod:thing"]))
    assert marker.exists()
    monkeypatch.delitem(sys.modules, "safeload_marker_mod")


def test_find_class_of_a_module_that_does_not_exist_is_untrusted_not_import_error() -> None:
    data = stream(sglob("no_such_module_for_safeload", "anything"))
    with pytest.raises(UntrustedTypeError) as refused:
        unpickle_verified(data, DEFAULT)
    assert refused.value.types == ("no_such_module_for_safeload.anything",)
    assert "no_such_module_for_safeload" not in sys.modules


def test_find_class_trusts_exact_names_only() -> None:
    site = _RestrictedUnpickler(memoryview(b""), TypePolicy.of(["numpy:float64"]))
    assert site.find_class("numpy", "float64") is np.float64
    for module, name in [("numpy", "float32"), ("numpy.core", "float64"), ("numpy", "float6")]:
        with pytest.raises(UntrustedTypeError):
            site.find_class(module, name)


# --- dispatch by format -----------------------------------------------------------------------


def _checked(fmt: str, payload: bytes, trusted: tuple[str, ...] = ()) -> TypeChecked:
    report = make_report(path=None, fmt=fmt, compression=None, policy=DEFAULT)
    return TypeChecked(fmt, report, payload, trusted)


def test_deserialize_checked_runs_the_unpickler_for_joblib(pipeline: Pipeline) -> None:
    data = joblib_bytes(pipeline, compress=3)
    checked = check_types(data, DEFAULT)
    assert checked.format == "joblib"
    loaded = deserialize_checked(checked, DEFAULT)
    np.testing.assert_array_equal(loaded[-1].coef_, pipeline[-1].coef_)
    # It enforces the policy it is given (not the report it carries).
    with pytest.raises(UntrustedTypeError):
        deserialize_checked(checked, TypePolicy.of(["numpy:ndarray"]))


def test_deserialize_checked_hands_skops_exactly_the_checked_names(
    iris: tuple[Any, Any],
) -> None:
    X, y = iris
    tree = DecisionTreeClassifier(random_state=0).fit(X, y)
    data = skops.io.dumps(tree)
    checked = check_types(data, DEFAULT, format="skops")
    assert checked.format == "skops"
    assert checked.skops_trusted == ("sklearn.tree._tree.Tree",)
    loaded = deserialize_checked(checked, DEFAULT)
    np.testing.assert_array_equal(loaded.predict(X), tree.predict(X))
    # The policy is not consulted again: skops gets the checked list, and nothing broader.
    with pytest.raises(UntrustedTypeError, match="skops refused"):
        deserialize_checked(_checked("skops", data), DEFAULT)
    # A joblib payload under the skops label goes to skops (which cannot read it).
    with pytest.raises(MalformedArtifactError, match="skops could not"):
        load_skops_verified(joblib_bytes(tree), list(checked.skops_trusted))


def test_deserialize_checked_never_unpickles_a_skops_payload() -> None:
    pickled = pickle.dumps({"a": 1}, protocol=4)
    assert deserialize_checked(_checked("joblib", pickled), DEFAULT) == {"a": 1}
    with pytest.raises(MalformedArtifactError, match="skops"):
        deserialize_checked(_checked("skops", pickled), DEFAULT)


# --- the hashing budget and the depth bound ---------------------------------------------------


def _tuple_dag(levels: int, width: int = 2) -> tuple[Any, ...]:
    value: tuple[Any, ...] = ()
    for _ in range(levels):
        value = (value,) * width
    return value


def _deep_tuple(depth: int) -> tuple[Any, ...]:
    value: tuple[Any, ...] = ()
    for _ in range(depth - 1):
        value = (value,)
    return value


def _site(policy: TypePolicy = DEFAULT) -> _RestrictedUnpickler:
    return _RestrictedUnpickler(memoryview(stream(OP.NONE)), policy)


def test_hashing_work_is_charged_over_the_whole_load() -> None:
    site = _site()
    dag = _tuple_dag(24)  # 2**25 - 1 steps: under the budget of 50M once, not twice
    start = time.monotonic()
    site.charge((dag,))
    with pytest.raises(MalformedArtifactError, match="hash"):
        site.charge((dag,))
    assert time.monotonic() - start < 2  # counted in linear time, never by hashing


def test_one_value_over_the_budget_is_refused_before_hashing() -> None:
    start = time.monotonic()
    with pytest.raises(MalformedArtifactError, match="steps"):
        _site().charge([1, "k", _tuple_dag(64)])
    assert time.monotonic() - start < 1


def test_tuples_nested_past_the_bound_are_refused_not_a_crash() -> None:
    site = _site()
    site.charge((_deep_tuple(1000),))
    with pytest.raises(MalformedArtifactError, match="nests more than 1000 deep"):
        site.charge((_deep_tuple(1001),))
    with pytest.raises(MalformedArtifactError, match="nests more than 1000 deep"):
        site.charge((_deep_tuple(200_000),))


def test_a_memo_shared_key_in_a_stream_is_a_refusal() -> None:
    # t[i] = (t[i-1], t[i-1]) through the memo, used as a dict key: 2**40 hash steps.
    body = OP.EMPTY_TUPLE + OP.BINPUT + b"\x00"
    for i in range(1, 41):
        body += OP.POP + OP.BINGET + bytes([i - 1]) + OP.DUP + OP.TUPLE2 + OP.BINPUT + bytes([i])
    data = stream(OP.EMPTY_DICT + body + OP.NONE + OP.SETITEM)
    start = time.monotonic()
    with pytest.raises(MalformedArtifactError, match="hash"):
        unpickle_verified(data, DEFAULT)
    assert time.monotonic() - start < 2


def dtype_state_dag_stream(levels: int = 6) -> bytes:
    """``numpy.dtype('M8')`` whose BUILD state hides a memo-shared tuple graph, ``10**levels``
    values when walked, in about 200 bytes."""
    dag = OP.EMPTY_TUPLE + OP.BINPUT + b"\x00"
    for i in range(1, levels + 1):
        dag += OP.POP + OP.MARK + (OP.BINGET + bytes([i - 1])) * 10 + OP.TUPLE
        dag += OP.BINPUT + bytes([i])
    info = OP.MARK + su("ms").replace(OP.SHORT_BINUNICODE, OP.SHORT_BINBYTES) + b"K\x03" + dag
    info += b"K\x01" + OP.TUPLE
    state = OP.MARK + b"K\x04" + su("<") + OP.NONE * 3 + b"J\xff\xff\xff\xff" * 2 + b"K\x00"
    state += OP.NONE + info + OP.TUPLE2 + OP.TUPLE
    data = stream(sglob("numpy", "dtype") + su("M8") + OP.NEWFALSE + OP.NEWTRUE + OP.TUPLE3)
    return data[:-1] + OP.REDUCE + state + OP.BUILD + OP.STOP


@pytest.mark.timeout(30, method="signal")
@pytest.mark.parametrize("levels", [6, 12])
def test_a_memo_shared_graph_in_a_dtype_state_is_refused_quickly(levels: int) -> None:
    """Regression: rebuild_dtype expanded the graph (10**6 steps here from ~200 bytes; 10**15
    at 15 levels; 12 stay under the depth bound): the load hung on one BUILD."""
    data = dtype_state_dag_stream(levels)
    start = time.monotonic()
    with pytest.raises(MalformedArtifactError, match="more than 100000 values"):
        unpickle_verified(data, DEFAULT)
    assert time.monotonic() - start < 0.5


# --- the ConcreteSite callrules asks ----------------------------------------------------------


def test_the_unpickler_implements_the_concrete_site_protocol() -> None:
    for name, member in inspect.getmembers(ConcreteSite, inspect.isfunction):
        if name.startswith("_"):
            continue
        mine = getattr(_RestrictedUnpickler, name)
        assert list(inspect.signature(mine).parameters) == list(
            inspect.signature(member).parameters
        ), name


def test_names_of_and_rule_of_answer_by_identity() -> None:
    site = _site()
    ndarray = site.find_class("numpy", "ndarray")
    dtype = site.find_class("numpy", "dtype")
    scaler = site.find_class("sklearn.preprocessing._data", "StandardScaler")
    assert site.names_of(ndarray) == {("numpy", "ndarray")}
    assert site.rule_of(ndarray) == (True, None)  # a reference, never called
    assert site.rule_of(dtype) == (True, rules.DTYPE)
    assert site.rule_of(scaler) == (True, rules.NEW)
    # what find_class did not return is unknown, even when equal or of a trusted type
    assert site.names_of(np.float64) == set()
    assert site.rule_of(np.float64) == (False, None)
    assert site.rule_of(np.dtype("f8")) == (False, None)
    assert site.names_of("numpy.ndarray") == set()


def test_one_object_under_two_names() -> None:
    site = _site()
    first = site.find_class("numpy._core.multiarray", "_reconstruct")
    second = site.find_class("numpy.core.multiarray", "_reconstruct")
    assert first is second
    assert site.names_of(first) == {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
    }
    assert site.rule_of(first) == (True, rules.RECONSTRUCT)


def test_two_rules_for_one_object_are_a_conflict_no_rule_knows() -> None:
    policy = DEFAULT.extend(["sklearn.preprocessing:StandardScaler"])  # callable under "any"
    site = _site(policy)
    site.find_class("sklearn.preprocessing._data", "StandardScaler")  # under "new"
    alias = site.find_class("sklearn.preprocessing", "StandardScaler")
    assert site.rule_of(alias) == (True, "conflict")
    why = site.violation("conflict", "NEWOBJ", alias, site.names_of(alias), (), None)
    assert why is not None and "does not know" in why


def test_violation_is_the_rule_table_on_real_values() -> None:
    site = _site()
    scaler = site.find_class("sklearn.preprocessing._data", "StandardScaler")
    names = site.names_of(scaler)
    assert site.violation(rules.NEW, "NEWOBJ", scaler, names, (), None) is None
    assert "REDUCE" in str(site.violation(rules.NEW, "REDUCE", scaler, names, (), None))
    assert site.violation(rules.NEW, "NEWOBJ", scaler, names, (1,), None) is not None
    dtype = site.find_class("numpy", "dtype")
    dnames = site.names_of(dtype)
    assert site.violation(rules.DTYPE, "REDUCE", dtype, dnames, ("f8", False, True), None) is None
    assert site.violation(rules.DTYPE, "REDUCE", dtype, dnames, ("f8[ms]",), None) is not None


def test_copyreg_rules_ask_the_site_about_the_class_they_construct() -> None:
    policy = DEFAULT.extend(["copyreg:__newobj__"])
    site = _site(policy)
    newobj = site.find_class("copyreg", "__newobj__")
    assert site.rule_of(newobj) == (True, rules.COPYREG_NEWOBJ)
    scaler = site.find_class("sklearn.preprocessing._data", "StandardScaler")
    check = RULES[rules.COPYREG_NEWOBJ].concrete
    names = site.names_of(newobj)
    assert check(site, "REDUCE", newobj, names, (scaler,), None) is None
    assert "NEWOBJ with arguments" in str(check(site, "REDUCE", newobj, names, (scaler, 1), None))
    # a class find_class never returned (equal, but not given by it) cannot be constructed
    from sklearn.preprocessing import StandardScaler

    fresh = _site(policy)
    fresh.find_class("copyreg", "__newobj__")
    assert check(fresh, "REDUCE", newobj, names, (StandardScaler,), None) is not None


def test_the_hashed_rule_charges_the_sites_budget() -> None:
    site = _site()
    set_ = site.find_class("builtins", "set")
    check = RULES[rules.HASHED].concrete
    assert check(site, "REDUCE", set_, site.names_of(set_), ([1, 2, 3],), None) is None
    with pytest.raises(MalformedArtifactError, match="hash"):
        check(site, "REDUCE", set_, site.names_of(set_), ([_tuple_dag(64)],), None)


# --- decisions that mutation testing found unpinned (mutmut, see docs/architecture.md) ---


def _glob(module: str, name: str) -> bytes:
    return OP.GLOBAL + f"{module}\n{name}\n".encode()


def test_a_new_only_class_called_by_reduce_is_refused_by_the_unpickler() -> None:
    stream = OP.PROTO + b"\x02" + _glob("scipy.sparse._csr", "csr_matrix")
    stream += OP.EMPTY_TUPLE + OP.REDUCE + OP.STOP
    with pytest.raises(MalformedArtifactError, match="which its own pickles never do"):
        unpickle_verified(stream, TypePolicy.default())


def test_a_reference_only_name_called_is_refused_by_the_unpickler() -> None:
    policy = TypePolicy.of(["builtins:len"], callable=False)
    stream = OP.PROTO + b"\x02" + _glob("builtins", "len") + OP.EMPTY_TUPLE
    with pytest.raises(MalformedArtifactError, match=r"builtins\.len \(REDUCE\).*stored reference"):
        unpickle_verified(stream + OP.REDUCE + OP.STOP, policy)


def test_a_name_outside_the_policy_is_refused_before_import() -> None:
    stream = OP.PROTO + b"\x02" + _glob("os", "system") + OP.STOP
    with pytest.raises(UntrustedTypeError) as err:
        unpickle_verified(stream, TypePolicy.default())
    assert err.value.types == ("os.system",)


def test_a_stored_reference_loads_and_trailing_bytes_are_refused() -> None:
    policy = TypePolicy.of(["builtins:len"], callable=False)
    stream = OP.PROTO + b"\x02" + _glob("builtins", "len") + OP.STOP
    assert unpickle_verified(stream, policy) is len
    with pytest.raises(MalformedArtifactError, match="1 unexpected byte"):
        unpickle_verified(stream + b"\0", policy)


def test_bytes_after_stop_inside_a_frame_that_runs_past_stop_are_refused() -> None:
    """Protocol 4 frames: extra bytes can hide in the frame that STOP ends, not only after it."""
    body = OP.NONE + OP.STOP
    framed = OP.PROTO + b"\x04" + OP.FRAME + (len(body) + 1).to_bytes(8, "little") + body
    assert (
        unpickle_verified(
            OP.PROTO + b"\x04" + OP.FRAME + len(body).to_bytes(8, "little") + body,
            TypePolicy.default(),
        )
        is None
    )
    with pytest.raises(MalformedArtifactError, match="unexpected bytes after the end"):
        unpickle_verified(framed + b"x", TypePolicy.default())
