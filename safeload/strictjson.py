"""Strict JSON for untrusted documents (``model.sig``, ``safeload.json``).

Python's ``json`` accepts duplicate keys (last one wins), ``NaN``/``Infinity`` and numbers that
overflow to infinity (``1e999``); two parsers that disagree on a document are how signature
checks get bypassed, so all of them are refused here.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

from safeload.errors import MalformedArtifactError, shown


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"non-standard JSON constant {name}")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: Infinity spelled as a number
        raise ValueError(f"number {text[:40]} does not fit in a float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # built in C; a repeated key leaves it shorter than the pairs
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {shown(key)}")
            seen.add(key)
    return result


def loads(
    data: bytes | bytearray | memoryview, what: str, error: type[Exception] = MalformedArtifactError
) -> Any:
    """Parse UTF-8 JSON strictly; any doubt raises ``error`` naming ``what``."""
    try:
        text = bytes(data).decode("utf-8")
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constants,
            parse_float=_finite,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise error(f"{what} is not valid strict JSON: {exc}") from exc


def dumps(value: Any) -> bytes:
    """Serialize JSON the way safeload writes it: sorted keys, no NaN, UTF-8."""
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=False).encode() + b"\n"
