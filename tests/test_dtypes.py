"""``safeload.typegate.dtypes``: numpy dtypes exactly in the forms numpy pickles them.

Both walls call :func:`rebuild_dtype` on a dtype's constructor arguments and ``BUILD`` state
before numpy's ``__setstate__`` (which trusts flags, sizes and offsets blindly) sees them. Here,
at the module's own level and on real numpy dtypes: every form numpy writes rebuilds to an equal
dtype with an equal :func:`dtype_form`, and every single tampering of that state is refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeload.typegate.dtypes import (
    MAX_DTYPE_DEPTH,
    DtypeFormError,
    dtype_call_problem,
    dtype_form,
    plain_code,
    rebuild_dtype,
)

# --- real numpy dtypes ------------------------------------------------------------------------

ORDERS = ["<", ">", "=", "|", ""]
NUMERIC = ["b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8", "g"]
NUMERIC += ["c8", "c16", "G", "O"]
UNITS = ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"]

# Tuple levels of ``dtype_form`` a dtype costs (``MAX_DTYPE_DEPTH`` counts those, not dtypes):
# a field is dtype -> state -> fields -> (dtype, offset) -> dtype, a subarray one level less; a
# leaf needs two levels below it (state, its items), a datetime four (state, pair, unit, items).
_FIELD_COST = 4
_SUBARRAY_COST = 3
_LEAF_BUDGET = MAX_DTYPE_DEPTH - 2
_DATETIME_COST = 2


def _plain(budget: int) -> st.SearchStrategy[np.dtype[Any]]:
    numeric = st.builds(
        lambda o, c: np.dtype(o + c), st.sampled_from(ORDERS), st.sampled_from(NUMERIC)
    )
    sized = st.builds(
        lambda o, c, n: np.dtype(f"{o}{c}{n}"),
        st.sampled_from(ORDERS),
        st.sampled_from(["S", "U", "V"]),
        st.integers(1, 40),
    )
    dated = st.builds(
        lambda o, c, n, u: np.dtype(f"{o}{c}[{'' if n == 1 else n}{u}]"),
        st.sampled_from(ORDERS),
        st.sampled_from(["M8", "m8"]),
        st.integers(1, 1000),
        st.sampled_from(UNITS),
    )
    generic = st.builds(
        lambda o, c: np.dtype(o + c), st.sampled_from(ORDERS), st.sampled_from(["M8", "m8"])
    )
    if budget < _DATETIME_COST:
        return st.one_of(numeric, sized)
    return st.one_of(numeric, sized, dated, generic)


@st.composite
def _structured(draw: st.DrawFn, inner: st.SearchStrategy[np.dtype[Any]]) -> np.dtype[Any]:
    names = draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=4, unique=True))
    formats = [draw(inner) for _ in names]
    how = draw(st.sampled_from(["packed", "aligned", "offsets"]))
    if how != "offsets":
        return np.dtype(list(zip(names, formats, strict=True)), align=how == "aligned")
    offsets, end = [], 0
    for fmt in formats:  # gaps between fields and after the last one
        end += draw(st.integers(0, 8))
        offsets.append(end)
        end += fmt.itemsize
    spec = {"names": names, "formats": formats, "offsets": offsets}
    spec["itemsize"] = end + draw(st.integers(0, 8))
    return np.dtype(spec)


def _subarray(inner: st.SearchStrategy[np.dtype[Any]]) -> st.SearchStrategy[np.dtype[Any]]:
    shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
    return st.builds(lambda base, shape: np.dtype((base, shape)), inner, shapes)


def dtypes(budget: int = _LEAF_BUDGET) -> st.SearchStrategy[np.dtype[Any]]:
    """Real numpy dtypes, nested as deep as the module's documented bound lets them."""
    options = [_plain(budget)]
    if budget >= _FIELD_COST:
        options.append(_structured(st.deferred(lambda: dtypes(budget - _FIELD_COST))))
    if budget >= _SUBARRAY_COST:
        options.append(_subarray(st.deferred(lambda: dtypes(budget - _SUBARRAY_COST))))
    return st.one_of(*options)


def reduced(dtype: np.dtype[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """``(args, state)`` exactly as numpy pickles ``dtype``."""
    func, args, state = dtype.__reduce__()  # type: ignore[misc]
    assert func is np.dtype
    return args, state


# --- every form numpy writes rebuilds exactly -------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtypes())
def test_every_real_dtype_rebuilds_to_itself(dtype: np.dtype[Any]) -> None:
    args, state = reduced(dtype)
    rebuilt = rebuild_dtype(args, state)
    assert rebuilt == dtype
    assert dtype_form(rebuilt) == dtype_form(dtype)
    assert reduced(rebuilt) == (args, state)


@pytest.mark.parametrize(
    "dtype",
    [
        np.dtype("<f8"),
        np.dtype(">i4"),
        np.dtype("O"),
        np.dtype("<U7"),
        np.dtype(">M8[3ms]"),
        np.dtype("m8"),
        np.dtype([("a", "<f8"), ("b", ">i2", (2, 3))], align=True),
        np.dtype({"names": ["x"], "formats": ["O"], "offsets": [8], "itemsize": 24}),
        np.dtype(("<f4", (2, 3))),
        np.dtype([("outer", [("leaf", "<i2", (2,))]), ("o", "O")]),
    ],
    ids=str,
)
def test_examples_of_every_kind_rebuild(dtype: np.dtype[Any]) -> None:
    assert dtype_form(rebuild_dtype(*reduced(dtype))) == dtype_form(dtype)


def test_dtype_form_sees_what_equality_ignores() -> None:
    # numpy calls these equal; their pickles differ (the aligned flag), and so do their forms.
    aligned = np.dtype([("a", "i1")], align=True)
    packed = np.dtype([("a", "i1")])
    assert aligned == packed
    assert dtype_form(aligned) != dtype_form(packed)
    assert dtype_form(np.dtype("<f8")) != dtype_form(np.dtype(">f8"))
    assert dtype_form(np.dtype("M8[ms]")) != dtype_form(np.dtype("M8[2ms]"))
    assert hash(dtype_form(aligned)) == hash(dtype_form(np.dtype([("a", "i1")], align=True)))


# --- every single tampering is refused --------------------------------------------------------


def _with(state: tuple[Any, ...], index: int, value: object) -> tuple[Any, ...]:
    return (*state[:index], value, *state[index + 1 :])


def tamperings(dtype: np.dtype[Any]) -> Iterator[tuple[str, tuple[Any, ...], tuple[Any, ...]]]:
    """``(what, args, state)``: one field of numpy's own form changed to one numpy never writes.

    Only changes that no dtype has are listed (swapping ``<`` for ``>`` on a float, or moving a
    field within a padded record, describe another real dtype and are not tamperings).
    """
    args, state = reduced(dtype)
    version, endian, sub, names, fields, elsize, alignment, flags = state[:8]
    structured = names is not None
    # flags: every bit but ALIGNED_STRUCT is derived from the content; that one only builds
    # a record, so on anything else it is a lie as well
    for bit in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x100, 0x80):
        if bit != 0x80 or not structured:
            yield f"flags^{bit:#x}", args, _with(state, 7, flags ^ bit)
    if not dtype.hasobject:
        yield "object-flag", args, _with(state, 7, flags | 0x3F)
    yield "flags-as-bool", args, _with(state, 7, bool(flags))
    # sizes and alignment (the args carry the size of flexible, record and subarray dtypes)
    for delta in (-1, 1, 8):
        yield f"elsize{delta:+}", args, _with(state, 5, elsize + delta)
        yield f"alignment{delta:+}", args, _with(state, 6, alignment + delta)
    yield "elsize-as-float", args, _with(state, 5, float(elsize))
    # byte order
    for lie in ("x", "!", "", "=", 0):
        yield f"endian={lie!r}", args, _with(state, 1, lie)
    others = ("<", ">") if endian == "|" else ("|",)
    for lie in others:
        yield f"endian={lie}", args, _with(state, 1, lie)
    # version and the metadata slot
    for lie in (0, 1, 2, 5, True):
        yield f"version={lie!r}", args, _with(state, 0, lie)
    if version == 3:
        yield "version=4-short", args, _with(state, 0, 4)
        yield "metadata", args, (4, *state[1:], {"k": 1})
        yield "datetime-metadata", args, (4, *state[1:], (None, (b"ms", 1, 1, 1)))
        yield "v3-long", args, (*state, None)
    else:
        meta, info = state[8]
        yield "metadata", args, (*state[:8], ({"k": 1}, info))
        yield "metadata-dict", args, (*state[:8], {"k": 1})
        yield "version=3-long", args, _with(state, 0, 3)
        for index, lie in ((0, b"xx"), (0, "ms"), (1, 0), (1, -1), (1, True), (2, 2), (3, 0)):
            bad_info = (*info[:index], lie, *info[index + 1 :])
            yield f"datetime-info[{index}]={lie!r}", args, (*state[:8], (meta, bad_info))
    # record fields
    if structured:
        for name in names:
            field, offset = fields[name]
            moved = {**fields}
            moved[name] = (field, -1)
            yield f"offset[{name}]=-1", args, _with(state, 4, moved)
            if field.itemsize:
                past = {**fields, name: (field, elsize - field.itemsize + 1)}
                yield f"offset[{name}]-past-end", args, _with(state, 4, past)
            if flags & 0x80 and field.alignment > 1:
                skew = {**fields, name: (field, offset + 1)}
                yield f"offset[{name}]-misaligned", args, _with(state, 4, skew)
        renamed = {("z" if k == names[0] else k): v for k, v in fields.items()}
        yield "field-renamed", args, _with(state, 4, renamed)
        yield "names-without-fields", args, _with(state, 4, None)
        yield "fields-as-list", args, _with(state, 4, list(fields.items()))
    else:
        yield "fields-on-non-record", args, _with(state, 3, ("a",))
    if sub is not None:
        base, shape = sub
        bigger = (shape[0] + 1, *shape[1:])
        yield "subarray-shape", args, _with(state, 2, (base, bigger))
        yield "subarray-shape-list", args, _with(state, 2, (base, list(shape)))
        yield "subarray-base", args, _with(state, 2, (base.str, shape))
    # constructor arguments
    code = args[0]
    yield "align-arg", (code, True, True), state
    yield "copy-arg", (code, False, False), state
    yield "short-args", (code, False), state
    yield "code-not-plain", (code + "[ms]", False, True), state
    yield "code-bytes", (code.encode(), False, True), state


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtypes())
def test_every_single_tampering_is_refused(dtype: np.dtype[Any]) -> None:
    args, state = reduced(dtype)
    for what, bad_args, bad_state in tamperings(dtype):
        assert repr((bad_args, bad_state)) != repr((args, state)), what
        with pytest.raises(DtypeFormError):
            rebuild_dtype(bad_args, bad_state)
            pytest.fail(f"{what} accepted for {dtype!r}: {bad_args!r} {bad_state!r}")


def test_the_famous_tamperings_by_name() -> None:
    args, state = reduced(np.dtype("<f8"))
    with pytest.raises(DtypeFormError, match="not the one numpy writes"):
        rebuild_dtype(args, _with(state, 7, 63))  # a float that claims to hold objects
    args, state = reduced(np.dtype([("a", "<f8"), ("b", "<i4")]))
    lying = _with(state, 4, {"a": (np.dtype("<f8"), 0), "b": (np.dtype("<i4"), 100)})
    with pytest.raises(DtypeFormError, match="numpy rejects it"):
        rebuild_dtype(args, lying)
    with pytest.raises(DtypeFormError, match="titles are not supported"):
        rebuild_dtype(args, _with(state, 3, ("a", "b", "c")))


@pytest.mark.parametrize(
    ("args", "state"),
    [
        pytest.param("f8", (3, "<", None, None, None, -1, -1, 0), id="args-not-tuple"),
        pytest.param(("f8", False, True), [3, "<", None, None, None, -1, -1, 0], id="state-list"),
        pytest.param(("f8", False, True), (3, "<", None), id="state-short"),
        pytest.param(("f8", False, True), None, id="state-none"),
        pytest.param(("V8", False, True), (3, "|", ("f8", (1,)), None, None, 8, 8, 0), id="sub"),
        pytest.param(("V8", False, True), (3, "|", None, "ab", {}, 8, 1, 16), id="names-str"),
        pytest.param(("f8", 0, 1), (3, "<", None, None, None, -1, -1, 0), id="int-flags"),
    ],
)
def test_shapes_numpy_never_writes_are_refused(args: object, state: object) -> None:
    with pytest.raises(DtypeFormError):
        rebuild_dtype(args, state)


# --- bounded ----------------------------------------------------------------------------------


def _deep_tuple(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = (value,)
    return value


@pytest.mark.parametrize("slot", [2, 4, 5, 6, 7])
def test_deep_nesting_is_refused_quickly(slot: int) -> None:
    deep = _deep_tuple(100_000)  # built (and freed) outside the clock: only the check is timed
    args, state = reduced(np.dtype("<f8"))
    start = time.monotonic()
    with pytest.raises(DtypeFormError):
        rebuild_dtype(args, _with(state, slot, deep))
    args, state = reduced(np.dtype("M8[ms]"))
    meta, info = state[8]
    with pytest.raises(DtypeFormError):  # a slot of the datetime pair nobody looks into
        rebuild_dtype(args, (*state[:8], (meta, (*info[:2], deep, 1))))
    assert time.monotonic() - start < 1


def test_deep_dtypes_are_refused_not_a_recursion_error() -> None:
    dtype = np.dtype("<f8")
    for _ in range(200):
        dtype = np.dtype((dtype, (1,)))
    with pytest.raises(DtypeFormError, match="too deeply nested"):
        dtype_form(dtype)
    with pytest.raises(DtypeFormError):
        rebuild_dtype(*reduced(dtype))


def _tuple_dag(levels: int, width: int = 10) -> object:
    """``t[i] = (t[i-1],) * width``: tiny to build or pickle, ``width**levels`` when expanded."""
    value: object = ()
    for _ in range(levels):
        value = (value,) * width
    return value


@pytest.mark.timeout(30, method="signal")
def test_shared_tuple_graphs_in_a_state_are_refused_quickly() -> None:
    """Regression: the picture expanded memo-shared tuples (state[6], unchecked plain-dtype
    slots, datetime info[2:]): 10**7 steps here, 10**15 for a few hundred pickle bytes."""
    args, state = reduced(np.dtype("M8[ms]"))
    meta, info = state[8]
    start = time.monotonic()
    with pytest.raises(DtypeFormError):
        rebuild_dtype(args, (*state[:8], (meta, (*info[:2], _tuple_dag(7), 1))))
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("levels", [4, 8, MAX_DTYPE_DEPTH - 1])
def test_a_record_nested_deep_rebuilds(levels: int) -> None:
    """Depth counts records, not the containers each record level pictures."""
    dtype = np.dtype("<f8")
    for _ in range(levels):
        dtype = np.dtype([("a", dtype)])
    assert rebuild_dtype(*reduced(dtype)) == dtype


def test_a_record_nested_past_the_bound_is_refused() -> None:
    dtype = np.dtype("<f8")
    for _ in range(MAX_DTYPE_DEPTH + 2):
        dtype = np.dtype([("a", dtype)])
    with pytest.raises(DtypeFormError, match="too deeply nested"):
        rebuild_dtype(*reduced(dtype))


# --- plain codes and the constructor call -----------------------------------------------------


@pytest.mark.parametrize("code", ["<f8", "f8", "|b1", ">i4", "=u2", "U10", "S1", "V24", "M8", "O"])
def test_plain_codes_pass_through(code: str) -> None:
    assert plain_code(code) == code
    assert dtype_call_problem((code,)) is None
    assert dtype_call_problem((code, False)) is None
    assert dtype_call_problem((code, False, True)) is None


class _Str(str):
    pass


@pytest.mark.parametrize(
    "code",
    [
        "M8[ms]",
        "<f8 ",
        " f8",
        "f8\n",
        "",
        "<<f8",
        "S1234567890",
        "[('a', '<f8')]",
        "f8,i4",
        "(2,)f8",
        b"f8",
        8,
        None,
        np.str_("f8"),
        _Str("f8"),
    ],
    ids=repr,
)
def test_anything_else_is_not_a_plain_code(code: object) -> None:
    with pytest.raises(DtypeFormError, match="not a plain numpy type code"):
        plain_code(code)
    assert dtype_call_problem((code,)) is not None


@pytest.mark.parametrize(
    "items",
    [
        (),
        ("f8", False, True, False),
        ("f8", 0),
        ("f8", False, 1),
        ("f8", np.True_),
        ("f8", None),
    ],
    ids=repr,
)
def test_dtype_calls_numpy_never_pickles(items: tuple[Any, ...]) -> None:
    assert isinstance(dtype_call_problem(items), str)


@pytest.mark.parametrize("protocol", [2, 5])
def test_a_deep_record_array_passes_both_walls(protocol: int) -> None:
    import pickle

    from safeload._unpickle import unpickle_verified
    from safeload.policy import TypePolicy
    from safeload.typegate import scan_bytes

    dtype = np.dtype("<f8")
    for _ in range(8):
        dtype = np.dtype([("a", dtype), ("b", "<i4")])
    value = np.zeros(3, dtype=dtype)
    data = pickle.dumps(value, protocol=protocol)
    report = scan_bytes(data)
    assert report.safe, report.problems
    loaded = unpickle_verified(data, TypePolicy.default())
    assert loaded.dtype == dtype and loaded.tobytes() == value.tobytes()
