"""Structural validation of a deserialized model, before it is returned to the caller.

The trusted-type policy decides *which* classes a model file may build; it cannot decide
whether the numbers inside them are consistent. Several scikit-learn structures are walked by
native code that trusts its indices (Cython compiled with ``boundscheck=False``, libsvm), so a
signed-but-crafted (or corrupted) model can read or write out of bounds, and crash the process
or worse, the first time it predicts. :func:`validate_model` walks the loaded object graph and
checks those structures against the invariants scikit-learn itself guarantees when it builds
them, and refuses the model (:class:`~safeload.errors.MalformedArtifactError`, naming where in
the model and what) if any does not hold:

* ``sklearn.tree._tree.Tree`` (decision trees, forests, gradient boosting, isolation forests):
  ``1 <= node_count <= capacity``; a node is a leaf iff both children are ``TREE_LEAF``; every
  child index lies in ``(parent, node_count)`` (sklearn adds a parent before its children, so
  this also rules out cycles); every node but the root has exactly one parent; split features
  lie in ``[0, n_features)``; the stored ``max_depth`` covers the real depth (``decision_path``
  sizes its buffer with it); ``n_classes``/``value`` agree with ``n_outputs``; and the tree
  agrees with its estimator (``n_features_in_``, ``n_outputs_``, ``n_classes_``), forest or
  boosting ensemble (shape of ``estimators_``, regression trees, feature subsets).
* HistGradientBoosting ``TreePredictor``: node dtype, children in ``(parent, n_nodes)`` with one
  parent each, feature indices within ``n_features_in_``, categorical splits only on features
  the bin mapper marks categorical, bitset indices within the bitset arrays (shape ``(n, 8)``).
* ``KDTree``/``BallTree``: ``idx_array`` a permutation-range of the samples, node ranges within
  it, ``n_nodes = 2**n_levels - 1`` with children of inner nodes in range, ``node_bounds`` shape,
  ``sample_weight`` length, and the distance metric's parameters sized for the data.
* libsvm models (SVC, NuSVC, SVR, NuSVR, OneClassSVM): ``_n_support``, ``support_``,
  ``support_vectors_``, ``_dual_coef_``, ``_intercept_``, ``_probA``/``_probB`` sizes agree.
* scipy sparse matrices/arrays (``check_format(full_check=True)``, coordinate bounds),
  ``BSpline`` knots/coefficients/degree, k-means centers, and hashing ``n_features``.

The walk visits estimators' ``__dict__`` values, lists, tuples, sets, dicts and object arrays;
it is iterative, cycle-safe and bounded (``max_objects``). It never calls a model method that
runs native code on the structures before they have been checked. It does not (cannot) prove a
model harmless: it closes the memory-safety holes listed here, for the types of the default
policy.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from safeload.errors import MalformedArtifactError, shown

#: Upper bound on the objects (and object-array elements) one validation visits.
MAX_OBJECTS = 2_000_000

_TREE_LEAF = -1
_PRIMITIVES = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic)
_OPAQUE = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    np.ufunc,
    np.dtype,
)


class _Invalid(Exception):
    """A problem found inside one structure (turned into MalformedArtifactError with a path).

    ``where`` locates it below the object being visited (``"estimators_[3].tree_"``).
    """

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def within(self, where: str) -> _Invalid:
        """The same problem, located one step further up."""
        inner = self.where
        joined = where + (inner if not inner or inner.startswith("[") else "." + inner)
        return _Invalid(self.message, joined)


def _join(path: str, where: str) -> str:
    if not where:
        return path
    return path + (where if where.startswith("[") else "." + where)


# A place in the model, built in O(1) per object and rendered only for a refusal: eager path
# strings cost depth x length per object (quadratic for a deep tuple, gigabytes below a huge
# attribute name). ``()`` is the model itself; otherwise (parent, how, step).
_Path = tuple[Any, ...]
_ROOT: _Path = ()
_SHOWN_STEPS = 12


def _render(path: _Path) -> str:
    """``model.steps[1][1].tree_``: the last few steps, each shown short (``errors.shown``)."""
    steps: list[str] = []
    while path and len(steps) <= _SHOWN_STEPS:
        path, how, step = path
        if how == "attr":
            name = step if isinstance(step, str) and len(step) <= 60 else shown(step)
            steps.append(f".{name}")
        elif how == "item":
            steps.append(f"[{step}]")
        else:
            steps.append(f"[{shown(step)}]" if how == "key" else f"<key {shown(step)}>")
    prefix = "model..." if path else "model"
    return prefix + "".join(reversed(steps[:_SHOWN_STEPS]))


def validate_model(obj: object, *, max_objects: int = MAX_OBJECTS) -> None:
    """Check every structure in ``obj`` whose inconsistency could crash native code.

    Args:
        obj: The freshly deserialized model (any object graph).
        max_objects: Refuse graphs with more objects than this (bounded time and memory).

    Raises:
        MalformedArtifactError: Naming the path inside the model (``model.steps[1][1].tree_``)
            and the inconsistency found.
    """
    _Walker(max_objects).run(obj)


# ---- the walk --------------------------------------------------------------------------------


class _Walker:
    def __init__(self, max_objects: int) -> None:
        self.max_objects = max_objects
        self.visited = 0
        self.seen: set[int] = set()
        self.trees: dict[int, _TreeFacts] = {}
        self.stack: list[tuple[_Path, Any]] = []

    def run(self, root: object) -> None:
        self.stack.append((_ROOT, root))
        while self.stack:
            path, obj = self.stack.pop()
            try:
                self.visit(path, obj)
            except _Invalid as exc:
                raise MalformedArtifactError(
                    f"the model is structurally invalid at {_join(_render(path), exc.where)}: "
                    f"{exc.message}. It was refused "
                    "before use because native code would trust these values; re-create the "
                    "artifact from the original training run."
                ) from None

    def push(self, path: _Path, obj: Any) -> None:
        if isinstance(obj, _PRIMITIVES) or isinstance(obj, _OPAQUE):
            return
        if id(obj) in self.seen:
            return
        self.visited += 1
        if self.visited > self.max_objects:
            raise MalformedArtifactError(
                f"the model holds more than {self.max_objects} objects; refusing to walk it "
                f"(reached at {_render(path)})"
            )
        self.seen.add(id(obj))
        self.stack.append((path, obj))

    def visit(self, path: _Path, obj: Any) -> None:
        import scipy.sparse as sp

        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                self.count(obj.size, path)
                flat = np.asarray(obj).reshape(-1)
                if flat.dtype == object:
                    for i, item in enumerate(flat):
                        self.push((path, "item", i), item)
            return
        if sp.issparse(obj):
            _check_sparse(obj)
            return
        if isinstance(obj, dict):
            self.count(len(obj), path)
            for key, value in obj.items():
                self.push((path, "key", key), value)
                self.push((path, "keyof", key), key)
            return
        if isinstance(obj, (list, tuple, set, frozenset)):
            self.count(len(obj), path)
            for i, item in enumerate(obj):
                self.push((path, "item", i), item)
            return
        for check in _checks_for(obj):
            check(self, obj)
        attrs = getattr(obj, "__dict__", None)
        if isinstance(attrs, dict):
            self.count(len(attrs), path)
            for name, value in attrs.items():
                self.push((path, "attr", name), value)

    def count(self, n: int, path: _Path) -> None:
        self.visited += n
        if self.visited > self.max_objects:
            raise MalformedArtifactError(
                f"the model holds more than {self.max_objects} objects; refusing to walk it "
                f"(reached at {_render(path)})"
            )

    def tree(self, tree: Any) -> _TreeFacts:
        """Validate a Tree once (cached) and return what context checks need."""
        facts = self.trees.get(id(tree))
        if facts is None:
            facts = self.trees[id(tree)] = _check_tree(tree)
        return facts


# ---- dispatch --------------------------------------------------------------------------------


_Check = Callable[[_Walker, Any], None]


def _checks_for(obj: Any) -> Iterator[_Check]:
    """The checks that apply to obj, by isinstance against the classes imported lazily."""
    for classes, check in _registry():
        if isinstance(obj, classes):
            yield check


# The classes each check applies to, by exact module and name. A model can only hold an
# instance of a class (or of a subclass) whose module is already imported, so the registry is
# built from ``sys.modules`` and never imports anything: validating a pipeline does not pay for
# importing trees, neighbors and SVMs it does not contain.
_SPEC: list[tuple[tuple[tuple[str, str], ...], str]] = [
    ((("sklearn.tree._tree", "Tree"),), "_visit_tree"),
    (
        (("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"),),
        "_visit_predictor",
    ),
    (
        (("sklearn.neighbors._kd_tree", "KDTree"), ("sklearn.neighbors._kd_tree", "KDTree32")),
        "_visit_kd_tree",
    ),
    (
        (
            ("sklearn.neighbors._ball_tree", "BallTree"),
            ("sklearn.neighbors._ball_tree", "BallTree32"),
        ),
        "_visit_ball_tree",
    ),
    ((("sklearn.metrics._dist_metrics", "DistanceMetric"),), "_visit_metric"),
    ((("scipy.interpolate._bsplines", "BSpline"),), "_visit_bspline"),
    ((("sklearn.ensemble._forest", "BaseForest"),), "_visit_forest"),
    ((("sklearn.ensemble._bagging", "BaseBagging"),), "_visit_bagging"),
    ((("sklearn.ensemble._gb", "BaseGradientBoosting"),), "_visit_gradient_boosting"),
    (
        (
            (
                "sklearn.ensemble._hist_gradient_boosting.gradient_boosting",
                "BaseHistGradientBoosting",
            ),
        ),
        "_visit_hist_gradient_boosting",
    ),
    ((("sklearn.svm._base", "BaseLibSVM"),), "_visit_libsvm"),
    ((("sklearn.cluster._kmeans", "_BaseKMeans"),), "_visit_kmeans"),
    (
        (
            ("sklearn.feature_extraction._hash", "FeatureHasher"),
            ("sklearn.feature_extraction.text", "HashingVectorizer"),
        ),
        "_visit_hasher",
    ),
]
_REGISTRY_CACHE: dict[frozenset[str], list[tuple[tuple[type, ...], _Check]]] = {}


def _registry() -> list[tuple[tuple[type, ...], _Check]]:
    loaded = frozenset(module for names, _ in _SPEC for module, _ in names if module in sys.modules)
    cached = _REGISTRY_CACHE.get(loaded)
    if cached is not None:
        return cached
    registry: list[tuple[tuple[type, ...], _Check]] = []
    for names, check_name in _SPEC:
        classes = tuple(
            cls
            for module, name in names
            if module in sys.modules
            and isinstance(cls := getattr(sys.modules[module], name, None), type)
        )
        if classes:
            registry.append((classes, globals()[check_name]))
    registry.append(((object,), _visit_tree_owner))
    _REGISTRY_CACHE[loaded] = registry
    return registry


def _attr(obj: Any, name: str) -> Any:
    """A fitted attribute read from ``__dict__`` (no properties, no computation)."""
    attrs = getattr(obj, "__dict__", None)
    return attrs.get(name) if isinstance(attrs, dict) else None


def _int(value: Any, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise _Invalid(f"{what} is {type(value).__name__}, not an integer")
    return int(value)


def _array(value: Any, what: str, *, ndim: int | None = None) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise _Invalid(f"{what} is {type(value).__name__}, not an array")
    if ndim is not None and value.ndim != ndim:
        raise _Invalid(f"{what} has {value.ndim} dimension(s), expected {ndim}")
    return value


# ---- decision trees --------------------------------------------------------------------------


class _TreeFacts:
    """What the context checks need to know about a validated Tree."""

    def __init__(self, n_features: int, n_outputs: int, n_classes: np.ndarray) -> None:
        self.n_features = n_features
        self.n_outputs = n_outputs
        self.n_classes = n_classes


def _check_children(left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray) -> np.ndarray:
    """Shared node-graph check for binary trees stored as child-index arrays.

    Returns the depth of each node. Requires: children of inner nodes in (parent, n); each
    node except the root has exactly one parent. Together these make the graph a tree rooted
    at 0 (no cycles, no shared subtrees, nothing unreachable).
    """
    n = left.shape[0]
    inner = np.flatnonzero(~is_leaf)
    lft = left[inner]
    rgt = right[inner]
    for side, child in (("left", lft), ("right", rgt)):
        bad = np.flatnonzero((child <= inner) | (child >= n))
        if bad.size:
            node = int(inner[bad[0]])
            raise _Invalid(
                f"node {node} has {side} child {int(child[bad[0]])}, outside ({node}, {n}) "
                "(out of range, or a cycle)"
            )
    parents = np.bincount(np.concatenate([lft, rgt]).astype(np.int64), minlength=n)
    bad = np.flatnonzero(parents[1:] != 1)
    if bad.size:
        node = int(bad[0]) + 1
        raise _Invalid(f"node {node} has {int(parents[node])} parents, expected 1")
    # Depth by pointer jumping: each pass doubles how far every node's known ancestor is, so
    # log2(depth) passes of whole-array operations, not one pass per level. It terminates
    # because the checks above make every parent index smaller than its child's.
    ancestor = np.zeros(n, dtype=np.int64)
    ancestor[lft] = inner
    ancestor[rgt] = inner
    depth = np.ones(n, dtype=np.int64)
    depth[0] = 0
    while ancestor.any():
        depth += depth[ancestor] * (ancestor != 0)
        ancestor = ancestor[ancestor]
    return depth


def _check_tree(tree: Any) -> _TreeFacts:
    node_count = _int(tree.node_count, "node_count")
    capacity = _int(tree.capacity, "capacity")
    n_outputs = _int(tree.n_outputs, "n_outputs")
    max_n_classes = _int(tree.max_n_classes, "max_n_classes")
    n_features = _int(tree.n_features, "n_features")
    max_depth = _int(tree.max_depth, "max_depth")
    # Nothing below may touch the node arrays before this holds: they are views of node_count
    # records over a buffer of capacity records.
    if not 1 <= node_count <= capacity:
        raise _Invalid(f"node_count {node_count} is outside [1, capacity={capacity}]")
    if n_outputs < 1 or max_n_classes < 1 or n_features < 1:
        raise _Invalid(
            f"n_outputs={n_outputs}, max_n_classes={max_n_classes}, n_features={n_features} "
            "must all be >= 1"
        )
    n_classes = np.asarray(tree.n_classes, dtype=np.int64)
    if n_classes.shape != (n_outputs,) or n_classes.min() < 1 or n_classes.max() != max_n_classes:
        raise _Invalid(
            f"n_classes {shown(n_classes)} does not match n_outputs={n_outputs} and "
            f"max_n_classes={max_n_classes}"
        )
    value_shape = tuple(tree.value.shape)
    if value_shape != (node_count, n_outputs, max_n_classes):
        raise _Invalid(
            f"value array has shape {value_shape}, expected "
            f"{(node_count, n_outputs, max_n_classes)}"
        )
    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    feature = np.asarray(tree.feature, dtype=np.int64)
    is_leaf = left == _TREE_LEAF
    mixed = np.flatnonzero(is_leaf != (right == _TREE_LEAF))
    if mixed.size:
        raise _Invalid(f"node {int(mixed[0])} has exactly one child marked as a leaf")
    depth = _check_children(left, right, is_leaf)
    split_features = feature[~is_leaf]
    bad = np.flatnonzero((split_features < 0) | (split_features >= n_features))
    if bad.size:
        node = int(np.flatnonzero(~is_leaf)[bad[0]])
        raise _Invalid(
            f"node {node} splits on feature {int(split_features[bad[0]])}, outside "
            f"[0, n_features={n_features})"
        )
    if int(depth.max()) > max_depth:
        raise _Invalid(f"the tree is {int(depth.max())} deep but max_depth says {max_depth}")
    return _TreeFacts(n_features, n_outputs, n_classes)


def _visit_tree(walker: _Walker, tree: Any) -> None:
    walker.tree(tree)


def _visit_tree_owner(walker: _Walker, obj: Any) -> None:
    """A decision-tree estimator: its Tree must match its own fitted attributes."""
    from sklearn.tree._tree import Tree

    tree = _attr(obj, "tree_")
    if not isinstance(tree, Tree):
        return
    facts = _tree_facts(walker, tree, "tree_")
    n_in = _attr(obj, "n_features_in_")
    if n_in is not None and facts.n_features != _int(n_in, "n_features_in_"):
        raise _Invalid(
            f"built for {facts.n_features} features but the estimator checks its input "
            f"against n_features_in_={n_in}",
            "tree_",
        )
    n_out = _attr(obj, "n_outputs_")
    if n_out is not None and facts.n_outputs != _int(n_out, "n_outputs_"):
        raise _Invalid(
            f"{facts.n_outputs} outputs but the estimator has n_outputs_={n_out}", "tree_"
        )
    n_cls = _attr(obj, "n_classes_")
    if n_cls is not None:
        expected = np.atleast_1d(np.asarray(n_cls, dtype=np.int64))
        if not np.array_equal(expected, facts.n_classes):
            raise _Invalid(
                f"n_classes {shown(facts.n_classes)} but the estimator has "
                f"n_classes_={shown(expected)}",
                "tree_",
            )


def _tree_facts(walker: _Walker, tree: Any, where: str) -> _TreeFacts:
    try:
        return walker.tree(tree)
    except _Invalid as exc:
        raise exc.within(where) from None


def _sub_tree(walker: _Walker, est: Any, where: str) -> _TreeFacts:
    from sklearn.tree._tree import Tree

    tree = _attr(est, "tree_")
    if not isinstance(tree, Tree):
        raise _Invalid(f"{type(est).__name__} without a fitted tree_", where)
    return _tree_facts(walker, tree, f"{where}.tree_")


def _visit_forest(walker: _Walker, forest: Any) -> None:
    """Forests call their trees with ``check_input=False`` on X checked against the forest."""
    estimators = _attr(forest, "estimators_")
    n_in = _attr(forest, "n_features_in_")
    if estimators is None or n_in is None:
        return
    n_in = _int(n_in, "n_features_in_")
    if not isinstance(estimators, list):
        raise _Invalid(f"estimators_ is {type(estimators).__name__}, not a list")
    for i, est in enumerate(estimators):
        facts = _sub_tree(walker, est, f"estimators_[{i}]")
        if facts.n_features != n_in:
            raise _Invalid(
                f"built for {facts.n_features} features, but the forest checks its input "
                f"against n_features_in_={n_in}",
                f"estimators_[{i}]",
            )


def _visit_bagging(walker: _Walker, bagging: Any) -> None:
    """IsolationForest applies its trees, unchecked, to ``X[:, estimators_features_[i]]``."""
    from sklearn.ensemble import IsolationForest

    if not isinstance(bagging, IsolationForest):
        return  # Bagging* call their sub-estimators' public (input-checking) methods
    estimators = _attr(bagging, "estimators_")
    features = _attr(bagging, "estimators_features_")
    n_in = _attr(bagging, "n_features_in_")
    if estimators is None or n_in is None:
        return
    n_in = _int(n_in, "n_features_in_")
    if (
        not isinstance(estimators, list)
        or not isinstance(features, list)
        or len(features) != len(estimators)
    ):
        raise _Invalid("estimators_ and estimators_features_ are not lists of the same length")
    subsample = _attr(bagging, "_max_features") != n_in
    for i, (est, cols) in enumerate(zip(estimators, features, strict=True)):
        facts = _sub_tree(walker, est, f"estimators_[{i}]")
        cols = _array(cols, f"estimators_features_[{i}]", ndim=1)
        width = cols.shape[0] if subsample else n_in
        if facts.n_features != width:
            raise _Invalid(
                f"built for {facts.n_features} features but applied to {width}",
                f"estimators_[{i}]",
            )


def _visit_gradient_boosting(walker: _Walker, gb: Any) -> None:
    """``predict_stages`` writes ``out[:, k]`` for each column k of ``estimators_`` unchecked."""
    from sklearn.dummy import DummyClassifier

    estimators = _attr(gb, "estimators_")
    n_in = _attr(gb, "n_features_in_")
    if estimators is None or n_in is None:
        return
    n_in = _int(n_in, "n_features_in_")
    estimators = _array(estimators, "estimators_", ndim=2)
    if estimators.dtype != object or estimators.shape[0] < 1:
        raise _Invalid("estimators_ is not a non-empty 2-D object array")
    k = estimators.shape[1]
    per_iter = _attr(gb, "n_trees_per_iteration_")
    if per_iter is not None and k != _int(per_iter, "n_trees_per_iteration_"):
        raise _Invalid(f"estimators_ has {k} columns but n_trees_per_iteration_={per_iter}")
    if k > 1:
        # The raw predictions predict_stages adds to have as many columns as the init
        # estimator's predict_proba: it must know exactly k classes.
        init = _attr(gb, "init_")
        if not (isinstance(init, str) and init == "zero"):
            classes = _attr(init, "classes_")
            if not isinstance(classes, np.ndarray) or classes.shape != (k,):
                raise _Invalid(f"init_ does not predict the {k} classes estimators_ needs")
            if isinstance(init, DummyClassifier):
                n_cls = _attr(init, "n_classes_")
                prior = _attr(init, "class_prior_")
                if (
                    n_cls is None
                    or _int(n_cls, "init_.n_classes_") != k
                    or not (isinstance(prior, np.ndarray) and prior.shape == (k,))
                ):
                    raise _Invalid(f"init_ is not a {k}-class DummyClassifier")
    for (i, j), est in np.ndenumerate(estimators):
        facts = _sub_tree(walker, est, f"estimators_[{i}, {j}]")
        if facts.n_outputs != 1 or int(facts.n_classes[0]) != 1:
            raise _Invalid("not a single-output regression tree", f"estimators_[{i}, {j}]")
        if facts.n_features != n_in:
            raise _Invalid(
                f"built for {facts.n_features} features, but the model checks its input "
                f"against n_features_in_={n_in}",
                f"estimators_[{i}, {j}]",
            )


# ---- HistGradientBoosting --------------------------------------------------------------------


def _check_predictor(
    pred: Any, n_features: int | None = None, is_categorical: np.ndarray | None = None
) -> None:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = _array(_attr(pred, "nodes"), "nodes", ndim=1)
    if nodes.dtype != PREDICTOR_RECORD_DTYPE:
        raise _Invalid(f"nodes have dtype {nodes.dtype}, expected the predictor record dtype")
    if nodes.shape[0] < 1:
        raise _Invalid("the predictor has no nodes")
    bitsets = {}
    for name in ("raw_left_cat_bitsets", "binned_left_cat_bitsets"):
        arr = _array(_attr(pred, name), name, ndim=2)
        if arr.shape[1] != 8 or arr.dtype != np.uint32:
            raise _Invalid(
                f"{name} has shape {arr.shape} and dtype {arr.dtype}, expected (n, 8) uint32"
            )
        bitsets[name] = arr.shape[0]
    is_leaf = nodes["is_leaf"] != 0
    left = nodes["left"].astype(np.int64)
    right = nodes["right"].astype(np.int64)
    _check_children(left, right, is_leaf)
    inner = np.flatnonzero(~is_leaf)
    feature = nodes["feature_idx"][inner].astype(np.int64)
    limit = n_features if n_features is not None else np.iinfo(np.int64).max
    bad = np.flatnonzero((feature < 0) | (feature >= limit))
    if bad.size:
        raise _Invalid(
            f"node {int(inner[bad[0]])} splits on feature {int(feature[bad[0]])}, outside "
            f"[0, {limit})"
        )
    categorical = nodes["is_categorical"][inner] != 0
    if categorical.any():
        cat_nodes = inner[categorical]
        idx = nodes["bitset_idx"][cat_nodes].astype(np.int64)
        n_bitsets = min(bitsets.values())
        bad = np.flatnonzero(idx >= n_bitsets)
        if bad.size:
            raise _Invalid(
                f"node {int(cat_nodes[bad[0]])} uses categorical bitset {int(idx[bad[0]])} of "
                f"{n_bitsets}"
            )
        if is_categorical is not None:
            cat_features = feature[categorical]
            bad = np.flatnonzero(is_categorical[cat_features] == 0)
            if bad.size:
                raise _Invalid(
                    f"node {int(cat_nodes[bad[0]])} makes a categorical split on feature "
                    f"{int(cat_features[bad[0]])}, which the bin mapper says is not categorical"
                )


def _visit_predictor(walker: _Walker, pred: Any) -> None:
    _check_predictor(pred)


def _visit_hist_gradient_boosting(walker: _Walker, hgb: Any) -> None:
    predictors = _attr(hgb, "_predictors")
    n_in = _attr(hgb, "n_features_in_")
    if predictors is None or n_in is None:
        return
    n_in = _int(n_in, "n_features_in_")
    mapper = _attr(hgb, "_bin_mapper")
    is_cat = _attr(mapper, "is_categorical_")
    is_cat = _array(is_cat, "_bin_mapper.is_categorical_", ndim=1)
    if is_cat.shape[0] != n_in:
        raise _Invalid(
            f"_bin_mapper.is_categorical_ has {is_cat.shape[0]} entries for n_features_in_={n_in}"
        )
    if not isinstance(predictors, list):
        raise _Invalid("_predictors is not a list")
    for i, per_iter in enumerate(predictors):
        if not isinstance(per_iter, list):
            raise _Invalid("not a list", f"_predictors[{i}]")
        for k, pred in enumerate(per_iter):
            try:
                _check_predictor(pred, n_in, is_cat)
            except _Invalid as exc:
                raise exc.within(f"_predictors[{i}][{k}]") from None


# ---- neighbors -------------------------------------------------------------------------------


def _check_binary_tree(tree: Any, bounds_rows: int) -> None:
    state = tree.__getstate__()
    data = _array(np.asarray(state[0]), "data", ndim=2)
    idx_array = _array(np.asarray(state[1]), "idx_array", ndim=1)
    node_data = np.asarray(state[2])
    node_bounds = _array(np.asarray(state[3]), "node_bounds", ndim=3)
    n_levels = _int(state[5], "n_levels")
    n_nodes = _int(state[6], "n_nodes")
    metric = state[11]
    sample_weight = state[12]
    n_samples, n_features = data.shape
    if n_samples < 1:
        raise _Invalid("the tree holds no samples")
    if idx_array.shape[0] != n_samples:
        raise _Invalid(f"idx_array has {idx_array.shape[0]} entries for {n_samples} samples")
    if idx_array.size and (idx_array.min() < 0 or idx_array.max() >= n_samples):
        raise _Invalid(f"idx_array has indices outside [0, {n_samples})")
    if not 1 <= n_levels <= 62 or n_nodes != 2**n_levels - 1:
        raise _Invalid(f"n_nodes={n_nodes} does not match n_levels={n_levels}")
    if (
        node_data.shape != (n_nodes,)
        or node_data.dtype.names is None
        or not {"idx_start", "idx_end", "is_leaf"} <= set(node_data.dtype.names)
    ):
        raise _Invalid(f"node_data has shape {node_data.shape}, expected ({n_nodes},) records")
    start = node_data["idx_start"].astype(np.int64)
    end = node_data["idx_end"].astype(np.int64)
    bad = np.flatnonzero((start < 0) | (start > end) | (end > n_samples))
    if bad.size:
        raise _Invalid(
            f"node {int(bad[0])} covers [{start[bad[0]]}, {end[bad[0]]}) outside [0, {n_samples}]"
        )
    inner = np.flatnonzero(node_data["is_leaf"] == 0)
    if inner.size and int(inner.max()) * 2 + 2 >= n_nodes:
        raise _Invalid(f"inner node {int(inner.max())} has children beyond n_nodes={n_nodes}")
    if node_bounds.shape != (bounds_rows, n_nodes, n_features):
        raise _Invalid(
            f"node_bounds has shape {node_bounds.shape}, expected "
            f"{(bounds_rows, n_nodes, n_features)}"
        )
    if sample_weight is not None and np.shape(sample_weight) != (n_samples,):
        raise _Invalid(f"sample_weight has shape {np.shape(sample_weight)} for {n_samples} samples")
    _check_metric(metric, n_features)


def _visit_kd_tree(walker: _Walker, tree: Any) -> None:
    _check_binary_tree(tree, 2)


def _visit_ball_tree(walker: _Walker, tree: Any) -> None:
    _check_binary_tree(tree, 1)


def _check_metric(metric: Any, n_features: int | None) -> None:
    from sklearn.metrics._dist_metrics import DistanceMetric

    if not isinstance(metric, DistanceMetric):
        raise _Invalid(f"dist_metric is {type(metric).__name__}, not a DistanceMetric")
    state = metric.__getstate__()
    mat = np.asarray(state[2])
    if type(metric).__name__.startswith("MahalanobisDistance") and (
        mat.ndim != 2 or mat.shape[0] != mat.shape[1]
    ):
        # rdist reads mat[i, j] for i, j < size = mat.shape[0]
        raise _Invalid(f"Mahalanobis matrix has shape {mat.shape}, expected a square matrix")
    if n_features is not None:
        try:
            metric._validate_data(np.zeros((1, n_features)))
        except ValueError as exc:
            raise _Invalid(
                f"{type(metric).__name__} does not fit {n_features} features: {exc}"
            ) from None


def _visit_metric(walker: _Walker, metric: Any) -> None:
    _check_metric(metric, None)


# ---- libsvm ----------------------------------------------------------------------------------


def _visit_libsvm(walker: _Walker, svm: Any) -> None:
    import scipy.sparse as sp

    support = _attr(svm, "support_")
    if support is None:
        return  # not fitted
    support = _array(support, "support_", ndim=1)
    n_sv = support.shape[0]
    n_support = _array(_attr(svm, "_n_support"), "_n_support", ndim=1)
    n_class = n_support.shape[0]
    if n_class < 2:
        raise _Invalid(f"_n_support has {n_class} entries, expected at least 2")
    pairs = n_class * (n_class - 1) // 2
    # _impl is a class attribute (an instance may shadow it): read it the way predict does.
    if getattr(svm, "_impl", None) in ("c_svc", "nu_svc") and (
        n_support.min() < 0 or int(n_support.sum()) != n_sv
    ):
        raise _Invalid(f"_n_support {shown(n_support)} does not add up to {n_sv} support vectors")
    shape_fit = _attr(svm, "shape_fit_")
    if not isinstance(shape_fit, tuple) or len(shape_fit) != 2:
        raise _Invalid("shape_fit_ is not a 2-tuple")
    if n_sv and (support.min() < 0 or support.max() >= _int(shape_fit[0], "shape_fit_[0]")):
        raise _Invalid(f"support_ has indices outside the {shape_fit[0]} training samples")
    vectors = _attr(svm, "support_vectors_")
    n_in = _attr(svm, "n_features_in_")
    if sp.issparse(vectors):
        if vectors.shape[0] != n_sv:
            raise _Invalid(f"support_vectors_ has {vectors.shape[0]} rows for {n_sv} supports")
    else:
        vectors = _array(vectors, "support_vectors_", ndim=2)
        precomputed = vectors.size == 0
        if not precomputed and (
            vectors.shape[0] != n_sv
            or (n_in is not None and vectors.shape[1] != _int(n_in, "n_features_in_"))
        ):
            raise _Invalid(
                f"support_vectors_ has shape {vectors.shape} for {n_sv} supports and "
                f"{n_in} features"
            )
    dual = _attr(svm, "_dual_coef_")
    if tuple(getattr(dual, "shape", ())) != (n_class - 1, n_sv):
        raise _Invalid(
            f"_dual_coef_ has shape {getattr(dual, 'shape', None)}, expected {(n_class - 1, n_sv)}"
        )
    if sp.issparse(dual) and dual.data.shape[0] != (n_class - 1) * n_sv:
        raise _Invalid("sparse _dual_coef_ is not stored densely")
    intercept = _array(_attr(svm, "_intercept_"), "_intercept_", ndim=1)
    if intercept.shape[0] != pairs:
        raise _Invalid(f"_intercept_ has {intercept.shape[0]} entries, expected {pairs}")
    prob_a = _array(_attr(svm, "_probA"), "_probA", ndim=1)
    prob_b = _array(_attr(svm, "_probB"), "_probB", ndim=1)
    if prob_a.shape != prob_b.shape or prob_a.shape[0] not in (0, pairs):
        raise _Invalid(
            f"_probA/_probB have {prob_a.shape}/{prob_b.shape} entries, expected 0 or {pairs}"
        )


# ---- others ----------------------------------------------------------------------------------


def _check_sparse(matrix: Any) -> None:
    fmt = getattr(matrix, "format", None)
    try:
        if fmt in ("csr", "csc", "bsr"):
            matrix.check_format(full_check=True)
        elif fmt == "coo":
            coords = getattr(matrix, "coords", None)
            if coords is None:
                coords = (matrix.row, matrix.col)
            nnz = np.asarray(matrix.data).shape[0]
            for axis, (index, size) in enumerate(zip(coords, matrix.shape, strict=True)):
                index = np.asarray(index)
                if index.shape != (nnz,):
                    raise ValueError(f"axis {axis} has {index.shape} coordinates for {nnz} values")
                if index.size and (index.min() < 0 or index.max() >= size):
                    raise ValueError(f"axis {axis} has coordinates outside [0, {size})")
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise _Invalid(f"sparse {fmt} matrix is inconsistent: {exc}") from None


def _visit_bspline(walker: _Walker, spline: Any) -> None:
    from scipy.interpolate import BSpline

    knots = _attr(spline, "_t")
    coefs = _attr(spline, "_c")
    if knots is None:
        knots = _attr(spline, "t")
        coefs = _attr(spline, "c")
    try:
        BSpline(
            np.asarray(knots),
            np.asarray(coefs),
            _int(_attr(spline, "k"), "k"),
            extrapolate=_attr(spline, "extrapolate"),
        )
    except (ValueError, TypeError) as exc:
        raise _Invalid(f"BSpline knots, coefficients and degree are inconsistent: {exc}") from None


def _visit_kmeans(walker: _Walker, kmeans: Any) -> None:
    centers = _attr(kmeans, "cluster_centers_")
    n_in = _attr(kmeans, "n_features_in_")
    if centers is None or n_in is None:
        return
    centers = _array(centers, "cluster_centers_", ndim=2)
    if centers.shape[0] < 1 or centers.shape[1] != _int(n_in, "n_features_in_"):
        raise _Invalid(f"cluster_centers_ has shape {centers.shape} for n_features_in_={n_in}")


def _visit_hasher(walker: _Walker, hasher: Any) -> None:
    n_features = _int(_attr(hasher, "n_features"), "n_features")
    if not 1 <= n_features <= np.iinfo(np.int32).max:
        raise _Invalid(f"n_features={n_features} is outside [1, 2**31 - 1]")
