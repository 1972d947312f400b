"""Naive Bayes, mixtures, covariance estimators and Gaussian processes: parameter shapes.

Their likelihoods are numpy/scipy expressions over per-class (per-component) parameters; the
tables hold those parameters to ``n_features_in_`` and to one class or component count, and
a Gaussian process's training arrays to one sample count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.validation._base import Checks, Context, Invalid, array, attr, integer
from safeload.validation.shapes import Table, check_table, table_check

_GAUSSIAN_NB: Table = {
    "classes_": ("c",),
    "theta_": ("c", "f"),
    "var_": ("c", "f"),
    "class_count_": ("c",),
    "class_prior_": ("c",),
}
_DISCRETE_NB: Table = {
    "classes_": ("c",),
    "class_count_": ("c",),
    "class_log_prior_": ("c",),
    "feature_count_": ("c", "f"),
    "feature_log_prob_": ("c", "f"),
    "feature_all_": ("f",),
}
_COVARIANCE: Table = {
    "location_": ("f",),
    "covariance_": ("f", "f"),
    "precision_": ("f", "f"),
    "raw_location_": ("f",),
    "raw_covariance_": ("f", "f"),
}
#: The shape of a mixture's covariance-like arrays, by covariance_type (k components).
_COVARIANCE_TYPES: dict[str, tuple[str, ...]] = {
    "full": ("k", "f", "f"),
    "tied": ("f", "f"),
    "diag": ("k", "f"),
    "spherical": ("k",),
}


def _visit_discrete_nb(ctx: Context, nb: Any) -> None:
    if not isinstance(attr(nb, "feature_log_prob_"), list):  # CategoricalNB: one per feature
        check_table(nb, _DISCRETE_NB)


def _training_count(gp: Any) -> int:
    x_train = attr(gp, "X_train_")
    if isinstance(x_train, np.ndarray) and x_train.ndim >= 1:
        return int(x_train.shape[0])
    if isinstance(x_train, list):
        return len(x_train)
    raise Invalid(f"X_train_ is {type(x_train).__name__}, not an array or a list")


def _visit_categorical_nb(ctx: Context, nb: Any) -> None:
    """CategoricalNB indexes ``feature_log_prob_[i][:, X[:, i]]``: one array per feature."""
    probs = attr(nb, "feature_log_prob_")
    if probs is None:
        return
    sizes = check_table(
        nb, {"classes_": ("c",), "class_log_prior_": ("c",), "n_categories_": ("f",)}
    )
    n_cat = array(attr(nb, "n_categories_"), "n_categories_", ndim=1)
    for name in ("feature_log_prob_", "category_count_"):
        per_feature = attr(nb, name)
        if not isinstance(per_feature, list) or len(per_feature) != sizes["f"]:
            raise Invalid(f"{name} is not a list of {sizes['f']} arrays")
        for i, value in enumerate(per_feature):
            expected = (sizes["c"], int(n_cat[i]))
            if array(value, f"{name}[{i}]").shape != expected:
                raise Invalid(f"{name}[{i}] has shape {value.shape}, expected {expected}")


def _visit_mixture(ctx: Context, mixture: Any) -> None:
    kind = attr(mixture, "covariance_type")
    if attr(mixture, "means_") is None:
        return
    if not isinstance(kind, str) or kind not in _COVARIANCE_TYPES:
        raise Invalid(f"covariance_type is not one of {sorted(_COVARIANCE_TYPES)}")
    dims = _COVARIANCE_TYPES[kind]
    table: Table = {
        "weights_": ("k",),
        "means_": ("k", "f"),
        "covariances_": dims,
        "precisions_": dims,
        "precisions_cholesky_": dims,
        "mean_prior_": ("f",),
    }
    check_table(mixture, table)


def _visit_gp_regressor(ctx: Context, gp: Any) -> None:
    """One training row per ``alpha_``/``y_train_`` entry; ``L_`` square over them."""
    if attr(gp, "alpha_") is None:
        return
    n = _training_count(gp)  # a list for kernels on structured data
    check_table(gp, {"L_": ("n", "n")}, {"n": n})
    for name in ("alpha_", "y_train_"):
        value = array(attr(gp, name), name)
        if value.ndim not in (1, 2) or value.shape[0] != n:
            raise Invalid(f"{name} has shape {value.shape} for {n} training samples")
    x_train = attr(gp, "X_train_")
    n_in = attr(gp, "n_features_in_")
    shape = getattr(x_train, "shape", None)
    if n_in is not None and shape is not None and shape[1:] != (integer(n_in, "n_features_in_"),):
        raise Invalid(f"X_train_ has shape {shape} but n_features_in_={n_in}")


def _visit_binary_gp_classifier(ctx: Context, gp: Any) -> None:
    if attr(gp, "X_train_") is None:
        return
    n = _training_count(gp)
    check_table(
        gp, {"y_train_": ("n",), "pi_": ("n",), "W_sr_": ("n",), "L_": ("n", "n")}, {"n": n}
    )


def _mod(name: str) -> str:
    return f"sklearn.{name}"


CHECKS: Checks = [
    (((_mod("naive_bayes"), "GaussianNB"),), table_check(_GAUSSIAN_NB)),
    (((_mod("naive_bayes"), "_BaseDiscreteNB"),), _visit_discrete_nb),
    (((_mod("naive_bayes"), "CategoricalNB"),), _visit_categorical_nb),
    (
        ((_mod("covariance._empirical_covariance"), "EmpiricalCovariance"),),
        table_check(_COVARIANCE),
    ),
    (((_mod("mixture._base"), "BaseMixture"),), _visit_mixture),
    (((_mod("gaussian_process._gpr"), "GaussianProcessRegressor"),), _visit_gp_regressor),
    (
        ((_mod("gaussian_process._gpc"), "_BinaryGaussianProcessClassifierLaplace"),),
        _visit_binary_gp_classifier,
    ),
]
