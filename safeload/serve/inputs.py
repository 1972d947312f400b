"""A request body (JSON records or CSV) as the batch the model was trained on, or a 4xx saying why.

The body is data from anyone who can reach the port. It is parsed strictly (one JSON parser
that refuses duplicate keys, NaN and overflowing numbers; CSV with a header and rows of its
width), bounded in rows, and each column is built with the dtype recorded in the signed schema,
in the saved order: a value that does not fit its column is a
:class:`~safeload.ContractError` naming the column and the row, never a silent cast (a string
in a number column, a float in an integer one, an unknown category). The schema check of
:meth:`~safeload.LoadedArtifact.predict` then runs on what was built, as for any caller.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from safeload import strictjson
from safeload.errors import ContractError, shown

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)
# numpy's "object" and pandas' string dtypes ("str" is pandas 3's default for text columns).
_TEXT_DTYPES = ("object", "str", "string")
_PROBLEMS_SHOWN = 10
# Numbers in CSV cells: ASCII decimal text as CSV writers write it (spaces or tabs around).
_INTEGER = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*")
_NON_FINITE = ("nan", "inf", "infinity")
_DECIMAL = re.compile(r"[ \t]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t]*")


class BadRequest(Exception):
    """The request cannot be read as a batch: ``status`` is the HTTP code to answer with."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class MalformedBody(BadRequest):
    """Not valid JSON or CSV (strictjson raises it with one argument)."""


def media_type(content_type: str | None) -> str:
    """``text/csv`` or ``application/json`` from a Content-Type header, or a 415."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in JSON_TYPES or kind in CSV_TYPES:
        return kind
    raise BadRequest(
        f"unsupported Content-Type {shown(content_type or '')}: send application/json "
        '(a list of records, or {"records": [...]}) or text/csv (a header row, then rows)',
        415,
    )


def parse_batch(body: bytes, kind: str, schema: Mapping[str, Any], max_rows: int) -> Any:
    """The body as a DataFrame (or a 2-D array, for a model trained on one).

    Raises:
        BadRequest: malformed (400), too many rows (413).
        ContractError: a value does not fit the saved schema (the server answers 422).
    """
    if not body.strip():
        raise BadRequest("the request body is empty: send at least one record")
    columns = schema.get("columns") or []
    by_name = schema.get("kind") == "dataframe" and bool(columns)
    from_text = kind in CSV_TYPES
    if from_text:
        header, rows = _csv_rows(body, max_rows, header=by_name)
        position = {name: i for i, name in enumerate(header)}
        if by_name:
            return _frame(columns, header, lambda n: [row[position[n]] for row in rows], from_text)
        return _array(schema, rows, from_text=True)
    if not by_name:
        return _array(schema, _json_rows(body, max_rows, list), from_text=False)
    records = _json_rows(body, max_rows, dict)
    # The union of the records' keys, never a table of every record by every key: keys
    # spread over records (a few each) would make that table quadratic in the body's size.
    header = list(dict.fromkeys(key for record in records for key in record))
    _complete(records, header, [str(c.get("name")) for c in columns])
    return _frame(columns, header, lambda n: [r[n] for r in records], from_text)


def _complete(records: list[dict[str, Any]], header: list[str], saved: list[str]) -> None:
    """Every record names every saved column, so each cell built is a value the body sent.

    A record without a key cannot stand for "missing" here: ``[{...all...}, {}, {}, ...]`` would
    make a few bytes per row cost a whole row of cells (53 kB was 389 MB for a model of 2,000
    columns). Missing and unexpected names are left to :func:`_frame`, which names them.
    """
    if set(header) != set(saved):
        return
    partial = [i for i, record in enumerate(records) if len(record) != len(header)]
    if partial:
        lacking = [name for name in saved if name not in records[partial[0]]]
        raise ContractError(
            "prediction input does not match the saved schema: "
            f"{len(partial)} record(s) lack columns, the first is record {partial[0]} "
            f"without {shown(lacking)}: every record names every column (send null for a "
            "missing value)"
        )


def _too_many(max_rows: int) -> BadRequest:
    return BadRequest(f"too many rows: at most {max_rows} per request (--max-rows)", 413)


def _json_rows(body: bytes, max_rows: int, wanted: type[Any]) -> list[Any]:
    """The records of a JSON body: each a ``wanted`` (dict or list) of scalars."""
    doc = strictjson.loads(body, "the request body", error=MalformedBody)
    if isinstance(doc, dict) and set(doc) == {"records"}:
        doc = doc["records"]
    if not isinstance(doc, list):
        raise BadRequest(
            'expected a JSON list of records, or {"records": [...]}, not a JSON '
            f"{_json_type(doc)}"
        )
    if not doc:
        raise BadRequest("no records: send at least one")
    if len(doc) > max_rows:
        raise _too_many(max_rows)
    for i, record in enumerate(doc):
        if not isinstance(record, wanted):
            shape = "an object of column: value" if wanted is dict else "a list of feature values"
            raise BadRequest(f"record {i} is a JSON {_json_type(record)}, expected {shape}")
        values = record.values() if isinstance(record, dict) else record
        for value in values:
            if isinstance(value, (dict, list)):
                raise BadRequest(
                    f"record {i} holds a nested JSON {_json_type(value)}: values must be "
                    "numbers, strings, booleans or null"
                )
    return doc


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _csv_rows(body: bytes, max_rows: int, *, header: bool) -> tuple[list[str], list[list[str]]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the CSV body is not UTF-8: {exc}") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    names: list[str] = []
    try:
        for row in _nonblank(reader):
            if header and not names:
                names = [n.strip() for n in row]
                _check_header(names)
                continue
            if header and len(row) != len(names):
                raise BadRequest(
                    f"CSV line {reader.line_num} has {len(row)} fields, the header has {len(names)}"
                )
            rows.append(row)
            if len(rows) > max_rows:  # counted while reading: the rest is never parsed
                raise _too_many(max_rows)
    except csv.Error as exc:
        raise BadRequest(f"malformed CSV at line {reader.line_num}: {exc}") from exc
    if not rows:
        raise BadRequest("no rows: send a header row, then at least one row of values")
    return names, rows


def _nonblank(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    return (row for row in reader if row)


def _check_header(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if not name:
            raise BadRequest("the CSV header has an empty column name")
        if name in seen:
            raise BadRequest(f"the CSV header names column {shown(name)} twice")
        seen.add(name)


def _frame(
    columns: Sequence[Mapping[str, Any]],
    header: list[str],
    values_of: Callable[[str], list[Any]],
    from_text: bool,
) -> Any:
    """The saved columns in the saved order, each from ``values_of(name)``; else a 422.

    Missing and unexpected names are refused before any column is built, so the cost of a
    request is its rows by the saved columns, whatever names the body holds.
    """
    import pandas as pd

    present = set(header)
    saved = {str(c.get("name")): c for c in columns}
    problems: list[str] = []
    missing = [n for n in saved if n not in present]
    extra = [n for n in header if n not in saved]
    if missing:  # said at once, without building a column per unexpected name
        problems.append(f"missing columns {shown(missing)}")
    if extra:
        problems.append(f"unexpected columns {shown(extra)}")
    data: dict[str, Any] = {}
    for name, spec in saved.items() if not problems else ():
        try:
            data[name] = _column(spec, values_of(name), from_text)
        except _CellError as exc:
            problems.append(f"column {shown(name)} {exc}")
    if problems:
        raise ContractError(
            "prediction input does not match the saved schema: "
            + "; ".join(problems[:_PROBLEMS_SHOWN])
        )
    return pd.DataFrame(data, columns=list(saved))


class _CellError(Exception):
    """A value that does not fit its column's saved type: the message names the row."""


def _column(spec: Mapping[str, Any], values: list[Any], from_text: bool) -> Any:
    import pandas as pd

    dtype = str(spec.get("dtype"))
    if dtype == "category":
        return _categorical(spec, values, from_text)
    if dtype in _TEXT_DTYPES:  # text: strings or missing, nothing else
        cells = [_cell("O", dtype, v, from_text, row) for row, v in enumerate(values)]
        return pd.Series(cells, dtype=object if dtype == "object" else dtype)
    try:
        kind = np.dtype(dtype).kind
    except TypeError:  # a pandas extension dtype: left to the schema check
        return pd.Series(values)
    if kind not in "biufO":
        return pd.Series(values)
    cells = [_cell(kind, dtype, v, from_text, row) for row, v in enumerate(values)]
    target = object if kind == "O" else np.dtype(dtype)
    try:
        return pd.Series(np.array(cells, dtype=target))
    except (OverflowError, ValueError) as exc:  # belt and braces: _cell checked each value
        raise _CellError(f"cannot hold these values as {dtype}: {shown(str(exc))}") from exc


def _cell(kind: str, dtype: str, value: Any, from_text: bool, row: int) -> Any:
    """One value as the column's type; missing is NaN (floats) or None (strings) only."""
    if from_text and isinstance(value, str) and value == "":
        value = None
    if value is None:
        if kind == "f":
            return math.nan
        if kind == "O":
            return None
        raise _CellError(f"row {row}: a value is missing, and a {dtype} column cannot hold one")
    if kind == "O":
        if isinstance(value, str):
            return value
        return _wrong(row, "a string", value)
    if kind == "b":
        if from_text and isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return value if isinstance(value, bool) else _wrong(row, "true or false", value)
    given = value
    if from_text and isinstance(value, str):
        value = _number(value, kind, row)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _wrong(row, "a number", value)
    if kind == "f":
        try:
            as_float = float(value)
        except OverflowError:
            as_float = math.inf
        if not math.isfinite(as_float):
            missing = " (leave a CSV cell empty, or send null, for a missing value)"
            raise _CellError(
                f"row {row}: {shown(given)} does not fit in a {dtype}"
                + (missing if isinstance(given, str) else "")
            )
        return as_float
    if isinstance(value, float):
        return _wrong(row, "an integer", value)
    info = np.iinfo(np.dtype(dtype))
    if not info.min <= value <= info.max:
        raise _CellError(f"row {row}: {shown(value)} is out of range for {dtype}")
    return value


def _number(text: str, kind: str, row: int) -> int | float:
    # Python's int() and float() also take "1_000", non-ASCII digits and Unicode spaces, which
    # no CSV writer produces: only the plain decimal text is read, by a pattern that cannot
    # backtrack (each part is delimited by a character the part before it cannot hold).
    integer = kind in "iu"
    try:
        if (_INTEGER if integer else _DECIMAL).fullmatch(text):
            return int(text) if integer else float(text)
        if not integer and text.strip(" \t").lstrip("+-").lower() in _NON_FINITE:
            return float(text)  # refused by the caller, which says how to send a missing value
    except ValueError:  # over Python's int-str digit limit
        pass
    want = "an integer" if integer else "a number"
    raise _CellError(f"row {row}: expected {want}, got {shown(text)}")


def _wrong(row: int, want: str, value: Any) -> Any:
    raise _CellError(f"row {row}: expected {want}, got {_json_type(value)} {shown(value)}")


def _categorical(spec: Mapping[str, Any], values: list[Any], from_text: bool) -> Any:
    import pandas as pd

    known = list(spec.get("categories") or [])
    if from_text:  # CSV cells are text: match them against the categories as text
        by_text = {str(c): c for c in known}
        values = [None if v == "" else by_text.get(v, v) for v in values]
    lookup = {(type(c), c) for c in known}
    unknown = sorted({shown(v) for v in values if v is not None and (type(v), v) not in lookup})
    if unknown:
        raise _CellError(f"has unknown categories {', '.join(unknown[:_PROBLEMS_SHOWN])}")
    categories = pd.Index(known, dtype=spec.get("categories_dtype") or None)
    return pd.Series(pd.Categorical(values, categories=categories))


def _array(schema: Mapping[str, Any], rows: Sequence[Sequence[Any]], *, from_text: bool) -> Any:
    """Rows of feature values for a model trained on an array (no column names)."""
    dtype = str(schema.get("dtype") or "float64")
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        kind, dtype = "f", "float64"
    saved = schema.get("n_features_in")
    known = isinstance(saved, int) and not isinstance(saved, bool)
    # Without a saved width the rows must still agree with each other: numpy refuses a ragged
    # list with a ValueError (a 500), never with a message naming the row.
    width = saved if known else len(rows[0])
    expected = f"the model expects {width}" if known else f"row 0 has {width}"
    problems = []
    cells: list[list[Any]] = []
    for i, row in enumerate(rows):
        if len(row) != width:
            problems.append(f"row {i} has {len(row)} values, {expected}")
            continue
        try:
            cells.append([_cell(kind, dtype, v, from_text, i) for v in row])
        except _CellError as exc:
            problems.append(str(exc))
        if len(problems) >= _PROBLEMS_SHOWN:
            break
    if problems:
        raise ContractError(
            "prediction input does not match the saved schema: " + "; ".join(problems)
        )
    return np.array(cells, dtype=object if kind == "O" else np.dtype(dtype))
