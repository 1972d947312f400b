"""libsvm models: the holes left by the count checks (empty vectors, sparse flag, kernel)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM

from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model
from tests.native_crash import run_crafted

rng = np.random.RandomState(0)
X = rng.uniform(size=(30, 4))
y = np.arange(30) % 3


def refused(model: Any, *fragments: str) -> None:
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


LEGIT: dict[str, Callable[[], Any]] = {
    "svc": lambda: SVC().fit(X, y),
    "svc_balanced": lambda: SVC(class_weight="balanced").fit(X, y),
    "svc_sparse": lambda: SVC(kernel="linear").fit(sp.csr_array(X), y),
    "svc_precomputed": lambda: SVC(kernel="precomputed").fit(X @ X.T, y),
    "nusvc_poly": lambda: NuSVC(kernel="poly").fit(X, y),
    "svr": lambda: SVR().fit(X, X[:, 0]),
    "nusvr_sigmoid": lambda: NuSVR(kernel="sigmoid").fit(X, X[:, 0]),
    "oneclass_sparse": lambda: OneClassSVM().fit(sp.csr_array(X)),
}


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legit_libsvm_models_pass(name: str) -> None:
    validate_model(LEGIT[name]())


@pytest.mark.parametrize("make", [lambda: SVC().fit(X, y), lambda: SVR().fit(X, X[:, 0])])
def test_empty_support_vectors_on_a_real_kernel_crash(
    make: Callable[[], Any], tmp_path: Path
) -> None:
    # An empty support_vectors_ used to pass as "precomputed"; libsvm reads len(support_) rows.
    model = make()
    model.support_vectors_ = np.zeros((0, 4))
    assert run_crafted(model, X[:5], "predict", tmp_path) == "crash"
    refused(model, "support_vectors_ has shape (0, 4)")


def test_precomputed_kernel_keeps_no_vectors() -> None:
    model = SVC(kernel="precomputed").fit(X @ X.T, y)
    model.support_vectors_ = np.zeros((30, 4))
    refused(model, "precomputed kernel keeps no support vectors")


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: setattr(m, "_sparse", True), "_sparse=True"),
        (lambda m: setattr(m, "_sparse", 1), "_sparse=1"),
        (lambda m: setattr(m, "_impl", "epsilon_svr"), "_impl is shadowed"),
        (lambda m: setattr(m, "class_weight_", np.ones(7)), "class_weight_ has 7 entries"),
    ],
)
def test_inconsistent_libsvm_state_is_refused(edit: Callable[[Any], None], fragment: str) -> None:
    model = SVC().fit(X, y)
    edit(model)
    refused(model, fragment)


def test_sparse_support_vectors_match_the_features() -> None:
    model = SVC().fit(sp.csr_array(X), y)
    model.support_vectors_ = sp.csr_array(model.support_vectors_.toarray()[:, :2])
    refused(model, "support_vectors_ has shape (30, 2)")
    model = SVC().fit(sp.csr_array(X), y)
    model._sparse = False
    refused(model, "_sparse=False")
