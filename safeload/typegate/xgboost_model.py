"""XGBoost's serialized Booster, checked in Python before ``XGBoosterUnserializeFromBuffer``.

A pickled ``xgboost.core.Booster`` keeps its model as the UBJSON bytes of
``XGBoosterSerializeToBuffer`` (``{"Config": ..., "Model": ...}``), which its ``__setstate__``
hands to C++. Measured with XGBoost 3.2.0 (``docs/threat-model.md``): a child or split index
out of range or a child pointing back up crashes ``predict`` (SIGSEGV), and a typed array's
declared length is allocated before it is read (``std::bad_alloc`` under a memory limit, the
whole machine's memory without). So the bytes are read by
:func:`safeload.typegate.ubjson.read_ubjson` (every length checked against the bytes present)
and the model is held to the form XGBoost writes:

* the objects' exact keys (learner, its model parameters, the tree ensemble, each tree);
* counts that agree: ``num_trees`` (Model and Config alike), ``tree_info``,
  ``iteration_indptr``, the learner's parameters in Config and Model, feature names and types;
* each tree: every per-node array of its dtype and exactly ``num_nodes`` long; children
  either both ``-1`` (a leaf) or later nodes, every node but the root with exactly one parent,
  which ``parents`` names, and the nodes a pruner deleted (unreached, marked, counted in
  ``num_deleted``) the only others; split indices below ``num_feature``; split types 0 or 1,
  and each categorical split's segment within ``categories``.

Refused rather than read: ``gblinear`` boosters, multi-target trees (``size_leaf_vector`` other
than 1), and models that carry categorical encodings (``cats``).
Config's thread counts (``nthread``, ``n_jobs``), which predict uses, are held to
:data:`MAX_THREADS`. Not checked: floating-point values (thresholds, leaf weights,
``base_score``), the objective's parameters and the rest of Config, which XGBoost parses as
checked parameters.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from safeload.typegate.ubjson import UBJSONError, read_ubjson

__all__ = ["XGBoostModelError", "check_xgboost_model"]

#: The most threads a stored ``nthread``/``n_jobs`` may ask each predict for (as for n_jobs).
MAX_THREADS = max(1024, os.cpu_count() or 1)
_ROOT_PARENT = 0x7FFFFFFF
_DELETED = 0x7FFFFFFF  # the split index of a node a pruner deleted
_I4, _I8, _F4, _U1 = np.dtype(">i4"), np.dtype(">i8"), np.dtype(">f4"), np.dtype("u1")
_NODE_ARRAYS: dict[str, np.dtype[Any]] = {
    "left_children": _I4,
    "right_children": _I4,
    "parents": _I4,
    "split_indices": _I4,
    "split_conditions": _F4,
    "split_type": _U1,
    "default_left": _U1,
    "base_weights": _F4,
    "loss_changes": _F4,
    "sum_hessian": _F4,
}
_CATEGORY_ARRAYS: dict[str, np.dtype[Any]] = {
    "categories": _I4,
    "categories_nodes": _I4,
    "categories_segments": _I8,
    "categories_sizes": _I8,
}
_TREE_KEYS = frozenset({*_NODE_ARRAYS, *_CATEGORY_ARRAYS, "id", "tree_param"})
_LEARNER_KEYS = frozenset(
    {
        "attributes",
        "feature_names",
        "feature_types",
        "gradient_booster",
        "learner_model_param",
        "objective",
    }
)


class XGBoostModelError(ValueError):
    """The bytes are not a model in the form XGBoost writes (the message says why)."""


def _fail(why: str) -> XGBoostModelError:
    return XGBoostModelError(why)


def _obj(value: object, keys: frozenset[str] | set[str], what: str) -> dict[str, Any]:
    if type(value) is not dict or set(value) != set(keys):
        got = sorted(value)[:8] if type(value) is dict else type(value).__name__
        raise _fail(f"{what} is not an object of keys {sorted(keys)} (got {got})")
    return value


def _count(value: object, what: str, low: int = 0) -> int:
    """A count XGBoost writes as a decimal string."""
    if type(value) is not str or not value.isdigit() or len(value) > 12 or int(value) < low:
        raise _fail(f"{what} is not a count of at least {low}")
    return int(value)


def _array(value: object, dtype: np.dtype[Any], length: int | None, what: str) -> Any:
    if type(value) is not np.ndarray or value.dtype != dtype or value.ndim != 1:
        raise _fail(f"{what} is not a typed array of {dtype.str}")
    if length is not None and len(value) != length:
        raise _fail(f"{what} has {len(value)} items, not {length}")
    return value.astype(dtype.newbyteorder("="), copy=False)


def _int_list(value: object, length: int | None, what: str) -> Any:
    """An untyped array of integers (how XGBoost writes ``tree_info`` and ``iteration_indptr``)."""
    if type(value) is not list or not all(type(v) is int for v in value):
        raise _fail(f"{what} is not a list of integers")
    if length is not None and len(value) != length:
        raise _fail(f"{what} has {len(value)} items, not {length}")
    return np.array(value, dtype=np.int64)


def _strings(value: object, what: str) -> int:
    if type(value) is not list or not all(type(v) is str for v in value):
        raise _fail(f"{what} is not a list of strings")
    return len(value)


def _tree(tree: object, index: int, features: int) -> None:
    where = f"tree {index}"
    tree = _obj(tree, _TREE_KEYS, where)
    if type(tree["id"]) is not int or tree["id"] != index:
        raise _fail(f"{where}'s id is not {index}")
    param = _obj(
        tree["tree_param"],
        {"num_deleted", "num_feature", "num_nodes", "size_leaf_vector"},
        f"{where}'s tree_param",
    )
    nodes = _count(param["num_nodes"], f"{where}'s num_nodes", 1)
    if _count(param["num_feature"], f"{where}'s num_feature") != features:
        raise _fail(f"{where}'s num_feature is not the learner's {features}")
    if param["size_leaf_vector"] != "1":
        raise _fail(f"{where} is a multi-target tree (a leaf vector), which safeload does not read")
    deleted = _count(param["num_deleted"], f"{where}'s num_deleted")
    arrays = {k: _array(tree[k], d, nodes, f"{where}'s {k}") for k, d in _NODE_ARRAYS.items()}
    left, right, parents = arrays["left_children"], arrays["right_children"], arrays["parents"]
    leaf = left == -1
    if not np.array_equal(leaf, right == -1):
        raise _fail(f"{where} has a node with one child")
    index_range = np.arange(nodes)
    inner = ~leaf
    for children in (left[inner], right[inner]):
        if np.any(children <= index_range[inner]) or np.any(children >= nodes):
            raise _fail(f"{where} has a child that is not a later node")
    children = np.concatenate([left[inner], right[inner]])
    if len(np.unique(children)) != len(children):
        raise _fail(f"{where} has a node with two parents")
    if parents[0] != _ROOT_PARENT:
        raise _fail(f"{where}'s root has a parent")
    owners = np.concatenate([index_range[inner], index_range[inner]])
    if not np.array_equal(parents[children], owners):
        raise _fail(f"{where}'s parents do not name the nodes that split into them")
    # Nodes a pruner deleted: no split reaches them, XGBoost marks them and counts them.
    reached = np.zeros(nodes, dtype=bool)
    reached[0] = True
    reached[children] = True
    split = arrays["split_indices"]
    marked = split == _DELETED
    if not np.array_equal(~reached, marked) or int(np.count_nonzero(marked)) != deleted:
        raise _fail(f"{where} has nodes no split reaches that are not its {deleted} deleted ones")
    if np.any(split[~marked] < 0) or np.any(split[inner] >= features):
        raise _fail(f"{where} splits on a feature past num_feature {features}")
    if np.any(split[~marked & leaf] >= max(features, 1)):
        raise _fail(f"{where} has a leaf with a feature past num_feature {features}")
    kinds, defaults = arrays["split_type"], arrays["default_left"]
    if np.any(kinds > 1) or np.any(defaults > 1) or np.any(kinds[leaf] != 0):
        raise _fail(f"{where} has a split type or default direction XGBoost does not write")
    _categories(tree, where, np.flatnonzero(kinds == 1))


def _categories(tree: dict[str, Any], where: str, categorical: Any) -> None:
    cat = {k: _array(tree[k], d, None, f"{where}'s {k}") for k, d in _CATEGORY_ARRAYS.items()}
    listed, segments, sizes = (
        cat["categories_nodes"],
        cat["categories_segments"],
        cat["categories_sizes"],
    )
    if not (len(listed) == len(segments) == len(sizes)):
        raise _fail(f"{where}'s categorical splits are not listed once each")
    if not np.array_equal(np.sort(listed), categorical) or len(np.unique(listed)) != len(listed):
        raise _fail(f"{where}'s categorical nodes are not its categorical splits")
    if np.any(segments < 0) or np.any(sizes < 0):
        raise _fail(f"{where} has a negative category segment")
    if np.any(segments + sizes > len(cat["categories"])):
        raise _fail(f"{where} has a category segment past its categories")


def _ensemble(model: object, features: int, groups: int, where: str) -> int:
    model = _obj(
        model, {"cats", "gbtree_model_param", "iteration_indptr", "tree_info", "trees"}, where
    )
    cats = _obj(model["cats"], {"enc", "feature_segments", "sorted_idx"}, f"{where}'s cats")
    if any(len(v) for v in cats.values()):
        raise _fail("the model carries categorical encodings, which safeload does not read")
    param = _obj(
        model["gbtree_model_param"], {"num_parallel_tree", "num_trees"}, "gbtree_model_param"
    )
    _count(param["num_parallel_tree"], "num_parallel_tree", 1)
    trees = model["trees"]
    if type(trees) is not list or _count(param["num_trees"], "num_trees") != len(trees):
        raise _fail("num_trees is not the number of trees")
    info = _int_list(model["tree_info"], len(trees), "tree_info")
    if np.any(info < 0) or np.any(info >= groups):
        raise _fail(f"tree_info names an output group past {groups}")
    indptr = _int_list(model["iteration_indptr"], None, "iteration_indptr")
    if len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != len(trees) or np.any(np.diff(indptr) < 0):
        raise _fail("iteration_indptr does not rise from 0 to the number of trees")
    for index, tree in enumerate(trees):
        _tree(tree, index, features)
    return len(trees)


def _booster(model: dict[str, Any], config: dict[str, Any], features: int, groups: int) -> None:
    booster, configured = model["gradient_booster"], config.get("gradient_booster")
    name = booster.get("name") if type(booster) is dict else None
    if type(configured) is not dict or configured.get("name") != name:
        raise _fail("Config and Model name different boosters")
    if name == "gbtree":
        booster = _obj(booster, {"model", "name"}, "the gbtree booster")
        _ensemble(booster["model"], features, groups, "the gbtree model")
        inner: Any = booster["model"]
        inner_config: Any = configured
    elif name == "dart":
        booster = _obj(booster, {"gbtree", "name", "weight_drop"}, "the dart booster")
        gbtree = _obj(booster["gbtree"], {"model", "name"}, "the dart booster's gbtree")
        count = _ensemble(gbtree["model"], features, groups, "the dart model")
        weights = booster["weight_drop"]
        if type(weights) is not list or not all(type(w) is float for w in weights):
            raise _fail("dart's weight_drop is not a list of numbers")
        if len(weights) != count:
            raise _fail("dart's weight_drop is not one weight per tree")
        inner, inner_config = gbtree["model"], configured.get("gbtree")
    else:
        raise _fail(f"a {str(name)[:20]!r} booster, which safeload does not read (gbtree, dart)")
    if type(inner_config) is not dict:
        raise _fail("Config lacks the booster's parameters")
    if inner_config.get("gbtree_model_param") != inner["gbtree_model_param"]:
        raise _fail("Config's gbtree_model_param is not the Model's")


def check_xgboost_model(data: bytes | bytearray | memoryview) -> None:
    """Raise :class:`XGBoostModelError` unless ``data`` is a Booster as XGBoost serializes it."""
    try:
        document = read_ubjson(data)
    except UBJSONError as exc:
        raise _fail(f"the bytes are not XGBoost's UBJSON: {exc}") from None
    document = _obj(document, {"Config", "Model"}, "the serialized Booster")
    model = _obj(document["Model"], {"learner", "version"}, "Model")
    version = model["version"]
    if type(version) is not list or len(version) != 3 or any(type(v) is not int for v in version):
        raise _fail("Model's version is not three integers")
    learner = _obj(model["learner"], _LEARNER_KEYS, "the learner")
    config = document["Config"]
    configured = config.get("learner") if type(config) is dict else None
    if type(configured) is not dict:
        raise _fail("Config has no learner")
    param = learner["learner_model_param"]
    if type(param) is not dict or configured.get("learner_model_param") != param:
        raise _fail("Config's learner_model_param is not the Model's")
    features = _count(param.get("num_feature"), "num_feature")
    groups = max(
        _count(param.get("num_class"), "num_class"),
        _count(param.get("num_target"), "num_target", 1),
    )
    for key in ("feature_names", "feature_types"):
        if _strings(learner[key], key) not in (0, features):
            raise _fail(f"{key} is not one per feature")
    _booster(learner, configured, features, groups)
    generic = configured.get("generic_param")
    for key in ("nthread", "n_jobs"):
        value = generic.get(key, "0") if type(generic) is dict else None
        if type(value) is not str or not value.lstrip("-").isdigit() or len(value) > 12:
            raise _fail(f"Config's {key} is not a thread count")
        if abs(int(value)) > MAX_THREADS:
            raise _fail(f"Config's {key}={value} asks for more threads than {MAX_THREADS}")
