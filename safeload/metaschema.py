"""The schema of ``safeload.json``: signed metadata is attacker data too.

A trusted key vouches for who wrote the metadata, not for what it costs to read: a dtype string
such as ``<U100000000`` allocates gigabytes when the saved sample is rebuilt, a list where an
object is expected escapes as a bare ``AttributeError``. Every field is checked here, before any
use, against what :func:`safeload.metadata.build_metadata` writes: exact keys, types, bounded
lengths, sizes and nesting, and dtypes from a short list of plain numeric and string forms.
Every refusal is a :class:`MalformedArtifactError` naming the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from safeload.errors import MalformedArtifactError, shown
from safeload.layout import METADATA_FILE

MAX_DEPTH = 32
MAX_STRING = 1 << 20
MAX_KEY = 4096
MAX_ITEMS = 1_000_000
MAX_NODES = 4_000_000
MAX_SHORT = 1024
MAX_SAMPLE_ROWS = 100
MAX_FEATURES = 1_000_000
MAX_ARRAY_BYTES = 64 << 20
_INT_RANGE = (-(1 << 63), (1 << 64) - 1)

# ``dtype.str`` of the arrays ``contract._encode_array`` writes, and ``"object"``.
_ARRAY_DTYPE = re.compile(r"[<>|=]?(?:b1|[iu][1248]|f[248]|U[0-9]{1,7})|object")
# ``str(series.dtype)`` of the DataFrame columns a sample can round-trip.
_COLUMN_DTYPE = re.compile(r"bool|u?int(?:8|16|32|64)|float(?:16|32|64)|object|str|category")
# Schema dtypes are only compared, never allocated: names, no parentheses (subarray shapes).
_SCHEMA_DTYPE = re.compile(r"[A-Za-z0-9_<>|=\[\], :/.-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

JSON = Any


def refuse(where: str, problem: str) -> MalformedArtifactError:
    """The one error of this module: the field, what is wrong, and what to do."""
    return MalformedArtifactError(
        f"{METADATA_FILE}: {where} {problem}. The signed metadata is not what safeload writes; "
        "re-save the model with safeload.save, and do not load this artifact."
    )


# ---- any JSON value: nesting, sizes, numbers ----------------------------------------------------


def check_bounds(doc: JSON) -> None:
    """Nesting depth, string, list and object sizes, node count and integer range of a document.

    Iterative, and paths are rendered only on refusal: a deep or wide document costs no more
    than its size.
    """
    stack: list[tuple[JSON, int, tuple[Any, ...]]] = [(doc, 0, ())]
    nodes = 0
    while stack:
        value, depth, crumb = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise refuse("the document", f"holds more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise refuse(_path(crumb), f"is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, str):
            _check_length(value, MAX_STRING, crumb)
        elif isinstance(value, int) and not isinstance(value, bool):
            if not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
                raise refuse(_path(crumb), f"holds an integer of {value.bit_length()} bits")
        elif isinstance(value, list):
            _check_length(value, MAX_ITEMS, crumb)
            stack.extend((item, depth + 1, (crumb, i)) for i, item in enumerate(value))
        elif isinstance(value, dict):
            _check_length(value, MAX_ITEMS, crumb)
            for key, item in value.items():
                _check_length(key, MAX_KEY, (crumb, "<key>"))
                stack.append((item, depth + 1, (crumb, key)))


def _check_length(
    value: str | list[Any] | dict[str, Any], limit: int, crumb: tuple[Any, ...]
) -> None:
    if len(value) > limit:
        what = type(value).__name__.replace("dict", "object")
        raise refuse(_path(crumb), f"is a {what} of {len(value)} items, more than {limit}")


def _path(crumb: tuple[Any, ...]) -> str:
    """``a.b[3]`` from a crumb ``(((), "a"), "b"), 3)``, the last few steps, each shown short."""
    steps: list[str] = []
    while crumb:
        crumb, step = crumb
        steps.append(f"[{step}]" if isinstance(step, int) else "." + shown(step).strip("'"))
    steps.reverse()
    text = "".join(steps[-6:]).lstrip(".")
    return ("..." if len(steps) > 6 else "") + (text or "the document")


# ---- typed fields ------------------------------------------------------------------------------


def _object(
    value: JSON, where: str, allowed: set[str] | None = None, required: Iterable[str] = ()
) -> dict[str, JSON]:
    """An object with only ``allowed`` keys (any when None) and every ``required`` one."""
    if not isinstance(value, dict):
        raise refuse(where, f"is a {_kind(value)}, expected an object")
    unknown = sorted(set(value) - allowed) if allowed is not None else []
    if unknown:
        raise refuse(where, f"has unknown field(s) {shown(unknown)}")
    missing = sorted(set(required) - set(value))
    if missing:
        raise refuse(where, f"lacks the field(s) {shown(missing)}")
    return value


def _string(value: JSON, where: str, limit: int = MAX_SHORT) -> str:
    if not isinstance(value, str):
        raise refuse(where, f"is a {_kind(value)}, expected a string")
    if len(value) > limit:
        raise refuse(where, f"is a string of {len(value)} characters, more than {limit}")
    return value


def _count(value: JSON, where: str, limit: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise refuse(where, f"is a {_kind(value)}, expected an integer")
    if not 0 <= value <= limit:
        raise refuse(where, f"is {shown(value)}, outside [0, {limit}]")
    return value


def _list(value: JSON, where: str, limit: int) -> list[JSON]:
    if not isinstance(value, list):
        raise refuse(where, f"is a {_kind(value)}, expected a list")
    if len(value) > limit:
        raise refuse(where, f"has {len(value)} items, more than {limit}")
    return value


def _kind(value: JSON) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _dtype_name(value: JSON, where: str, pattern: re.Pattern[str]) -> str:
    text = _string(value, where, 64)
    if not pattern.fullmatch(text):
        raise refuse(where, f"names dtype {shown(text)}, which safeload does not record")
    return text


def _dtype(value: JSON, where: str, pattern: re.Pattern[str]) -> np.dtype[Any]:
    """A dtype the sample is rebuilt with: matched against ``pattern`` before numpy sees it."""
    text = _dtype_name(value, where, pattern)
    if text in ("category", "object"):
        return np.dtype(object)
    return np.dtype(text)


# ---- the document ------------------------------------------------------------------------------


def check_document(doc: dict[str, JSON]) -> None:
    """Every field of a format-1 record (the identity fields were checked by the caller)."""
    check_bounds(doc)
    for key in ("name", "version"):
        _string(doc[key], key)
    if "created_at" in doc:
        _string(doc["created_at"], "created_at", 64)
    if doc.get("estimator") is not None:
        _string(doc["estimator"], "estimator")
    if "training_data_sha256" in doc:
        digest = _string(doc["training_data_sha256"], "training_data_sha256", 64)
        if not _SHA256.fullmatch(digest):
            raise refuse("training_data_sha256", "is not a hex SHA-256")
    for key in ("metrics", "config"):
        if key in doc:
            _object(doc[key], key)
    if "versions" in doc:
        _check_versions(doc["versions"])
    n_features = _check_schema(doc["schema"]) if "schema" in doc else None
    if "sample" in doc:
        _check_sample(doc["sample"], n_features)
    if "onnx" in doc:
        _check_onnx(doc["onnx"])


_ONNX_INPUT_TYPES = ("tensor(double)", "tensor(float)", "tensor(int64)", "tensor(string)")


def _check_onnx(value: JSON) -> None:
    """The graph record of an ONNX artifact (``onnxconvert.convert_to_onnx`` writes it)."""
    allowed = {"opset", "float_type", "inputs", "methods", "classes", "rtol", "atol"}
    spec = _object(value, "onnx", allowed | {"max_difference"}, allowed - {"classes"})
    for domain, version in _object(spec["opset"], "onnx.opset").items():
        _string(domain, "onnx.opset", 64)
        _count(version, f"onnx.opset.{shown(domain)}", 1000)
    if spec["float_type"] not in ("double", "float"):
        raise refuse("onnx.float_type", f"is {shown(spec['float_type'])}")
    inputs = _list(spec["inputs"], "onnx.inputs", MAX_FEATURES)
    if not inputs:
        raise refuse("onnx.inputs", "is empty")
    for i, item in enumerate(inputs):
        where = f"onnx.inputs[{i}]"
        entry = _object(item, where, {"name", "column", "type"}, {"name", "column", "type"})
        _string(entry["name"], f"{where}.name", MAX_STRING)
        if entry["column"] is not None:
            _string(entry["column"], f"{where}.column", MAX_STRING)
        if entry["type"] not in _ONNX_INPUT_TYPES:
            raise refuse(f"{where}.type", f"is {shown(entry['type'])}")
    methods = _object(spec["methods"], "onnx.methods", {"predict", "predict_proba", "transform"})
    for method, how in methods.items():
        entry = _object(how, f"onnx.methods.{method}", {"output", "ravel"}, {"output", "ravel"})
        _string(entry["output"], f"onnx.methods.{method}.output", MAX_STRING)
        if not isinstance(entry["ravel"], bool):
            raise refuse(f"onnx.methods.{method}.ravel", "is not a boolean")
    if "classes" in spec:
        classes = _list(spec["classes"], "onnx.classes", MAX_ITEMS)
        _check_values(classes, np.dtype(object), "onnx.classes")
    for key in ("rtol", "atol", "max_difference"):
        number = spec.get(key, 0.0)
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            raise refuse(f"onnx.{key}", f"is a {_kind(number)}, not a number")


def _check_versions(value: JSON) -> None:
    versions = _object(value, "versions")
    if len(versions) > 64:
        raise refuse("versions", f"names {len(versions)} libraries, more than 64")
    for lib, text in versions.items():
        where = f"versions.{shown(lib)}"
        _string(lib, where, 64)
        if text is not None:
            _string(text, where, 256)


def _check_schema(value: JSON) -> int | None:
    """The input schema; returns its ``n_features_in`` (None when not recorded)."""
    allowed = {"kind", "dtype", "columns", "n_features_in", "feature_names"}
    schema = _object(value, "schema", allowed)
    if "kind" in schema and schema["kind"] not in ("array", "dataframe"):
        raise refuse("schema.kind", f"is {shown(schema['kind'])}, not 'array' or 'dataframe'")
    if "dtype" in schema:
        _dtype_name(schema["dtype"], "schema.dtype", _SCHEMA_DTYPE)
    n_features = schema.get("n_features_in")
    if n_features is not None:
        _count(n_features, "schema.n_features_in", MAX_FEATURES)
    sizes: dict[str, int] = {}
    if "feature_names" in schema:
        names = _list(schema["feature_names"], "schema.feature_names", MAX_FEATURES)
        for i, name in enumerate(names):
            _string(name, f"schema.feature_names[{i}]", MAX_STRING)
        sizes["schema.feature_names"] = len(names)
    if "columns" in schema:
        columns = _list(schema["columns"], "schema.columns", MAX_FEATURES)
        for i, column in enumerate(columns):
            _check_column(column, f"schema.columns[{i}]", with_values=False)
        _check_unique_names(columns, "schema.columns")
        sizes["schema.columns"] = len(columns)
    for where, size in sizes.items():
        _agree(where, size, "schema.n_features_in", n_features)
    return n_features if n_features is not None else next(iter(sizes.values()), None)


def _agree(where: str, size: int, other: str, expected: int | None) -> None:
    if expected is not None and size != expected:
        raise refuse(where, f"has {size} columns but {other} says {expected}")


def _check_column(value: JSON, where: str, *, with_values: bool) -> int:
    """A DataFrame column (schema or sample); returns its number of values."""
    allowed = {"name", "dtype", "categories", "categories_dtype"} | (
        {"values"} if with_values else set()
    )
    required = {"name", "dtype"} | ({"values"} if with_values else set())
    column = _object(value, where, allowed, required)
    _string(column["name"], f"{where}.name", MAX_STRING)
    if not with_values:  # the schema's dtypes are compared with the input's, never allocated
        _dtype_name(column["dtype"], f"{where}.dtype", _SCHEMA_DTYPE)
        _check_categories(column, where)
        return 0
    dtype = _dtype(column["dtype"], f"{where}.dtype", _COLUMN_DTYPE)
    values = _list(column["values"], f"{where}.values", MAX_SAMPLE_ROWS)
    if column["dtype"] == "category":
        if "categories" not in column:
            raise refuse(where, "is categorical but records no categories")
        _check_categories(column, where)
        _check_values(values, np.dtype(object), f"{where}.values")
    else:
        if "categories" in column or "categories_dtype" in column:
            raise refuse(where, "records categories but is not categorical")
        _check_values(
            values, np.dtype("<U0") if column["dtype"] == "str" else dtype, f"{where}.values"
        )
    return len(values)


def _check_categories(column: dict[str, JSON], where: str) -> None:
    if "categories" in column:
        categories = _list(column["categories"], f"{where}.categories", MAX_ITEMS)
        _check_values(categories, np.dtype(object), f"{where}.categories")
    if "categories_dtype" in column:
        _dtype_name(column["categories_dtype"], f"{where}.categories_dtype", _COLUMN_DTYPE)


def _check_unique_names(columns: list[JSON], where: str) -> None:
    names = [c["name"] for c in columns]
    if len(set(names)) != len(names):
        raise refuse(where, "names a column twice")


# ---- the sample and its predictions ------------------------------------------------------------


def _check_sample(value: JSON, n_features: int | None) -> None:
    sample = _object(value, "sample", {"inputs", "predictions"}, {"inputs", "predictions"})
    rows, columns = _check_inputs(sample["inputs"])
    _agree("sample.inputs", columns, "schema.n_features_in", n_features)
    allowed = {"rtol", "atol", "predict", "predict_proba", "transform"}
    predictions = _object(sample["predictions"], "sample.predictions", allowed, {"rtol", "atol"})
    for key in ("rtol", "atol"):
        tolerance = predictions[key]
        if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool):
            raise refuse(f"sample.predictions.{key}", f"is a {_kind(tolerance)}, not a number")
        if not 0 <= tolerance <= 1:
            raise refuse(f"sample.predictions.{key}", f"is {shown(tolerance)}, outside [0, 1]")
    methods = [m for m in ("predict", "predict_proba", "transform") if m in predictions]
    if not methods:
        raise refuse("sample.predictions", "records no predict, predict_proba or transform")
    for method in methods:
        shape = _check_array(predictions[method], f"sample.predictions.{method}", {1, 2})
        if shape[0] != rows:
            raise refuse(f"sample.predictions.{method}", f"has {shape[0]} rows for {rows} inputs")


def _check_inputs(value: JSON) -> tuple[int, int]:
    """The sample inputs; returns (rows, columns)."""
    where = "sample.inputs"
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind == "array":
        shape = _check_array(value, where, {2}, extra={"kind"})
        if shape[0] > MAX_SAMPLE_ROWS:
            raise refuse(where, f"has {shape[0]} rows, more than {MAX_SAMPLE_ROWS}")
        return shape[0], shape[1]
    if kind != "dataframe":
        raise refuse(f"{where}.kind", f"is {shown(kind)}, not 'array' or 'dataframe'")
    frame = _object(value, where, {"kind", "columns"}, {"kind", "columns"})
    columns = _list(frame["columns"], f"{where}.columns", MAX_FEATURES)
    lengths = {
        _check_column(c, f"{where}.columns[{i}]", with_values=True) for i, c in enumerate(columns)
    }
    _check_unique_names(columns, f"{where}.columns")
    if len(lengths) > 1:
        raise refuse(f"{where}.columns", "have different numbers of values")
    rows = lengths.pop() if lengths else 0
    if rows * len(columns) > MAX_ITEMS:
        raise refuse(where, f"holds {rows * len(columns)} values, more than {MAX_ITEMS}")
    return rows, len(columns)


def _check_array(
    value: JSON, where: str, ndims: set[int], extra: Iterable[str] = ()
) -> tuple[int, ...]:
    """An encoded array: dtype, shape and values agree, and it fits in a bounded allocation."""
    fields = {"dtype", "shape", "values", *extra}
    doc = _object(value, where, fields, fields)
    dtype = _dtype(doc["dtype"], f"{where}.dtype", _ARRAY_DTYPE)
    dims = _list(doc["shape"], f"{where}.shape", 2)
    if len(dims) not in ndims:
        raise refuse(f"{where}.shape", f"has {len(dims)} dimension(s), expected {sorted(ndims)}")
    shape = tuple(_count(d, f"{where}.shape[{i}]", MAX_ITEMS) for i, d in enumerate(dims))
    size = math.prod(shape)
    values = _list(doc["values"], f"{where}.values", MAX_ITEMS)
    if len(values) != size:
        raise refuse(where, f"has {len(values)} values for shape {shape}")
    _check_values(values, dtype, f"{where}.values")
    itemsize = max(dtype.itemsize, 8, _longest(values) * 4 if dtype.kind == "U" else 0)
    if size * itemsize > MAX_ARRAY_BYTES:
        raise refuse(where, f"would take {size} x {itemsize} bytes, more than {MAX_ARRAY_BYTES}")
    return shape


def _longest(values: list[JSON]) -> int:
    return max((len(v) for v in values if isinstance(v, str)), default=0)


def _check_values(values: list[JSON], dtype: np.dtype[Any], where: str) -> None:
    """Each value is of the JSON type its dtype kind is written with (see ``contract._scalar``)."""
    accept = _ACCEPT[dtype.kind]
    for i, item in enumerate(values):
        if not accept(item, dtype):
            raise refuse(f"{where}[{i}]", f"is {shown(item)}, not a value of dtype {dtype}")


def _is_int(item: JSON, dtype: np.dtype[Any]) -> bool:
    if not isinstance(item, int) or isinstance(item, bool):
        return False
    info = np.iinfo(dtype)
    return int(info.min) <= item <= int(info.max)


def _is_float(item: JSON, dtype: np.dtype[Any]) -> bool:
    if isinstance(item, str):
        return item in ("inf", "-inf")
    return item is None or (isinstance(item, (int, float)) and not isinstance(item, bool))


def _is_str(item: JSON, dtype: np.dtype[Any]) -> bool:
    return isinstance(item, str) and (dtype.itemsize == 0 or len(item) <= dtype.itemsize // 4)


def _is_scalar(item: JSON, dtype: np.dtype[Any]) -> bool:
    return item is None or isinstance(item, (bool, int, float, str))


_ACCEPT: Mapping[str, Callable[[JSON, np.dtype[Any]], bool]] = {
    "b": lambda item, _: isinstance(item, bool),
    "i": _is_int,
    "u": _is_int,
    "f": _is_float,
    "U": _is_str,
    "O": _is_scalar,
}
