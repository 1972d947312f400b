"""LightGBM's text model, checked in Python before ``LGBM_BoosterLoadModelFromString`` reads it.

A pickled ``lightgbm.basic.Booster`` keeps its model as the text ``model_to_string`` writes,
and its ``__setstate__`` hands it to C++. That parser trusts what the text says: measured
with LightGBM 4.7.0 (``docs/threat-model.md``), a child index out of range, a split feature
past the input, a categorical index past ``cat_boundaries`` or a truncated text crash the
interpreter (SIGSEGV), a ``num_leaves`` the arrays do not have aborts it, and a child that
points back at its parent makes ``predict`` loop forever. So the text is read here first, in
exactly the form LightGBM writes, and any other form is refused:

* the header's keys, each once (``version=v4``, class and tree-per-iteration counts that
  agree with each other and with the objective's ``num_class:``, one feature name and one
  feature info per feature, one ``tree_sizes`` entry per tree, each the tree's exact size);
* every tree's keys, each once, and every array exactly as long as ``num_leaves`` and
  ``num_cat`` make it, integers written as integers;
* each tree is a tree: internal nodes point only to later internal nodes or to leaves,
  every node but the root has exactly one parent, split features within ``max_feature_idx``,
  decision types of known bits, categorical thresholds within ``num_cat``, category bitsets
  within ``cat_boundaries``;
* no NUL byte (the C string would end there, and C++ would read another text than this one),
  no carriage return; linear trees (``linear_tree=True``) are refused, not read.

* the text after ``end of trees`` in its one layout: feature importances as ``name=count``
  lines, the parameters as ``[name: value]`` lines closed by ``end of parameters`` (a text cut
  inside them crashes LightGBM too), then the ``pandas_categorical:`` line.

What is not read: the values of the parameters, importances and ``pandas_categorical`` (C++
keeps the parameters as text; Python reads ``pandas_categorical`` from the pickled state, not
from here), and floating-point values, which choose predictions but index nothing.
"""

from __future__ import annotations

import re
from itertools import pairwise

__all__ = ["LightGBMTextError", "check_lightgbm_text"]


class LightGBMTextError(ValueError):
    """The text is not a LightGBM model in the form LightGBM writes (the message says why)."""


_INT = re.compile(r"-?[0-9]{1,10}")
_INT_LIST = re.compile(r"-?[0-9]{1,10}(?: -?[0-9]{1,10})*")
_NUMBER = r"(?:[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?:inf|nan))"
_FLOAT_LIST = re.compile(rf"{_NUMBER}(?: {_NUMBER})*")
_HEADER = frozenset(
    {
        "version",
        "num_class",
        "num_tree_per_iteration",
        "label_index",
        "max_feature_idx",
        "objective",
        "feature_names",
        "feature_infos",
        "tree_sizes",
    }
)
_FLAGS = frozenset({"average_output"})  # header lines without a value
_OBJECTIVES = frozenset(
    {
        "regression",
        "regression_l1",
        "huber",
        "fair",
        "poisson",
        "quantile",
        "mape",
        "gamma",
        "tweedie",
        "binary",
        "multiclass",
        "multiclassova",
        "cross_entropy",
        "cross_entropy_lambda",
        "lambdarank",
        "rank_xendcg",
        "custom",
    }
)
_TREE_KEYS = (
    "num_leaves",
    "num_cat",
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "leaf_value",
    "leaf_weight",
    "leaf_count",
    "internal_value",
    "internal_weight",
    "internal_count",
    "is_linear",
    "shrinkage",
)
_CAT_KEYS = ("cat_boundaries", "cat_threshold")
_END = "end of trees"
_IMPORTANCE = re.compile(r"[^=\n]+=[0-9]{1,19}")
_PARAMETER = re.compile(r"\[[a-z0-9_]{1,64}: [^\n]*\]")


def _fail(why: str) -> LightGBMTextError:
    return LightGBMTextError(why)


def _int(text: str, what: str, low: int = 0, high: int | None = None) -> int:
    if not _INT.fullmatch(text):
        raise _fail(f"{what} is not an integer")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise _fail(f"{what} is {value}, outside [{low}, {high if high is not None else '...'}]")
    return value


def _tokens(value: str, count: int, what: str) -> list[str]:
    """``count`` tokens separated by single spaces, as LightGBM writes arrays."""
    tokens = value.split(" ") if value else []
    if len(tokens) != count or "" in tokens:
        raise _fail(f"{what} has {len(tokens)} values, not {count}")
    return tokens


def _ints(value: str, count: int, what: str, low: int, high: int) -> list[int]:
    """``count`` integers in ``[low, high]``, the line checked at once (C speed, linear)."""
    if value and not _INT_LIST.fullmatch(value):
        raise _fail(f"{what} holds a value that is not an integer, or not single-spaced")
    numbers = list(map(int, _tokens(value, count, what)))
    if numbers and (min(numbers) < low or max(numbers) > high):
        raise _fail(f"{what} holds a value outside [{low}, {high}]")
    return numbers


def _floats(value: str, count: int, what: str) -> list[float]:
    """``count`` numbers (parsed only where a value indexes something: the caller's choice)."""
    if value and not _FLOAT_LIST.fullmatch(value):
        raise _fail(f"{what} holds a value that is not a number, or not single-spaced")
    return [float(t) for t in _tokens(value, count, what)]


def _count_floats(value: str, count: int, what: str) -> None:
    """``count`` numbers, checked as text only: their values choose predictions, index nothing."""
    if value and not _FLOAT_LIST.fullmatch(value):
        raise _fail(f"{what} holds a value that is not a number, or not single-spaced")
    found = value.count(" ") + 1 if value else 0
    if found != count:
        raise _fail(f"{what} has {found} values, not {count}")


def _pairs(lines: list[str], where: str, flags: frozenset[str] = frozenset()) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep and key in flags:
            value = ""
        elif not sep:
            raise _fail(f"{where} has a line that is not key=value")
        if key in out:
            raise _fail(f"{where} sets {key[:40]!r} twice")
        out[key] = value
    return out


def _header(lines: list[str]) -> tuple[int, int, list[int]]:
    """``(features, trees per iteration, tree sizes)`` from the header lines."""
    pairs = _pairs(lines, "the header", _FLAGS)
    missing = sorted(_HEADER - set(pairs))
    extra = sorted(set(pairs) - _HEADER - _FLAGS)
    if missing or extra:
        raise _fail(f"the header lacks {missing} or has keys LightGBM does not write {extra[:5]}")
    if pairs["version"] != "v4":
        raise _fail("the header's version is not v4 (what LightGBM 4 writes)")
    classes = _int(pairs["num_class"], "num_class", 1, 1 << 20)
    per_iteration = _int(pairs["num_tree_per_iteration"], "num_tree_per_iteration", 1, 1 << 20)
    if per_iteration != classes:
        raise _fail(f"num_tree_per_iteration {per_iteration} is not num_class {classes}")
    _int(pairs["label_index"], "label_index")
    features = _int(pairs["max_feature_idx"], "max_feature_idx", 0, 1 << 30) + 1
    objective = pairs["objective"].split(" ")
    if objective[0] not in _OBJECTIVES:
        raise _fail(f"the objective {objective[0][:40]!r} is not one LightGBM writes")
    for token in objective[1:]:
        name, sep, value = token.partition(":")
        if not sep or not name:
            raise _fail("the objective has a parameter that is not name:value")
        if name == "num_class" and _int(value, "the objective's num_class") != classes:
            raise _fail("the objective's num_class is not the header's")
    if objective[0] in ("multiclass", "multiclassova") and f"num_class:{classes}" not in objective:
        raise _fail("a multiclass objective without the header's num_class")
    _tokens(pairs["feature_names"], features, "feature_names")
    _tokens(pairs["feature_infos"], features, "feature_infos")
    if not pairs["tree_sizes"]:
        raise _fail("the model has no trees")
    count = pairs["tree_sizes"].count(" ") + 1
    return features, per_iteration, _ints(pairs["tree_sizes"], count, "tree_sizes", 1, 1 << 40)


def _tree(block: str, index: int, features: int) -> None:
    """One ``Tree=`` block, as ``Tree::ToString`` writes it."""
    where = f"tree {index}"
    lines = block.split("\n")
    if lines[0] != f"Tree={index}":
        raise _fail(f"{where} does not start with Tree={index} where tree_sizes put it")
    body = lines[1:]
    while body and body[-1] == "":
        body.pop()
    pairs = _pairs(body, where)
    leaves = _int(pairs.get("num_leaves", "x"), f"{where}'s num_leaves", 1, len(block))
    cats = _int(pairs.get("num_cat", "x"), f"{where}'s num_cat", 0, len(block))
    if pairs.get("is_linear") != "0":
        raise _fail(f"{where} is a linear tree (linear_tree=True), which safeload does not read")
    expected = set(_TREE_KEYS) | (set(_CAT_KEYS) if cats else set())
    if set(pairs) != expected:
        raise _fail(f"{where} has keys {sorted(set(pairs) ^ expected)[:5]} against LightGBM's")
    inner = leaves - 1
    _count_floats(pairs["leaf_value"], leaves, f"{where}'s leaf_value")
    _count_floats(pairs["shrinkage"], 1, f"{where}'s shrinkage")
    weights = len(pairs["leaf_weight"].split(" ")) if pairs["leaf_weight"] else 0
    _count_floats(
        pairs["leaf_weight"], weights if leaves == 1 else leaves, f"{where}'s leaf_weight"
    )
    _ints(pairs["leaf_count"], leaves, f"{where}'s leaf_count", 0, 1 << 31)
    for key in ("split_gain", "internal_value", "internal_weight"):
        _count_floats(pairs[key], inner, f"{where}'s {key}")
    _ints(pairs["internal_count"], inner, f"{where}'s internal_count", 0, 1 << 31)
    _ints(pairs["split_feature"], inner, f"{where}'s split_feature", 0, features - 1)
    decision = _ints(pairs["decision_type"], inner, f"{where}'s decision_type", 0, 15)
    threshold = _floats(pairs["threshold"], inner, f"{where}'s threshold")
    left = _ints(pairs["left_child"], inner, f"{where}'s left_child", -leaves, inner - 1)
    right = _ints(pairs["right_child"], inner, f"{where}'s right_child", -leaves, inner - 1)
    seen_inner, seen_leaves = [False] * leaves, [False] * leaves
    for node in range(inner):
        if (decision[node] >> 2) & 3 == 3:
            raise _fail(f"{where}'s node {node} has a missing-value type LightGBM does not have")
        if decision[node] & 1:
            value = threshold[node]
            if not (value == int(value) and 0 <= value < cats):
                raise _fail(f"{where}'s categorical node {node} points past num_cat")
        for child in (left[node], right[node]):
            if child >= 0:
                if child <= node or seen_inner[child]:
                    raise _fail(f"{where}'s node {node} has a child that is not a new later node")
                seen_inner[child] = True
            else:
                if seen_leaves[~child]:
                    raise _fail(f"{where}'s leaf {~child} has two parents")
                seen_leaves[~child] = True
    if leaves > 1 and (not all(seen_inner[1:inner]) or not all(seen_leaves)):
        raise _fail(f"{where} has nodes that no split reaches")
    if cats:
        bounds = _ints(pairs["cat_boundaries"], cats + 1, f"{where}'s cat_boundaries", 0, 1 << 30)
        if bounds[0] != 0 or any(b > a for b, a in pairwise(bounds)):
            raise _fail(f"{where}'s cat_boundaries do not rise from 0")
        _ints(pairs["cat_threshold"], bounds[-1], f"{where}'s cat_threshold", 0, (1 << 32) - 1)


def check_lightgbm_text(text: str) -> None:
    """Raise :class:`LightGBMTextError` unless ``text`` is a model as LightGBM 4 writes it."""
    if "\x00" in text or "\r" in text:
        raise _fail("the text holds a NUL or carriage return, which LightGBM never writes")
    if not text.startswith("tree\n"):
        raise _fail("the text does not start with LightGBM's 'tree' line")
    start = text.find("\nTree=")
    end = text.find(f"\n{_END}\n")
    if start < 0 or end < start:
        raise _fail("the text has no trees, or no 'end of trees' after them")
    features, per_iteration, sizes = _header(text[5:start].strip("\n").split("\n"))
    if len(sizes) % per_iteration:
        raise _fail(f"{len(sizes)} trees are not whole iterations of {per_iteration}")
    trees = text[start + 1 : end + 1].encode("utf-8")
    if sum(sizes) != len(trees):
        raise _fail("tree_sizes do not add up to the trees' text")
    offset = 0
    for index, size in enumerate(sizes):
        try:
            block = trees[offset : offset + size].decode("ascii")
        except UnicodeDecodeError:
            raise _fail(f"tree {index} is not ASCII") from None
        _tree(block, index, features)
        offset += size
    _tail(text[end + 1 :].split("\n"))


def _tail(lines: list[str]) -> None:
    """What follows the trees, in its one layout (not its values)."""
    if lines[:3] != [_END, "", "feature_importances:"] or lines[-1] != "":
        raise _fail("the text after the trees is not in LightGBM's layout")
    if not lines[-2].startswith("pandas_categorical:") or lines[-4:-2] != ["end of parameters", ""]:
        raise _fail("the text does not end with LightGBM's parameters and pandas_categorical")
    body = lines[3:-4]
    try:
        blank = body.index("")
    except ValueError:
        raise _fail("the feature importances are not closed") from None
    if not all(_IMPORTANCE.fullmatch(line) for line in body[:blank]):
        raise _fail("a feature importance line is not name=count")
    if body[blank + 1 : blank + 2] != ["parameters:"] or body[-1:] != [""]:
        raise _fail("the parameters are not where LightGBM writes them")
    if not all(_PARAMETER.fullmatch(line) for line in body[blank + 2 : -1]):
        raise _fail("a parameter line is not [name: value]")
