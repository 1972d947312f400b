"""strictjson: the one JSON parser for untrusted documents (``model.sig``, ``safeload.json``).

Its promise: anything that another JSON parser could read differently (duplicate keys, the
non-standard ``NaN``/``Infinity`` constants, bytes that are not UTF-8) or that could exhaust the
parser (deep nesting, huge integers) is refused with the caller's error class naming the
document, never accepted and never escaping as a bare ``ValueError`` or ``RecursionError``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import safeload
from safeload import strictjson
from safeload.errors import MalformedArtifactError, SignatureError


def refused(data: bytes, match: str | None) -> None:
    with pytest.raises(MalformedArtifactError, match=match) as err:
        strictjson.loads(data, "the document")
    assert str(err.value).startswith("the document is not valid strict JSON")
    assert err.value.__cause__ is not None


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_what_dumps_writes_loads_reads_back_identically(value: Any) -> None:
    assert strictjson.loads(strictjson.dumps(value), "doc") == value


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_accepts_any_buffer(wrap: Any) -> None:
    assert strictjson.loads(wrap(b'{"a": [1, 2.5, "x", null, true]}'), "doc") == {
        "a": [1, 2.5, "x", None, True]
    }


# --- duplicate keys: Python's json keeps the last one, other parsers the first, or refuse ---


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": 1, "a": 1}',
        b'{"x": {"a": 1, "b": 2, "a": 3}}',
        b'[{"ok": 1}, {"a": 1, "a": 2}]',
        b'{"a": 1, "\\u0061": 2}',  # the same key, once escaped
        b'{"mediaType": "x", "verificationMaterial": {}, "mediaType": "y"}',
    ],
)
def test_duplicate_keys_are_refused(data: bytes) -> None:
    refused(data, "duplicate key 'a'|duplicate key 'mediaType'")


def test_keys_that_differ_only_by_case_or_space_are_distinct() -> None:
    assert strictjson.loads(b'{"a": 1, "A": 2, "a ": 3}', "doc") == {"a": 1, "A": 2, "a ": 3}


# --- non-standard constants ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"NaN", b"Infinity", b"-Infinity", b"[1, NaN]", b'{"rtol": Infinity}']
)
def test_nan_and_infinity_constants_are_refused(data: bytes) -> None:
    refused(data, "non-standard JSON constant")


def test_the_strings_nan_and_inf_are_plain_strings() -> None:
    assert strictjson.loads(b'["NaN", "inf", "-inf"]', "doc") == ["NaN", "inf", "-inf"]


@pytest.mark.parametrize("data", [b"1e999", b"-1e999", b'{"atol": 1e400}'])
def test_numbers_that_overflow_to_infinity_are_refused(data: bytes) -> None:
    refused(data, None)


# --- bytes that are not UTF-8 ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b'"\xff"',
        '{"name": "modèle"}'.encode("latin-1"),
        '{"a": 1}'.encode("utf-16"),
        b'"\xc0\xaf"',  # overlong encoding of '/'
        b'"\xed\xa0\x80"',  # an encoded UTF-16 surrogate
        b'"abc\xe2\x82"',  # truncated sequence
    ],
)
def test_bytes_that_are_not_utf8_are_refused(data: bytes) -> None:
    refused(data, "codec can't decode|Unexpected UTF-8 BOM|Expecting value")


def test_utf8_with_byte_order_mark_is_refused() -> None:
    refused(b"\xef\xbb\xbf{}", "BOM")


def test_utf8_text_is_decoded() -> None:
    assert strictjson.loads('{"name": "modèle ✓"}'.encode(), "doc") == {"name": "modèle ✓"}


# --- what would exhaust the parser -------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000 + b"]" * 100_000, b'{"a": ' * 100_000 + b"1" + b"}" * 100_000],
    ids=["arrays", "objects"],
)
def test_deep_nesting_is_refused_quickly(data: bytes) -> None:
    start = time.perf_counter()
    refused(data, "recursion")
    assert time.perf_counter() - start < 5


def test_integer_with_thousands_of_digits_is_refused() -> None:
    refused(b"1" * 5000, "digits")


@pytest.mark.parametrize("data", [b"", b"   ", b"{} x", b"{}{}", b"{'a': 1}", b"[1,]", b"{"])
def test_not_one_json_document_is_refused(data: bytes) -> None:
    refused(data, None)


# --- the error the caller asked for ------------------------------------------------------------


def test_default_error_is_malformed_artifact() -> None:
    with pytest.raises(MalformedArtifactError, match="safeload.json is not valid strict JSON"):
        strictjson.loads(b"{", "safeload.json")


def test_callers_error_class_is_raised_with_the_parsers_reason() -> None:
    with pytest.raises(SignatureError, match=r"model.sig is not valid strict JSON: .*duplicate"):
        strictjson.loads(b'{"a": 1, "a": 2}', "model.sig", SignatureError)
    assert issubclass(SignatureError, safeload.SafeloadError)


# --- dumps -------------------------------------------------------------------------------------


def test_dumps_writes_sorted_keys_and_a_final_newline() -> None:
    data = strictjson.dumps({"b": 1, "a": {"d": 2, "c": 3}})
    assert data.endswith(b"\n")
    assert list(json.loads(data)) == ["a", "b"]
    assert data.index(b'"c"') < data.index(b'"d"')


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"x": [float("-inf")]}])
def test_dumps_refuses_what_loads_would_refuse(value: Any) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        strictjson.dumps(value)
