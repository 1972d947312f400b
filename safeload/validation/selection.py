"""Column selectors, imputers and random projections: which input columns make each output.

A selector's mask, an imputer's fitted columns and a projection's matrix are all read against
the input's columns at every call: they must be as wide as ``n_features_in_`` (or index within
it), and the output they make must fit the predict-time budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, array, attr, integer
from safeload.validation._budget import (
    guarded,
    index_array,
    maybe_n_features_in,
    n_features_in,
    vector,
    width,
)

#: Per-input-column vectors a selector derives its support mask from.
_SELECTOR_VECTORS = ("support_", "ranking_", "scores_", "pvalues_", "variances_")


def _visit_selector(ctx: Context, est: Any) -> None:
    n = maybe_n_features_in(ctx, est)
    if n is None:
        return
    for name in _SELECTOR_VECTORS:
        value = attr(est, name)
        if value is not None:
            vector(value, name, n)
    support = attr(est, "support_")
    if support is not None and array(support, "support_").dtype != np.bool_:
        raise Invalid(f"support_ has dtype {support.dtype.str}, not bool")
    selected = attr(est, "n_features_")
    if (
        selected is not None
        and support is not None
        and integer(selected, "n_features_") != int(np.count_nonzero(support))
    ):
        raise Invalid(f"n_features_={shown(selected)} disagrees with support_")


def _visit_missing_indicator(ctx: Context, est: Any) -> None:
    features = attr(est, "features_")
    if features is None:
        return
    n = n_features_in(ctx, est)
    if integer(attr(est, "_n_features"), "_n_features") != n:
        raise Invalid(f"_n_features disagrees with n_features_in_={n}")
    index_array(features, "features_", n)


def _visit_knn_imputer(ctx: Context, est: Any) -> None:
    fit_x = attr(est, "_fit_X")
    if fit_x is None:
        return
    n = n_features_in(ctx, est)
    fit_x = array(fit_x, "_fit_X", ndim=2)
    mask = array(attr(est, "_mask_fit_X"), "_mask_fit_X", ndim=2)
    if fit_x.shape[1] != n or mask.shape != fit_x.shape or mask.dtype != np.bool_:
        raise Invalid(
            f"_fit_X {fit_x.shape} and _mask_fit_X {mask.shape} (bool) do not match {n} features"
        )
    valid = vector(attr(est, "_valid_mask"), "_valid_mask", n)
    if valid.dtype != np.bool_:
        raise Invalid("_valid_mask is not a bool mask")
    if integer(attr(est, "n_neighbors"), "n_neighbors") < 1:
        raise Invalid("n_neighbors is not positive")


def _visit_projection(ctx: Context, est: Any) -> None:
    components = attr(est, "components_")
    if components is None:
        return
    n = n_features_in(ctx, est)
    shape = tuple(getattr(components, "shape", ()))
    if len(shape) != 2 or shape[1] != n:
        raise Invalid(f"components_ has shape {shown(shape)} for {n} input features")
    n_out = integer(attr(est, "n_components_"), "n_components_")
    if n_out != shape[0]:
        raise Invalid(f"n_components_={shown(n_out)} disagrees with components_' {shape[0]} rows")
    width(ctx, n_out, "n_components_")


CHECKS: Checks = guarded(
    [
        ((("sklearn.feature_selection._base", "SelectorMixin"),), _visit_selector),
        ((("sklearn.impute._base", "MissingIndicator"),), _visit_missing_indicator),
        ((("sklearn.impute._knn", "KNNImputer"),), _visit_knn_imputer),
        ((("sklearn.random_projection", "BaseRandomProjection"),), _visit_projection),
    ]
)
