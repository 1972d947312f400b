"""The type gate for skops files: zip limits, then every type the file names, exactly.

skops' own audit only reports the types outside *skops'* default trust list, and skops' trust
decisions have been bypassed before (CVE-2025-54412 via ``OperatorFuncNode``, CVE-2025-54413 via
``MethodNode``). So safeload walks skops' own node tree (built from the verified bytes, without
constructing anything) and checks every node's type against the caller's exact-name policy,
the same policy as for joblib files. Only the plain containers that skops' loaders build
themselves (dict, list, tuple, str...) are accepted without a policy entry.
"""

from __future__ import annotations

import collections
import contextlib
import encodings.cp437  # noqa: F401  zipfile decodes entry names with it: imported on first open
import itertools
import re
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from safeload._default_types import NO_ARGS, PYX_UNPICKLE
from safeload.buffers import BufferReader, byte_view
from safeload.errors import MalformedArtifactError, shown
from safeload.gcpause import paused_gc
from safeload.policy import TypeName, TypePolicy, format_type_name
from safeload.typegate.callrules import skops_call_problem
from safeload.typegate.dtypes import NUMERIC_SCALARS
from safeload.typegate.limits import Deadline, ScanLimits
from safeload.typegate.npyheader import read_header
from safeload.typegate.report import ScanReport
from safeload.typegate.skops_schema import (
    SKOPS_PROTOCOL,
    SchemaNode,
    SkopsSchema,
    parse_schema,
    read_schema_bytes,
)
from safeload.typegate.states import skops_problem

ZIP_MAGIC = b"PK\x03\x04"

# Loaders that build a plain value themselves, never calling the named type: the name is
# descriptive only, but it must still be one of these exact values.
_CONTAINER_LOADERS = {
    "DictNode": {("builtins", "dict")},
    "ListNode": {("builtins", "list")},
    "TupleNode": {("builtins", "tuple")},
    "SetNode": {("builtins", "set")},
    "SliceNode": {("builtins", "slice")},
    "BytesNode": {("builtins", "bytes")},
    "BytearrayNode": {("builtins", "bytearray")},
    "JsonNode": {
        ("builtins", name) for name in ("str", "int", "float", "bool", "NoneType", "list", "dict")
    },
    # A type object itself (dict key types, dtypes given as classes): returned, never called.
    "TypeNode": {
        ("builtins", name)
        for name in ("str", "int", "float", "bool", "complex", "bytes", "NoneType", "object")
    },
}
# ``NdArrayNode`` reads ``.npy`` data with ``allow_pickle=False``; it names numpy's array or
# scalar types. Scalar types are plain data classes.
_NUMPY_SCALARS = {
    *NUMERIC_SCALARS,
    "longdouble",
    "clongdouble",
    "str_",
    "bytes_",
    "datetime64",
    "timedelta64",
}
_ENTRY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_zip(data: bytes | bytearray | memoryview, limits: ScanLimits) -> tuple[bytes, set[str]]:
    """Refuse zip bombs, odd entry names and duplicates before skops opens the archive.

    The caller's :class:`ScanLimits` bound a zip exactly as they bound a joblib file. Returns
    ``schema.json``'s bytes (size-checked before reading) and the entry names, for the one
    walk of the schema.
    """
    schema, names, _ = open_zip(data, limits)
    return schema, names


Spans = dict[str, tuple[int, int]]
"""Where each stored (uncompressed) entry's bytes lie in the file: ``[start, end)``."""


def open_zip(
    data: bytes | bytearray | memoryview, limits: ScanLimits
) -> tuple[bytes, set[str], Spans]:
    """:func:`check_zip`, and where each stored entry's bytes lie in ``data`` (no copy)."""
    view = byte_view(data)
    try:
        with zipfile.ZipFile(BufferReader(view)) as archive:  # no copy of the file
            infos = archive.infolist()
            names = _check_entries(infos, limits)
            schema = read_schema_bytes(archive, limits)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError) as exc:
        # zipfile's messages may quote entry names: the file's own bytes, never echoed.
        raise MalformedArtifactError(
            "not a pickle, joblib or skops file: it starts like a skops zip but is not a valid "
            f"zip archive (truncated or damaged, {type(exc).__name__}): refused."
        ) from exc
    return schema, names, _stored_spans(view, infos)


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader, 30 bytes


def _stored_spans(view: memoryview, infos: list[zipfile.ZipInfo]) -> Spans:
    """The data span of each entry stored without compression or encryption.

    Located as zipfile locates it (the central directory's offset, then the local header's
    name and extra lengths), with the local name equal to the central one, inside the file,
    and no two spans overlapping; an entry that fails any of this gets no span and is read
    through zipfile. The manifest hash already covers every byte, so zip CRCs add nothing.
    """
    spans: Spans = {}
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            continue
        if info.compress_size != info.file_size:
            continue
        head = info.header_offset
        if head < 0 or head + _LOCAL_HEADER.size > len(view):
            continue
        fields = _LOCAL_HEADER.unpack_from(view, head)
        name_len, extra_len = fields[10], fields[11]
        name_at = head + _LOCAL_HEADER.size
        if fields[0] != b"PK\x03\x04" or bytes(view[name_at : name_at + name_len]) != (
            info.filename.encode("ascii")
        ):
            continue
        start = name_at + name_len + extra_len
        end = start + info.file_size
        if end <= len(view):
            spans[info.filename] = (start, end)
    ordered = sorted(spans.values())
    for (_, end), (start, _) in itertools.pairwise(ordered):
        if start < end:
            raise MalformedArtifactError("the skops file holds overlapping entries: refused")
    return spans


def _check_entries(infos: list[zipfile.ZipInfo], limits: ScanLimits) -> set[str]:
    if len(infos) > limits.max_zip_entries:
        raise MalformedArtifactError(
            f"the skops file holds {len(infos)} entries, over the limit of {limits.max_zip_entries}"
        )
    names: set[str] = set()
    total = 0
    for info in infos:
        if not _ENTRY_NAME.fullmatch(info.filename) or info.filename in names:
            raise MalformedArtifactError(
                f"the skops file holds an odd or duplicate entry name {shown(info.filename)}"
            )
        names.add(info.filename)
        total += info.file_size
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise MalformedArtifactError(
                f"skops entry {shown(info.filename)} expands {info.compress_size} bytes to "
                f"{info.file_size}: refused as a decompression bomb"
            )
    if total > limits.max_decompressed_bytes:
        raise MalformedArtifactError(
            f"the skops file expands to {total} bytes, over the limit of "
            f"{limits.max_decompressed_bytes}"
        )
    if "schema.json" not in names:
        raise MalformedArtifactError("the skops file has no schema.json")
    return names


def _node_type(node: SchemaNode) -> TypeName:
    if node.kind == "MethodNode":
        obj = node.children["obj"]
        if not isinstance(obj, SchemaNode):
            raise MalformedArtifactError("a skops MethodNode has no object")
        return (obj.module, f"{obj.name}.{node.content}")
    if node.kind == "OperatorFuncNode":
        return ("operator", node.name)
    return (node.module, node.name)


# The loaders that call the type the file names, and how (see safeload.typegate.callrules):
# ``cls.__new__(cls)`` then the state, or ``constructor(*args)`` with the node holding ``args``.
_CALLING_LOADERS: dict[str, tuple[str, str | None]] = {
    "ObjectNode": ("NEWOBJ", None),
    "TreeNode": ("REDUCE", "args"),
    "LossNode": ("REDUCE", "args"),
    "ConstructorFromReduceNode": ("REDUCE", "content"),
    "PartialNode": ("REDUCE", None),  # partial(func, *args, **kwds): the node is its arguments
}


@dataclass(frozen=True)
class SkopsNode:
    """One node of skops' tree: its loader, the type it names, and the call its loader makes."""

    kind: str
    type_name: TypeName
    how: str | None = None  # None: the loader does not call the named type
    args: SchemaNode | None = field(default=None, compare=False)


def skops_types(schema: SkopsSchema) -> list[SkopsNode]:
    """Every distinct node's loader, type and call, from the one walk of the schema."""
    found: list[SkopsNode] = []
    for node in schema.nodes:
        how, args_child = _CALLING_LOADERS.get(node.kind, (None, None))
        args = node.children.get(args_child) if args_child else None
        if node.kind == "PartialNode":
            args = node
        if args is not None and not isinstance(args, SchemaNode):
            raise MalformedArtifactError(f"a skops {node.kind} node has odd arguments")
        type_name = _node_type(node)
        if node.kind == "TupleNode" and type_name != ("builtins", "tuple"):
            # skops calls the class on the items when it looks like a namedtuple, cls(*content);
            # the gate imports nothing to find out, so any class but tuple counts as called.
            how, args = "REDUCE", node
        found.append(SkopsNode(node.kind, type_name, how, args))
    return found


def call_problems(found: list[SkopsNode], policy: TypePolicy) -> list[str]:
    """The calls skops' loaders would make with trusted types, against each type's call rule.

    Untrusted types are reported by :func:`untrusted_skops_types`; a trusted one that is only a
    reference, or whose rule forbids the call skops makes, is a problem here: skops would run it
    on the file's arguments just as an unpickler would.
    """
    problems: set[str] = set()
    for node in found:
        if node.how is None or not policy.allows(*node.type_name):
            continue
        module, name = node.type_name
        rule = policy.call_rule(module, name)
        if rule is None and policy.call_rule(module, f"__pyx_unpickle_{name}") == PYX_UNPICKLE:
            # A Cython class whose pickles go through its trusted __pyx_unpickle_ reconstructor
            # (CyHalfMultinomialLoss): skops' LossNode does what that reconstructor does, X()
            # then X.__setstate__(state), so it may, with no arguments.
            rule = NO_ARGS
        why = skops_call_problem(rule, node.how, node.args)
        if why is not None:
            problems.add(
                f"the skops file calls {format_type_name(node.type_name)} ({node.kind}) {why}; "
                "its own files never do, and the arguments would be the file's: refused"
            )
    return sorted(problems)


def state_problems(
    data: bytes | bytearray | memoryview, schema: SkopsSchema, spans: Spans | None = None
) -> list[str]:
    """The states skops would hand to a compiled ``__setstate__`` in a form its class never has.

    See :mod:`safeload.typegate.states`; arrays are judged by their ``.npy`` headers, read as
    numpy reads them (:mod:`safeload.typegate.npyheader`: literals only, bounded size),
    straight from the buffer for stored entries (``spans``), through zipfile for the others.
    """
    view = byte_view(data)
    located = spans or {}
    problems: set[str] = set()
    with contextlib.ExitStack() as stack:
        archive: zipfile.ZipFile | None = None

        def header(entry: str) -> tuple[np.dtype[Any], int] | None:
            nonlocal archive
            try:
                span = located.get(entry)
                if span is None:
                    if archive is None:
                        archive = stack.enter_context(zipfile.ZipFile(BufferReader(view)))
                    with archive.open(entry) as stream:  # the header is in the first 64 KiB
                        shape, _, dtype, _ = read_header(memoryview(stream.read(1 << 16)))
                else:
                    shape, _, dtype, _ = read_header(view[span[0] : span[1]])
            except Exception:
                return None
            return dtype, len(shape)

        for node in schema.nodes:
            why = skops_problem(node, header)
            if why is not None:
                problems.add(why)
    return sorted(problems)


def untrusted_skops_types(found: list[SkopsNode], policy: TypePolicy) -> list[str]:
    """The named types that neither a plain-container loader nor the policy accepts."""
    bad: set[str] = set()
    for node in found:
        kind, type_name = node.kind, node.type_name
        if type_name in _CONTAINER_LOADERS.get(kind, ()):
            continue
        if kind == "NdArrayNode" and (
            type_name == ("numpy", "ndarray")
            or (type_name[0] == "numpy" and type_name[1] in _NUMPY_SCALARS)
        ):
            continue
        if not policy.allows(*type_name):
            bad.add(format_type_name(type_name))
    return sorted(bad)


ARRAY_MARK = b"\x00safeload: built from the verified buffer, not read here: "


class SkopsSource:
    """skops' ``LoadContext.src``: entries read from the verified buffer, arrays marked.

    skops' loaders read every entry in full while they build their node tree (``NdArrayNode``
    copies each array into a ``BytesIO`` before any audit). The arrays that
    :mod:`safeload._skops_load` builds straight from the verified buffer (``arrays``: stored
    entries that only ``numpy.ndarray`` nodes read) are handed out as a marker instead, which
    is not an ``.npy`` file: a marker that reached numpy would make ``np.load`` refuse, never
    read as data. Each marker handed out is counted in ``marked``.
    """

    def __init__(self, view: memoryview, spans: Spans, arrays: frozenset[str]) -> None:
        self.view = view
        self.spans = spans
        self.arrays = arrays
        self.marked: collections.Counter[str] = collections.Counter()
        self._zip: zipfile.ZipFile | None = None

    def read(self, name: str) -> bytes:
        """The entry's bytes (what skops' ``ZipFile.read`` gives), or a marker for an array."""
        if name in self.arrays:
            self.marked[name] += 1
            return ARRAY_MARK + name.encode("ascii")
        span = self.spans.get(name)
        if span is not None:
            return bytes(self.view[span[0] : span[1]])
        if self._zip is None:  # compressed entries, within the limits check_zip enforced
            self._zip = zipfile.ZipFile(BufferReader(self.view))
        return self._zip.read(name)


def direct_arrays(schema: SkopsSchema, spans: Spans) -> frozenset[str]:
    """Stored entries read only by ``numpy.ndarray`` nodes: built from the buffer at load."""
    arrays: set[str] = set()
    others: set[str] = set()
    for node in schema.nodes:
        if node.file is None:
            continue
        if node.kind == "NdArrayNode" and (node.module, node.name) == ("numpy", "ndarray"):
            arrays.add(node.file)
        else:
            others.add(node.file)
    return frozenset(name for name in arrays - others if name in spans)


@dataclass(frozen=True)
class SkopsPlan:
    """What the scan proved of a skops file, handed to its one construction.

    ``document`` is the parsed ``schema.json`` the walk accepted and skops' audit ran on (skops
    never parses the bytes again); ``trusted`` is the exact list that audit asked for, each an
    exact policy entry; ``spans`` and ``arrays`` say which entries the deserializer builds
    straight from the verified buffer. ``audited`` holds the node tree that audit built and
    its source, for the one construction that follows (:meth:`take_audited`).
    """

    document: dict[str, Any] = field(repr=False)
    trusted: tuple[str, ...]
    spans: Spans = field(repr=False)
    arrays: frozenset[str] = field(repr=False)
    audited: list[tuple[Any, SkopsSource]] = field(default_factory=list, repr=False, compare=False)

    def take_audited(self) -> tuple[Any, SkopsSource] | None:
        """The audited tree and its source, once: a tree constructs one model, never two."""
        return self.audited.pop() if self.audited else None


def skops_audit(view: memoryview, schema: SkopsSchema, spans: Spans) -> SkopsPlan:
    """The audit skops runs (``get_untrusted_types``), on the walked document: what it asks for.

    Only called on a schema the walk accepted: skops' ``get_tree`` then builds
    ``schema.expanded`` nodes (bounded by ``ScanLimits.max_skops_nodes``), never more, and reads
    no array (:class:`SkopsSource`).
    """
    from skops.io._audit import get_tree
    from skops.io._utils import LoadContext

    arrays = direct_arrays(schema, spans)
    source = SkopsSource(view, spans, arrays)
    try:
        with paused_gc():  # the node tree holds no garbage cycles; full passes would dominate
            context = LoadContext(src=source, protocol=SKOPS_PROTOCOL)
            tree = get_tree(schema.document, context, trusted=None)
            trusted = tuple(sorted(tree.get_unsafe_set()))
    except Exception as exc:
        raise MalformedArtifactError(f"skops could not audit the file: {exc}") from exc
    return SkopsPlan(schema.document, trusted, spans, arrays, [(tree, source)])


def _allowed(dotted: str, policy: TypePolicy) -> bool:
    """Whether ``module.qualname`` (skops' spelling) is a policy name, split at any dot.

    The same answer as looking it up among every policy name spelled that way, without
    spelling hundreds of names per scan.
    """
    return any(
        (dotted[:at], dotted[at + 1 :]) in policy.names
        for at, char in enumerate(dotted)
        if char == "."
    )


def scan_skops(
    data: bytes | bytearray | memoryview,
    policy: TypePolicy,
    path: str | None,
    limits: ScanLimits,
    deadline: Deadline | None = None,
) -> tuple[ScanReport, SkopsPlan | None]:
    """Scan a skops file; return the report and, if safe, the plan for skops' loader."""
    view = byte_view(data)
    problems: list[str] = []
    names: list[str] = []
    untrusted: list[str] = []
    plan: SkopsPlan | None = None
    try:
        raw, entries, spans = open_zip(view, limits)
        schema = parse_schema(raw, entries, limits, deadline)
        found = skops_types(schema)
        names = sorted({format_type_name(n.type_name) for n in found})
        untrusted = untrusted_skops_types(found, policy)
        problems.extend(call_problems(found, policy))
        problems.extend(state_problems(view, schema, spans))
        # What skops itself will ask to trust (it declares some names, such as a Generator's
        # bit generator, only there): every one of those must be an exact policy entry too.
        plan = skops_audit(view, schema, spans)
        names = sorted(set(names) | set(plan.trusted))
        untrusted = sorted(set(untrusted) | {n for n in plan.trusted if not _allowed(n, policy)})
    except MalformedArtifactError as exc:
        problems.append(str(exc))
    report = ScanReport(
        path=path,
        format="skops",
        compression=None,
        globals=tuple(names),
        untrusted=tuple(untrusted),
        problems=tuple(problems),
    )
    return report, (plan if report.safe else None)
