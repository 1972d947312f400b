"""What several test files build the same way: a fitted DataFrame pipeline, joblib bytes,
the globals a real unpickler resolves."""

from __future__ import annotations

import _compat_pickle
import io
import json
import warnings
import zipfile
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from joblib.numpy_pickle import NumpyUnpickler
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from safeload import _unpickle


def frame_pipeline(X: pd.DataFrame, y: np.ndarray) -> Pipeline:
    """A churn-style Pipeline on columns age, income (scaled) and plan (one-hot), fitted."""
    return Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age", "income"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, y)


class _Recorder(NumpyUnpickler):  # type: ignore[misc]
    """joblib's (pure-Python) unpickler, noting every global it resolves. Trusted input only."""

    def __init__(self, data: bytes) -> None:
        super().__init__("", io.BytesIO(data), ensure_native_byte_order=False)
        self.seen: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        # The name pickle's find_class goes on to import: below protocol 3 it first translates
        # Python 2 spellings (fix_imports), NAME_MAPPING before IMPORT_MAPPING.
        imported = (module, name)
        if self.proto < 3 and self.fix_imports:
            if imported in _compat_pickle.NAME_MAPPING:
                imported = _compat_pickle.NAME_MAPPING[imported]
            elif module in _compat_pickle.IMPORT_MAPPING:
                imported = (_compat_pickle.IMPORT_MAPPING[module], name)
        self.seen.add(".".join(imported))
        return super().find_class(module, name)


def recorded_globals(payload: bytes) -> set[str]:
    recorder = _Recorder(payload)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recorder.load()
    return recorder.seen


def joblib_bytes(obj: object, compress: object = 0, protocol: int | None = None) -> bytes:
    handle = io.BytesIO()
    joblib.dump(obj, handle, compress=compress, protocol=protocol)
    return handle.getvalue()


def forbid_deserializing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any call into the unpickler (or skops) fail the test: refusals come before it."""

    def reached(*args: object, **kwargs: object) -> Any:
        raise AssertionError("reached the unpickler")

    monkeypatch.setattr(_unpickle, "unpickle_verified", reached)
    monkeypatch.setattr(_unpickle, "load_skops_verified", reached)


def edit_skops_schema(data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """The same skops file with its ``schema.json`` changed by ``edit`` (crafted files)."""
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        schema = json.loads(src.read("schema.json"))
        edit(schema)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                body = (
                    json.dumps(schema).encode()
                    if info.filename == "schema.json"
                    else src.read(info.filename)
                )
                dst.writestr(info.filename, body)
    return out.getvalue()


#: BinaryTree.__getstate__ (KDTree, BallTree), by position.
BINARY_TREE_STATE = (
    "data",
    "idx_array",
    "node_data",
    "node_bounds",
    "leaf_size",
    "n_levels",
    "n_nodes",
    "n_trims",
    "n_leaves",
    "n_splits",
    "n_calls",
    "dist_metric",
    "sample_weight",
)
