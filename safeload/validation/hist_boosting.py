"""HistGradientBoosting predictors: node records, children, features and categorical bitsets."""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.validation._base import Checks, Context, Invalid, array, attr, integer
from safeload.validation.trees import check_graph

# No feature index reaches this: the bound when the owner's width is not known.
_NO_WIDTH = int(np.iinfo(np.int64).max)


def _check_predictor(
    pred: Any, n_features: int | None = None, is_categorical: np.ndarray | None = None
) -> None:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = array(attr(pred, "nodes"), "nodes", ndim=1)
    if nodes.dtype != PREDICTOR_RECORD_DTYPE:
        raise Invalid(f"nodes have dtype {nodes.dtype}, expected the predictor record dtype")
    if nodes.shape[0] < 1:
        raise Invalid("the predictor has no nodes")
    bitsets = {}
    for name in ("raw_left_cat_bitsets", "binned_left_cat_bitsets"):
        arr = array(attr(pred, name), name, ndim=2)
        if arr.shape[1] != 8 or arr.dtype != np.uint32:
            raise Invalid(
                f"{name} has shape {arr.shape} and dtype {arr.dtype}, expected (n, 8) uint32"
            )
        bitsets[name] = arr.shape[0]
    is_leaf = nodes["is_leaf"] != 0
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    check_graph(left, right, is_leaf)  # nothing reads a predictor's depth
    inner = np.flatnonzero(~is_leaf)
    feature = nodes["feature_idx"][inner].astype(np.int64)
    limit = n_features if n_features is not None else _NO_WIDTH
    bad = np.flatnonzero((feature < 0) | (feature >= limit))
    if bad.size:
        raise Invalid(
            f"node {int(inner[bad[0]])} splits on feature {int(feature[bad[0]])}, outside "
            f"[0, {limit})"
        )
    categorical = nodes["is_categorical"][inner] != 0
    if categorical.any():
        cat_nodes = inner[categorical]
        idx = nodes["bitset_idx"][cat_nodes].astype(np.int64)
        n_bitsets = min(bitsets.values())
        bad = np.flatnonzero(idx >= n_bitsets)
        if bad.size:
            raise Invalid(
                f"node {int(cat_nodes[bad[0]])} uses categorical bitset {int(idx[bad[0]])} of "
                f"{n_bitsets}"
            )
        if is_categorical is not None:
            cat_features = feature[categorical]
            bad = np.flatnonzero(is_categorical[cat_features] == 0)
            if bad.size:
                raise Invalid(
                    f"node {int(cat_nodes[bad[0]])} makes a categorical split on feature "
                    f"{int(cat_features[bad[0]])}, which the bin mapper says is not categorical"
                )


def _visit_predictor(ctx: Context, pred: Any) -> None:
    # Its owner's check (with the model's width and categorical features) includes this one.
    if ctx.memo.get(("predictor", id(pred))) is not pred:
        _check_predictor(pred)


def _visit_hist_gradient_boosting(ctx: Context, hgb: Any) -> None:
    predictors = attr(hgb, "_predictors")
    n_in = attr(hgb, "n_features_in_")
    if predictors is None or n_in is None:
        return
    n_in = integer(n_in, "n_features_in_")
    mapper = attr(hgb, "_bin_mapper")
    is_cat = attr(mapper, "is_categorical_")
    is_cat = array(is_cat, "_bin_mapper.is_categorical_", ndim=1)
    if is_cat.shape[0] != n_in:
        raise Invalid(
            f"_bin_mapper.is_categorical_ has {is_cat.shape[0]} entries for n_features_in_={n_in}"
        )
    thresholds = attr(mapper, "bin_thresholds_")
    if not isinstance(thresholds, list) or len(thresholds) != n_in:
        raise Invalid(f"_bin_mapper.bin_thresholds_ is not a list of {n_in} arrays")
    per_iteration = integer(attr(hgb, "n_trees_per_iteration_"), "n_trees_per_iteration_")
    classes = attr(hgb, "classes_")
    if classes is not None:
        n_classes = array(classes, "classes_", ndim=1).shape[0]
        if n_classes < 2 or per_iteration != (1 if n_classes == 2 else n_classes):
            raise Invalid(f"n_trees_per_iteration_={per_iteration} for {n_classes} classes")
    elif per_iteration < 1:
        raise Invalid(f"n_trees_per_iteration_={per_iteration} is not a positive count")
    baseline = array(attr(hgb, "_baseline_prediction"), "_baseline_prediction", ndim=2)
    if baseline.shape != (1, per_iteration) or baseline.dtype.kind != "f":
        raise Invalid(
            f"_baseline_prediction has shape {baseline.shape} and dtype {baseline.dtype}, "
            f"expected (1, {per_iteration}) floats"
        )
    if not isinstance(predictors, list):
        raise Invalid("_predictors is not a list")
    for i, per_iter in enumerate(predictors):
        if not isinstance(per_iter, list) or len(per_iter) != per_iteration:
            raise Invalid(f"not a list of {per_iteration} predictors", f"_predictors[{i}]")
        for k, pred in enumerate(per_iter):
            try:
                _check_predictor(pred, n_in, is_cat)
            except Invalid as exc:
                raise exc.within(f"_predictors[{i}][{k}]") from None
            # Held by the memo too: its id cannot be reused during the walk.
            ctx.memo[("predictor", id(pred))] = pred


CHECKS: Checks = [
    (
        (("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"),),
        _visit_predictor,
    ),
    (
        (
            (
                "sklearn.ensemble._hist_gradient_boosting.gradient_boosting",
                "BaseHistGradientBoosting",
            ),
        ),
        _visit_hist_gradient_boosting,
    ),
]
