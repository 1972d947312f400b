"""Properties of the scanner on arbitrary input: it always answers, quickly, and never raises.

And on arbitrary *legitimate* data (nested containers of numpy arrays of many dtypes, dumped by
joblib or pickle), it names exactly the globals a real unpickler resolves.
"""

from __future__ import annotations

import bz2
import io
import lzma
import pickle
import time
import warnings
import zlib
from typing import Any

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeload.policy import TypePolicy
from safeload.typegate import ScanLimits, ScanReport, scan_bytes
from tests.helpers import joblib_bytes, recorded_globals

LIMITS = ScanLimits(max_seconds=2.0, max_decompressed_bytes=64 << 20)
FAST = settings(
    deadline=3000,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(1)
    obj = {
        "w": rng.random((4, 3)),
        "o": np.array([1, "a", None], dtype=object),
        "s": np.zeros(2, dtype=[("a", "<i8"), ("b", "O")]),
        "t": ("x", 1, 2.5, b"raw", frozenset({1})),
    }
    seeds = []
    for protocol in range(6):
        seeds.append(pickle.dumps(obj, protocol=protocol))
        handle = io.BytesIO()
        joblib.dump(obj, handle, protocol=protocol)
        seeds.append(handle.getvalue())
    handle = io.BytesIO()
    joblib.dump(obj, handle, compress=("zlib", 3))
    seeds.append(handle.getvalue())
    return seeds


SEEDS = _seeds()


def _answers(data: bytes) -> ScanReport:
    start = time.monotonic()
    report = scan_bytes(data, limits=LIMITS)
    assert isinstance(report, ScanReport)
    assert time.monotonic() - start < 2.5
    assert isinstance(report.safe, bool)
    report.to_dict()
    return report


@FAST
@given(st.binary(max_size=4096))
def test_random_bytes_always_get_a_report(data: bytes) -> None:
    _answers(data)


@FAST
@given(
    st.sampled_from([b"\x80\x02", b"\x80\x04\x95", b"\x80\x05", b"(", b"c", b"PK\x03\x04"]),
    st.binary(max_size=2048),
)
def test_random_bytes_after_a_plausible_header(head: bytes, tail: bytes) -> None:
    _answers(head + tail)


@FAST
@given(
    st.sampled_from([zlib.compress, bz2.compress, lzma.compress]),
    st.binary(max_size=2048),
)
def test_random_compressed_streams(compress: Any, data: bytes) -> None:
    _answers(compress(data))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        where = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "dup"]))
        if action == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[where] = draw(st.integers(0, 255))
        elif action == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[where : where + draw(st.integers(1, 16))]
        elif action == "truncate":
            del data[where:]
        else:
            size = draw(st.integers(1, 64))
            data[where:where] = data[where : where + size]
    return bytes(data)


@FAST
@given(mutated())
def test_mutated_legitimate_files_always_get_a_report(data: bytes) -> None:
    _answers(data)


@FAST
@given(st.sampled_from(SEEDS), st.integers(0, 10_000))
def test_every_proper_prefix_is_refused(data: bytes, cut: int) -> None:
    cut %= len(data)
    assert not _answers(data[:cut]).safe


# --- legitimate data: the scanner agrees with a real unpickler -------------------------------

DTYPES = [
    "f8",
    ">f4",
    "<i2",
    "u1",
    "?",
    "c16",
    "U5",
    "S3",
    "M8[ms]",
    "m8[D]",
    "O",
    [("a", "<i4"), ("b", ">f8")],
    [("a", "O"), ("b", "u1", (2,))],
    ("f4", (2, 2)),
]


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray[Any, Any]:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    array = np.zeros(shape, dtype=dtype)
    if dtype.kind == "O":
        array.flat[:] = [
            draw(st.one_of(st.integers(), st.text(max_size=3), st.none()))
            for _ in range(array.size)
        ]
    if draw(st.booleans()) and array.ndim > 1:
        array = np.asfortranarray(array)
    return array


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.binary(max_size=5),
    arrays(),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=3), inner, max_size=4),
    ),
    max_leaves=12,
)


def _serialized(value: object, protocol: int, use_joblib: bool) -> bytes:
    return joblib_bytes(value, protocol=protocol) if use_joblib else pickle.dumps(value, protocol)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.integers(0, 5), st.booleans())
def test_legitimate_data_names_exactly_what_the_unpickler_loads(
    value: object, protocol: int, use_joblib: bool
) -> None:
    data = _serialized(value, protocol, use_joblib)
    seen = recorded_globals(data)
    report = scan_bytes(data, policy=TypePolicy.of([]))
    assert report.problems == ()
    assert set(report.globals) == seen


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_seeds_are_clean(seed: int) -> None:
    report = scan_bytes(SEEDS[seed], policy=TypePolicy.of([]))
    assert report.problems == ()


# --- both walls agree on legitimate data, under the default policy ---------------------------


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.integers(3, 5), st.booleans())
def test_legitimate_data_passes_both_walls_under_the_default_policy(
    value: object, protocol: int, use_joblib: bool
) -> None:
    # Protocols 3-5 (0-2 spell bytes through _codecs.encode, which the default refuses). The
    # restricted unpickler must build exactly what the real loader builds: its call rules and
    # its dtype check (rebuild and compare) hold for every array numpy and joblib write.
    from safeload._unpickle import unpickle_verified

    data = _serialized(value, protocol, use_joblib)
    if use_joblib:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            real = joblib.load(io.BytesIO(data))
    else:
        real = pickle.loads(data)
    report = scan_bytes(data)
    assert report.safe, report.to_dict()
    loaded = unpickle_verified(bytearray(data), TypePolicy.default())
    assert _without_memo(loaded) == _without_memo(real)


def _without_memo(obj: object) -> bytes:
    """The pickle of ``obj`` with no memo: its structure, whatever the identity of its atoms.

    CPython shares one-byte ``bytes`` objects and the C unpickler does not, so a memoized
    pickle of the same value can differ by a reference (found by hypothesis: ``{'0': b'b',
    '': array(0.)}``). The values drawn here hold no shared mutable objects or cycles.
    """
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=4)
    pickler.fast = True
    pickler.dump(obj)
    return buffer.getvalue()


# --- the scanner counts nesting exactly as the loader builds it ------------------------------

plain_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3))
plain_values = st.recursive(
    plain_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=2), inner, max_size=3),
        st.frozensets(plain_leaves, max_size=3),
    ),
    max_leaves=20,
)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, (list, tuple, frozenset)):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@settings(deadline=None, max_examples=200)
@given(plain_values, st.integers(1, 5), st.integers(4, 5))
def test_nesting_limit_matches_the_real_depth(value: object, limit: int, protocol: int) -> None:
    data = pickle.dumps(value, protocol=protocol)
    report = scan_bytes(data, limits=ScanLimits(max_depth=limit))
    assert report.safe == (_depth(value) <= limit), (report.problems, _depth(value))
