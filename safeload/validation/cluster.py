"""Clustering and hashing: centroids, norms, threads and output widths that size native loops.

k-means assigns labels in Cython that reads ``centers[j, k]`` for every feature k of the query
(``boundscheck=False``) in ``_n_threads`` OpenMP threads; Birch hands ``_subcluster_norms`` to
the Euclidean reduction, which reads one norm per center.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from safeload.validation._base import Checks, Context, Invalid, array, attr, integer, is_text

#: More OpenMP threads than any machine sklearn counted cores on: a prange over 10**5
#: threads crashes the process (libgomp allocation failure or segfault).
MAX_THREADS = max(1024, os.cpu_count() or 1)


def check_centers(centers: Any, n_features: int, where: str) -> None:
    """Centers the k-means Cython reads as ``const floating[:, ::1]``, one row per cluster."""
    centers = array(centers, where, ndim=2)
    if centers.dtype not in (np.float32, np.float64) or not centers.flags.c_contiguous:
        raise Invalid(f"{where} is not a C-contiguous float32/float64 array ({centers.dtype})")
    if centers.shape[0] < 1 or centers.shape[1] != n_features:
        raise Invalid(f"{where} has shape {centers.shape} for n_features_in_={n_features}")


def _visit_kmeans(ctx: Context, kmeans: Any) -> None:
    centers = attr(kmeans, "cluster_centers_")
    n_in = attr(kmeans, "n_features_in_")
    if centers is None or n_in is None:
        return
    n_in = integer(n_in, "n_features_in_")
    check_centers(centers, n_in, "cluster_centers_")
    threads = integer(attr(kmeans, "_n_threads"), "_n_threads")
    if not 1 <= threads <= MAX_THREADS:
        raise Invalid(f"_n_threads={threads} is outside [1, {MAX_THREADS}]")


def _visit_birch(ctx: Context, birch: Any) -> None:
    centers = attr(birch, "subcluster_centers_")
    n_in = attr(birch, "n_features_in_")
    if centers is None or n_in is None:
        return
    centers = array(centers, "subcluster_centers_", ndim=2)
    n_in = integer(n_in, "n_features_in_")
    if centers.shape[0] < 1 or centers.shape[1] != n_in:
        raise Invalid(f"subcluster_centers_ has shape {centers.shape} for n_features_in_={n_in}")
    for name in ("_subcluster_norms", "subcluster_labels_"):
        value = array(attr(birch, name), name, ndim=1)
        if value.shape[0] != centers.shape[0]:
            raise Invalid(f"{name} has {value.shape[0]} entries for {centers.shape[0]} centers")


def _visit_centroid_clustering(ctx: Context, est: Any) -> None:
    """MeanShift, AffinityPropagation: predict finds the nearest of ``cluster_centers_``."""
    centers = attr(est, "cluster_centers_")
    n_in = attr(est, "n_features_in_")
    if centers is None or n_in is None or is_text(attr(est, "affinity"), "precomputed"):
        return
    centers = array(centers, "cluster_centers_", ndim=2)
    if centers.shape[1] != integer(n_in, "n_features_in_"):
        raise Invalid(f"cluster_centers_ has shape {centers.shape} for n_features_in_={n_in}")


def _visit_hdbscan(ctx: Context, hdbscan: Any) -> None:
    """``dbscan_clustering`` unions ``left_node``/``right_node`` in Cython, unchecked.

    A single linkage tree over n samples holds n - 1 merges; merge i creates node n + i and
    may only join nodes that exist by then (``< n + i``), as scipy's linkage format says.
    """
    linkage = attr(hdbscan, "_single_linkage_tree_")
    if linkage is None:
        return
    from sklearn.cluster._hdbscan._tree import HIERARCHY_dtype

    linkage = array(linkage, "_single_linkage_tree_", ndim=1)
    if linkage.dtype != HIERARCHY_dtype:
        raise Invalid(f"_single_linkage_tree_ has dtype {linkage.dtype}, not sklearn's linkage")
    n = linkage.shape[0] + 1
    labels = array(attr(hdbscan, "labels_"), "labels_", ndim=1)
    if labels.shape[0] != n:
        raise Invalid(f"labels_ has {labels.shape[0]} entries for a linkage of {n} samples")
    created = n + np.arange(linkage.shape[0], dtype=np.int64)
    for side in ("left_node", "right_node"):
        nodes = linkage[side].astype(np.int64)
        bad = np.flatnonzero((nodes < 0) | (nodes >= created))
        if bad.size:
            i = int(bad[0])
            raise Invalid(f"merge {i} joins node {int(nodes[i])}, outside [0, {int(created[i])})")


def _visit_feature_agglomeration(ctx: Context, agglo: Any) -> None:
    """Pooling runs ``np.bincount(labels_)``: a label per feature, each below ``n_clusters_``.

    (A huge label would size the bincount.)
    """
    labels = attr(agglo, "labels_")
    n_in = attr(agglo, "n_features_in_")
    if labels is None or n_in is None:
        return
    labels = array(labels, "labels_", ndim=1)
    n_clusters = integer(attr(agglo, "n_clusters_"), "n_clusters_")
    if labels.shape[0] != integer(n_in, "n_features_in_") or labels.dtype.kind not in "iu":
        raise Invalid(f"labels_ has shape {labels.shape} for n_features_in_={n_in}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_clusters):
        raise Invalid(f"labels_ holds clusters outside [0, n_clusters_={n_clusters})")


def _visit_hasher(ctx: Context, hasher: Any) -> None:
    n_features = integer(attr(hasher, "n_features"), "n_features")
    if not 1 <= n_features <= np.iinfo(np.int32).max:
        raise Invalid(f"n_features={n_features} is outside [1, 2**31 - 1]")


CHECKS: Checks = [
    ((("sklearn.cluster._kmeans", "_BaseKMeans"),), _visit_kmeans),
    ((("sklearn.cluster._birch", "Birch"),), _visit_birch),
    ((("sklearn.cluster._hdbscan.hdbscan", "HDBSCAN"),), _visit_hdbscan),
    ((("sklearn.cluster._agglomerative", "FeatureAgglomeration"),), _visit_feature_agglomeration),
    (
        (
            ("sklearn.cluster._mean_shift", "MeanShift"),
            ("sklearn.cluster._affinity_propagation", "AffinityPropagation"),
        ),
        _visit_centroid_clustering,
    ),
    (
        (
            ("sklearn.feature_extraction._hash", "FeatureHasher"),
            ("sklearn.feature_extraction.text", "HashingVectorizer"),
        ),
        _visit_hasher,
    ),
]
