"""skops' schema.json walked once, by ``__id__``, before skops sees it: crafted node graphs.

skops shares a node wherever a state repeats an ``__id__`` it has already loaded, and its own
walks (``get_unsafe_set``, which ``get_untrusted_types`` runs) do not remember what they
visited: a few kilobytes of schema fan out exponentially. Every file here is signed by a
trusted key and must be refused within seconds, before skops builds a single node.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression

import safeload
from safeload.saving import write_signed_artifact
from safeload.typegate import ScanLimits

METADATA = json.dumps(
    {"safeload_format_version": 1, "format": "skops", "name": "x", "version": "1"}
).encode()
_IDS = iter(range(10_000, 10**9))


def _json(value: object) -> dict[str, Any]:
    return {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
        "is_json": True,
        "__id__": next(_IDS),
    }


def _seq(loader: str, cls: str, items: list[Any]) -> dict[str, Any]:
    return {
        "__class__": cls,
        "__module__": "builtins",
        "__loader__": loader,
        "content": items,
        "__id__": next(_IDS),
    }


def _dict(content: dict[str, Any]) -> dict[str, Any]:
    key_types = _seq("ListNode", "list", [_type("str") for _ in content])
    return {
        "__class__": "dict",
        "__module__": "builtins",
        "__loader__": "DictNode",
        "content": content,
        "key_types": key_types,
        "__id__": next(_IDS),
    }


def _type(name: str) -> dict[str, Any]:
    return {
        "__class__": name,
        "__module__": "builtins",
        "__loader__": "TypeNode",
        "__id__": next(_IDS),
    }


def _ref(node: dict[str, Any]) -> dict[str, Any]:
    """What skops resolves to ``node`` itself: a state with its ``__id__`` (content ignored)."""
    return {"__id__": node["__id__"]}


def _skops(schema: dict[str, Any], files: dict[str, bytes] | None = None) -> bytes:
    schema = {**schema, "protocol": 2, "_skops_version": "0.16.0"}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", json.dumps(schema))
        for name, body in (files or {}).items():
            archive.writestr(name, body)
    return out.getvalue()


def _deep(level: Callable[[dict[str, Any]], dict[str, Any]], depth: int = 40) -> bytes:
    """Each level holds the level below twice by one ``__id__``: 2**40 visits when expanded."""
    node = _json(1)
    for _ in range(depth):
        node = level(node)
    return _skops(node)


def _via_list(child: dict[str, Any]) -> dict[str, Any]:
    return _seq("ListNode", "list", [child, _ref(child), _ref(child)])


def _via_tuple(child: dict[str, Any]) -> dict[str, Any]:
    return _seq("TupleNode", "tuple", [child, _ref(child)])


def _via_dict(child: dict[str, Any]) -> dict[str, Any]:
    return _dict({"a": child, "b": _ref(child)})


def _via_object(child: dict[str, Any]) -> dict[str, Any]:
    return {
        "__class__": "LogisticRegression",
        "__module__": "sklearn.linear_model._logistic",
        "__loader__": "ObjectNode",
        "content": _dict({"a": child, "b": _ref(child)}),
        "__id__": next(_IDS),
    }


def _via_reduce(child: dict[str, Any]) -> dict[str, Any]:
    return {
        "__class__": "CyHalfBinomialLoss",
        "__module__": "sklearn._loss._loss",
        "__loader__": "LossNode",
        "__reduce__": {"args": _seq("TupleNode", "tuple", [child, _ref(child)])},
        "content": _dict({}),
        "__id__": next(_IDS),
    }


def _cycle() -> bytes:
    outer = _seq("ListNode", "list", [])
    outer["content"] = [_json(1), _ref(outer)]
    return _skops(outer)


def _duplicate_id() -> bytes:
    first = _json(1)
    second = {**_json("not the same"), "__id__": first["__id__"]}
    return _skops(_seq("ListNode", "list", [first, second]))


def _unknown_loader() -> bytes:
    return _skops({**_json(1), "__loader__": "NoSuchNode"})


def _cached_node() -> bytes:
    first = _json(1)
    cached = {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "CachedNode",
        "__id__": first["__id__"],
    }
    return _skops(_seq("ListNode", "list", [first, cached]))


def _flat(count: int) -> bytes:
    return _skops(_seq("ListNode", "list", [_json(i) for i in range(count)]))


def _cached_forward() -> bytes:
    later = _json(1)
    cached = {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "CachedNode",
        "__id__": later["__id__"],
    }
    return _skops(_seq("ListNode", "list", [cached, later]))


_REPEAT = "repeats __id__"
_UNKNOWN = "which safeload does not know"
# Each attack, and the gate's own reason (given before skops reads anything).
ATTACKS: dict[str, tuple[Callable[[], bytes], str]] = {
    "deep shared list": (lambda: _deep(_via_list), _REPEAT),
    "deep shared tuple": (lambda: _deep(_via_tuple), _REPEAT),
    "deep shared dict": (lambda: _deep(_via_dict), _REPEAT),
    "deep shared ObjectNode attrs": (lambda: _deep(_via_object), _REPEAT),
    "deep shared reduce args": (lambda: _deep(_via_reduce), _REPEAT),
    "self-referential __id__ cycle": (_cycle, _REPEAT),
    "duplicated __id__, other content": (_duplicate_id, _REPEAT),
    "unknown loader": (_unknown_loader, _UNKNOWN),
    "CachedNode reference": (_cached_node, _REPEAT),
    "CachedNode forward reference": (_cached_forward, _UNKNOWN),
}


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Reaching skops at all fails the test: the gate must refuse before skops reads a node."""
    from safeload import _unpickle

    reached: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        reached.append("load_skops_verified")
        raise AssertionError("the skops gate let the file through")

    monkeypatch.setattr(_unpickle, "load_skops_verified", refuse)
    return reached


@pytest.mark.timeout(20, method="signal")
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_crafted_schema_is_refused_by_scan_within_seconds(attack: str) -> None:
    build, why = ATTACKS[attack]
    data = build()
    assert len(data) < 16_000
    start = time.perf_counter()
    report = safeload.scan_bytes(data)
    assert time.perf_counter() - start < 5
    assert not report.safe
    assert any(why in p for p in report.problems), report.problems


@pytest.mark.timeout(20, method="signal")
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_crafted_schema_signed_by_a_trusted_key_is_refused_by_load(
    attack: str, tmp_path: Path, key: safeload.SigningKey, unreachable: list[str]
) -> None:
    build, why = ATTACKS[attack]
    path = write_signed_artifact(
        tmp_path / "evil", {"model.skops": build(), "safeload.json": METADATA}, key=key
    )
    start = time.perf_counter()
    with pytest.raises(safeload.MalformedArtifactError, match=why):
        safeload.load(path, trusted=safeload.Keyring.of([key]))
    assert time.perf_counter() - start < 5
    assert unreachable == []


@pytest.mark.timeout(20, method="signal")
def test_huge_flat_schema_is_refused_by_the_node_limit() -> None:
    report = safeload.scan_bytes(_flat(2_000), limits=ScanLimits(max_skops_nodes=1_000))
    assert not report.safe
    assert any("nodes" in p for p in report.problems), report.problems


@pytest.mark.timeout(20, method="signal")
def test_oversized_schema_is_refused_before_it_is_parsed() -> None:
    report = safeload.scan_bytes(_flat(2_000), limits=ScanLimits(max_skops_schema_bytes=10_000))
    assert not report.safe
    assert any("schema.json" in p and "bytes" in p for p in report.problems), report.problems


def test_genuine_shared_nodes_still_pass() -> None:
    """skops writes a shared object in full at each place, under one ``__id__``: accepted."""
    X, y = np.eye(4), np.array([0, 1, 0, 1])
    model = LogisticRegression().fit(X, y)
    model.shared_a_ = model.shared_b_ = {"k": [1.5, "x", (2, 3)]}
    data = skops.io.dumps(model)
    report = safeload.scan_bytes(data)
    assert report.safe, report.problems


def _tree_skops(edit: Callable[[dict[str, Any]], None]) -> bytes:
    from sklearn.tree import DecisionTreeClassifier

    from tests.helpers import edit_skops_schema

    rng = np.random.default_rng(0)
    X, y = rng.random((30, 3)), np.arange(30) % 2
    data = skops.io.dumps(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y))
    return edit_skops_schema(data, edit)


def _tree_state(schema: dict[str, Any]) -> dict[str, Any]:
    pending: list[Any] = [schema]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            if value.get("__loader__") == "TreeNode":
                return value
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    raise AssertionError("no TreeNode in the schema")


@pytest.mark.timeout(20, method="signal")
def test_tree_node_naming_another_type_is_refused(
    tmp_path: Path, key: safeload.SigningKey, unreachable: list[str]
) -> None:
    """skops' TreeNode calls sklearn's ``Tree(*args)`` whatever type its state names: naming a
    type the policy lets a file call freely (``CyHalfSquaredError``) hid the ``Tree`` call from
    its own rule, so ``Tree`` got a file-chosen output count (an allocation) at load time."""

    def edit(schema: dict[str, Any]) -> None:
        tree = _tree_state(schema)
        tree["__module__"], tree["__class__"] = "sklearn._loss._loss", "CyHalfSquaredError"
        tree["__reduce__"]["args"]["content"][2] = {**_json(10**12), "__id__": 1}

    data = _tree_skops(edit)
    report = safeload.scan_bytes(data)
    assert not report.safe
    assert any("TreeNode" in p and "sklearn.tree._tree.Tree" in p for p in report.problems), (
        report.problems
    )
    path = write_signed_artifact(
        tmp_path / "evil", {"model.skops": data, "safeload.json": METADATA}, key=key
    )
    with pytest.raises(safeload.MalformedArtifactError, match="TreeNode"):
        safeload.load(path, trusted=safeload.Keyring.of([key]))
    assert unreachable == []


@pytest.mark.parametrize("protocol", [0, 1, 3, True, "2"])
def test_other_skops_protocols_are_refused(protocol: object) -> None:
    """An older protocol switches skops to its ``old/`` loaders, whose layouts the walk does
    not mirror."""

    def edit(schema: dict[str, Any]) -> None:
        schema["protocol"] = protocol

    report = safeload.scan_bytes(_tree_skops(edit))
    assert not report.safe
    assert any("protocol" in p for p in report.problems), report.problems


def test_shared_nodes_are_walked_once_and_counted_where_used() -> None:
    from safeload.typegate.skops import check_zip
    from safeload.typegate.skops_schema import parse_schema

    shared = _json("shared")
    data = _skops(_seq("ListNode", "list", [shared, dict(shared), dict(shared)]))
    schema = parse_schema(*check_zip(data, ScanLimits()), ScanLimits())
    assert [n.kind for n in schema.nodes] == ["ListNode", "JsonNode"]
    assert schema.expanded == 4
    assert list(schema.root.child_nodes()) == [schema.nodes[1]] * 3


@pytest.mark.timeout(20, method="signal")
def test_deeply_nested_schema_is_refused_before_skops_recurses() -> None:
    """skops' loaders recurse a few frames per level: 150 nested lists would end in a
    RecursionError inside skops (or deeper, in C); the walk refuses them first."""
    node = _json(1)
    for _ in range(150):
        node = _seq("ListNode", "list", [node])
    report = safeload.scan_bytes(_skops(node))
    assert any("nests deeper than 100" in p for p in report.problems), report.problems
