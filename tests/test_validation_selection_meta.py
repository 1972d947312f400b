"""Selectors, imputers, projections and meta-estimators: fitted shapes agree with each other."""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.feature_selection import RFE, SelectKBest, VarianceThreshold
from sklearn.impute import KNNImputer, MissingIndicator, SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier, OutputCodeClassifier
from sklearn.multioutput import ClassifierChain, MultiOutputRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.random_projection import GaussianRandomProjection, SparseRandomProjection

from safeload._unpickle import unpickle_verified
from safeload.errors import MalformedArtifactError
from safeload.policy import TypePolicy
from safeload.validation import validate_model
from tests.crafted_child import predict_in_child
from tests.validation_cases import edited_copy, passes_both_ways

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 4))
Y = RNG.integers(0, 3, 60)
XN = X.copy()
XN[0, 1] = np.nan


def fitted(est: Any, *args: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(*args)


LEGIT: dict[str, Callable[[], Any]] = {
    "kbest": lambda: fitted(SelectKBest(k=2), X, Y),
    "variance": lambda: fitted(VarianceThreshold(), X),
    "rfe": lambda: fitted(RFE(LogisticRegression(), n_features_to_select=2), X, Y),
    "simple_imputer": lambda: fitted(SimpleImputer(add_indicator=True), XN),
    "knn_imputer": lambda: fitted(KNNImputer(), XN),
    "indicator": lambda: fitted(MissingIndicator(), XN),
    "gaussian_projection": lambda: fitted(GaussianRandomProjection(n_components=2), X),
    "sparse_projection": lambda: fitted(SparseRandomProjection(n_components=2), X),
    "isotonic": lambda: fitted(IsotonicRegression(), X[:, 0], X[:, 1]),
    "columns": lambda: fitted(
        ColumnTransformer([("s", StandardScaler(), [0, 1])], remainder="passthrough"), X
    ),
    "dummy_clf": lambda: fitted(DummyClassifier(), X, Y),
    "dummy_reg": lambda: fitted(DummyRegressor(), X, np.c_[Y, Y]),
    "ovr": lambda: fitted(OneVsRestClassifier(LogisticRegression()), X, Y),
    "ovo": lambda: fitted(OneVsOneClassifier(LogisticRegression()), X, Y),
    "ecoc": lambda: fitted(OutputCodeClassifier(LogisticRegression(), random_state=0), X, Y),
    "multi_reg": lambda: fitted(MultiOutputRegressor(LinearRegression()), X, np.c_[Y, Y]),
    "chain": lambda: fitted(
        ClassifierChain(LogisticRegression(), order="random", random_state=0),
        X,
        np.c_[Y % 2, Y // 2, Y % 2],
    ),
    "calibrated": lambda: fitted(CalibratedClassifierCV(LogisticRegression(), cv=2), X, Y),
}


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legit_models_pass(name: str) -> None:
    passes_both_ways(LEGIT[name]())


def edited(name: str, **changes: Any) -> Any:
    return edited_copy(LEGIT[name](), **changes)


def calibrated_with_one_calibrator() -> Any:
    model = copy.deepcopy(LEGIT["calibrated"]())
    model.calibrated_classifiers_[0].calibrators = model.calibrated_classifiers_[0].calibrators[:1]
    return model


def sparse_projection_wider(columns: int) -> Any:
    """The harness's mutant: a valid CSR matrix declared 10**12 columns wide."""
    model = copy.deepcopy(LEGIT["sparse_projection"]())
    model.components_._shape = (model.components_.shape[0], columns)
    return model


CRAFTED: dict[str, tuple[Callable[[], Any], str]] = {
    "kbest_scores": (lambda: edited("kbest", scores_=np.ones(3)), "scores_"),
    "variance_width": (lambda: edited("variance", variances_=np.ones(9)), "variances_"),
    "rfe_support_dtype": (lambda: edited("rfe", support_=np.ones(4, dtype=int)), "bool"),
    "rfe_count": (lambda: edited("rfe", n_features_=3), "n_features_"),
    "imputer_statistics": (
        lambda: edited("simple_imputer", statistics_=np.zeros(2)),
        "statistics_",
    ),
    "indicator_features": (lambda: edited("indicator", features_=np.array([10**9])), "features_"),
    "indicator_count": (lambda: edited("indicator", _n_features=7), "_n_features"),
    "knn_mask": (
        lambda: edited("knn_imputer", _mask_fit_X=np.zeros((60, 3), dtype=bool)),
        "_mask_fit_X",
    ),
    "knn_valid": (lambda: edited("knn_imputer", _valid_mask=np.ones(4)), "_valid_mask"),
    "projection_width": (
        lambda: edited("gaussian_projection", n_components_=10**9),
        "n_components_",
    ),
    "projection_columns": (
        lambda: edited("sparse_projection", n_features_in_=5),
        "components_",
    ),
    "projection_sparse_shape": (lambda: sparse_projection_wider(10**12), "components_"),
    "isotonic_lengths": (lambda: edited("isotonic", y_thresholds_=np.zeros(1)), "y_thresholds_"),
    "isotonic_unsorted": (
        lambda: edited("isotonic", X_thresholds_=np.arange(6.0)[::-1].copy()),
        "not sorted",
    ),
    "columns_indices": (
        lambda: edited("columns", _transformer_to_input_indices={"s": [0, 99]}),
        "outside [0, 4)",
    ),
    "columns_shape": (lambda: edited("columns", transformers_=[("s",)]), "transformers_"),
    "columns_output_width": (
        lambda: edited("columns", output_indices_={"s": slice(0, 10**12)}),
        "max_output_features",
    ),
    "dummy_outputs": (lambda: edited("dummy_reg", n_outputs_=10**12), "max_output_features"),
    "dummy_constant": (lambda: edited("dummy_reg", n_outputs_=3), "constant_"),
    "dummy_prior": (lambda: edited("dummy_clf", class_prior_=np.ones(2)), "class_prior_"),
    "ovr_count": (
        lambda: edited("ovr", estimators_=LEGIT["ovr"]().estimators_[:2]),
        "estimators_",
    ),
    "ovo_count": (
        lambda: edited("ovo", estimators_=LEGIT["ovo"]().estimators_[:1]),
        "pairs",
    ),
    "ecoc_book": (lambda: edited("ecoc", code_book_=np.zeros((3, 1))), "code_book_"),
    "chain_order": (lambda: edited("chain", order_=np.array([0, 0, 1])), "order_"),
    "chain_order_length": (lambda: edited("chain", order_=np.array([0, 1])), "order_"),
    "calibrators": (calibrated_with_one_calibrator, "calibrators"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_is_refused(name: str) -> None:
    build, fragment = CRAFTED[name]
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(build())
    assert fragment in str(info.value), str(info.value)


def test_dummy_outputs_exhaust_memory_in_a_child(tmp_path: Path) -> None:
    crafted = edited("dummy_reg", n_outputs_=10**10)
    fate = predict_in_child(crafted, tmp_path, "predict", "np.ones((4, 4))")
    assert fate != "survived", fate
    with pytest.raises(MalformedArtifactError, match="n_outputs_"):
        validate_model(crafted)


def test_temperature_calibration_has_one_calibrator_for_all_classes() -> None:
    """Temperature scaling fits one calibrator for every class; one-vs-rest methods one each."""
    rng = np.random.default_rng(1)
    X3 = rng.normal(size=(90, 4))
    y3 = np.arange(90) % 3
    model = CalibratedClassifierCV(LogisticRegression(), method="temperature").fit(X3, y3)
    validate_model(model)
    loaded = unpickle_verified(joblib_dump(model), TypePolicy.default())
    validate_model(loaded)
    crafted = copy.deepcopy(model)
    crafted.calibrated_classifiers_[0].method = "sigmoid"  # now it needs one per class
    with pytest.raises(MalformedArtifactError, match="1 calibrators for 3 classes"):
        validate_model(crafted)


def joblib_dump(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()
