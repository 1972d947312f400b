"""skops' ``schema.json``, walked once by ``__id__`` before skops reads a single node.

skops shares a node wherever a state repeats an ``__id__`` it has already loaded (its
``get_tree`` returns the memoised node and never reads the repeated state), but its own walks
(``get_unsafe_set``, run by ``get_untrusted_types`` and by every load's audit) do not remember
what they visited: a few kilobytes of repeated ids fan out to 2**depth visits. So the gate
parses the schema itself (strict JSON, bounded bytes), visits each state in the order skops'
loaders do, resolves ``__id__`` exactly as skops' ``LoadContext`` memo does (the first state
with an id wins), and refuses what it does not understand:

* a loader safeload does not know, or a state not laid out as skops 0.16 (protocol 2) writes;
* a repeated ``__id__`` whose state is not the first one again (skops writes a shared object
  in full at every place, so only the ids and ``.npy``/``.bin`` file names inside may differ):
  then the tree skops expands has exactly as many nodes as the schema has states, and that
  count, the nesting depth and the time spent are bounded by the caller's ``ScanLimits``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Union

from safeload import strictjson
from safeload.errors import MalformedArtifactError
from safeload.gcpause import paused_gc
from safeload.typegate.limits import Deadline, ScanLimits

# The skops protocol this walk mirrors; older ones switch some loaders to skops' ``old/``
# modules, whose layouts safeload does not know.
SKOPS_PROTOCOL = 2
# skops' loaders recurse (get_tree, construct, get_unsafe_set) about four Python frames a level;
# real models nest about a dozen levels.
_MAX_SKOPS_DEPTH = 100
_MAX_ID = 1 << 64
_TREE = ("sklearn.tree._tree", "Tree")

Child = Union["SchemaNode", list["SchemaNode"], dict[str, "SchemaNode"]]


@dataclass(eq=False)
class SchemaNode:
    """One state of the schema as skops will load it: loader, named type, children, data."""

    kind: str
    module: str
    name: str
    children: dict[str, Child] = field(default_factory=dict)
    content: str | None = None  # JsonNode: its JSON text; MethodNode: the method's name;
    # NdArrayNode (.npy data): its file's name
    file: str | None = None  # the zip entry its loader reads (arrays, bytes, sparse matrices)

    def child_nodes(self) -> Iterator[SchemaNode]:
        """Every child node, in skops' order (shared ones as often as they are referred to)."""
        for child in self.children.values():
            if isinstance(child, SchemaNode):
                yield child
            elif isinstance(child, list):
                yield from child
            else:
                yield from child.values()


@dataclass(frozen=True)
class SkopsSchema:
    """The walked schema: every distinct node once, and how many nodes skops will expand."""

    root: SchemaNode
    nodes: tuple[SchemaNode, ...]
    expanded: int
    #: The parsed ``schema.json`` this walk accepted: what skops' ``get_tree`` is handed, so
    #: that skops never parses the bytes again (nor differently).
    document: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)


def read_schema_bytes(archive: zipfile.ZipFile, limits: ScanLimits) -> bytes:
    """``schema.json``'s bytes, refused before reading when over ``max_skops_schema_bytes``."""
    info = archive.getinfo("schema.json")
    if info.file_size > limits.max_skops_schema_bytes:
        raise MalformedArtifactError(
            f"the skops schema.json holds {info.file_size} bytes, over the limit of "
            f"{limits.max_skops_schema_bytes}: refused (raise ScanLimits.max_skops_schema_bytes "
            "for a model this large)"
        )
    with archive.open(info) as handle:
        raw = handle.read(limits.max_skops_schema_bytes + 1)
    if len(raw) > limits.max_skops_schema_bytes:
        raise MalformedArtifactError("the skops schema.json is larger than its zip entry says")
    return raw


def parse_schema(
    raw: bytes, names: set[str], limits: ScanLimits, deadline: Deadline | None = None
) -> SkopsSchema:
    """Parse and walk ``schema.json`` once; any doubt is a :class:`MalformedArtifactError`.

    The collector is paused: the walk makes no garbage cycles, and its full passes over the
    parsed document cost more than the walk itself (3 s of 3.5 s for 200,000 states).
    """
    with paused_gc():
        return _parse(raw, names, limits, deadline or Deadline(limits.max_seconds))


def _parse(raw: bytes, names: set[str], limits: ScanLimits, deadline: Deadline) -> SkopsSchema:
    document = strictjson.loads(raw, "the skops schema.json")
    if not isinstance(document, dict):
        raise MalformedArtifactError("the skops schema.json is not a JSON object")
    protocol = document.get("protocol")
    if type(protocol) is not int or protocol != SKOPS_PROTOCOL:
        raise MalformedArtifactError(
            f"the skops file declares protocol {protocol!r}; safeload reads only protocol "
            f"{SKOPS_PROTOCOL} (skops 0.16): re-save the model with this skops version"
        )
    walk = _Walk(names, limits, deadline)
    root = walk.state(document, 0)
    return SkopsSchema(root, tuple(walk.nodes), walk.expanded, document)


class _Walk:
    """One pre-order pass in skops' own order, with skops' ``__id__`` memo."""

    def __init__(self, names: set[str], limits: ScanLimits, deadline: Deadline) -> None:
        self.names = names
        self.limits = limits
        self.max_depth = min(limits.max_depth, _MAX_SKOPS_DEPTH)
        self.deadline = deadline
        self.memo: dict[int, tuple[SchemaNode, dict[str, Any]]] = {}
        self.nodes: list[SchemaNode] = []
        self.expanded = 0

    def _count(self, states: int) -> None:
        before = self.expanded
        self.expanded += states
        if self.expanded > self.limits.max_skops_nodes:
            raise MalformedArtifactError(
                f"the skops schema expands to more than {self.limits.max_skops_nodes} nodes: "
                "refused (raise ScanLimits.max_skops_nodes for a model this large)"
            )
        if before >> 10 != self.expanded >> 10 and self.deadline.passed():
            raise MalformedArtifactError(
                f"walking the skops schema took over {self.limits.max_seconds} seconds: refused"
            )

    def _name(self, value: object, what: str) -> str:
        if type(value) is not str or not value or len(value) > self.limits.max_string_bytes:
            raise MalformedArtifactError(f"a skops node has an odd {what}: {_show(value)}")
        return value

    def state(self, state: object, depth: int) -> SchemaNode:
        """The node skops' ``get_tree`` makes of ``state``, its children walked first."""
        if type(state) is not dict:
            raise MalformedArtifactError(f"a skops node is not a JSON object: {_show(state)}")
        if depth > self.max_depth:
            raise MalformedArtifactError(
                f"the skops schema nests deeper than {self.max_depth} nodes: refused"
            )
        saved_id = state.get("__id__")
        if type(saved_id) is not int or not 0 < saved_id < _MAX_ID:
            raise MalformedArtifactError(f"a skops node has an odd __id__ {_show(saved_id)}")
        known = self.memo.get(saved_id)
        if known is not None:  # skops returns the first node and never reads this state
            first = known[1]
            if state == first and all(
                type(value) is type(first[key]) and type(value) not in (dict, list)
                for key, value in state.items()
            ):
                self._count(1)  # a flat state (most repeats): the first one, type for type
            else:
                self._count(_same_as_first(state, first, saved_id))
            return known[0]
        self._count(1)
        loader = self._name(state.get("__loader__"), "__loader__")
        module = self._name(state.get("__module__"), "__module__")
        name = self._name(state.get("__class__"), "__class__")
        reader = _LOADERS.get(loader)
        if reader is None:
            raise MalformedArtifactError(
                f"the skops file uses the loader {loader!r} (for {module}.{name}), which safeload "
                "does not know: refused"
            )
        node = SchemaNode(loader, module, name)
        self.memo[saved_id] = (node, state)  # before the children, as skops' Node.__init__
        self.nodes.append(node)
        try:
            reader(self, node, state, depth + 1)
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedArtifactError(
                f"a skops {loader} node is not laid out as skops writes it ({exc!r}): refused"
            ) from exc
        return node

    def file(self, node: SchemaNode, state: dict[str, Any]) -> None:
        entry = state["file"]
        if type(entry) is not str or entry not in self.names:
            raise MalformedArtifactError(f"a skops node names a missing file {_show(entry)}")
        node.file = entry


def _show(value: object) -> str:
    text = repr(value) if type(value) in (str, int, bool, float) or value is None else ""
    return text[:80] if text else f"of type {type(value).__name__}"


def _same_as_first(state: dict[str, Any], first: dict[str, Any], saved_id: int) -> int:
    """The states in a repeat of ``__id__``, if it is the first state again; else refused.

    Only ids and array/bytes file names may differ: skops writes a shared object in full each
    time, under fresh ids for the temporaries its state is made of.
    """
    states = 0
    pending: list[tuple[Any, Any]] = [(state, first)]
    while pending:
        a, b = pending.pop()
        if type(a) is not type(b) or not _same_level(a, b, pending):
            raise MalformedArtifactError(
                f"the skops schema repeats __id__ {saved_id} with other content; skops would "
                "silently use the first and never read this one: refused"
            )
        states += type(a) is dict and "__id__" in a
    return states


def _same_level(a: Any, b: Any, pending: list[tuple[Any, Any]]) -> bool:
    """Whether two JSON values of one type agree at this level; their items go on ``pending``."""
    if type(a) is list:
        pending.extend(zip(a, b, strict=False))
        return len(a) == len(b)
    if type(a) is not dict:
        return bool(a == b)
    if a.keys() != b.keys():
        return False
    for key, value in a.items():
        if key == "__id__" or (key == "file" and "__loader__" in a):
            if type(value) is not type(b[key]):
                return False
        else:
            pending.append((value, b[key]))
    return True


# --- each loader's layout, as skops 0.16's ``Node.__init__`` reads it ---------------------------


def _dict(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    key_types = walk.state(state["key_types"], depth)
    content = state["content"]
    if type(content) is not dict:
        raise TypeError("content is not an object")
    node.children["key_types"] = key_types
    children: dict[str, SchemaNode] = {}
    for key, value in content.items():
        if len(key) > walk.limits.max_string_bytes:
            raise MalformedArtifactError(f"a skops dict key holds {len(key)} characters: refused")
        children[key] = walk.state(value, depth)
    node.children["content"] = children


def _sequence(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    content = state["content"]
    if type(content) is not list:
        raise TypeError("content is not a list")
    node.children["content"] = [walk.state(item, depth) for item in content]


def _parts(*keys: str) -> Any:
    """A loader whose ``content`` is an object of named child states, read in this order."""

    def read(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
        content = state["content"]
        if type(content) is not dict:
            raise TypeError("content is not an object")
        for key in keys:
            node.children[key] = walk.state(content[key], depth)

    return read


def _one(key: str, optional: bool = False) -> Any:
    """A loader with a single child state under ``key``."""

    def read(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
        if optional and state.get(key) is None:
            return
        node.children[key] = walk.state(state[key], depth)

    return read


def _nothing(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    return None


def _json(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    if type(state["content"]) is not str:
        raise TypeError("content is not a JSON text")
    node.content = state["content"]


def _file(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    walk.file(node, state)


def _slice(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    content = state["content"]
    for key in ("start", "stop", "step"):
        if content[key] is not None and type(content[key]) is not int:
            raise TypeError(f"slice {key} is not an int or null")


def _method(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    obj = walk.state(state["content"]["obj"], depth)
    if (obj.module, obj.name) != (node.module, node.name):
        raise MalformedArtifactError("a skops MethodNode names another type than its object")
    node.children["obj"] = obj
    node.content = walk._name(state["content"]["func"], "method name")


def _operator(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    if node.module != "operator":
        raise MalformedArtifactError("a skops OperatorFuncNode names a module other than operator")
    node.children["attrs"] = walk.state(state["attrs"], depth)


def _ndarray(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    if state["type"] == "numpy":
        walk.file(node, state)
        node.content = state["file"]  # the .npy entry, whose header typegate.states reads
    elif state["type"] == "json":
        _sequence(walk, node, state, depth)
        node.children["shape"] = walk.state(state["shape"], depth)
    else:
        raise TypeError(f"array type {_show(state['type'])}")


def _sparse(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    if state["type"] != "scipy":
        raise TypeError(f"sparse type {_show(state['type'])}")
    walk.file(node, state)


def _reduce(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    """ReduceNode: its state (``content``) first, then the constructor's ``args``."""
    reduce = state["__reduce__"]
    if type(reduce) is not dict:
        raise TypeError("__reduce__ is not an object")
    node.children["attrs"] = walk.state(state["content"], depth)
    node.children["args"] = walk.state(reduce["args"], depth)


def _tree(walk: _Walk, node: SchemaNode, state: dict[str, Any], depth: int) -> None:
    # skops' TreeNode calls sklearn's Tree whatever the state names: the name must be Tree.
    if (node.module, node.name) != _TREE:
        raise MalformedArtifactError(
            f"a skops TreeNode names {node.module}.{node.name}, but skops' TreeNode always "
            "constructs sklearn.tree._tree.Tree: refused"
        )
    _reduce(walk, node, state, depth)


Reader = Any
_LOADERS: dict[str, Reader] = {
    "DictNode": _dict,
    "DefaultDictNode": _parts("main", "default_factory"),
    "ListNode": _sequence,
    "SetNode": _sequence,
    "TupleNode": _sequence,
    "BytesNode": _file,
    "BytearrayNode": _file,
    "SliceNode": _slice,
    "FunctionNode": _nothing,
    "MethodNode": _method,
    "PartialNode": _parts("func", "args", "kwds", "namespace"),
    "TypeNode": _nothing,
    "ConstructorFromReduceNode": _one("content"),
    "ObjectNode": _one("content", optional=True),
    "JsonNode": _json,
    "OperatorFuncNode": _operator,
    "NdArrayNode": _ndarray,
    "MaskedArrayNode": _parts("data", "mask"),
    "DTypeNode": _one("content"),
    "RandomStateNode": _one("content"),
    "RandomGeneratorNode": _parts("bit_generator", "seed_seq"),
    "SparseMatrixNode": _sparse,
    "TreeNode": _tree,
    "LossNode": _reduce,
}
