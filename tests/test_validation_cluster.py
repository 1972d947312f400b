"""Clustering: centers, norms and thread counts that k-means and Birch hand to native code."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.cluster import (
    AffinityPropagation,
    Birch,
    BisectingKMeans,
    KMeans,
    MeanShift,
    MiniBatchKMeans,
)

from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model
from tests.native_crash import run_crafted

X = np.random.RandomState(0).uniform(size=(60, 4))


def refused(model: Any, *fragments: str) -> None:
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


LEGIT: dict[str, Callable[[], Any]] = {
    "kmeans": lambda: KMeans(3, n_init=1, random_state=0).fit(X),
    "kmeans32": lambda: KMeans(3, n_init=1, random_state=0).fit(X.astype(np.float32)),
    "minibatch": lambda: MiniBatchKMeans(3, n_init=1, random_state=0).fit(X),
    "bisecting": lambda: BisectingKMeans(3, random_state=0).fit(X),
    "birch": lambda: Birch(n_clusters=None).fit(X),
    "birch3": lambda: Birch(n_clusters=3).fit(X),
    "meanshift": lambda: MeanShift().fit(X),
    "affinity": lambda: AffinityPropagation(random_state=0).fit(X),
}


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legit_clusterers_pass(name: str) -> None:
    validate_model(LEGIT[name]())


@pytest.fixture
def kmeans() -> KMeans:
    return KMeans(3, n_init=1, random_state=0).fit(X)


def test_a_huge_thread_count_crashes_score(kmeans: KMeans, tmp_path: Path) -> None:
    crafted = copy.deepcopy(kmeans)
    crafted._n_threads = 100_000
    assert run_crafted(crafted, X, "score", tmp_path) == "crash"
    refused(crafted, "_n_threads=100000")
    crafted._n_threads = 0
    refused(crafted, "_n_threads=0")


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda c: np.asfortranarray(c), "C-contiguous"),
        (lambda c: c.astype(np.int64), "C-contiguous float32/float64"),
        (lambda c: c[:, :2].copy(), "shape (3, 2)"),
        (lambda c: c[:0].copy(), "shape (0, 4)"),
    ],
)
def test_kmeans_centers_fit_the_cython_signature(
    kmeans: KMeans, edit: Callable[[np.ndarray], np.ndarray], fragment: str
) -> None:
    kmeans.cluster_centers_ = edit(kmeans.cluster_centers_)
    refused(kmeans, "cluster_centers_", fragment)


def test_birch_norms_one_per_center() -> None:
    # The Euclidean reduction reads Y_norm_squared[j] for every center j: a short array is
    # read out of bounds (silently: it returns garbage labels rather than crashing).
    model = Birch(n_clusters=None).fit(X)
    model._subcluster_norms = model._subcluster_norms[:1].copy()
    refused(model, "_subcluster_norms has 1 entries")
    model = Birch(n_clusters=None).fit(X)
    model.subcluster_labels_ = model.subcluster_labels_[:1].copy()
    refused(model, "subcluster_labels_ has 1 entries")
    model = Birch(n_clusters=None).fit(X)
    model.n_features_in_ = 9
    refused(model, "subcluster_centers_ has shape")


@pytest.mark.parametrize("make", [MeanShift, lambda: AffinityPropagation(random_state=0)])
def test_centroid_clusterers_centers_match_the_features(make: Callable[[], Any]) -> None:
    model = make().fit(X)
    model.cluster_centers_ = model.cluster_centers_[:, :3].copy()
    refused(model, "cluster_centers_ has shape")


def test_hdbscan_linkage_joins_only_existing_nodes(tmp_path: Path) -> None:
    from sklearn.cluster import HDBSCAN

    model = HDBSCAN().fit(X)
    validate_model(model)
    crafted = copy.deepcopy(model)
    crafted._single_linkage_tree_["left_node"][:] = 10**9
    verdict = run_crafted(crafted, 0.5, "dbscan_clustering", tmp_path)
    assert verdict == "crash", verdict
    refused(crafted, "merge 0 joins node 1000000000, outside [0, 60)")
    crafted = copy.deepcopy(model)
    crafted._single_linkage_tree_["right_node"][5] = 60 + 5  # the node merge 5 creates
    refused(crafted, "merge 5 joins node 65")
    crafted = copy.deepcopy(model)
    crafted.labels_ = crafted.labels_[:3]
    refused(crafted, "labels_ has 3 entries")


def test_feature_agglomeration_labels_within_the_clusters() -> None:
    from sklearn.cluster import FeatureAgglomeration

    model = FeatureAgglomeration(2).fit(X)
    validate_model(model)
    model.labels_ = np.array([0, 1, 0, 10**9])
    refused(model, "outside [0, n_clusters_=2)")
    model.labels_ = np.array([0, 1, 0])
    refused(model, "labels_ has shape (3,)")
