"""Integers that size allocations at predict time must count the fitted arrays.

Found by the mutation harness (/work/shared-findings/harness.md): each of these, set to 10**12
on a legit model, made predict or transform allocate by it (MemoryError under a cap; without
one, the kernel's overcommit decides). Each must equal what the fitted arrays hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.cluster import FeatureAgglomeration, KMeans, MiniBatchKMeans
from sklearn.decomposition import MiniBatchNMF
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    BaggingClassifier,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.manifold import Isomap, LocallyLinearEmbedding
from sklearn.neighbors import RadiusNeighborsClassifier

from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model

rng = np.random.RandomState(0)
X = rng.uniform(size=(48, 4))
y = np.arange(48) % 3
Y = np.column_stack([y, y % 2])
HUGE = 10**12


def refused(model: Any, *fragments: str) -> None:
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def setting(name: str, value: Any) -> Callable[[Any], None]:
    def edit(model: Any) -> None:
        target = model
        *path, last = name.split(".")
        for step in path:
            target = getattr(target, step)
        setattr(target, last, value)

    return edit


CASES: list[tuple[str, Callable[[], Any], Callable[[Any], None], str]] = [
    ("kmeans", lambda: KMeans(3, n_init=1).fit(X), setting("_n_threads", -1), "_n_threads=-1"),
    (
        "minibatch",
        lambda: MiniBatchKMeans(3, n_init=1).fit(X),
        setting("_n_threads", -1),
        "_n_threads=-1",
    ),
    (
        "agglomeration",
        lambda: FeatureAgglomeration(2).fit(X),
        setting("labels_", np.array([0, 1, 0, 10**9])),
        "n_clusters_=2",
    ),
    (
        "radius_y",
        lambda: RadiusNeighborsClassifier(radius=2.0).fit(X, y),
        lambda m: m._y.__setitem__(0, 10**9),
        "class indices",
    ),
    (
        "isomap",
        lambda: Isomap(n_neighbors=5).fit(X),
        setting("nbrs_.n_samples_fit_", HUGE),
        "inconsistent with n=1000000000000",
    ),
    (
        "forest_outputs",
        lambda: RandomForestClassifier(3, random_state=0).fit(X, y),
        setting("n_outputs_", HUGE),
        "the forest 1000000000000",
    ),
    (
        "forest_classes",
        lambda: RandomForestClassifier(3, random_state=0).fit(X, y),
        setting("n_classes_", HUGE),
        "n_classes_=1000000000000 but classes_ has 3",
    ),
    (
        "forest_multi_classes",
        lambda: RandomForestClassifier(3, random_state=0).fit(X, Y),
        lambda m: m.n_classes_.__setitem__(1, HUGE),
        "n_classes_ does not count",
    ),
    (
        "extra_trees_outputs",
        lambda: ExtraTreesRegressor(3, random_state=0).fit(X, X[:, 0]),
        setting("n_outputs_", HUGE),
        "the forest 1000000000000",
    ),
    (
        "bagging_classes",
        lambda: BaggingClassifier(n_estimators=3, random_state=0).fit(X, y),
        setting("n_classes_", HUGE),
        "n_classes_=1000000000000",
    ),
    (
        "hgb_per_iteration",
        lambda: HistGradientBoostingRegressor(max_iter=3).fit(X, X[:, 0]),
        setting("n_trees_per_iteration_", HUGE),
        "_baseline_prediction has shape (1, 1)",
    ),
    (
        "gb_init_outputs",
        lambda: GradientBoostingRegressor(n_estimators=3).fit(X, X[:, 0]),
        setting("init_.n_outputs_", HUGE),
        "init_: constant_ has shape (1, 1) for n_outputs_=1000000000000",
    ),
    (
        "dummy_regressor",
        lambda: DummyRegressor().fit(X, X[:, :2]),
        setting("n_outputs_", HUGE),
        "constant_ has shape (1, 2)",
    ),
    (
        "dummy_classifier",
        lambda: DummyClassifier().fit(X, Y),
        setting("n_outputs_", 3),
        "one per output (n_outputs_=3)",
    ),
    (
        "dummy_prior",
        lambda: DummyClassifier().fit(X, y),
        setting("class_prior_", np.ones(5) / 5),
        "class_prior_[0] has shape (5,)",
    ),
    (
        "minibatch_nmf",
        lambda: MiniBatchNMF(2, random_state=0).fit(X),
        setting("_n_components", HUGE),
        "_n_components=1000000000000 but the fitted arrays have 2",
    ),
    (
        "lle",
        lambda: LocallyLinearEmbedding(n_neighbors=5).fit(X),
        setting("n_components", HUGE),
        "n_components=1000000000000",
    ),
]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("name", "make", "edit", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_allocation_sizes_count_the_fitted_arrays(
    name: str, make: Callable[[], Any], edit: Callable[[Any], None], fragment: str
) -> None:
    model = make()
    validate_model(model)
    edit(model)
    refused(model, fragment)
