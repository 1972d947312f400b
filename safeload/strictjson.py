"""Strict JSON for untrusted documents (``model.sig``, ``safeload.json``).

Python's ``json`` accepts duplicate keys (last one wins) and ``NaN``/``Infinity``; two parsers
that disagree on a document are how signature checks get bypassed, so both are refused here.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from safeload.errors import MalformedArtifactError


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"non-standard JSON constant {name}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads(
    data: bytes | bytearray | memoryview, what: str, error: type[Exception] = MalformedArtifactError
) -> Any:
    """Parse UTF-8 JSON strictly; any doubt raises ``error`` naming ``what``."""
    try:
        text = bytes(data).decode("utf-8")
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise error(f"{what} is not valid strict JSON: {exc}") from exc


def dumps(value: Any) -> bytes:
    """Serialize JSON the way safeload writes it: sorted keys, no NaN, UTF-8."""
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=False).encode() + b"\n"
