"""KDTree, BallTree and distance metrics: the index arrays and node ranges their Cython trusts."""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.validation._base import Checks, Context, Invalid, array, integer


def _check_binary_tree(tree: Any, bounds_rows: int) -> None:
    state = tree.__getstate__()
    data = array(np.asarray(state[0]), "data", ndim=2)
    idx_array = array(np.asarray(state[1]), "idx_array", ndim=1)
    node_data = np.asarray(state[2])
    node_bounds = array(np.asarray(state[3]), "node_bounds", ndim=3)
    n_levels = integer(state[5], "n_levels")
    n_nodes = integer(state[6], "n_nodes")
    metric = state[11]
    sample_weight = state[12]
    n_samples, n_features = data.shape
    if n_samples < 1:
        raise Invalid("the tree holds no samples")
    if idx_array.shape[0] != n_samples:
        raise Invalid(f"idx_array has {idx_array.shape[0]} entries for {n_samples} samples")
    if idx_array.size and (idx_array.min() < 0 or idx_array.max() >= n_samples):
        raise Invalid(f"idx_array has indices outside [0, {n_samples})")
    if not 1 <= n_levels <= 62 or n_nodes != 2**n_levels - 1:
        raise Invalid(f"n_nodes={n_nodes} does not match n_levels={n_levels}")
    if (
        node_data.shape != (n_nodes,)
        or node_data.dtype.names is None
        or not {"idx_start", "idx_end", "is_leaf"} <= set(node_data.dtype.names)
    ):
        raise Invalid(f"node_data has shape {node_data.shape}, expected ({n_nodes},) records")
    start = node_data["idx_start"].astype(np.int64)
    end = node_data["idx_end"].astype(np.int64)
    bad = np.flatnonzero((start < 0) | (start > end) | (end > n_samples))
    if bad.size:
        raise Invalid(
            f"node {int(bad[0])} covers [{start[bad[0]]}, {end[bad[0]]}) outside [0, {n_samples}]"
        )
    inner = np.flatnonzero(node_data["is_leaf"] == 0)
    if inner.size and int(inner.max()) * 2 + 2 >= n_nodes:
        raise Invalid(f"inner node {int(inner.max())} has children beyond n_nodes={n_nodes}")
    if node_bounds.shape != (bounds_rows, n_nodes, n_features):
        raise Invalid(
            f"node_bounds has shape {node_bounds.shape}, expected "
            f"{(bounds_rows, n_nodes, n_features)}"
        )
    if sample_weight is not None and np.shape(sample_weight) != (n_samples,):
        raise Invalid(f"sample_weight has shape {np.shape(sample_weight)} for {n_samples} samples")
    _check_metric(metric, n_features)


def _visit_kd_tree(ctx: Context, tree: Any) -> None:
    _check_binary_tree(tree, 2)


def _visit_ball_tree(ctx: Context, tree: Any) -> None:
    _check_binary_tree(tree, 1)


def _check_metric(metric: Any, n_features: int | None) -> None:
    from sklearn.metrics._dist_metrics import DistanceMetric

    if not isinstance(metric, DistanceMetric):
        raise Invalid(f"dist_metric is {type(metric).__name__}, not a DistanceMetric")
    state = metric.__getstate__()
    mat = np.asarray(state[2])
    if type(metric).__name__.startswith("MahalanobisDistance") and (
        mat.ndim != 2 or mat.shape[0] != mat.shape[1]
    ):
        # rdist reads mat[i, j] for i, j < size = mat.shape[0]
        raise Invalid(f"Mahalanobis matrix has shape {mat.shape}, expected a square matrix")
    if n_features is not None:
        try:
            metric._validate_data(np.zeros((1, n_features)))
        except ValueError as exc:
            raise Invalid(
                f"{type(metric).__name__} does not fit {n_features} features: {exc}"
            ) from None


def _visit_metric(ctx: Context, metric: Any) -> None:
    _check_metric(metric, None)


CHECKS: Checks = [
    (
        (("sklearn.neighbors._kd_tree", "KDTree"), ("sklearn.neighbors._kd_tree", "KDTree32")),
        _visit_kd_tree,
    ),
    (
        (
            ("sklearn.neighbors._ball_tree", "BallTree"),
            ("sklearn.neighbors._ball_tree", "BallTree32"),
        ),
        _visit_ball_tree,
    ),
    ((("sklearn.metrics._dist_metrics", "DistanceMetric"),), _visit_metric),
]
