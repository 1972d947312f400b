"""Decision trees and the ensembles that call them without checking their input.

A ``Tree`` is walked by Cython with ``boundscheck=False``: child and feature indices, depth and
class counts are trusted. Forests, isolation forests and gradient boosting call their trees
with ``check_input=False``, so each tree must agree with the ensemble that owns it.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, array, attr, integer

TREE_LEAF = -1


class TreeFacts:
    """What the context checks need to know about a validated Tree."""

    def __init__(self, n_features: int, n_outputs: int, n_classes: np.ndarray) -> None:
        self.n_features = n_features
        self.n_outputs = n_outputs
        self.n_classes = n_classes


def check_graph(
    left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared node-graph check for binary trees stored as child-index arrays.

    Requires: children of inner nodes in (parent, n); each node except the root has exactly
    one parent. Together these make the graph a tree rooted at 0 (no cycles, no shared
    subtrees, nothing unreachable), whose every parent index is smaller than its children's.
    Returns the inner nodes and their left and right children.
    """
    n = left.shape[0]
    inner = np.flatnonzero(~is_leaf)
    lft = left[inner]
    rgt = right[inner]
    for side, child in (("left", lft), ("right", rgt)):
        bad = np.flatnonzero((child <= inner) | (child >= n))
        if bad.size:
            node = int(inner[bad[0]])
            raise Invalid(
                f"node {node} has {side} child {int(child[bad[0]])}, outside ({node}, {n}) "
                "(out of range, or a cycle)"
            )
    parents = np.bincount(np.concatenate([lft, rgt]).astype(np.int64), minlength=n)
    bad = np.flatnonzero(parents[1:] != 1)
    if bad.size:
        node = int(bad[0]) + 1
        raise Invalid(f"node {node} has {int(parents[node])} parents, expected 1")
    return inner, lft, rgt


def check_tree(tree: Any) -> TreeFacts:
    """Counts, node graph, split features and depth of one Tree, before any node is read.

    A forest has hundreds of trees, and each numpy call on a tree's strided node fields has a
    fixed cost of microseconds: this asks for the same properties in half the calls, and
    only when one fails does :func:`_explain` find which one and where.
    """
    from sklearn.tree._tree import Tree

    facts = _explain_counts(tree)
    if not _graph_holds(tree, facts.n_features):
        _explain(tree)
        raise Invalid("the node graph fails a check that no single check explains")
    # Depths by sklearn's own one-pass loop over the nodes, safe only now: it writes
    # depths[child] unchecked (every child is in (node, node_count), just shown) and is right
    # because each parent comes before its children. Called on the class, never the instance.
    depth = int(Tree.compute_node_depths(tree).max()) - 1
    max_depth = integer(tree.max_depth, "max_depth")
    if depth > max_depth:
        raise Invalid(f"the tree is {depth} deep but max_depth says {max_depth}")
    return facts


def _graph_holds(tree: Any, n_features: int) -> bool:
    """Whether the nodes form a tree rooted at 0 whose inner nodes split on known features.

    Leaves have both children -1; every inner node's children come after it and before
    node_count. The children of the inner nodes are then n - 1 distinct nodes in [1, n):
    each node but the root has exactly one parent, so there is no cycle, no shared subtree,
    and nothing unreachable (the conditions of :func:`check_graph`).
    """
    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    n = left.shape[0]
    is_leaf = left == TREE_LEAF
    if not np.array_equal(is_leaf, right == TREE_LEAF):
        return False
    inner = np.flatnonzero(~is_leaf)
    if 2 * inner.shape[0] != n - 1:
        return False
    if not inner.shape[0]:
        return True  # a lone leaf
    children = np.concatenate((left[inner], right[inner]))
    if not (children > np.concatenate((inner, inner))).all() or children.max() >= n:
        return False
    if np.bincount(children, minlength=n).max() > 1:
        return False
    split = np.asarray(tree.feature, dtype=np.int64)[inner]
    return bool(split.min() >= 0 and split.max() < n_features)


def _explain_counts(tree: Any) -> TreeFacts:
    """The counts of a Tree, which must hold before any of its node arrays is read."""
    node_count = integer(tree.node_count, "node_count")
    capacity = integer(tree.capacity, "capacity")
    n_outputs = integer(tree.n_outputs, "n_outputs")
    max_n_classes = integer(tree.max_n_classes, "max_n_classes")
    n_features = integer(tree.n_features, "n_features")
    integer(tree.max_depth, "max_depth")
    # Nothing may touch the node arrays before this holds: they are views of node_count
    # records over a buffer of capacity records.
    if not 1 <= node_count <= capacity:
        raise Invalid(f"node_count {node_count} is outside [1, capacity={capacity}]")
    if n_outputs < 1 or max_n_classes < 1 or n_features < 1:
        raise Invalid(
            f"n_outputs={n_outputs}, max_n_classes={max_n_classes}, n_features={n_features} "
            "must all be >= 1"
        )
    n_classes = np.asarray(tree.n_classes, dtype=np.int64)
    if n_classes.shape != (n_outputs,) or n_classes.min() < 1 or n_classes.max() != max_n_classes:
        raise Invalid(
            f"n_classes {shown(n_classes)} does not match n_outputs={n_outputs} and "
            f"max_n_classes={max_n_classes}"
        )
    value_shape = tuple(tree.value.shape)
    if value_shape != (node_count, n_outputs, max_n_classes):
        raise Invalid(
            f"value array has shape {value_shape}, expected "
            f"{(node_count, n_outputs, max_n_classes)}"
        )
    return TreeFacts(n_features, n_outputs, n_classes)


def _explain(tree: Any) -> TreeFacts:
    """:func:`check_tree` one check at a time, to say exactly which fails and where."""
    from sklearn.tree._tree import Tree

    facts = _explain_counts(tree)
    n_features = facts.n_features
    max_depth = integer(tree.max_depth, "max_depth")
    left = np.asarray(tree.children_left, dtype=np.int64)
    right = np.asarray(tree.children_right, dtype=np.int64)
    feature = np.asarray(tree.feature, dtype=np.int64)
    is_leaf = left == TREE_LEAF
    mixed = np.flatnonzero(is_leaf != (right == TREE_LEAF))
    if mixed.size:
        raise Invalid(f"node {int(mixed[0])} has exactly one child marked as a leaf")
    check_graph(left, right, is_leaf)
    # Depths by sklearn's own one-pass loop over the nodes, safe only now: it writes
    # depths[child] unchecked (every child is in (node, node_count), just shown) and is right
    # because each parent comes before its children. Called on the class, never the instance.
    depth = Tree.compute_node_depths(tree) - 1
    split_features = feature[~is_leaf]
    bad = np.flatnonzero((split_features < 0) | (split_features >= n_features))
    if bad.size:
        node = int(np.flatnonzero(~is_leaf)[bad[0]])
        raise Invalid(
            f"node {node} splits on feature {int(split_features[bad[0]])}, outside "
            f"[0, n_features={n_features})"
        )
    if int(depth.max()) > max_depth:
        raise Invalid(f"the tree is {int(depth.max())} deep but max_depth says {max_depth}")
    return facts


def _visit_tree(ctx: Context, tree: Any) -> None:
    tree_facts_once(ctx, tree)


def _visit_tree_owner(ctx: Context, obj: Any) -> None:
    """A decision-tree estimator: its Tree must match its own fitted attributes.

    Runs on every object, so it never imports: a Tree can only exist if its module was
    imported (by the unpickler), and importing ``sklearn.tree`` costs a pipeline 12 ms.
    """
    tree = attr(obj, "tree_")
    module = sys.modules.get("sklearn.tree._tree")
    if tree is None or module is None or not isinstance(tree, module.Tree):
        return
    facts = _tree_facts(ctx, tree, "tree_")
    n_in = attr(obj, "n_features_in_")
    if n_in is not None and facts.n_features != integer(n_in, "n_features_in_"):
        raise Invalid(
            f"built for {facts.n_features} features but the estimator checks its input "
            f"against n_features_in_={n_in}",
            "tree_",
        )
    n_out = attr(obj, "n_outputs_")
    if n_out is not None and facts.n_outputs != integer(n_out, "n_outputs_"):
        raise Invalid(
            f"{facts.n_outputs} outputs but the estimator has n_outputs_={n_out}", "tree_"
        )
    n_cls = attr(obj, "n_classes_")
    if n_cls is not None:
        expected = np.atleast_1d(np.asarray(n_cls, dtype=np.int64))
        if not np.array_equal(expected, facts.n_classes):
            raise Invalid(
                f"n_classes {shown(facts.n_classes)} but the estimator has "
                f"n_classes_={shown(expected)}",
                "tree_",
            )


def _tree_facts(ctx: Context, tree: Any, where: str) -> TreeFacts:
    try:
        return tree_facts_once(ctx, tree)
    except Invalid as exc:
        raise exc.within(where) from None


def _sub_tree(ctx: Context, est: Any, where: str) -> TreeFacts:
    from sklearn.tree._tree import Tree

    tree = attr(est, "tree_")
    if not isinstance(tree, Tree):
        raise Invalid(f"{type(est).__name__} without a fitted tree_", where)
    return _tree_facts(ctx, tree, f"{where}.tree_")


def _visit_forest(ctx: Context, forest: Any) -> None:
    """Forests call their trees with ``check_input=False`` on X checked against the forest."""
    estimators = attr(forest, "estimators_")
    n_in = attr(forest, "n_features_in_")
    if estimators is None or n_in is None:
        return
    n_in = integer(n_in, "n_features_in_")
    if not isinstance(estimators, list):
        raise Invalid(f"estimators_ is {type(estimators).__name__}, not a list")
    n_out = attr(forest, "n_outputs_")
    n_cls = attr(forest, "n_classes_")
    expected = None if n_cls is None else np.atleast_1d(np.asarray(n_cls, dtype=np.int64))
    for i, est in enumerate(estimators):
        facts = _sub_tree(ctx, est, f"estimators_[{i}]")
        if facts.n_features != n_in:
            raise Invalid(
                f"built for {facts.n_features} features, but the forest checks its input "
                f"against n_features_in_={n_in}",
                f"estimators_[{i}]",
            )
        # predict_proba sums each tree's output into arrays sized by the forest's counts
        if n_out is not None and facts.n_outputs != integer(n_out, "n_outputs_"):
            raise Invalid(f"{facts.n_outputs} outputs, the forest {n_out}", f"estimators_[{i}]")
        if expected is not None and not np.array_equal(expected, facts.n_classes):
            raise Invalid(
                f"n_classes {shown(facts.n_classes)}, the forest {shown(expected)}",
                f"estimators_[{i}]",
            )


def _visit_bagging(ctx: Context, bagging: Any) -> None:
    """IsolationForest applies its trees, unchecked, to ``X[:, estimators_features_[i]]``."""
    from sklearn.ensemble import IsolationForest

    if not isinstance(bagging, IsolationForest):
        return  # Bagging* call their sub-estimators' public (input-checking) methods
    estimators = attr(bagging, "estimators_")
    features = attr(bagging, "estimators_features_")
    n_in = attr(bagging, "n_features_in_")
    if estimators is None or n_in is None:
        return
    n_in = integer(n_in, "n_features_in_")
    if (
        not isinstance(estimators, list)
        or not isinstance(features, list)
        or len(features) != len(estimators)
    ):
        raise Invalid("estimators_ and estimators_features_ are not lists of the same length")
    subsample = integer(attr(bagging, "_max_features"), "_max_features") != n_in
    lengths = attr(bagging, "_decision_path_lengths")
    averages = attr(bagging, "_average_path_length_per_tree")
    for name, per_tree in (
        ("_decision_path_lengths", lengths),
        ("_average_path_length_per_tree", averages),
    ):
        if not isinstance(per_tree, (list, tuple)) or len(per_tree) != len(estimators):
            raise Invalid(f"{name} does not hold one array per tree")
    for i, (est, cols) in enumerate(zip(estimators, features, strict=True)):
        facts = _sub_tree(ctx, est, f"estimators_[{i}]")
        cols = array(cols, f"estimators_features_[{i}]", ndim=1)
        width = cols.shape[0] if subsample else n_in
        if facts.n_features != width:
            raise Invalid(
                f"built for {facts.n_features} features but applied to {width}",
                f"estimators_[{i}]",
            )
        if cols.size and (cols.dtype.kind not in "iu" or cols.min() < 0 or cols.max() >= n_in):
            raise Invalid(f"selects features outside [0, {n_in})", f"estimators_features_[{i}]")
        # score_samples indexes both with the leaf ids tree.apply returns
        nodes = integer(est.tree_.node_count, "node_count")
        for name, per_tree in (
            ("_decision_path_lengths", lengths),
            ("_average_path_length_per_tree", averages),
        ):
            if array(per_tree[i], f"{name}[{i}]").shape != (nodes,):
                raise Invalid(f"has shape {per_tree[i].shape} for {nodes} nodes", f"{name}[{i}]")


def _visit_gradient_boosting(ctx: Context, gb: Any) -> None:
    """``predict_stages`` writes ``out[:, k]`` for each column k of ``estimators_`` unchecked."""
    from sklearn.dummy import DummyClassifier

    estimators = attr(gb, "estimators_")
    n_in = attr(gb, "n_features_in_")
    if estimators is None or n_in is None:
        return
    n_in = integer(n_in, "n_features_in_")
    estimators = array(estimators, "estimators_", ndim=2)
    if estimators.dtype != object or estimators.shape[0] < 1:
        raise Invalid("estimators_ is not a non-empty 2-D object array")
    k = estimators.shape[1]
    per_iter = attr(gb, "n_trees_per_iteration_")
    if per_iter is not None and k != integer(per_iter, "n_trees_per_iteration_"):
        raise Invalid(f"estimators_ has {k} columns but n_trees_per_iteration_={per_iter}")
    if k > 1:
        # The raw predictions predict_stages adds to have as many columns as the init
        # estimator's predict_proba: it must know exactly k classes.
        init = attr(gb, "init_")
        if not (isinstance(init, str) and init == "zero"):
            classes = attr(init, "classes_")
            if not isinstance(classes, np.ndarray) or classes.shape != (k,):
                raise Invalid(f"init_ does not predict the {k} classes estimators_ needs")
            if isinstance(init, DummyClassifier):
                n_cls = attr(init, "n_classes_")
                prior = attr(init, "class_prior_")
                if (
                    n_cls is None
                    or integer(n_cls, "init_.n_classes_") != k
                    or not (isinstance(prior, np.ndarray) and prior.shape == (k,))
                ):
                    raise Invalid(f"init_ is not a {k}-class DummyClassifier")
    for (i, j), est in np.ndenumerate(estimators):
        facts = _sub_tree(ctx, est, f"estimators_[{i}, {j}]")
        if facts.n_outputs != 1 or int(facts.n_classes[0]) != 1:
            raise Invalid("not a single-output regression tree", f"estimators_[{i}, {j}]")
        if facts.n_features != n_in:
            raise Invalid(
                f"built for {facts.n_features} features, but the model checks its input "
                f"against n_features_in_={n_in}",
                f"estimators_[{i}, {j}]",
            )


def tree_facts_once(ctx: Context, tree: Any) -> TreeFacts:
    """Validate a Tree once per walk (forests share nothing, but a model may hold one twice)."""
    key = ("tree", id(tree))
    facts = ctx.memo.get(key)
    if facts is None:
        facts = ctx.memo[key] = check_tree(tree)
    return facts


CHECKS: Checks = [
    ((("sklearn.tree._tree", "Tree"),), _visit_tree),
    ((("sklearn.ensemble._forest", "BaseForest"),), _visit_forest),
    ((("sklearn.ensemble._bagging", "BaseBagging"),), _visit_bagging),
    ((("sklearn.ensemble._gb", "BaseGradientBoosting"),), _visit_gradient_boosting),
    ((("builtins", "object"),), _visit_tree_owner),
]
