"""Per-feature statistics of the training data, bounded in size whatever the data.

Recorded in ``safeload.json`` (``training_stats``) and signed with the model, they are what
:mod:`safeload.drift` compares today's inputs with. Numeric columns keep counts, min, max,
mean, std, the deciles and how many training values fell in each decile bin; categorical ones
keep their :data:`TOP_CATEGORIES` most frequent values with counts, and a count of the rest.
Sizes are bounded (columns, categories, text lengths) so that ``safeload.json`` stays small for
a 2,000-column frame or a column of a million distinct strings; work is bounded by reading at
most :data:`SAMPLE_ROWS` rows (an even, seeded sample) for deciles and categories.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from safeload.lineage import columns_of, is_sparse

MAX_STATS_COLUMNS = 500
TOP_CATEGORIES = 20
MAX_CATEGORY_CHARS = 64
MAX_NAME_CHARS = 1024
SAMPLE_ROWS = 1_000_000
QUANTILES = tuple(i / 10 for i in range(11))
"""The recorded quantiles: the deciles, minimum and maximum included."""
_SEED = 20261130

NUMERIC, CATEGORICAL, OTHER = "numeric", "categorical", "other"


def sample_rows(rows: int, limit: int = SAMPLE_ROWS) -> np.ndarray | None:
    """The rows read when a table has more than ``limit``: a seeded uniform sample, sorted."""
    if rows <= limit:
        return None
    rng = np.random.default_rng(_SEED)
    return np.sort(rng.choice(rows, size=limit, replace=False))


def kind_of(column: Any) -> str:
    """Numeric (ints and floats), categorical (text, bools, categories, objects), or other."""
    dtype = column.dtype
    kind = getattr(dtype, "kind", "O")
    if str(dtype) == "category" or kind in "bOSU":
        return CATEGORICAL
    if kind in "iuf":
        return NUMERIC
    return OTHER


def numeric_values(column: Any, rows: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """float64 values (missing as NaN), and how many given values were not numbers at all."""
    part = _take(column, rows)
    if hasattr(part, "to_numpy"):
        try:
            return part.to_numpy(dtype="float64", na_value=np.nan), 0
        except (TypeError, ValueError):
            part = part.to_numpy(dtype=object)
    array = np.asarray(part)
    if array.dtype.kind in "biuf":
        return array.astype("float64"), 0
    out = np.full(len(array), np.nan)
    invalid = 0
    for i, value in enumerate(array.tolist()):
        if value is None or (isinstance(value, float) and value != value):
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError, OverflowError):
            out[i] = np.inf  # not a number: counted out of range, never as missing
            invalid += 1
    return out, invalid


def category_values(column: Any, rows: np.ndarray | None = None) -> list[str | None]:
    """Each value as the text it is recorded and compared as (None when missing)."""
    part = _take(column, rows)
    items = part.tolist() if hasattr(part, "tolist") else list(part)
    return [category_text(v) for v in items]


def category_counts(column: Any, rows: np.ndarray | None = None) -> tuple[Counter[str], int]:
    """Each present value's count, by its recorded text, and how many values are missing.

    A pandas column is counted by ``value_counts`` (hashing in C), then its distinct values
    are turned to text; anything else value by value.
    """
    part = _take(column, rows)
    counts: Counter[str] = Counter()
    if hasattr(part, "value_counts"):
        for value, count in part.value_counts(dropna=True, sort=False).items():
            text = category_text(value)
            if text is not None and count:
                counts[text] += int(count)
        return counts, len(part) - sum(counts.values())
    texts = category_values(part)
    counts.update(t for t in texts if t is not None)
    return counts, len(texts) - sum(counts.values())


def category_text(value: Any) -> str | None:
    """A category as recorded: ``str`` of the value, cut at :data:`MAX_CATEGORY_CHARS`."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if isinstance(value, float) and value != value:
        return None
    return str(value)[:MAX_CATEGORY_CHARS]


def _take(column: Any, rows: np.ndarray | None) -> Any:
    if rows is None:
        return column
    return column.iloc[rows] if hasattr(column, "iloc") else np.asarray(column)[rows]


def bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin of each finite value: 0 for ``v <= edges[0]``, i for ``edges[i-1] < v <= edges[i]``."""
    return np.searchsorted(edges, values, side="left")


def bin_edges(quantiles: list[float]) -> np.ndarray:
    """The interior bin edges of recorded quantiles: the inner deciles, repeats dropped."""
    return np.unique(np.asarray(quantiles[1:-1], dtype="float64"))


def training_stats(data: Any) -> dict[str, Any]:
    """The ``training_stats`` block of ``safeload.json`` (docs/format.md)."""
    if is_sparse(data):
        rows, cols = (int(n) for n in data.shape)
        return {
            "rows": rows,
            "sample_rows": 0,
            "columns": cols,
            "features": [],
            "unrecorded_columns": cols,
        }
    rows, columns = columns_of(data)
    sample = sample_rows(rows)
    features: list[dict[str, Any]] = []
    unrecorded = 0
    for name, column in columns:
        if len(features) >= MAX_STATS_COLUMNS or len(name) > MAX_NAME_CHARS:
            unrecorded += 1
            continue
        features.append(_feature(name, column, rows, sample))
    return {
        "rows": rows,
        "sample_rows": rows if sample is None else len(sample),
        "columns": len(columns),
        "features": features,
        "unrecorded_columns": unrecorded,
    }


def _feature(name: str, column: Any, rows: int, sample: np.ndarray | None) -> dict[str, Any]:
    kind = kind_of(column)
    if kind == NUMERIC:
        return _numeric(name, column, rows, sample)
    if kind == CATEGORICAL:
        return _categorical(name, column, sample)
    missing = int(np.asarray(column.isna()).sum()) if hasattr(column, "isna") else 0
    dtype = str(column.dtype)[:64]
    return {
        "name": name,
        "kind": OTHER,
        "count": rows - missing,
        "missing": missing,
        "dtype": dtype,
    }


def _numeric(name: str, column: Any, rows: int, sample: np.ndarray | None) -> dict[str, Any]:
    values, _ = numeric_values(column)
    missing = int(np.isnan(values).sum())
    finite = values[np.isfinite(values)]
    doc: dict[str, Any] = {
        "name": name,
        "kind": NUMERIC,
        "count": rows - missing,
        "missing": missing,
        "infinite": rows - missing - len(finite),
    }
    if len(finite) == 0:
        return doc
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = float(np.mean(finite)), float(np.std(finite))
    picked = finite if sample is None else values[sample][np.isfinite(values[sample])]
    if len(picked) == 0:
        picked = finite
    quantiles = [float(q) for q in np.quantile(picked, QUANTILES)]
    counts = np.bincount(bin_index(bin_edges(quantiles), picked), minlength=0)
    n_bins = len(bin_edges(quantiles)) + 1
    doc.update(
        {
            "min": float(finite.min()),
            "max": float(finite.max()),
            "mean": mean if math.isfinite(mean) else None,
            "std": std if math.isfinite(std) else None,
            "quantiles": quantiles,
            "bin_counts": [int(c) for c in np.pad(counts, (0, n_bins - len(counts)))],
        }
    )
    return doc


def _categorical(name: str, column: Any, sample: np.ndarray | None) -> dict[str, Any]:
    counts, missing = category_counts(column, sample)
    top = counts.most_common(TOP_CATEGORIES)
    seen = sum(counts.values())
    return {
        "name": name,
        "kind": CATEGORICAL,
        "count": seen,
        "missing": missing,
        "distinct": len(counts),
        "top": [[text, count] for text, count in top],
        "other": seen - sum(count for _, count in top),
    }
