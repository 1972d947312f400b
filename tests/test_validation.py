"""Structural validation: legit models pass, crafted node arrays are refused before use.

Crafted models are never asked to predict in this process (that may crash it); the one test
that shows why validation matters runs the prediction in a subprocess.
"""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.datasets import make_classification
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.feature_extraction import FeatureHasher
from sklearn.neighbors import BallTree, KDTree, KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.tree._tree import Tree

import safeload
from safeload._unpickle import unpickle_verified
from safeload.errors import MalformedArtifactError
from safeload.policy import TypePolicy
from safeload.typegate.limits import ScanLimits
from safeload.validation import validate_model
from tests.helpers import BINARY_TREE_STATE

X, y = make_classification(
    n_samples=120, n_features=5, n_informative=4, n_redundant=0, n_classes=3, random_state=0
)
y_reg = X @ np.arange(1.0, 6.0)


def refused(obj: object, *fragments: str) -> MalformedArtifactError:
    """Assert validate_model refuses obj, with every fragment in the message."""
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(obj)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return info.value


def restricted_load(obj: object) -> Any:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return unpickle_verified(bytearray(buffer.getvalue()), TypePolicy.default())


# ---- fitted models, built once ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree_clf() -> DecisionTreeClassifier:
    return DecisionTreeClassifier(random_state=0, max_depth=6).fit(X, y)


@pytest.fixture(scope="module")
def forest() -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=6, max_depth=5, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def gbc() -> GradientBoostingClassifier:
    return GradientBoostingClassifier(n_estimators=4, max_depth=3, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def hgb() -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=4, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def hgb_categorical() -> HistGradientBoostingClassifier:
    rng = np.random.RandomState(0)
    Xc = np.column_stack([rng.randint(0, 6, 200), rng.normal(size=200)])
    yc = (np.isin(Xc[:, 0], [1, 3, 4]) ^ (Xc[:, 1] > 1)).astype(int)
    model = HistGradientBoostingClassifier(
        max_iter=4, categorical_features=[True, False], random_state=0
    ).fit(Xc, yc)
    nodes = model._predictors[0][0].nodes
    assert nodes["is_categorical"][nodes["is_leaf"] == 0].any()
    return model


def legit_models() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rng = np.random.RandomState(1)
        Xs = sp.random(60, 8, density=0.3, format="csr", random_state=rng)
        return {
            "tree": DecisionTreeClassifier(random_state=0).fit(X, y),
            "tree_multioutput": DecisionTreeRegressor(max_depth=4).fit(
                X, np.column_stack([y_reg, -y_reg])
            ),
            "forest": RandomForestClassifier(n_estimators=4, random_state=0).fit(X, y),
            "extra_trees": ExtraTreesRegressor(n_estimators=3, random_state=0).fit(X, y_reg),
            "best_first": DecisionTreeRegressor(max_leaf_nodes=9).fit(X, y_reg),
            "gbc_multiclass": GradientBoostingClassifier(n_estimators=3).fit(X, y),
            "gbc_binary": GradientBoostingClassifier(n_estimators=3).fit(X, y % 2),
            "gbc_zero_init": GradientBoostingClassifier(n_estimators=3, init="zero").fit(X, y),
            "gbr": GradientBoostingRegressor(n_estimators=3).fit(X, y_reg),
            "hgb": HistGradientBoostingClassifier(max_iter=3).fit(X, y),
            "hgbr": HistGradientBoostingRegressor(max_iter=3).fit(X, y_reg),
            "iforest_all": IsolationForest(n_estimators=3, random_state=0).fit(X),
            "iforest_subset": IsolationForest(n_estimators=3, max_features=3, random_state=0).fit(
                X
            ),
            "kd": KNeighborsClassifier(algorithm="kd_tree").fit(X, y),
            "ball_mahalanobis": KNeighborsClassifier(
                algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(5)}
            ).fit(X, y),
            "ball_seuclidean": KNeighborsClassifier(
                algorithm="ball_tree", metric="seuclidean", metric_params={"V": np.ones(5)}
            ).fit(X, y),
            "kdtree_weighted": KDTree(X, leaf_size=4, sample_weight=np.ones(120)),
            "svc": SVC(probability=True, random_state=0).fit(X, y),
            "svc_sparse": SVC().fit(Xs, np.arange(60) % 2),
            "svc_precomputed": SVC(kernel="precomputed").fit(X @ X.T, y),
            "svr": SVR().fit(X, y_reg),
            "spline": SplineTransformer().fit(X),
            "kmeans": KMeans(n_clusters=3, n_init=1, random_state=0).fit(X),
            "hasher": FeatureHasher(n_features=8),
            "sparse": Xs,
            "coo": sp.coo_array(Xs),
            "pipeline": make_pipeline(StandardScaler(), DecisionTreeClassifier()).fit(X, y),
            "containers": {
                "a": [DecisionTreeClassifier().fit(X, y)],
                "b": (np.array([object(), None], dtype=object),),
            },
        }


LEGIT = legit_models()


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legit_models_pass(name: str) -> None:
    validate_model(LEGIT[name])


@pytest.mark.parametrize(
    "name", ["tree", "forest", "gbc_multiclass", "hgb", "kd", "svc", "spline", "ball_mahalanobis"]
)
def test_legit_models_pass_after_restricted_load(name: str) -> None:
    validate_model(restricted_load(LEGIT[name]))


def test_hgb_with_categorical_splits_passes(
    hgb_categorical: HistGradientBoostingClassifier,
) -> None:
    validate_model(hgb_categorical)


# ---- decision trees -----------------------------------------------------------------------------


def rebuilt_tree(
    tree: Tree, edit: Callable[[np.ndarray], None] | None = None, **state_changes: Any
) -> Tree:
    """A fresh Tree with tree's state, its node array edited by ``edit``."""
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    if edit is not None:
        edit(nodes)
    state = {**state, "nodes": nodes, "values": state["values"].copy(), **state_changes}
    new = Tree(tree.n_features, tree.n_classes.copy(), tree.n_outputs)
    new.__setstate__(state)
    return new


def with_tree(est: Any, tree: Tree) -> Any:
    est = copy.deepcopy(est)
    est.tree_ = tree
    return est


def first_split(tree: Tree) -> int:
    return int(np.flatnonzero(tree.children_left != -1)[0])


def second_split(tree: Tree) -> int:
    """A split node that is a child of another split node."""
    splits = np.flatnonzero(tree.children_left != -1)
    return int(splits[splits > 0][0])


def test_child_index_out_of_range(tree_clf: DecisionTreeClassifier) -> None:
    t = tree_clf.tree_
    node = first_split(t)

    def edit(nodes: np.ndarray) -> None:
        nodes["right_child"][node] = t.node_count + 7

    refused(
        with_tree(tree_clf, rebuilt_tree(t, edit)), "model.tree_", f"node {node}", "right child"
    )


def test_negative_child_index(tree_clf: DecisionTreeClassifier) -> None:
    t = tree_clf.tree_

    def edit(nodes: np.ndarray) -> None:
        nodes["left_child"][first_split(t)] = -5

    refused(with_tree(tree_clf, rebuilt_tree(t, edit)), "left child -5")


def test_feature_index_out_of_range(tree_clf: DecisionTreeClassifier) -> None:
    t = tree_clf.tree_
    for bad in (t.n_features, 10**9, -3):

        def edit(nodes: np.ndarray, bad: int = bad) -> None:
            nodes["feature"][first_split(t)] = bad

        refused(with_tree(tree_clf, rebuilt_tree(t, edit)), f"feature {bad}")


def test_cyclic_children(tree_clf: DecisionTreeClassifier) -> None:
    t = tree_clf.tree_
    node = second_split(t)
    for target in (0, node):  # back to the root, and onto itself

        def edit(nodes: np.ndarray, target: int = target) -> None:
            nodes["left_child"][node] = target

        refused(with_tree(tree_clf, rebuilt_tree(t, edit)), "cycle")


def test_shared_subtree(tree_clf: DecisionTreeClassifier) -> None:
    t = tree_clf.tree_
    node = first_split(t)

    def edit(nodes: np.ndarray) -> None:
        nodes["right_child"][node] = nodes["left_child"][node]

    refused(with_tree(tree_clf, rebuilt_tree(t, edit)), "parents")


def test_half_leaf(tree_clf: DecisionTreeClassifier) -> None:
    t = tree_clf.tree_

    def edit(nodes: np.ndarray) -> None:
        nodes["right_child"][first_split(t)] = -1

    refused(with_tree(tree_clf, rebuilt_tree(t, edit)), "one child")


def test_max_depth_understated(tree_clf: DecisionTreeClassifier) -> None:
    # decision_path sizes its output buffer with max_depth: an understated depth overflows it.
    t = rebuilt_tree(tree_clf.tree_, max_depth=1)
    refused(with_tree(tree_clf, t), "max_depth")


def test_max_depth_is_checked_exactly(tree_clf: DecisionTreeClassifier) -> None:
    # The depths come from sklearn's own loop once the graph is proven: one level short is
    # refused, the true depth passes (no off-by-one either way).
    depth = tree_clf.tree_.max_depth
    assert depth >= 2
    refused(with_tree(tree_clf, rebuilt_tree(tree_clf.tree_, max_depth=depth - 1)), "max_depth")
    validate_model(with_tree(tree_clf, rebuilt_tree(tree_clf.tree_, max_depth=depth)))


def test_node_count_beyond_capacity(tree_clf: DecisionTreeClassifier) -> None:
    # A second BUILD on the same Tree keeps its buffer but takes the new node_count.
    t = rebuilt_tree(tree_clf.tree_)
    state = t.__getstate__()
    state = {
        **state,
        "nodes": state["nodes"].copy(),
        "values": state["values"].copy(),
        "node_count": t.capacity + 1000,
    }
    t.__setstate__(state)
    assert t.node_count > t.capacity  # now unsafe to read any node array
    refused(with_tree(tree_clf, t), "node_count", "capacity")


def test_wrong_value_shape_in_the_stream(tree_clf: DecisionTreeClassifier) -> None:
    # Edit the pickle: the Tree's state carries a value array of the wrong shape.
    state = tree_clf.tree_.__getstate__()
    bad_state = {**state, "values": np.zeros((state["nodes"].shape[0], 1, 7))}

    class Forged:
        def __reduce__(self) -> tuple[Any, ...]:
            t = tree_clf.tree_
            return (Tree, (t.n_features, t.n_classes.copy(), t.n_outputs), bad_state)

    stream = pickle.dumps(Forged(), protocol=4)
    with pytest.raises(MalformedArtifactError, match="value array"):
        unpickle_verified(bytearray(stream), TypePolicy.default())


def test_tree_that_disagrees_with_its_estimator(tree_clf: DecisionTreeClassifier) -> None:
    binary = DecisionTreeClassifier(random_state=0).fit(X, y % 2)
    refused(with_tree(tree_clf, binary.tree_), "n_classes")
    other_width = DecisionTreeClassifier(random_state=0).fit(X[:, :3], y)
    refused(with_tree(tree_clf, other_width.tree_), "n_features_in_")
    two_outputs = DecisionTreeClassifier(random_state=0).fit(X, np.column_stack([y, y]))
    refused(with_tree(tree_clf, two_outputs.tree_), "outputs")


# ---- ensembles ----------------------------------------------------------------------------------


def test_forest_with_crafted_tree(forest: RandomForestClassifier) -> None:
    bad = copy.deepcopy(forest)
    t = bad.estimators_[3].tree_

    def edit(nodes: np.ndarray) -> None:
        nodes["left_child"][first_split(t)] = 10**6

    bad.estimators_[3].tree_ = rebuilt_tree(t, edit)
    refused(bad, "estimators_[3]")
    # ...also when the forest is nested in a pipeline, a dict and a tuple
    refused({"models": (make_pipeline(StandardScaler(), bad),)}, "estimators_[3]", "steps")


def test_forest_tree_for_other_features(forest: RandomForestClassifier) -> None:
    bad = copy.deepcopy(forest)
    narrow = DecisionTreeClassifier(random_state=0).fit(X[:, :2], y)
    bad.estimators_[0] = narrow  # consistent itself, but the forest feeds it 5 columns
    refused(bad, "estimators_[0]", "features")


def test_gradient_boosting_with_crafted_tree(gbc: GradientBoostingClassifier) -> None:
    bad = copy.deepcopy(gbc)
    t = bad.estimators_[1, 2].tree_

    def edit(nodes: np.ndarray) -> None:
        nodes["feature"][first_split(t)] = 99

    bad.estimators_[1, 2].tree_ = rebuilt_tree(t, edit)
    refused(bad, "estimators_[1, 2]", "feature 99")


def test_gradient_boosting_shape(gbc: GradientBoostingClassifier) -> None:
    bad = copy.deepcopy(gbc)
    bad.n_trees_per_iteration_ = 2
    bad.estimators_ = bad.estimators_[:, :2]
    bad.init_.n_classes_ = 2
    refused(bad, "classes")
    wide = copy.deepcopy(gbc)
    wide.estimators_ = np.concatenate([wide.estimators_, wide.estimators_[:, :1]], axis=1)
    refused(wide, "n_trees_per_iteration_")
    multi = copy.deepcopy(gbc)
    multi.estimators_[0, 0] = DecisionTreeRegressor(max_depth=2).fit(
        X, np.column_stack([y_reg, y_reg])
    )
    refused(multi, "single-output regression tree")


def test_isolation_forest_feature_subsets() -> None:
    model = IsolationForest(n_estimators=3, max_features=3, random_state=0).fit(X)
    bad = copy.deepcopy(model)
    bad.estimators_features_[1] = bad.estimators_features_[1][:2]
    refused(bad, "estimators_[1]", "applied")


# ---- HistGradientBoosting -----------------------------------------------------------------------


def with_nodes(model: Any, edit: Callable[[np.ndarray], None], it: int = 0) -> Any:
    bad = copy.deepcopy(model)
    pred = bad._predictors[it][0]
    nodes = pred.nodes.copy()
    edit(nodes)
    pred.nodes = nodes
    return bad


def hgb_split(model: Any) -> int:
    nodes = model._predictors[0][0].nodes
    return int(np.flatnonzero(nodes["is_leaf"] == 0)[1])


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("left", 10**6, "left child"),
        ("right", 0, "right child"),  # back to the root: a cycle
        ("feature_idx", 5, "feature 5"),
        ("feature_idx", -1, "feature -1"),
    ],
)
def test_hgb_crafted_nodes(
    hgb: HistGradientBoostingClassifier, field: str, value: int, fragment: str
) -> None:
    node = hgb_split(hgb)

    def edit(nodes: np.ndarray) -> None:
        nodes[field][node] = value

    err = refused(with_nodes(hgb, edit), "_predictors[0][0]", fragment)
    assert "model" in str(err)


def test_hgb_shared_child(hgb: HistGradientBoostingClassifier) -> None:
    node = hgb_split(hgb)

    def edit(nodes: np.ndarray) -> None:
        nodes["right"][node] = nodes["left"][node]

    refused(with_nodes(hgb, edit), "parents")


def test_hgb_standalone_predictor(hgb: HistGradientBoostingClassifier) -> None:
    pred = copy.deepcopy(hgb._predictors[0][0])
    pred.nodes = pred.nodes.copy()
    pred.nodes["left"][hgb_split(hgb)] = 10**6
    refused([pred], "model[0]", "left child")


def test_hgb_categorical_bitset_out_of_range(
    hgb_categorical: HistGradientBoostingClassifier,
) -> None:
    def edit(nodes: np.ndarray) -> None:
        cat = np.flatnonzero((nodes["is_categorical"] == 1) & (nodes["is_leaf"] == 0))[0]
        nodes["bitset_idx"][cat] = 40

    refused(with_nodes(hgb_categorical, edit), "bitset 40")


def test_hgb_categorical_split_on_numeric_feature(
    hgb_categorical: HistGradientBoostingClassifier,
) -> None:
    def edit(nodes: np.ndarray) -> None:
        cat = np.flatnonzero((nodes["is_categorical"] == 1) & (nodes["is_leaf"] == 0))[0]
        nodes["feature_idx"][cat] = 1  # feature 1 is numeric: no known-category bitset

    refused(with_nodes(hgb_categorical, edit), "not categorical")


def test_hgb_bitsets_and_dtype(hgb: HistGradientBoostingClassifier) -> None:
    bad = copy.deepcopy(hgb)
    bad._predictors[0][0].raw_left_cat_bitsets = np.zeros((1, 4), dtype=np.uint32)
    refused(bad, "(n, 8) uint32")
    bad = copy.deepcopy(hgb)
    bad._predictors[0][0].nodes = np.zeros(3, dtype=[("left", "u4"), ("right", "u4")])
    refused(bad, "dtype")
    bad = copy.deepcopy(hgb)
    bad._bin_mapper.is_categorical_ = np.zeros(2, dtype=np.uint8)
    refused(bad, "is_categorical_")


# ---- neighbors ----------------------------------------------------------------------------------


def rebuilt_binary_tree(tree: Any, **changes: Any) -> Any:
    names = BINARY_TREE_STATE
    state = dict(zip(names, tree.__getstate__(), strict=True))
    state.update(changes)
    cls: Any = type(tree)
    new = cls.__new__(cls)
    new.__setstate__(tuple(state[n] for n in names))
    return new


@pytest.mark.parametrize("cls", [KDTree, BallTree])
def test_binary_tree_crafted(cls: Any) -> None:
    tree = cls(X, leaf_size=4)
    _, idx, node_data, bounds = (np.asarray(a) for a in tree.get_arrays())
    validate_model(rebuilt_binary_tree(tree))

    bad_idx = idx.copy()
    bad_idx[3] = len(X) + 50
    refused(rebuilt_binary_tree(tree, idx_array=bad_idx), "idx_array")
    short_idx = idx[:-1].copy()
    refused(rebuilt_binary_tree(tree, idx_array=short_idx), "idx_array")
    bad_nodes = node_data.copy()
    bad_nodes["idx_end"][1] = len(X) + 1
    refused(rebuilt_binary_tree(tree, node_data=bad_nodes), "node 1 covers")
    refused(rebuilt_binary_tree(tree, n_levels=9), "n_levels")
    leafless = node_data.copy()
    leafless["is_leaf"][-1] = 0  # the last node claims children beyond the array
    refused(rebuilt_binary_tree(tree, node_data=leafless), "children beyond")
    refused(
        rebuilt_binary_tree(tree, node_bounds=np.ascontiguousarray(bounds[:, :-1])), "node_bounds"
    )
    refused(rebuilt_binary_tree(tree, sample_weight=np.ones(3)), "sample_weight")


def test_distance_metric_sized_for_the_data() -> None:
    model = KNeighborsClassifier(
        algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(5)}
    ).fit(X, y)
    tree = model._tree
    metric = tree.__getstate__()[11]
    p, vec, _ = metric.__getstate__()
    metric_cls: Any = type(metric)
    small = metric_cls.__new__(metric_cls)
    small.__setstate__((p, vec, np.eye(5)[:, :2].copy()))
    refused(rebuilt_binary_tree(tree, dist_metric=small), "square")
    narrow = metric_cls.__new__(metric_cls)
    narrow.__setstate__((p, np.zeros(2), np.eye(2)))
    refused(rebuilt_binary_tree(tree, dist_metric=narrow), "does not fit 5 features")
    seu = (
        KNeighborsClassifier(
            algorithm="ball_tree", metric="seuclidean", metric_params={"V": np.ones(5)}
        )
        .fit(X, y)
        ._tree
    )
    seu_metric = seu.__getstate__()[11]
    seu_cls: Any = type(seu_metric)
    short = seu_cls.__new__(seu_cls)
    short.__setstate__((2.0, np.ones(3), np.zeros((1, 1))))
    refused(rebuilt_binary_tree(seu, dist_metric=short), "SEuclidean")


# ---- libsvm, sparse, splines, k-means, hashing -------------------------------------------------


@pytest.mark.parametrize(
    ("attr", "value", "fragment"),
    [
        ("_n_support", np.array([5, 5, 5], dtype=np.int32), "does not add up"),
        ("_n_support", np.array([200, -150, 1], dtype=np.int32), "does not add up"),
        ("_dual_coef_", np.zeros((2, 3)), "_dual_coef_"),
        ("_intercept_", np.zeros(1), "_intercept_"),
        ("_probA", np.zeros(1), "_probA"),
        ("support_", np.arange(1000, 1000 + 10, dtype=np.int32), "support_"),
        ("support_vectors_", np.zeros((3, 5)), "support_vectors_"),
    ],
)
def test_svc_crafted(attr: str, value: Any, fragment: str) -> None:
    bad = copy.deepcopy(LEGIT["svc"])
    if attr == "support_":
        value = np.resize(value, bad.support_.shape).astype(np.int32)
    setattr(bad, attr, value)
    refused(bad, fragment)


def test_svc_precomputed_support_index() -> None:
    bad = copy.deepcopy(LEGIT["svc_precomputed"])
    bad.support_ = bad.support_.copy()
    bad.support_[0] = len(X) + 5
    refused(bad, "support_")


def test_sparse_crafted() -> None:
    csr = sp.csr_matrix(LEGIT["sparse"], copy=True)
    csr.indices[0] = 999
    refused({"m": csr}, "model['m']", "sparse csr")
    arr = sp.csr_array(LEGIT["sparse"], copy=True)
    arr.indptr = arr.indptr.copy()
    arr.indptr[-1] += 5
    refused(arr, "sparse csr")
    coo = sp.coo_array(LEGIT["sparse"])
    row, col = coo.coords
    coo.coords = (row, np.where(np.arange(col.size) == 0, 40, col).astype(col.dtype))
    refused(coo, "coordinates")
    svc = copy.deepcopy(LEGIT["svc_sparse"])
    svc.support_vectors_.indices[0] = 10**6
    refused(svc, "support_vectors_")


def test_spline_crafted() -> None:
    bad = copy.deepcopy(LEGIT["spline"])
    spline = bad.bsplines_[2]
    spline._c = spline._c[:2].copy()
    refused(bad, "bsplines_[2]", "BSpline")


def test_kmeans_and_hasher_crafted() -> None:
    bad = copy.deepcopy(LEGIT["kmeans"])
    bad.cluster_centers_ = np.ascontiguousarray(bad.cluster_centers_[:, :2])
    refused(bad, "cluster_centers_")
    refused(FeatureHasher(n_features=0), "n_features=0")


# ---- the walk -----------------------------------------------------------------------------------


def test_walk_is_cycle_safe_and_bounded(tree_clf: DecisionTreeClassifier) -> None:
    loop: list[Any] = [tree_clf]
    loop.append(loop)
    holder = copy.deepcopy(tree_clf)
    holder.me = holder  # an estimator that refers to itself
    validate_model([loop, holder, {"again": loop}])
    with pytest.raises(MalformedArtifactError, match="more than 50 objects"):
        validate_model([[i] for i in range(100)], max_objects=50)
    with pytest.raises(MalformedArtifactError, match="more than 50 objects"):
        validate_model(np.array([[i] for i in range(100)] + [None], dtype=object), max_objects=50)


def test_walk_bound_follows_the_callers_opcode_limit() -> None:
    """Every object a stream builds cost an opcode: a vocabulary of 2.5M terms is a model."""
    vocabulary = dict.fromkeys(map(str, range(2_500_000)), 0)
    validate_model({"vocabulary_": vocabulary})
    with pytest.raises(MalformedArtifactError, match="more than 1000000 objects"):
        validate_model({"vocabulary_": vocabulary}, limits=ScanLimits(max_opcodes=1_000_000))


def test_crafted_tree_in_an_object_array(tree_clf: DecisionTreeClassifier) -> None:
    t = tree_clf.tree_

    def edit(nodes: np.ndarray) -> None:
        nodes["left_child"][first_split(t)] = 10**6

    arr = np.empty(3, dtype=object)
    arr[:] = [None, "x", with_tree(tree_clf, rebuilt_tree(t, edit))]
    refused({"k": arr}, "model['k'][2].tree_")


def test_gate_refuses_a_signed_crafted_model(
    tree_clf: DecisionTreeClassifier, tmp_path: Path
) -> None:
    if not all(hasattr(safeload, n) for n in ("save", "load", "generate_key", "Keyring")):
        pytest.skip("the public gate is not available yet")
    t = tree_clf.tree_

    def edit(nodes: np.ndarray) -> None:
        nodes["right_child"][first_split(t)] = 10**6

    crafted = make_pipeline(StandardScaler().fit(X), with_tree(tree_clf, rebuilt_tree(t, edit)))
    key = safeload.generate_key()
    key.save(tmp_path / "keys" / "trainer")
    # The signer is trusted and every type is allowed: only structure gives it away.
    target = safeload.save(crafted, tmp_path / "m" / "1", key=key, name="m", version="1")
    with pytest.raises(MalformedArtifactError, match="steps"):
        safeload.load(target, trusted=safeload.Keyring.from_dir(tmp_path / "keys"))


# ---- why: the crafted tree really is dangerous --------------------------------------------------


def test_crafted_tree_crashes_predict_in_a_subprocess(
    tree_clf: DecisionTreeClassifier, tmp_path: Path
) -> None:
    t = tree_clf.tree_

    def edit(nodes: np.ndarray) -> None:
        nodes["left_child"][0] = 2**40  # root's left child, far outside the node buffer
        nodes["right_child"][0] = 2**40

    path = tmp_path / "crafted.joblib"
    joblib.dump(with_tree(tree_clf, rebuilt_tree(t, edit)), path)
    code = textwrap.dedent(f"""
        import joblib, numpy as np
        model = joblib.load({str(path)!r})
        model.predict(np.zeros((4, {X.shape[1]})))
        print("survived")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=120, check=False
    )
    # Out-of-bounds reads in native code: the process dies (SIGSEGV) instead of predicting.
    assert proc.returncode != 0 and b"survived" not in proc.stdout
    refused(joblib.load(path), "left child")


def test_every_object_of_a_class_is_checked_not_only_the_first(
    tree_clf: DecisionTreeClassifier,
) -> None:
    # The walk asks for a class's checks once: they must still run on each of its objects.
    t = tree_clf.tree_

    def edit(nodes: np.ndarray) -> None:
        nodes["feature"][first_split(t)] = t.n_features + 3

    bad = with_tree(tree_clf, rebuilt_tree(t, edit))
    validate_model([tree_clf, copy.deepcopy(tree_clf)])
    # The walk visits a list's last item first: the bad one comes after two good ones.
    model = [bad, tree_clf, copy.deepcopy(tree_clf)]
    refused(model, "[0].tree_", f"feature {t.n_features + 3}")


def test_the_fast_tree_check_refuses_exactly_what_the_detailed_one_refuses(
    tree_clf: DecisionTreeClassifier,
) -> None:
    """check_tree asks in a few numpy calls what _explain asks one check at a time.

    Random edits of children, features and depth (self-loops, back edges, shared children,
    one-sided leaves, unreachable nodes, out of range both ways) must get the same verdict
    from both, and every refusal the detailed check's own reason.
    """
    from safeload.validation.trees import Invalid, _explain, check_tree

    t = tree_clf.tree_
    n = t.node_count
    rng = np.random.default_rng(17)
    refusals = 0
    for _ in range(600):
        edits = []
        for _ in range(int(rng.integers(1, 3))):
            node = int(rng.integers(0, n))
            field = str(rng.choice(["left_child", "right_child", "feature"]))
            value = int(rng.choice([-2, -1, 0, 1, node, node + 1, n - 1, n, t.n_features, 2**40]))
            edits.append((field, node, value))
        if rng.random() < 0.2:  # a node made a leaf: whatever hung below it is unreachable
            node = int(rng.integers(0, n))
            edits += [("left_child", node, -1), ("right_child", node, -1)]

        def edit(nodes: np.ndarray, edits: list[tuple[str, int, int]] = edits) -> None:
            for field, node, value in edits:
                nodes[field][node] = value

        changes = {"max_depth": int(rng.integers(0, t.max_depth + 1))} if rng.random() < 0.1 else {}
        tree = rebuilt_tree(t, edit, **changes)
        verdicts = []
        for check in (check_tree, _explain):
            try:
                check(tree)
                verdicts.append(None)
            except Invalid as exc:
                verdicts.append(exc.message)
        assert verdicts[0] == verdicts[1], edits
        assert verdicts[0] is None or "no single check" not in verdicts[0]
        refusals += verdicts[0] is not None
    assert 300 < refusals < 600  # both kinds of case were drawn


def test_checks_are_chosen_by_class_and_bases_as_isinstance_chooses_them() -> None:
    """The walk picks checks from an object's MRO, not from ``isinstance`` (whose ABC half
    walks every subclass in a fresh process): for every scikit-learn estimator, and for an
    object whose ``__class__`` claims another class, both choose the same checks."""
    from sklearn.utils import all_estimators

    from safeload.validation._walk import _checks_for, _registry

    estimators = [cls for _, cls in all_estimators()]
    registry = _registry()
    assert len(registry) > 40  # every family's classes were imported by all_estimators

    def by_isinstance(obj: object) -> list[Any]:
        return [check for classes, check in registry if isinstance(obj, classes)]

    tree = DecisionTreeClassifier(max_depth=2).fit(X, y).tree_
    samples = [cls.__new__(cls) for cls in estimators] + [tree, KDTree(X), BallTree(X)]
    compared = 0
    for obj in samples:
        cls = type(obj)
        assert list(_checks_for(obj, registry)) == by_isinstance(obj), cls
        compared += bool(by_isinstance(obj))
    assert compared > 150  # most estimators have checks of their own

    class Disguised:
        __class__ = RandomForestClassifier  # isinstance asks __class__ too: so does the walk

    disguised = Disguised()
    assert isinstance(disguised, RandomForestClassifier)
    assert list(_checks_for(disguised, registry)) == by_isinstance(disguised) != []
