"""Time the type gate's two walls on real models against plain ``joblib.load``.

The gate's per-key work (hashing and comparing dict keys and set members) grows with the number
of keys, so a text pipeline with a large vocabulary is the case to watch; a random forest is the
case with many objects. For each model this prints the fastest of ``--repeat`` runs of: the
static scan (``check_types``), the restricted unpickler on the scanned bytes, and
``joblib.load`` on the same bytes. All three read from memory, so the figures compare CPU work.

    python benchmarks/bench_gate_steps.py            # vocabulary 300,000 words, 300 trees
    python benchmarks/bench_gate_steps.py --smoke    # tiny sizes, to check the script runs
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from typing import Any

import joblib
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import safeload
from safeload import _unpickle
from safeload.typegate import check_types


def text_pipeline(words: int) -> Any:
    docs = [" ".join(f"w{(i * 7919 + j) % words}" for j in range(30)) for i in range(words // 15)]
    y = np.arange(len(docs)) % 2
    return make_pipeline(CountVectorizer(), LogisticRegression(max_iter=50)).fit(docs, y)


def forest(trees: int) -> Any:
    rng = np.random.default_rng(0)
    X = rng.random((2000, 20))
    return RandomForestClassifier(n_estimators=trees, random_state=0).fit(X, X[:, 0] > 0.5)


def fastest(step: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models, one run each")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    repeat = 1 if args.smoke else args.repeat
    models = {
        "text, vocabulary": text_pipeline(3_000 if args.smoke else 300_000),
        "random forest": forest(5 if args.smoke else 300),
    }
    policy = safeload.TypePolicy.default()
    print("| model | bytes | scan (s) | unpickle (s) | joblib.load (s) |")
    print("| --- | --- | --- | --- | --- |")
    for name, model in models.items():
        print(row(name, model, policy, repeat))


def row(name: str, model: Any, policy: safeload.TypePolicy, repeat: int) -> str:
    """One table row: the model's joblib bytes through each step, fastest run."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    data = buffer.getvalue()
    checked = check_types(data, policy, format="joblib")
    scan = fastest(lambda: check_types(data, policy, format="joblib"), repeat)
    load = fastest(lambda: _unpickle.unpickle_verified(checked.payload, policy), repeat)
    plain = fastest(lambda: joblib.load(io.BytesIO(data)), repeat)
    return f"| {name} | {len(data)} | {scan:.3f} | {load:.3f} | {plain:.3f} |"


if __name__ == "__main__":
    main()
