"""Neighbours estimators: fitted state that brute-force and tree queries hand to Cython.

The crafted models are never queried in this process; ``run_crafted`` shows in a child process
what they do without validation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.manifold import Isomap
from sklearn.neighbors import (
    KernelDensity,
    KNeighborsClassifier,
    KNeighborsRegressor,
    KNeighborsTransformer,
    LocalOutlierFactor,
    NearestCentroid,
    NearestNeighbors,
    RadiusNeighborsClassifier,
    RadiusNeighborsTransformer,
)
from sklearn.semi_supervised import LabelSpreading

import safeload
from safeload import contract
from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model
from tests.native_crash import run_crafted

rng = np.random.RandomState(0)
X = rng.uniform(size=(40, 5))
y = np.arange(40) % 3
Y2 = np.column_stack([y, (X[:, 1] > 0.5).astype(int)])
WIDE = 10**6  # a query this wide reads megabytes past a 5-column _fit_X


def refused(model: Any, *fragments: str) -> None:
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(model)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


LEGIT: dict[str, Callable[[], Any]] = {
    "knc_brute": lambda: KNeighborsClassifier(algorithm="brute").fit(X, y),
    "knc_kd": lambda: KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
    "knc_ball": lambda: KNeighborsClassifier(algorithm="ball_tree").fit(X, y),
    "knc_multi": lambda: KNeighborsClassifier().fit(X, Y2),
    "knc_mahalanobis": lambda: KNeighborsClassifier(
        algorithm="brute", metric="mahalanobis", metric_params={"VI": np.eye(5)}
    ).fit(X, y),
    "knc_weighted_minkowski": lambda: KNeighborsClassifier(
        algorithm="ball_tree", p=3, metric_params={"w": np.ones(5)}
    ).fit(X, y),
    "knr": lambda: KNeighborsRegressor().fit(X, X[:, 0]),
    "rnc": lambda: RadiusNeighborsClassifier(radius=2.0).fit(X, y),
    "nn_sparse": lambda: NearestNeighbors().fit(__import__("scipy.sparse").sparse.csr_array(X)),
    "nn_precomputed": lambda: NearestNeighbors(metric="precomputed").fit(X @ X.T),
    "nn_on_tree": lambda: NearestNeighbors().fit(
        KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    ),
    "lof": lambda: LocalOutlierFactor(novelty=True).fit(X),
    "knt": lambda: KNeighborsTransformer().fit(X),
    "rnt": lambda: RadiusNeighborsTransformer().fit(X),
    "centroid": lambda: NearestCentroid().fit(X, y),
    "kde": lambda: KernelDensity().fit(X),
    "isomap": lambda: Isomap(n_neighbors=5).fit(X),
    "spreading": lambda: LabelSpreading(kernel="knn").fit(X, y),
}


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legit_neighbours_models_pass(name: str) -> None:
    validate_model(LEGIT[name]())


def knc(**kw: Any) -> KNeighborsClassifier:
    return KNeighborsClassifier(n_neighbors=1, algorithm="brute", **kw).fit(X, y)


def narrow_fit_x(model: Any) -> Any:
    """The reported attack: _fit_X keeps 5 columns, n_features_in_ says there are WIDE."""
    model = copy.deepcopy(model)
    model.n_features_in_ = WIDE
    return model


def test_narrow_fit_x_crashes_a_brute_force_query(tmp_path: Path) -> None:
    verdict = run_crafted(narrow_fit_x(knc()), np.zeros((2, WIDE)), "kneighbors", tmp_path)
    assert verdict == "crash", verdict


def test_narrow_fit_x_is_refused() -> None:
    refused(narrow_fit_x(knc()), "_fit_X has 5 columns but n_features_in_=1000000")
    model = knc()
    model._fit_X = np.ascontiguousarray(model._fit_X[:, :2])
    refused(model, "_fit_X has 2 columns")


def test_mahalanobis_matrix_smaller_than_the_data_crashes(tmp_path: Path) -> None:
    wide = np.random.RandomState(1).uniform(size=(6, 2000))
    model = KNeighborsClassifier(
        n_neighbors=1, algorithm="brute", metric="mahalanobis", metric_params={"VI": np.eye(2000)}
    ).fit(wide, y[:6])
    model.effective_metric_params_["VI"] = np.eye(2)  # read as if it were 2000 x 2000
    model.metric_params = {"VI": np.eye(2)}
    assert run_crafted(model, wide[:2], "kneighbors", tmp_path) == "crash"
    refused(model, "metric_params['VI'] has shape (2, 2)")


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: setattr(m, "n_samples_fit_", 1000), "n_samples_fit_=1000"),
        (lambda m: setattr(m, "_fit_method", "magic"), "_fit_method"),
        (lambda m: setattr(m, "_tree", KernelDensity().fit(X)), "holds a _tree"),
        (lambda m: setattr(m, "_y", np.array([0, 1, 2] * 13 + [10**9])), "class indices"),
        (lambda m: setattr(m, "_y", np.zeros(3, dtype=np.intp)), "_y has shape (3,)"),
        (lambda m: setattr(m, "_y", y.astype(float)), "not class indices"),
        (lambda m: setattr(m, "outputs_2d_", True), "multi-output"),
        (lambda m: setattr(m, "_fit_X", m._fit_X.astype(object)), "numeric"),
        (lambda m: m.effective_metric_params_.update(w=np.ones(2)), "['w'] has shape (2,)"),
    ],
)
def test_inconsistent_brute_force_state_is_refused(
    edit: Callable[[Any], None], fragment: str
) -> None:
    model = knc()
    edit(model)
    refused(model, fragment)


def test_out_of_range_label_is_what_argkmin_class_mode_would_write_at() -> None:
    # ArgKminClassMode writes class_scores[i][_y[j]]: an index past classes_ writes out of
    # bounds. (Shown refused only: where the write lands decides whether it crashes.)
    model = knc()
    model._y = model._y.copy()
    model._y[0] = -(10**6)
    refused(model, "class indices outside [0, 3)")


def test_tree_models_must_match_their_tree() -> None:
    model = KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    model._tree = KNeighborsClassifier(algorithm="kd_tree").fit(X[:, :3], y)._tree
    refused(model, "_tree was built on data of another shape")
    model = KNeighborsClassifier(algorithm="kd_tree").fit(X, y)
    model._fit_method = "ball_tree"
    refused(model, "_tree is KDTree")
    kde = KernelDensity().fit(X)
    kde.n_features_in_ = 7
    refused(kde, "tree_ holds 5 features but n_features_in_=7")


def test_brute_force_without_n_features_in_is_refused() -> None:
    model = knc()
    del model.n_features_in_
    refused(model, "without n_features_in_")


def test_precomputed_fit_x_must_be_square() -> None:
    model = NearestNeighbors(metric="precomputed").fit(X @ X.T)
    model._fit_X = model._fit_X[:, :10].copy()
    model.n_features_in_ = 10
    refused(model, "not square")


def test_outlier_factor_arrays_match_the_samples() -> None:
    model = LocalOutlierFactor(novelty=True).fit(X)
    model._lrd = model._lrd[:3]
    refused(model, "_lrd has shape (3,)")
    model = LocalOutlierFactor(novelty=True).fit(X)
    model.n_neighbors_ = 500
    refused(model, "n_neighbors_=500")


def test_centroids_match_the_classes_and_features() -> None:
    model = NearestCentroid().fit(X, y)
    model.centroids_ = model.centroids_[:, :2].copy()
    refused(model, "centroids_ has shape (3, 2)")


def test_nested_nearest_neighbors_are_checked() -> None:
    model = Isomap(n_neighbors=5).fit(X)
    model.nbrs_.n_features_in_ = WIDE
    refused(model, "nbrs_")


def test_feature_names_must_match_n_features_in() -> None:
    model = knc()
    model.feature_names_in_ = np.array(["a", "b"], dtype=object)
    refused(model, "feature_names_in_ has shape (2,)")
    model.feature_names_in_ = np.array(["a", "b", "c", "d", 5], dtype=object)
    refused(model, "not a str")
    model = knc()
    model.n_features_in_ = 0
    refused(model, "n_features_in_=0")


def test_gate_refuses_the_narrow_fit_x_before_the_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported case end to end: signed, every type allowed, a sample saved with it."""
    model = knc()
    model._fit_X = np.ascontiguousarray(model._fit_X[:, :2])  # predicts garbage, no crash here
    key = safeload.generate_key()
    key.save(tmp_path / "keys" / "trainer")
    target = safeload.save(
        model, tmp_path / "m" / "1", key=key, name="m", version="1", sample=X[:4]
    )
    reached: list[bool] = []
    original = contract.check_predictions

    def recording(*args: Any, **kwargs: Any) -> None:
        reached.append(True)
        original(*args, **kwargs)

    monkeypatch.setattr(contract, "check_predictions", recording)
    with pytest.raises(MalformedArtifactError, match="_fit_X has 2 columns"):
        safeload.load(target, trusted=safeload.Keyring.from_dir(tmp_path / "keys"))
    assert not reached, "the saved sample was re-checked on an unvalidated model"


def test_label_spreading_distributions_one_per_row() -> None:
    model = LabelSpreading(kernel="knn").fit(X, y)
    model.label_distributions_ = model.label_distributions_[:10]
    refused(model, "label_distributions_ has shape (10, 3)")
    model = LabelSpreading(kernel="knn").fit(X, y)
    model.nn_fit = NearestNeighbors().fit(X[:20])
    refused(model, "nn_fit was fitted on other samples")


def test_a_distance_metric_object_fits_the_features() -> None:
    from sklearn.metrics import DistanceMetric

    metric = DistanceMetric.get_metric("mahalanobis", VI=np.eye(5))
    model = KNeighborsClassifier(algorithm="brute", metric=metric).fit(X, y)
    validate_model(model)
    model.effective_metric_ = model.metric = DistanceMetric.get_metric("mahalanobis", VI=np.eye(2))
    refused(model, "does not fit 5 features")


def weighted_gap(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> float:
    return float(np.abs(a - b).sum() * scale[0])


def test_a_callable_metric_keeps_its_own_parameters() -> None:
    # Its parameters go to Python code, not to a reduction sized by the features.
    model = KNeighborsClassifier(
        algorithm="brute", metric=weighted_gap, metric_params={"scale": np.ones(2)}
    ).fit(X, y)
    validate_model(model, safe_to_call=["tests.test_validation_neighbors:weighted_gap"])
