"""The call rules, side by side: every rule has a check in every wall, and the skops wall holds.

The scanner's and the unpickler's checks are exercised rule by rule by the attack suite and
``test_scanning``/``test_policy``; here: the table itself is complete, and skops' loaders (which
call the types a file names, ``cls.__new__(cls)`` or ``constructor(*args)``) are held to the same
rules as pickles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import safeload
from safeload import _default_types as rules
from safeload import _unpickle
from safeload.saving import write_signed_artifact
from safeload.typegate import callrules
from safeload.typegate.callrules import RULES, skops_call_problem
from tests.helpers import edit_skops_schema

METADATA = json.dumps(
    {"safeload_format_version": 1, "format": "skops", "name": "x", "version": "1"}
).encode()


# --- the table -------------------------------------------------------------------------------


def test_every_rule_has_a_check_in_every_wall() -> None:
    assert set(RULES) == set(rules.RULES), "a rule of _default_types lacks its CallRule"
    for name, rule in RULES.items():
        assert rule.name == name
        for wall in ("symbolic", "concrete", "skops"):
            assert callable(getattr(rule, wall)), f"rule {name!r} has no {wall} check"


def test_every_default_callable_has_a_known_rule() -> None:
    unknown = {n: r for n, r in rules.CALL_RULES.items() if r not in RULES}
    assert unknown == {}


def test_the_walls_are_independent_functions() -> None:
    """Two walls sharing one implementation would share its bug."""
    for name, rule in RULES.items():
        if name == rules.ANY:
            continue
        assert rule.symbolic is not rule.concrete, name
        assert rule.skops is not rule.concrete and rule.skops is not rule.symbolic, name


def test_unknown_rule_is_refused_by_every_wall() -> None:
    assert skops_call_problem("no-such-rule", "NEWOBJ", None) is not None


# --- the skops wall, rule by rule --------------------------------------------------------------

_NAMEDTUPLE_RULES = {rules.namedtuple_rule(n) for n in rules.NAMEDTUPLES}
_NEVER_IN_SKOPS = sorted(
    rules.RULES
    - {rules.ANY, rules.NEW, rules.NO_ARGS, rules.TREE, rules.PARTIAL}
    - _NAMEDTUPLE_RULES
)


@pytest.mark.parametrize("rule", _NEVER_IN_SKOPS)
@pytest.mark.parametrize("how", ["NEWOBJ", "REDUCE"])
def test_reconstructor_rules_are_never_a_skops_call(rule: str, how: str) -> None:
    assert skops_call_problem(rule, how, None) == f"by {how}, which skops never writes for it"


@pytest.mark.parametrize("how", ["NEWOBJ", "REDUCE"])
def test_partial_is_a_skops_call_only_as_its_partial_node(how: str) -> None:
    """skops makes a partial only with its PartialNode (tests/test_partial_rule.py has the rest)."""
    why = skops_call_problem(rules.PARTIAL, how, None)
    assert why is not None and "other than a PartialNode" in why


def test_reference_only_names_are_never_constructed_by_skops() -> None:
    for how in ("NEWOBJ", "REDUCE"):
        why = skops_call_problem(None, how, None)
        assert why is not None and "only as a stored reference" in why


def test_new_allows_only_object_nodes() -> None:
    assert skops_call_problem(rules.NEW, "NEWOBJ", None) is None
    why = skops_call_problem(rules.NEW, "REDUCE", None)
    assert why is not None and "constructor on the file's arguments" in why
    assert skops_call_problem(rules.ANY, "REDUCE", None) is None


# --- crafted skops files, signed by a trusted key -----------------------------------------------


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch, constructed: list[str]) -> list[str]:
    """Reaching skops' loader at all is recorded (and fails): the skops gate must refuse first."""

    def refuse(*args: object, **kwargs: object) -> None:
        constructed.append("load_skops_verified")
        raise AssertionError("the skops gate let the file through")

    monkeypatch.setattr(_unpickle, "load_skops_verified", refuse)
    return constructed


def _load(tmp_path: Path, key: safeload.SigningKey, data: bytes) -> None:
    path = write_signed_artifact(
        tmp_path / "evil", {"model.skops": data, "safeload.json": METADATA}, key=key
    )
    safeload.load(path, trusted=safeload.Keyring.of([key]))


@pytest.fixture(scope="module")
def tree_skops() -> bytes:
    rng = np.random.default_rng(0)
    X, y = rng.random((30, 3)), np.arange(30) % 2
    return skops.io.dumps(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y))


def _tree_args(schema: dict[str, Any]) -> list[dict[str, Any]]:
    for node in _nodes(schema):
        if node.get("__loader__") == "TreeNode":
            return node["__reduce__"]["args"]["content"]  # type: ignore[no-any-return]
    raise AssertionError("no TreeNode in the schema")


@pytest.mark.parametrize(
    ("index", "content", "why"),
    [
        (2, "0", "an output count that is not a positive int"),
        (2, "-3", "an output count that is not a positive int"),
        (2, '"1"', "an output count that is not a positive int"),
        (0, "-1", "a feature count that is not a non-negative int"),
        (0, "true", "a feature count that is not a non-negative int"),
    ],
)
def test_tree_constructed_by_skops_with_bad_arguments_is_refused(
    tmp_path: Path,
    key: safeload.SigningKey,
    unreachable: list[str],
    tree_skops: bytes,
    index: int,
    content: str,
    why: str,
) -> None:
    def edit(schema: dict[str, Any]) -> None:
        arg = _tree_args(schema)[index]
        # skops shares nodes by ``__id__`` (small ints are interned): give the edit its own.
        arg["content"], arg["__id__"] = content, 1

    data = edit_skops_schema(tree_skops, edit)
    report = safeload.scan_bytes(data)
    assert any("sklearn.tree._tree.Tree (TreeNode)" in p and why in p for p in report.problems), (
        report.problems
    )
    with pytest.raises(safeload.MalformedArtifactError, match=why):
        _load(tmp_path, key, data)
    assert unreachable == []


def test_tree_arguments_of_the_wrong_arity_are_refused(
    tmp_path: Path, key: safeload.SigningKey, unreachable: list[str], tree_skops: bytes
) -> None:
    def edit(schema: dict[str, Any]) -> None:
        del _tree_args(schema)[2]

    with pytest.raises(safeload.MalformedArtifactError, match=r"other than \(n_features"):
        _load(tmp_path, key, edit_skops_schema(tree_skops, edit))
    assert unreachable == []


def test_a_genuine_skops_tree_passes_the_skops_wall(tree_skops: bytes) -> None:
    assert safeload.scan_bytes(tree_skops).safe


def test_reference_only_class_constructed_by_skops_is_refused(
    tmp_path: Path, key: safeload.SigningKey, unreachable: list[str]
) -> None:
    """KDTree is trusted only as a reference: skops' ObjectNode would run ``KDTree.__new__``
    and its Cython ``__setstate__`` on the file's arrays. Before the skops wall applied the
    call rules, the default policy let this through (the name is trusted)."""
    data = skops.io.dumps(StandardScaler().fit(np.eye(3)))

    def edit(schema: dict[str, Any]) -> None:
        schema["__module__"], schema["__class__"] = "sklearn.neighbors._kd_tree", "KDTree"

    evil = edit_skops_schema(data, edit)
    report = safeload.scan_bytes(evil)
    assert report.untrusted == ()  # trusted as a name: the call is what is refused
    assert any(
        "KDTree (ObjectNode)" in p and "only as a stored reference" in p for p in report.problems
    )
    with pytest.raises(safeload.MalformedArtifactError, match="only as a stored reference"):
        _load(tmp_path, key, evil)
    assert unreachable == []


def test_callable_class_under_a_reconstructor_rule_is_refused_in_skops(
    tmp_path: Path, key: safeload.SigningKey, unreachable: list[str]
) -> None:
    """``builtins.set`` is callable only as ``set(<list>)`` in a pickle; skops builds sets with
    its own SetNode, so an ObjectNode naming it is a form skops never writes."""
    data = skops.io.dumps(StandardScaler().fit(np.eye(3)))

    def edit(schema: dict[str, Any]) -> None:
        schema["__module__"], schema["__class__"] = "builtins", "set"

    evil = edit_skops_schema(data, edit)
    with pytest.raises(safeload.MalformedArtifactError, match="skops never writes for it"):
        _load(tmp_path, key, evil)
    assert unreachable == []


def test_callrules_module_names_its_public_parts() -> None:
    assert set(callrules.__all__) == {"RULES", "CallRule", "ConcreteSite", "skops_call_problem"}


def _ndarray_call(loader: str) -> dict[str, Any]:
    """A node that makes skops call ``numpy.ndarray((10**12,))``."""
    shape = {
        "__class__": "tuple",
        "__module__": "builtins",
        "__loader__": "TupleNode",
        "content": [
            {
                "__class__": "int",
                "__module__": "builtins",
                "__loader__": "JsonNode",
                "content": "1000000000000",
                "__id__": 7,
            }
        ],
        "__id__": 8,
    }
    nothing = {"__class__": "NoneType", "__module__": "builtins", "__loader__": "JsonNode"}
    node: dict[str, Any] = {
        "__class__": "ndarray",
        "__module__": "numpy",
        "__loader__": loader,
        "__id__": 10,
    }
    if loader == "ConstructorFromReduceNode":
        node["content"] = {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [shape],
            "__id__": 11,
        }
    else:
        node["__reduce__"] = {"args": shape}
        node["content"] = {**nothing, "content": "null", "is_json": True, "__id__": 9}
    return node


@pytest.mark.parametrize("loader", ["LossNode", "ConstructorFromReduceNode"])
def test_reference_only_array_class_called_by_a_reduce_node_is_refused(
    tmp_path: Path, key: safeload.SigningKey, unreachable: list[str], loader: str
) -> None:
    """``numpy.ndarray`` is trusted only as a reference: skops' reduce-like loaders would call
    it with a file-chosen shape (a 2 KB file touching terabytes) before validation could run."""
    data = skops.io.dumps(StandardScaler().fit(np.eye(3)))

    def edit(schema: dict[str, Any]) -> None:
        schema["content"]["content"]["mean_"] = _ndarray_call(loader)

    evil = edit_skops_schema(data, edit)
    report = safeload.scan_bytes(evil)
    wanted = f"numpy.ndarray ({loader})"
    assert any(wanted in p and "stored reference" in p for p in report.problems), report
    with pytest.raises(safeload.MalformedArtifactError, match="numpy.ndarray"):
        _load(tmp_path, key, evil)
    assert unreachable == []


def test_a_tuple_node_naming_another_class_is_a_call_held_to_its_rule(
    tmp_path: Path, key: safeload.SigningKey, unreachable: list[str]
) -> None:
    """skops builds a namedtuple by calling the class a TupleNode names on its items. The gate
    imports nothing to tell a namedtuple from another class, so a TupleNode naming anything but
    ``tuple`` is a call, held to that class's rule (here ``numpy.ndarray``, a reference only)."""
    data = skops.io.dumps(StandardScaler().fit(np.eye(3)))

    def edit(schema: dict[str, Any]) -> None:
        schema["content"]["content"]["mean_"] = {
            **_ndarray_call("LossNode")["__reduce__"]["args"],
            "__class__": "ndarray",
            "__module__": "numpy",
        }

    evil = edit_skops_schema(data, edit)
    report = safeload.scan_bytes(evil)
    assert any(
        "numpy.ndarray (TupleNode)" in p and "stored reference" in p for p in report.problems
    ), report
    with pytest.raises(safeload.MalformedArtifactError, match="numpy.ndarray"):
        _load(tmp_path, key, evil)
    assert unreachable == []


# --- the namedtuple rule in the skops wall -----------------------------------------------------


@pytest.fixture(scope="module")
def imputer_skops() -> bytes:
    """A fitted IterativeImputer: its imputation_sequence_ holds _ImputerTriplet namedtuples."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    X = np.random.RandomState(0).normal(size=(30, 3))
    X[::4, 1] = np.nan
    return skops.io.dumps(IterativeImputer(max_iter=2, random_state=0).fit(X))


def _triplets(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in _nodes(schema) if n.get("__class__") == "_ImputerTriplet"]


def test_a_genuine_skops_namedtuple_loads(
    tmp_path: Path, key: safeload.SigningKey, imputer_skops: bytes
) -> None:
    report = safeload.scan_bytes(imputer_skops)
    assert report.safe, report.to_dict()
    path = write_signed_artifact(
        tmp_path / "ok", {"model.skops": imputer_skops, "safeload.json": METADATA}, key=key
    )
    model = safeload.load(path, trusted=safeload.Keyring.of([key]))
    assert type(model.imputation_sequence_[0]).__name__ == "_ImputerTriplet"


def test_a_namedtuple_with_another_field_count_is_refused_by_skops_wall(
    tmp_path: Path, key: safeload.SigningKey, unreachable: list[str], imputer_skops: bytes
) -> None:
    """skops calls the class on the TupleNode's items: one per field, or it is refused."""

    def edit(schema: dict[str, Any]) -> None:
        node = _triplets(schema)[0]
        node["content"].append(node["content"][0])

    evil = edit_skops_schema(imputer_skops, edit)
    why = "with other than its 3 field values"
    assert any(why in p for p in safeload.scan_bytes(evil).problems)
    with pytest.raises(safeload.MalformedArtifactError, match=why):
        _load(tmp_path, key, evil)
    assert unreachable == []
