"""A file may put an array where a name belongs: the checks must refuse it, never trip on it.

``array == "precomputed"`` broadcasts, and ``if`` on the result raises numpy's ValueError,
which is not a refusal: every name a check compares is read as a str first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.cluster import AffinityPropagation
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.semi_supervised import LabelSpreading
from sklearn.svm import SVC

from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model

rng = np.random.RandomState(0)
X = rng.uniform(size=(40, 4))
y = np.arange(40) % 3
NAMES = np.array(["precomputed", "precomputed"])


def knn(**kw: Any) -> KNeighborsClassifier:
    return KNeighborsClassifier(algorithm="brute", **kw).fit(X, y)


CASES: list[tuple[str, Callable[[], Any], Callable[[Any], None]]] = [
    ("knn_metric", knn, lambda m: setattr(m, "metric", NAMES)),
    ("knn_effective_metric", knn, lambda m: setattr(m, "effective_metric_", NAMES)),
    ("knn_ragged_w", knn, lambda m: m.effective_metric_params_.update(w=[[1.0], [1.0, 2.0]])),
    (
        "affinity",
        lambda: AffinityPropagation(random_state=0).fit(X),
        lambda m: setattr(m, "affinity", NAMES),
    ),
    ("svc_kernel", lambda: SVC().fit(X, y), lambda m: setattr(m, "kernel", NAMES)),
    ("svc_impl", lambda: SVC().fit(X, y), lambda m: setattr(m, "_impl", NAMES)),
    (
        "mlp_activation",
        lambda: MLPClassifier(max_iter=5, random_state=0).fit(X, y),
        lambda m: setattr(m, "out_activation_", NAMES),
    ),
    (
        "ridge_y_type",
        lambda: RidgeClassifier().fit(X, y),
        lambda m: setattr(m._label_binarizer, "y_type_", NAMES),
    ),
    (
        "spreading_nn",
        lambda: LabelSpreading(kernel="knn").fit(X, y),
        lambda m: setattr(m.nn_fit, "n_samples_fit_", np.array([40, 40])),
    ),
    (
        "iforest_max_features",
        lambda: IsolationForest(n_estimators=3, random_state=0).fit(X),
        lambda m: setattr(m, "_max_features", np.array([4, 4])),
    ),
]


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("name", "make", "edit"), CASES, ids=[c[0] for c in CASES])
def test_an_array_in_a_name_slot_is_refused_or_harmless(
    name: str, make: Callable[[], Any], edit: Callable[[Any], None]
) -> None:
    model = make()
    edit(model)
    try:
        validate_model(model)
    except MalformedArtifactError:
        pass  # refused, as it should be where a check reads the name


def test_a_linkage_of_strings_is_refused_not_converted() -> None:
    from sklearn.cluster import HDBSCAN

    model = HDBSCAN().fit(X)
    tree = model._single_linkage_tree_
    fields = [(n, "<U8" if n == "left_node" else tree.dtype[n]) for n in tree.dtype.names]
    crafted = np.zeros(tree.shape, dtype=fields)
    for name in tree.dtype.names:
        crafted[name] = tree[name] if name != "left_node" else "x"
    model._single_linkage_tree_ = crafted
    with pytest.raises(MalformedArtifactError, match="not sklearn's linkage"):
        validate_model(model)


def test_ragged_classes_are_refused_or_harmless() -> None:
    model = RidgeClassifier().fit(X, y)
    model.classes_ = [np.array([0, 1]), [[1], [2, 3]]]
    model.n_classes_ = [2, 2]
    with pytest.raises(MalformedArtifactError, match="n_classes_ does not count"):
        validate_model(model)
