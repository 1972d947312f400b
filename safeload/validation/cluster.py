"""Clustering and hashing: centroids and output widths that size native loops."""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.validation._base import Checks, Context, Invalid, array, attr, integer


def _visit_kmeans(ctx: Context, kmeans: Any) -> None:
    centers = attr(kmeans, "cluster_centers_")
    n_in = attr(kmeans, "n_features_in_")
    if centers is None or n_in is None:
        return
    centers = array(centers, "cluster_centers_", ndim=2)
    if centers.shape[0] < 1 or centers.shape[1] != integer(n_in, "n_features_in_"):
        raise Invalid(f"cluster_centers_ has shape {centers.shape} for n_features_in_={n_in}")


def _visit_hasher(ctx: Context, hasher: Any) -> None:
    n_features = integer(attr(hasher, "n_features"), "n_features")
    if not 1 <= n_features <= np.iinfo(np.int32).max:
        raise Invalid(f"n_features={n_features} is outside [1, 2**31 - 1]")


CHECKS: Checks = [
    ((("sklearn.cluster._kmeans", "_BaseKMeans"),), _visit_kmeans),
    (
        (
            ("sklearn.feature_extraction._hash", "FeatureHasher"),
            ("sklearn.feature_extraction.text", "HashingVectorizer"),
        ),
        _visit_hasher,
    ),
]
