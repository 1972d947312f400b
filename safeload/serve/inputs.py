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
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from safeload import strictjson
from safeload.errors import ContractError, shown

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)
# numpy's "object" and pandas' string dtypes ("str" is pandas 3's default for text columns).
_TEXT_DTYPES = ("object", "str", "string")
_PROBLEMS_SHOWN = 10


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
    header: list[str]
    rows: Sequence[Sequence[Any]]
    if kind in CSV_TYPES:
        header, rows = _csv_rows(body, max_rows, header=by_name)
    else:
        header, rows = _json_rows(body, max_rows, by_name=by_name)
    if by_name:
        return _frame(columns, header, rows, from_text=kind in CSV_TYPES)
    return _array(schema, rows, from_text=kind in CSV_TYPES)


def _too_many(max_rows: int) -> BadRequest:
    return BadRequest(f"too many rows: at most {max_rows} per request (--max-rows)", 413)


def _json_rows(
    body: bytes, max_rows: int, *, by_name: bool
) -> tuple[list[str], list[Sequence[Any]]]:
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
    wanted = dict if by_name else list
    for i, record in enumerate(doc):
        if not isinstance(record, wanted):
            shape = "an object of column: value" if by_name else "a list of feature values"
            raise BadRequest(f"record {i} is a JSON {_json_type(record)}, expected {shape}")
        values = record.values() if isinstance(record, dict) else record
        for value in values:
            if isinstance(value, (dict, list)):
                raise BadRequest(
                    f"record {i} holds a nested JSON {_json_type(value)}: values must be "
                    "numbers, strings, booleans or null"
                )
    if not by_name:
        return [], doc
    header: dict[str, None] = {}
    for record in doc:
        header.update(dict.fromkeys(record))
    names = list(header)
    return names, [[record.get(n, None) for n in names] for record in doc]


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
    rows: Sequence[Sequence[Any]],
    *,
    from_text: bool,
) -> Any:
    """Columns in the saved order, then any unexpected ones (the schema check names them)."""
    import pandas as pd

    position = {name: i for i, name in enumerate(header)}
    saved = {str(c.get("name")): c for c in columns}
    order = [n for n in saved if n in position] + [n for n in header if n not in saved]
    data: dict[str, Any] = {}
    problems: list[str] = []
    missing = [n for n in saved if n not in position]
    extra = [n for n in header if n not in saved]
    if missing or extra:  # said at once, without building a column per unexpected name
        if missing:
            problems.append(f"missing columns {shown(missing)}")
        if extra:
            problems.append(f"unexpected columns {shown(extra)}")
        order = []
    for name in order:
        values = [row[position[name]] for row in rows]
        spec = saved.get(name)
        try:
            data[name] = _column(spec, values, from_text) if spec else pd.Series(values)
        except _CellError as exc:
            problems.append(f"column {shown(name)} {exc}")
    if problems:
        raise ContractError(
            "prediction input does not match the saved schema: "
            + "; ".join(problems[:_PROBLEMS_SHOWN])
        )
    return pd.DataFrame(data, columns=order)


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
    try:
        return int(text) if kind in "iu" else float(text)
    except ValueError:
        want = "an integer" if kind in "iu" else "a number"
        raise _CellError(f"row {row}: expected {want}, got {shown(text)}") from None


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
    width = schema.get("n_features_in")
    problems = []
    cells: list[list[Any]] = []
    for i, row in enumerate(rows):
        if isinstance(width, int) and len(row) != width:
            problems.append(f"row {i} has {len(row)} values, the model expects {width}")
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
