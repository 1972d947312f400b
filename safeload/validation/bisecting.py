"""BisectingKMeans: the cluster tree that ``predict`` walks down, center by center.

``predict`` stacks the two child centers of each inner node and hands them, with the caller's
rows, to the k-means Cython routines, which read ``n_features`` values per center without
bounds checks; leaves give their ``label`` as the prediction. So every center must be a float
vector as wide as the data, every leaf label a distinct cluster index, and the tree a real tree
(no node shared or revisited, at most ``2 * n_clusters - 1`` nodes) of exactly
``n_clusters`` leaves, as ``fit`` builds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, array, attr, integer

_NODE_FIELDS = frozenset({"center", "indices", "score", "left", "right", "label"})


def _visit_bisecting(ctx: Context, model: Any) -> None:
    from sklearn.cluster._bisect_k_means import _BisectingTree

    root = attr(model, "_bisecting_tree")
    if root is None:
        return  # not fitted
    centers = array(attr(model, "cluster_centers_"), "cluster_centers_", ndim=2)
    n_clusters, n_features = centers.shape
    if n_features != integer(attr(model, "n_features_in_"), "n_features_in_"):
        raise Invalid(f"cluster_centers_ has {n_features} columns for n_features_in_")
    if n_clusters < 1 or integer(attr(model, "n_clusters"), "n_clusters") != n_clusters:
        raise Invalid(f"cluster_centers_ has {n_clusters} rows for n_clusters")
    if centers.dtype not in (np.float32, np.float64):
        raise Invalid(f"cluster_centers_ has dtype {centers.dtype}, not float32 or float64")
    mean = attr(model, "_X_mean")
    if "_X_mean" in model.__dict__ and (
        array(mean, "_X_mean", ndim=1).shape != (n_features,) or mean.dtype.kind != "f"
    ):
        raise Invalid(f"_X_mean has shape {mean.shape} for {n_features} features")
    seen: set[int] = set()
    labels: list[int] = []
    stack: list[tuple[str, Any]] = [("_bisecting_tree", root)]
    while stack:  # right child pushed first: leaves come out in sklearn's iter_leaves order
        where, node = stack.pop()
        if type(node) is not _BisectingTree:
            raise Invalid(f"{where} is {type(node).__name__}, not a _BisectingTree node")
        if id(node) in seen:
            raise Invalid(f"{where} is a node already in the tree (shared or a cycle)")
        seen.add(id(node))
        if len(seen) > 2 * n_clusters - 1:
            raise Invalid(f"the tree has more than 2 * {n_clusters} - 1 nodes")
        extra = set(node.__dict__) - _NODE_FIELDS
        if extra:
            raise Invalid(f"{where} has an unexpected field {shown(next(iter(extra)))}")
        center = array(attr(node, "center"), f"{where}.center", ndim=1)
        if center.shape != (n_features,) or center.dtype != centers.dtype:
            raise Invalid(
                f"{where}.center has shape {center.shape} and dtype {center.dtype}, expected "
                f"({n_features},) {centers.dtype}"
            )
        if attr(node, "indices") is not None:
            raise Invalid(f"{where}.indices is kept, while fit releases it")
        left, right = attr(node, "left"), attr(node, "right")
        if left is None and right is None:
            labels.append(integer(attr(node, "label"), f"{where}.label"))
        elif left is None or right is None:
            raise Invalid(f"{where} has one child, a bisection makes two")
        else:
            stack.append((f"{where}.right", right))
            stack.append((f"{where}.left", left))
    if labels != list(range(n_clusters)):
        raise Invalid(
            f"the tree's {len(labels)} leaves are not labelled 0..{n_clusters - 1} in order"
        )


CHECKS: Checks = [
    ((("sklearn.cluster._bisect_k_means", "BisectingKMeans"),), _visit_bisecting),
]
