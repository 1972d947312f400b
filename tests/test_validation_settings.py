"""Stored settings that size every prediction: iteration caps and worker counts.

The hang is shown for real in a child process (the model would pass every other wall: the
settings are plain ints); validation refuses it, and the caller's budget moves the line.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from sklearn.decomposition import (
    NMF,
    DictionaryLearning,
    LatentDirichletAllocation,
    MiniBatchNMF,
)
from sklearn.neighbors import KNeighborsClassifier

from safeload.errors import MalformedArtifactError
from safeload.typegate.limits import ScanLimits
from safeload.validation import validate_model

rng = np.random.default_rng(0)
X = rng.random((30, 6))
y = np.arange(30) % 2


def fitted(name: str) -> Any:
    if name == "nmf":
        return NMF(n_components=2, max_iter=50, random_state=0).fit(X)
    if name == "mbnmf":
        return MiniBatchNMF(n_components=2, max_iter=5, random_state=0).fit(X)
    if name == "lda":
        return LatentDirichletAllocation(n_components=2, max_iter=2, random_state=0).fit(X)
    if name == "dict":
        return DictionaryLearning(n_components=2, max_iter=2, random_state=0).fit(X)
    return KNeighborsClassifier(n_neighbors=3).fit(X, y)


CRAFTED = {
    "nmf iterations": ("nmf", {"max_iter": 10**12, "tol": 0.0}, "max_iter"),
    "minibatch nmf iterations": ("mbnmf", {"_transform_max_iter": 10**12}, "_transform_max"),
    "lda iterations": ("lda", {"max_doc_update_iter": 10**12, "mean_change_tol": 0.0}, "max_doc"),
    "dictionary iterations": ("dict", {"transform_max_iter": 10**12}, "transform_max_iter"),
    "negative iterations": ("nmf", {"_transform_max_iter": -1}, "outside"),
    "float iterations": ("lda", {"max_doc_update_iter": 1e18}, "not an integer"),
    "workers": ("knn", {"n_jobs": 10**6}, "n_jobs"),
    "negative workers": ("knn", {"n_jobs": -(10**9)}, "n_jobs"),
    "workers as float": ("knn", {"n_jobs": 2.0}, "not an integer"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_setting_is_refused(case: str) -> None:
    name, edits, fragment = CRAFTED[case]
    model = fitted(name)
    validate_model(model)  # the untouched model passes: the refusal is the edit's
    for field, value in edits.items():
        setattr(model, field, value)
    with pytest.raises(MalformedArtifactError, match=fragment):
        validate_model(model)


@pytest.mark.parametrize("jobs", [None, -1, 1, 4, -2])
def test_usual_worker_counts_pass(jobs: Any) -> None:
    validate_model(KNeighborsClassifier(n_neighbors=3, n_jobs=jobs).fit(X, y))


def test_the_callers_budget_moves_the_line() -> None:
    model = fitted("nmf")  # transform runs max_iter=50 iterations
    validate_model(model, limits=ScanLimits(max_predict_iterations=50))
    with pytest.raises(MalformedArtifactError, match="max_predict_iterations=49"):
        validate_model(model, limits=ScanLimits(max_predict_iterations=49))


_CHILD = textwrap.dedent(
    """
    import pickle, sys
    model = pickle.loads(sys.stdin.buffer.read())
    print("TRANSFORMING", flush=True)
    model.transform(model.components_[:1] + 0.5)
    print("DONE", flush=True)
    """
)


@pytest.mark.parametrize("case", ["nmf iterations", "lda iterations"])
def test_the_setting_really_hangs_transform(case: str) -> None:
    """Why the check exists: plain scikit-learn spins on the crafted setting."""
    name, edits, _ = CRAFTED[case]
    model = fitted(name)
    for field, value in edits.items():
        setattr(model, field, value)
    with pytest.raises(subprocess.TimeoutExpired) as hung:
        subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=pickle.dumps(model),
            capture_output=True,
            timeout=15,
        )
    assert b"TRANSFORMING" in (hung.value.stdout or b"")
