"""Neighbours: trees, distance metrics, and the fitted state estimators hand to Cython.

KDTree/BallTree node ranges, and the ``_fit_X``, ``_y`` and metric parameters of the
estimators, which reach Cython unchecked.

A brute-force query checks its input against ``n_features_in_`` only, then the pairwise
reductions read ``_fit_X`` rows with the query's width and write class scores at ``_y``'s
labels (``boundscheck=False``): every fitted array must agree with ``n_features_in_``,
``n_samples_fit_`` and ``classes_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, array, attr, integer, is_text


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


_FIT_METHODS = {"brute": None, "kd_tree": "KDTree", "ball_tree": "BallTree"}


def _tree_data(tree: Any, where: str) -> np.ndarray:
    """The training data a KDTree/BallTree holds (its own consistency is checked on visit)."""
    from sklearn.neighbors import BallTree, KDTree

    if not isinstance(tree, (KDTree, BallTree)):
        raise Invalid(f"{where} is {type(tree).__name__}, not a KDTree or BallTree")
    return array(np.asarray(tree.__getstate__()[0]), f"{where} data", ndim=2)


def check_metric_params(params: Any, n_features: int, where: str) -> None:
    """Metric parameters sized for the data: every array (``w``, ``V``, ``VI``) spans it.

    The pairwise reductions build the metric from these and read ``size`` entries of each
    array for every pair without checking it against the query's width.
    """
    if params is None:
        return
    if not isinstance(params, dict):
        raise Invalid(f"{where} is {type(params).__name__}, not a dict")
    for key, value in params.items():
        if not isinstance(key, str):
            raise Invalid(f"{where} has a key of type {type(key).__name__}")
        if isinstance(value, (list, tuple, np.ndarray)):
            try:
                shape = np.shape(value)
            except ValueError:  # a ragged list
                raise Invalid(f"{where}[{shown(key)}] is not a regular array") from None
            if not shape or any(dim != n_features for dim in shape):
                raise Invalid(
                    f"{where}[{shown(key)}] has shape {shape}, but the model has "
                    f"{n_features} features"
                )


def _visit_neighbors_estimator(ctx: Context, est: Any) -> None:
    """``_fit_X``, the tree, ``n_samples_fit_``, ``n_features_in_`` and ``_y`` agree."""
    import scipy.sparse as sp

    fit_x = attr(est, "_fit_X")
    if fit_x is None:
        return  # not fitted
    method = attr(est, "_fit_method")
    if not isinstance(method, str) or method not in _FIT_METHODS:
        raise Invalid(f"_fit_method is {shown(method)}, not one of {sorted(_FIT_METHODS)}")
    if sp.issparse(fit_x):
        if fit_x.ndim != 2 or fit_x.format != "csr" or method != "brute":
            raise Invalid("a sparse _fit_X must be a 2-D CSR matrix searched by brute force")
    else:
        fit_x = array(fit_x, "_fit_X", ndim=2)
        if fit_x.dtype.kind not in "biuf":
            raise Invalid(f"_fit_X has dtype {fit_x.dtype}, not a numeric one")
    n_samples, width = fit_x.shape
    if n_samples < 1 or integer(attr(est, "n_samples_fit_"), "n_samples_fit_") != n_samples:
        raise Invalid(
            f"n_samples_fit_={shown(attr(est, 'n_samples_fit_'))} but _fit_X has {n_samples} rows"
        )
    tree = attr(est, "_tree")
    if _FIT_METHODS[method] is None:
        if tree is not None:
            raise Invalid("a brute-force model holds a _tree")
    else:
        if type(tree).__name__ != _FIT_METHODS[method]:
            raise Invalid(f"_fit_method is {method!r} but _tree is {type(tree).__name__}")
        if _tree_data(tree, "_tree").shape != fit_x.shape:
            raise Invalid(f"_tree was built on data of another shape than _fit_X {fit_x.shape}")
    n_in = attr(est, "n_features_in_")
    if n_in is None:
        if method == "brute":
            # Fitted on another estimator: queries are never checked against _fit_X's width.
            raise Invalid("a brute-force model without n_features_in_ cannot check its queries")
    elif width != integer(n_in, "n_features_in_"):
        raise Invalid(f"_fit_X has {width} columns but n_features_in_={n_in}")
    metric = attr(est, "effective_metric_")
    if is_text(attr(est, "metric"), "precomputed") or is_text(metric, "precomputed"):
        if width != n_samples:
            raise Invalid(f"a precomputed _fit_X has shape {fit_x.shape}, not square")
    for name, metric_name in (
        ("metric_params", "metric"),
        ("effective_metric_params_", "effective_metric_"),
    ):
        # A callable metric's parameters are its own business (Python code, not a reduction).
        if not callable(attr(est, metric_name)):
            check_metric_params(attr(est, name), width, name)
    from sklearn.metrics._dist_metrics import DistanceMetric

    for name in ("metric", "effective_metric_"):
        if isinstance(attr(est, name), DistanceMetric):
            try:
                _check_metric(attr(est, name), width)
            except Invalid as exc:
                raise exc.within(name) from None
    _check_labels(est, n_samples)
    _check_outlier_factor(est, n_samples)


def _check_labels(est: Any, n_samples: int) -> None:
    """``_y`` has one row per sample; a classifier's are indices into its ``classes_``."""
    y = attr(est, "_y")
    if y is None:
        return
    y = array(y, "_y")
    if y.ndim not in (1, 2) or y.shape[0] != n_samples:
        raise Invalid(f"_y has shape {y.shape} for {n_samples} samples")
    classes = attr(est, "classes_")
    if classes is None:
        return  # a regressor: _y holds target values
    outputs_2d = attr(est, "outputs_2d_")
    if not isinstance(outputs_2d, (bool, np.bool_)):
        raise Invalid(f"outputs_2d_ is {type(outputs_2d).__name__}, not a bool")
    if outputs_2d:
        if not isinstance(classes, list) or y.ndim != 2 or y.shape[1] != len(classes):
            raise Invalid("a multi-output classifier needs a list of classes_ per _y column")
        columns = [(y[:, k], classes[k], f"classes_[{k}]") for k in range(len(classes))]
    else:
        if y.ndim != 1:
            raise Invalid(f"_y has shape {y.shape} but outputs_2d_ is False")
        columns = [(y, classes, "classes_")]
    if y.dtype.kind not in "iu":
        raise Invalid(f"_y has dtype {y.dtype}, not class indices")
    for labels, cls, where in columns:
        n_classes = array(cls, where, ndim=1).shape[0]
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise Invalid(f"_y has class indices outside [0, {n_classes}) of {where}")


def _check_outlier_factor(est: Any, n_samples: int) -> None:
    """LocalOutlierFactor: per-sample densities and distances sized for the fitted samples."""
    n_neighbors = attr(est, "n_neighbors_")
    lrd = attr(est, "_lrd")
    if lrd is None or n_neighbors is None:
        return
    k = integer(n_neighbors, "n_neighbors_")
    if not 1 <= k <= n_samples:
        raise Invalid(f"n_neighbors_={k} is outside [1, {n_samples}]")
    for name, shape in (
        ("_lrd", (n_samples,)),
        ("negative_outlier_factor_", (n_samples,)),
        ("_distances_fit_X_", (n_samples, k)),
    ):
        value = attr(est, name)
        if value is not None and array(value, name).shape != shape:
            raise Invalid(f"{name} has shape {value.shape}, expected {shape}")


def _visit_kernel_density(ctx: Context, kde: Any) -> None:
    tree = attr(kde, "tree_")
    n_in = attr(kde, "n_features_in_")
    if tree is None or n_in is None:
        return
    width = _tree_data(tree, "tree_").shape[1]
    if width != integer(n_in, "n_features_in_"):
        raise Invalid(f"tree_ holds {width} features but n_features_in_={n_in}")


def _visit_nearest_centroid(ctx: Context, nc: Any) -> None:
    centroids = attr(nc, "centroids_")
    n_in = attr(nc, "n_features_in_")
    if centroids is None or n_in is None:
        return
    n_classes = array(attr(nc, "classes_"), "classes_", ndim=1).shape[0]
    expected = (n_classes, integer(n_in, "n_features_in_"))
    if array(centroids, "centroids_", ndim=2).shape != expected:
        raise Invalid(f"centroids_ has shape {centroids.shape}, expected {expected}")


def _visit_label_propagation(ctx: Context, est: Any) -> None:
    """LabelPropagation/LabelSpreading: one label distribution per training row of ``X_``."""
    from safeload.validation.shapes import check_table

    sizes = check_table(
        est,
        {
            "X_": ("n", "f"),
            "classes_": ("c",),
            "label_distributions_": ("n", "c"),
            "transduction_": ("n",),
        },
    )
    nn = attr(est, "nn_fit")
    if (
        nn is not None
        and "n" in sizes
        and integer(attr(nn, "n_samples_fit_"), "nn_fit.n_samples_fit_") != sizes["n"]
    ):
        raise Invalid(f"nn_fit was fitted on other samples than the {sizes['n']} rows of X_")


CHECKS: Checks = [
    (
        (("sklearn.semi_supervised._label_propagation", "BaseLabelPropagation"),),
        _visit_label_propagation,
    ),
    ((("sklearn.neighbors._base", "NeighborsBase"),), _visit_neighbors_estimator),
    ((("sklearn.neighbors._kde", "KernelDensity"),), _visit_kernel_density),
    ((("sklearn.neighbors._nearest_centroid", "NearestCentroid"),), _visit_nearest_centroid),
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
