"""Seed inputs for the gate fuzzer: real small scikit-learn artifacts, in every framing.

A fuzzer that starts from random bytes rarely gets past the pickle header; starting from real
models (each protocol joblib can write, each compressor, and skops zips) puts it straight into
the scanner's and unpickler's interesting paths.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

COMPRESSIONS: list[Any] = [0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3), ("lz4", 3)]
PROTOCOLS = [2, 3, 4, 5]


def models() -> dict[str, Any]:
    """A few small fitted models whose state reaches native code (trees, KD-trees, libsvm)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(0)
    X = rng.uniform(size=(12, 3))
    y = np.arange(12) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "logreg": LogisticRegression().fit(X, y),
            "tree": DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y),
            "knn": KNeighborsClassifier(3, algorithm="kd_tree").fit(X, y),
            "svc": SVC().fit(X, y),
            "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
            "onehot": OneHotEncoder().fit(rng.randint(0, 3, size=(12, 2))),
        }


def artifacts() -> dict[str, bytes]:
    """Name -> bytes of every seed (joblib at each protocol and compression, and skops)."""
    import joblib
    import skops.io

    out: dict[str, bytes] = {}
    for name, model in models().items():
        for protocol in PROTOCOLS:
            buf = io.BytesIO()
            joblib.dump(model, buf, protocol=protocol)
            out[f"{name}-p{protocol}.joblib"] = buf.getvalue()
        for compress in COMPRESSIONS[1:]:
            buf = io.BytesIO()
            try:
                joblib.dump(model, buf, compress=compress)
            except ValueError:  # lz4 not installed
                continue
            out[f"{name}-{compress[0]}.joblib"] = buf.getvalue()
        out[f"{name}.skops"] = skops.io.dumps(model)
    return out


def write_seeds(directory: Path) -> list[Path]:
    """Write the seeds into directory (the fuzzer's corpus); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in sorted(artifacts().items()):
        path = directory / name
        path.write_bytes(data)
        paths.append(path)
    return paths
