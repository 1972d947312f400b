"""Trees and boosting, re-audited: per-tree arrays and per-iteration shapes agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
)

from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model

rng = np.random.RandomState(0)
X = rng.uniform(size=(120, 4))
X[:, 0] = rng.randint(0, 5, 120)
y = (X[:, 1] > 0.5).astype(int) + (X[:, 0] > 2)


def refused(model: Any, *fragments: str) -> None:
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def iforest(**kw: Any) -> IsolationForest:
    return IsolationForest(n_estimators=5, random_state=0, **kw).fit(X)


def hgb_clf() -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=3, categorical_features=[0]).fit(X, y)


def test_legit_models_pass() -> None:
    validate_model(iforest())
    validate_model(iforest(max_features=2))
    validate_model(hgb_clf())
    validate_model(HistGradientBoostingClassifier(max_iter=3).fit(X, y > 0))
    validate_model(HistGradientBoostingRegressor(max_iter=3).fit(X, X[:, 1]))


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: setattr(m, "_decision_path_lengths", m._decision_path_lengths[:2]), "one array"),
        (
            lambda m: setattr(
                m,
                "_average_path_length_per_tree",
                [a[:1] for a in m._average_path_length_per_tree],
            ),
            "_average_path_length_per_tree[0]",
        ),
    ],
)
def test_isolation_forest_path_lengths_one_per_node(
    edit: Callable[[Any], None], fragment: str
) -> None:
    model = iforest()
    edit(model)
    refused(model, fragment)


def test_isolation_forest_feature_subsets_within_the_input() -> None:
    model = iforest(max_features=2)
    model.estimators_features_[1] = np.array([0, 9])
    refused(model, "estimators_features_[1]", "outside [0, 4)")


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: setattr(m, "n_trees_per_iteration_", 1), "n_trees_per_iteration_=1 for 3"),
        (lambda m: setattr(m, "_baseline_prediction", np.zeros((1, 1))), "_baseline_prediction"),
        (
            lambda m: setattr(m, "_baseline_prediction", m._baseline_prediction.astype(object)),
            "dtype object",
        ),
        (lambda m: m._predictors[1].append(m._predictors[1][0]), "_predictors[1]"),
        (lambda m: setattr(m, "classes_", m.classes_[:2]), "for 2 classes"),
        (
            lambda m: setattr(m._bin_mapper, "bin_thresholds_", m._bin_mapper.bin_thresholds_[:1]),
            "bin_thresholds_",
        ),
    ],
)
def test_hist_gradient_boosting_shapes_agree(edit: Callable[[Any], None], fragment: str) -> None:
    model = hgb_clf()
    edit(model)
    refused(model, fragment)


def test_forest_trees_agree_with_the_forest_counts() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    other = DecisionTreeClassifier(random_state=0).fit(X, y > 0)  # 2 classes, not 3
    model.estimators_[1] = other
    refused(model, "estimators_[1]", "the forest <ndarray")
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    model.n_outputs_ = 2
    refused(model, "1 outputs, the forest 2")
