"""Linear models, discriminant analysis and MLPs: weights as wide as the input, one row per
class, intercepts one per row, MLP layers chained."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.discriminant_analysis import (
    LinearDiscriminantAnalysis,
    QuadraticDiscriminantAnalysis,
)
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    RidgeClassifier,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.svm import LinearSVC

from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model

rng = np.random.RandomState(0)
X = rng.uniform(size=(60, 4))
y = np.arange(60) % 3
Y = np.column_stack([X[:, 0], X[:, 1]])


def refused(model: Any, *fragments: str) -> None:
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


LEGIT: dict[str, Callable[[], Any]] = {
    "logistic": lambda: LogisticRegression().fit(X, y),
    "logistic_binary_no_intercept": lambda: LogisticRegression(fit_intercept=False).fit(X, y % 2),
    "sgd_sparse_coef": lambda: SGDClassifier(random_state=0).fit(X, y).sparsify(),
    "sgd_regressor": lambda: SGDRegressor(random_state=0).fit(X, Y[:, 0]),
    "linear_multi": lambda: LinearRegression().fit(X, Y),
    "linear_no_intercept": lambda: LinearRegression(fit_intercept=False).fit(X, Y[:, 0]),
    "ridge_multilabel": lambda: RidgeClassifier().fit(X, (Y > 0.5).astype(int)),
    "linear_svc": lambda: LinearSVC().fit(X, y),
    "lda": lambda: LinearDiscriminantAnalysis().fit(X, y),
    "qda": lambda: QuadraticDiscriminantAnalysis().fit(X, y),
    "mlp_clf": lambda: MLPClassifier(max_iter=5, random_state=0).fit(X, y),
    "mlp_reg": lambda: MLPRegressor(max_iter=5, random_state=0).fit(X, Y),
}


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legit_linear_models_pass(name: str) -> None:
    validate_model(LEGIT[name]())


@pytest.mark.parametrize(
    ("make", "edit", "fragment"),
    [
        (
            lambda: LogisticRegression().fit(X, y),
            lambda m: setattr(m, "coef_", m.coef_[:, :2].copy()),
            "coef_ has shape (3, 2) but n_features_in_=4",
        ),
        (
            lambda: LogisticRegression().fit(X, y),
            lambda m: setattr(m, "coef_", m.coef_[:2].copy()),
            "intercept_ has shape (3,)",
        ),
        (
            lambda: LogisticRegression().fit(X, y),
            lambda m: m.__dict__.update(coef_=m.coef_[:2].copy(), intercept_=m.intercept_[:2]),
            "coef_ has 2 rows for 3 classes",
        ),
        (
            lambda: SGDClassifier(random_state=0).fit(X, y).sparsify(),
            lambda m: setattr(m, "coef_", sp.csr_matrix(m.coef_.toarray()[:, :3])),
            "coef_ has shape (3, 3)",
        ),
        (
            lambda: LinearRegression().fit(X, Y[:, 0]),
            lambda m: setattr(m, "coef_", np.zeros((2, 2, 4))),
            "not a 1-D/2-D array",
        ),
        (
            lambda: LinearDiscriminantAnalysis().fit(X, y),
            lambda m: setattr(m, "xbar_", m.xbar_[:3]),
            "xbar_ has shape (3,)",
        ),
        (
            lambda: QuadraticDiscriminantAnalysis().fit(X, y),
            lambda m: m.rotations_.pop(),
            "rotations_ and scalings_",
        ),
    ],
)
def test_inconsistent_weights_are_refused(
    make: Callable[[], Any], edit: Callable[[Any], Any], fragment: str
) -> None:
    model = make()
    edit(model)
    refused(model, fragment)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: setattr(m, "n_features_in_", 7), "coefs_[0] has shape (4, 5), taking 7"),
        (lambda m: m.coefs_.__setitem__(1, m.coefs_[1][:3]), "coefs_[1] has shape (3, 3)"),
        (lambda m: m.intercepts_.__setitem__(0, m.intercepts_[0][:2]), "intercepts_[0]"),
        (lambda m: setattr(m, "n_outputs_", 9), "n_outputs_=9"),
        (lambda m: setattr(m, "n_layers_", 5), "n_layers_ - 1"),
        (lambda m: setattr(m, "out_activation_", "nope"), "out_activation_ is"),
    ],
)
def test_mlp_layers_chain(edit: Callable[[Any], None], fragment: str) -> None:
    model = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    edit(model)
    refused(model, fragment)
