"""Saving is a contract: the input schema, sample predictions, and the checks that enforce them.

At save time the model's input schema (column names, order, dtypes, categories) and a few sample
inputs with the predictions they gave are recorded as plain JSON. At load time the samples are
re-predicted (a model that no longer behaves as it did is refused), and prediction input can be
checked against the schema before it reaches the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from safeload.errors import ContractError, shown

JSON = Any
# Floats are compared with this tolerance (labels and integers exactly); it is recorded in the
# metadata so that a reader knows what "the same predictions" meant when the model was saved.
RTOL = 1e-6
ATOL = 1e-9
MAX_SAMPLE_ROWS = 100
_KINDS = {"b": "bool", "i": "int", "u": "int", "f": "float", "O": "str", "U": "str"}


def _is_frame(data: object) -> bool:
    return (
        type(data).__name__ == "DataFrame" and hasattr(data, "columns") and hasattr(data, "dtypes")
    )


def _column_schema(name: str, series: Any) -> dict[str, JSON]:
    dtype = series.dtype
    column: dict[str, JSON] = {"name": name, "dtype": str(dtype)}
    if str(dtype) == "category":
        column["categories"] = [_scalar(c) for c in series.cat.categories]
        column["categories_dtype"] = str(series.cat.categories.dtype)
    return column


def schema_of(data: Any, model: object | None = None) -> dict[str, JSON]:
    """The input schema of ``data`` (a DataFrame or an array), or of the fitted model alone."""
    schema: dict[str, JSON] = {}
    if data is not None and _is_frame(data):
        schema["kind"] = "dataframe"
        schema["columns"] = [_column_schema(str(c), data[c]) for c in data.columns]
        schema["n_features_in"] = len(data.columns)
    elif data is not None:
        array = np.asarray(data)
        if array.ndim != 2:
            raise ValueError(f"expected 2-D input, got an array of shape {array.shape}")
        schema["kind"] = "array"
        schema["dtype"] = str(array.dtype)
        schema["n_features_in"] = int(array.shape[1])
    n_features = getattr(model, "n_features_in_", None)
    if n_features is not None:
        schema["n_features_in"] = int(n_features)
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        schema["feature_names"] = [str(n) for n in names]
    elif schema.get("kind") == "dataframe":
        schema["feature_names"] = [c["name"] for c in schema["columns"]]
    return schema


def fingerprint(data: Any) -> str:
    """SHA-256 of the training data: the ``safeload-table-v1`` digest (docs/format.md)."""
    from safeload.lineage import table_digest

    return table_digest(data).sha256


def _scalar(value: Any) -> JSON:
    """One cell as JSON: None for missing, exact floats, plain ints, bools and strings."""
    if value is None:
        return None
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else (value if math.isfinite(value) else str(value))
    if isinstance(value, (bool, int, str)):
        return value
    raise ValueError(f"cannot record a sample value of type {type(value).__name__} as JSON")


def _encode_array(array: np.ndarray) -> dict[str, JSON]:
    if array.dtype.kind not in "biufOU":
        raise ValueError(f"cannot record values of dtype {array.dtype} as JSON")
    return {
        "dtype": array.dtype.str if array.dtype.kind != "O" else "object",
        "shape": list(array.shape),
        "values": [_scalar(v) for v in array.ravel().tolist()],
    }


def _decode_array(doc: Mapping[str, JSON]) -> np.ndarray:
    dtype = np.dtype(object) if doc["dtype"] == "object" else np.dtype(str(doc["dtype"]))
    values = [(float(v) if dtype.kind == "f" and isinstance(v, str) else v) for v in doc["values"]]
    if dtype.kind == "f":
        values = [math.nan if v is None else v for v in values]
    return np.array(values, dtype=dtype).reshape([int(s) for s in doc["shape"]])


def encode_sample(sample: Any) -> dict[str, JSON]:
    """A few input rows as JSON, DataFrame (with dtypes and categories) or array."""
    if _is_frame(sample):
        if len(sample) > MAX_SAMPLE_ROWS:
            raise ValueError(f"keep samples small: at most {MAX_SAMPLE_ROWS} rows")
        return {
            "kind": "dataframe",
            "columns": [
                {
                    **_column_schema(str(c), sample[c]),
                    "values": [_scalar(v) for v in sample[c].tolist()],
                }
                for c in sample.columns
            ],
        }
    array = np.asarray(sample)
    if array.ndim != 2 or array.shape[0] > MAX_SAMPLE_ROWS:
        raise ValueError(f"the sample must be 2-D with at most {MAX_SAMPLE_ROWS} rows")
    return {"kind": "array", **_encode_array(array)}


def decode_sample(doc: Mapping[str, JSON]) -> Any:
    """Rebuild the sample inputs exactly as they were given (dtypes and categories included)."""
    if doc.get("kind") == "dataframe":
        import pandas as pd

        columns: dict[str, Any] = {}
        for column in doc["columns"]:
            values = column["values"]
            if column["dtype"] == "category":
                cats = pd.Index(column["categories"], dtype=column.get("categories_dtype"))
                columns[column["name"]] = pd.Categorical(values, categories=cats)
            else:
                dtype = np.dtype(column["dtype"]) if column["dtype"] != "object" else object
                if np.dtype(dtype).kind == "f":
                    values = [math.nan if v is None else float(v) for v in values]
                columns[column["name"]] = pd.Series(values, dtype=column["dtype"])
        return pd.DataFrame(columns)
    return _decode_array(doc)


def record_predictions(model: Any, sample: Any) -> dict[str, JSON]:
    """What the model answered on the sample at save time, for each method it has."""
    recorded: dict[str, JSON] = {"rtol": RTOL, "atol": ATOL}
    for method in ("predict", "predict_proba", "transform"):
        func = getattr(model, method, None)
        if func is None:
            continue
        try:
            output = func(sample)
        except Exception:  # noqa: S112 - e.g. predict_proba on a non-probabilistic SVC
            continue
        if hasattr(output, "toarray"):
            output = output.toarray()
        recorded[method] = _encode_array(np.asarray(output))
    if len(recorded) == 2:
        raise ValueError("the model has no predict, predict_proba or transform to record")
    return recorded


def check_predictions(
    model: Any, sample_doc: Mapping[str, JSON], recorded: Mapping[str, JSON]
) -> None:
    """Re-predict the saved sample; any difference is a :class:`ContractError`."""
    sample = decode_sample(sample_doc)
    rtol = float(recorded.get("rtol", RTOL))
    atol = float(recorded.get("atol", ATOL))
    for method in ("predict", "predict_proba", "transform"):
        if method not in recorded:
            continue
        expected = _decode_array(recorded[method])
        try:
            output = getattr(model, method)(sample)
        except Exception as exc:
            raise ContractError(
                f"the model could not {method} its own saved sample: {shown(str(exc))}. It "
                "does not behave as it did when saved; re-validate or retrain it."
            ) from exc
        if hasattr(output, "toarray"):
            output = output.toarray()
        actual = np.asarray(output)
        if actual.shape != expected.shape:
            raise ContractError(
                f"{method} on the saved sample now returns shape {actual.shape}, "
                f"saved {expected.shape}"
            )
        if expected.dtype.kind == "f" or actual.dtype.kind == "f":
            same = np.allclose(
                actual.astype(float), expected.astype(float), rtol=rtol, atol=atol, equal_nan=True
            )
        else:
            same = bool(np.array_equal(actual.astype(object), expected.astype(object)))
        if not same:
            diff = int(np.sum(actual.astype(object) != expected.astype(object)))
            raise ContractError(
                f"{method} on the saved sample differs from the predictions recorded at save time "
                f"({diff} value(s) differ; floats compared with rtol={rtol}, atol={atol}). The "
                "model does not behave as it did in training (swapped model file, or a library "
                "upgrade): re-validate or retrain it."
            )


def check_input(schema: Mapping[str, JSON], data: Any) -> None:
    """Check prediction input against the saved schema; say exactly what is wrong."""
    columns: Sequence[Mapping[str, JSON]] = schema.get("columns") or []
    n_expected = schema.get("n_features_in")
    if schema.get("kind") == "dataframe" or (columns and _is_frame(data)):
        if not _is_frame(data):
            raise ContractError(
                "this model was trained on a DataFrame with columns "
                f"{shown([c['name'] for c in columns])}; pass a DataFrame, not "
                f"{type(data).__name__}"
            )
        expected = [str(c["name"]) for c in columns]
        given = [str(c) for c in data.columns]
        missing = [c for c in expected if c not in given]
        extra = [c for c in given if c not in expected]
        problems = []
        if missing:
            problems.append(f"missing columns {shown(missing)}")
        if extra:
            problems.append(f"unexpected columns {shown(extra)}")
        if not problems and given != expected:
            problems.append(
                f"columns in the wrong order: expected {shown(expected)}, got {shown(given)}"
            )
        for column in columns:
            name = str(column["name"])
            if name not in given:
                continue
            series = data[name]
            want, got = str(column["dtype"]), str(series.dtype)
            if want != got and not _compatible(want, got):
                problems.append(f"column {shown(name)} has dtype {got}, expected {shown(want)}")
            if want == "category" and got == "category":
                known = set(column.get("categories", []))
                unknown = sorted({str(v) for v in series.dropna().unique() if v not in known})
                if unknown:
                    problems.append(f"column {shown(name)} has unknown categories {shown(unknown)}")
        if problems:
            raise ContractError(
                "prediction input does not match the saved schema: " + "; ".join(problems)
            )
        return
    array = np.asarray(data)
    if array.ndim != 2:
        raise ContractError(f"expected 2-D input, got shape {array.shape}")
    if n_expected is not None and array.shape[1] != n_expected:
        raise ContractError(
            f"prediction input has {array.shape[1]} features, the model expects {shown(n_expected)}"
        )
    want_dtype = schema.get("dtype")
    if isinstance(want_dtype, str) and not _compatible(want_dtype, str(array.dtype)):
        raise ContractError(
            f"prediction input has dtype {array.dtype}, expected {shown(want_dtype)}"
        )


def _compatible(want: str, got: str) -> bool:
    """Same kind of values (int64 vs int32 is fine; float given for an int column is not)."""
    try:
        w, g = np.dtype(want), np.dtype(got)
    except TypeError:
        return want == got
    if w == g:
        return True
    if w.kind == "f":
        return g.kind in "fiu"
    return _KINDS.get(w.kind) == _KINDS.get(g.kind) and w.kind != "O"
