"""Naive Bayes, mixtures, covariance estimators and Gaussian processes: parameter shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.covariance import EllipticEnvelope, LedoitWolf, MinCovDet
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
from sklearn.naive_bayes import BernoulliNB, CategoricalNB, ComplementNB, GaussianNB, MultinomialNB

from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model

rng = np.random.RandomState(0)
X = rng.uniform(size=(40, 4))
y = np.arange(40) % 3
X_cat = (X * 3).astype(int)


def refused(model: Any, *fragments: str) -> None:
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def cut(attribute: str) -> Callable[[Any], None]:
    """Drop the last column (or entry) of one fitted array."""

    def edit(model: Any) -> None:
        value = getattr(model, attribute)
        setattr(model, attribute, value[..., :-1].copy())

    return edit


CASES: list[tuple[Callable[[], Any], Callable[[Any], None], str]] = [
    (lambda: GaussianNB().fit(X, y), cut("var_"), "var_ has shape (3, 3)"),
    (lambda: GaussianNB().fit(X, y), cut("class_prior_"), "class_prior_"),
    (lambda: MultinomialNB().fit(X, y), cut("feature_log_prob_"), "feature_log_prob_"),
    (lambda: ComplementNB().fit(X, y), cut("feature_all_"), "feature_all_"),
    (lambda: BernoulliNB().fit(X, y), cut("class_log_prior_"), "class_log_prior_"),
    (
        lambda: CategoricalNB().fit(X_cat, y),
        lambda m: m.feature_log_prob_.__setitem__(2, m.feature_log_prob_[2][:, :1]),
        "feature_log_prob_[2] has shape (3, 1)",
    ),
    (
        lambda: CategoricalNB().fit(X_cat, y),
        lambda m: m.category_count_.pop(),
        "category_count_ is not a list of 4",
    ),
    (lambda: LedoitWolf().fit(X), cut("precision_"), "precision_ has shape (4, 3)"),
    (lambda: MinCovDet(random_state=0).fit(X), cut("raw_location_"), "raw_location_"),
    (lambda: EllipticEnvelope(random_state=0).fit(X), cut("location_"), "location_"),
    (lambda: GaussianMixture(2, random_state=0).fit(X), cut("precisions_cholesky_"), "chol"),
    (
        lambda: GaussianMixture(2, covariance_type="diag", random_state=0).fit(X),
        cut("means_"),
        "means_ has shape (2, 3)",
    ),
    (
        lambda: BayesianGaussianMixture(n_components=2, covariance_type="tied").fit(X),
        cut("covariances_"),
        "covariances_",
    ),
    (
        lambda: GaussianMixture(2, covariance_type="spherical").fit(X),
        lambda m: setattr(m, "covariance_type", "full"),
        "covariances_ has shape (2,), expected 3",
    ),
    (lambda: GaussianProcessRegressor().fit(X, X[:, 0]), cut("L_"), "L_ has shape (40, 39)"),
    (lambda: GaussianProcessRegressor().fit(X, X[:, 0]), cut("alpha_"), "alpha_ has shape"),
    (
        lambda: GaussianProcessRegressor().fit(X, X[:, 0]),
        cut("X_train_"),
        "X_train_ has shape (40, 3)",
    ),
    (
        lambda: GaussianProcessClassifier().fit(X, y % 2),
        lambda m: setattr(m.base_estimator_, "pi_", m.base_estimator_.pi_[:3]),
        "pi_ has shape (3,)",
    ),
]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("make", "edit", "fragment"), CASES)
def test_legit_model_passes_and_a_cut_array_is_refused(
    make: Callable[[], Any], edit: Callable[[Any], None], fragment: str
) -> None:
    model = make()
    validate_model(model)
    edit(model)
    refused(model, fragment)
