"""Error messages never render model data at the size the file chose.

``errors.shown`` is the one bounded rendering; each test below puts an attacker-sized value (a
huge string, a huge int, a deep structure) where a refusal message is built, and requires the
message to stay short and the refusal fast.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pytest

import safeload
from safeload import contract, strictjson
from safeload.errors import SafeloadError, shown, untrusted_types_message
from safeload.validation import validate_model

HUGE_STR = "s" * 100_000_000
HUGE_INT = 1 << 1_000_000


def _deep(depth: int) -> Any:
    value: Any = ()
    for _ in range(depth):
        value = (value,)
    return value


@contextmanager
def quick(seconds: float = 1.0) -> Iterator[None]:
    start = time.perf_counter()
    yield
    assert time.perf_counter() - start < seconds


@pytest.mark.parametrize(
    "value",
    [
        HUGE_STR,
        HUGE_STR.encode(),
        HUGE_INT,
        _deep(100_000),
        {i: str(i) for i in range(100_000)},
        set(range(100_000)),
        np.arange(10_000_000),
        [HUGE_STR] * 1000,
    ],
    ids=["str", "bytes", "int", "deep-tuple", "dict", "set", "array", "list-of-huge"],
)
def test_shown_is_short_and_fast(value: object) -> None:
    with quick(0.5):
        text = shown(value)
    assert len(text) < 500, text[:600]


def test_shown_never_calls_a_files_repr() -> None:
    class Loud(str):
        def __repr__(self) -> str:
            raise AssertionError("a file-chosen __repr__ ran")

    assert shown(Loud("x")) == "<Loud>"
    assert shown([Loud("x")]) == "[<Loud>]"


def test_shown_survives_int_max_str_digits_off() -> None:
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        with quick(0.5):
            assert "bits" in shown(HUGE_INT)
    finally:
        sys.set_int_max_str_digits(old)


def _message(action: Callable[[], object]) -> str:
    with quick(), pytest.raises(SafeloadError) as refused:
        action()
    message = str(refused.value)
    assert len(message) < 500, message[:600]
    return message


class _Holder:
    """An object with an attribute dict, like every estimator the walk descends into."""


def test_validation_path_through_a_huge_attribute_name() -> None:
    holder = _Holder()
    setattr(holder, "a" * 10_000_000, [[1], [2], [3], [4]])
    _message(lambda: validate_model(holder, max_objects=3))


def test_validation_path_through_a_huge_int_key() -> None:
    """repr of a 300,000-digit int raised a bare ValueError (int_max_str_digits)."""
    _message(lambda: validate_model({HUGE_INT: [[1], [2]]}, max_objects=2))


def test_validation_path_through_a_deep_tuple() -> None:
    """Paths were built eagerly: quadratic in the depth, seconds for a 100,000-deep tuple."""
    deep = _deep(100_000)
    _message(lambda: validate_model(deep, max_objects=99_999))


def test_check_input_with_huge_column_names() -> None:
    schema = {"kind": "dataframe", "columns": [{"name": HUGE_STR[:10_000_000], "dtype": "int64"}]}
    _message(lambda: contract.check_input(schema, pd.DataFrame({"a": [1]})))
    _message(lambda: contract.check_input(schema, np.zeros((1, 1))))


def test_duplicate_json_key_is_not_echoed() -> None:
    key = "k" * 10_000_000
    data = json.dumps({key: 1})[:-1].encode() + b', "' + key.encode() + b'": 2}'
    _message(lambda: strictjson.loads(data, "safeload.json"))


def test_untrusted_type_names_are_bounded() -> None:
    message = untrusted_types_message([f"{HUGE_STR}.name", "os.system"], "model.joblib")
    assert len(message) < 1000 and "os.system" in message


def _global_pickle(module: str, name: str) -> bytes:
    def unicode(text: str) -> bytes:
        data = text.encode()
        return b"X" + struct.pack("<I", len(data)) + data

    return b"\x80\x04" + unicode(module) + unicode(name) + b"\x93."


def test_scanning_a_huge_global_name(tmp_path: Any) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(_global_pickle("m" * 100_000, "f"))
    with pytest.warns(UserWarning):
        _message(
            lambda: safeload.load_file(path, unsafe_allow_unsigned=True)  # type: ignore[no-any-return]
        )
