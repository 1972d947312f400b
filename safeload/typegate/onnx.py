"""The ONNX room of step 4: a static check of an ONNX graph, parsed from the verified bytes.

An ONNX file carries no Python, but loading one has a history of file reads: a tensor whose
data lives in an *external* file (``data_location: EXTERNAL``, ``external_data``) is read by
the loader from a path the file chooses, relative to the model's folder or the working
directory (CVE-2022-25882, CVE-2024-27318, CVE-2026-27489; ``../``, absolute paths, symlinks and
hard links). A safeload artifact signs one ``model.onnx`` and nothing else, so every tensor must
hold its data inline; the gate refuses any external reference, anywhere in the graph.

What is accepted, and nothing else (an allowlist, not a list of known-bad values):

* the byte length is checked first (``ScanLimits.max_onnx_bytes``), then the protobuf
  messages are counted on the wire (``ScanLimits.max_onnx_messages``) before the full parse:
  an empty message is 2 bytes on the wire and about 100 in memory, so parsing an unchecked file
  costs up to ~90 times its size (a 38 MB file of empty initializers took 3.4 GB and 8 s). The
  count walks the wire encoding, allocating nothing per field (a length-delimited field is one
  step, a run of repeated numbers one regular-expression match, the clock asked as it goes);
  it also estimates from above what the parse will hold (an empty repeated string: 2 bytes to
  ~40; a repeated int: 2 to ~20) against ``ScanLimits.max_onnx_parse_bytes``;
* operators of the policy's ``onnx_ops`` only, by exact ``domain:OpType`` name, in every graph
  and subgraph: by default those skl2onnx writes for scikit-learn models
  (:mod:`safeload._onnx_ops`, measured by ``benchmarks/gen_onnx_ops.py``). The rest of the
  standard is refused though onnxruntime implements it: string operators such as
  ``StringConcat`` or ``Expand`` of a string allocate outside onnxruntime's capped arena
  (36 chained ``StringConcat`` double a 2-byte constant to 2**37 bytes), and an operator no
  converter of ours writes is one nobody here has reviewed. A caller who signs graphs from
  another converter admits more with ``TypePolicy.with_onnx_ops``;
* of the standard (``""``, ``ai.onnx``) and ``ai.onnx.ml`` domains only, each known to the
  installed ``onnx``, at opsets it knows: a custom domain is a native library's code
  (onnxruntime contrib ops, EP context nodes that name cache files), refused even if a policy
  names it;
* no model-local functions, training info, device configurations or operator overloads:
  skl2onnx writes none, and each would let a graph define or reroute operators;
* every tensor (initializers, attribute tensors of every node of every subgraph:
  ``If``/``Loop``/``Scan`` bodies) holds exactly as many values inline as its shape declares,
  in a data type of a fixed size or strings, with no ``segment``; no sparse tensor (onnxruntime
  makes it dense, to a shape the file declares: a few bytes that ask for terabytes);
* nodes, subgraph nesting and name and string lengths within :class:`ScanLimits`.

Only then does ``onnx.checker`` (which itself resolves external data from the disk: never
before this walk) check the graph's structure. Nothing here runs the graph.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from safeload.buffers import Buffer, byte_view
from safeload.errors import OperationalError, shown
from safeload.policy import TypePolicy
from safeload.typegate.limits import Deadline, ScanLimits
from safeload.typegate.report import ScanReport, make_report

#: Operator domains whose operators onnxruntime implements itself, from the ONNX standard.
ALLOWED_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")

# Bytes per element of the data types an inline tensor may hold (TensorProto.DataType);
# STRING (8) is counted per string. Other types (4-bit, 8-bit floats, ...) are refused.
_ITEMSIZE = {
    1: 4,
    2: 1,
    3: 1,
    4: 2,
    5: 2,
    6: 4,
    7: 8,
    9: 1,
    10: 2,
    11: 8,
    12: 4,
    13: 8,
    14: 8,
    15: 16,
    16: 2,
}
_STRING = 8
# Where each data type's values go when not in raw_data, and how many numbers make one value.
_FIELD = {
    1: ("float_data", 1),
    14: ("float_data", 2),
    11: ("double_data", 1),
    15: ("double_data", 2),
    7: ("int64_data", 1),
    12: ("uint64_data", 1),
    13: ("uint64_data", 1),
    8: ("string_data", 1),
}
_INT32_DATA = ("int32_data", 1)
_INT64_MAX = (1 << 63) - 1


class OnnxProblem(Exception):
    """One reason to refuse the graph (a sentence); the walk stops at the first."""


def _tensor_problem(tensor: Any, where: str, limits: ScanLimits) -> None:
    """Inline data only, exactly as much as the shape declares, of a known fixed-size type."""
    name = _short(tensor.name) or "(unnamed)"
    if tensor.data_location == 1 or len(tensor.external_data):  # TensorProto.EXTERNAL
        raise OnnxProblem(
            f"tensor {name} in {where} refers to external data (a file outside model.onnx): "
            "an artifact signs model.onnx alone, and the loader would read a file the model "
            "names. Save the model with its data inline (safeload.save does)."
        )
    if tensor.HasField("segment"):
        raise OnnxProblem(f"tensor {name} in {where} is a segment of a larger tensor")
    dtype = int(tensor.data_type)
    if dtype not in _ITEMSIZE and dtype != _STRING:
        raise OnnxProblem(f"tensor {name} in {where} has data type {dtype}, not accepted")
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise OnnxProblem(f"tensor {name} in {where} has a negative dimension")
    declared = math.prod(dims)
    if math.prod(d for d in dims if d) > _INT64_MAX:
        # Empty, but its strides overflow the 64-bit arithmetic of onnxruntime's kernels.
        raise OnnxProblem(f"tensor {name} in {where} has dimensions beyond 64-bit sizes")
    field, per_value = _FIELD.get(dtype, _INT32_DATA)
    if tensor.raw_data:
        if dtype == _STRING:
            raise OnnxProblem(f"string tensor {name} in {where} holds raw bytes")
        stored = len(tensor.raw_data) // _ITEMSIZE[dtype]
        exact = len(tensor.raw_data) % _ITEMSIZE[dtype] == 0
    else:
        count = len(getattr(tensor, field))
        stored, exact = count // per_value, count % per_value == 0
    if not exact or stored != declared:
        raise OnnxProblem(f"tensor {name} in {where} declares {declared} values but holds {stored}")
    if dtype == _STRING:
        for value in tensor.string_data:
            if len(value) > limits.max_string_bytes:
                raise OnnxProblem(
                    f"tensor {name} in {where} holds a string of {len(value)} bytes, more than "
                    f"{limits.max_string_bytes} (ScanLimits.max_string_bytes)"
                )


def _sparse_problem(sparse: Any, where: str, limits: ScanLimits) -> None:
    """No sparse tensors: onnxruntime makes them dense, to a shape of the file's choosing."""
    _tensor_problem(sparse.values, where, limits)
    _tensor_problem(sparse.indices, where, limits)
    raise OnnxProblem(
        f"a sparse tensor in {where}: onnxruntime expands it to its declared dense shape "
        f"{shown(list(sparse.dims))}, whatever few values it holds (skl2onnx writes none)"
    )


def _short(text: str) -> str:
    return shown(text) if text else ""


class _Walk:
    """One pass over every graph of the model, bounded in nodes, depth and time."""

    def __init__(
        self, limits: ScanLimits, deadline: Deadline, opsets: dict[str, int], ops: frozenset[str]
    ) -> None:
        self.limits = limits
        self.deadline = deadline
        self.opsets = opsets
        self.ops = ops
        self.nodes = 0

    def graph(self, graph: Any, where: str, depth: int) -> None:
        if depth > self.limits.max_onnx_depth:
            raise OnnxProblem(
                f"{where} nests subgraphs deeper than {self.limits.max_onnx_depth} "
                "(ScanLimits.max_onnx_depth)"
            )
        for tensor in graph.initializer:
            _tensor_problem(tensor, where, self.limits)
        for sparse in graph.sparse_initializer:
            _sparse_problem(sparse, where, self.limits)
        for node in graph.node:
            self.node(node, where, depth)

    def node(self, node: Any, where: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > self.limits.max_onnx_nodes:
            raise OnnxProblem(
                f"the graph has more than {self.limits.max_onnx_nodes} nodes "
                "(ScanLimits.max_onnx_nodes)"
            )
        if self.nodes % 4096 == 0:
            self.deadline.check("the ONNX graph check")
        op = f"{_short(node.domain) or 'ai.onnx'}:{_short(node.op_type)}"
        _check_op(node.domain, node.op_type, self.opsets, self.ops, where)
        if node.overload or len(node.device_configurations):
            raise OnnxProblem(f"node {op} in {where} names an overload or device configuration")
        for name in (node.name, *node.input, *node.output):
            _check_length(name, self.limits, f"a name in node {op}")
        inner = f"{where} > {op}"
        for attr in node.attribute:
            if attr.ref_attr_name:
                raise OnnxProblem(f"attribute of {op} refers to a function's attribute")
            _check_length(attr.s, self.limits, f"attribute of {op}")
            for text in attr.strings:
                _check_length(text, self.limits, f"attribute of {op}")
            if attr.HasField("t"):
                _tensor_problem(attr.t, inner, self.limits)
            for tensor in attr.tensors:
                _tensor_problem(tensor, inner, self.limits)
            if attr.HasField("sparse_tensor"):
                _sparse_problem(attr.sparse_tensor, inner, self.limits)
            for sparse in attr.sparse_tensors:
                _sparse_problem(sparse, inner, self.limits)
            if attr.HasField("g"):
                self.graph(attr.g, inner, depth + 1)
            for sub in attr.graphs:
                self.graph(sub, inner, depth + 1)


def _check_length(text: str | bytes, limits: ScanLimits, where: str) -> None:
    if len(text) > limits.max_string_bytes:
        raise OnnxProblem(
            f"{where} is {len(text)} long, more than {limits.max_string_bytes} "
            "(ScanLimits.max_string_bytes)"
        )


def _known_opsets() -> dict[str, int]:
    """The highest opset of each allowed domain that the installed ``onnx`` knows."""
    import onnx.defs
    import onnx.helper

    ml = max(int(row[3]) for row in onnx.helper.VERSION_TABLE)
    standard = int(onnx.defs.onnx_opset_version())
    return {"": standard, "ai.onnx": standard, "ai.onnx.ml": ml}


def _check_op(
    domain: str, op_type: str, opsets: dict[str, int], ops: frozenset[str], where: str
) -> None:
    import onnx.defs

    if domain not in ALLOWED_DOMAINS:
        raise OnnxProblem(
            f"operator {_short(op_type)} of domain {_short(domain)}: only the standard ONNX "
            "operators and ai.onnx.ml are accepted (a custom domain is native code outside "
            "the standard, such as onnxruntime's contrib operators)"
        )
    standard = "" if domain == "ai.onnx" else domain
    if standard not in opsets and domain not in opsets:
        raise OnnxProblem(f"operator {_short(op_type)}: its domain is not imported")
    if not onnx.defs.has(op_type, standard):
        raise OnnxProblem(
            f"operator {_short(op_type)} is not a standard operator of {domain or 'ai.onnx'}"
        )
    name = f"{domain or 'ai.onnx'}:{op_type}"
    if name not in ops:
        raise OnnxProblem(
            f"operator {_short(name)} in {where} is not an operator safeload's converter "
            "(skl2onnx, for scikit-learn models) writes, so the gate does not accept it. For a "
            "graph you sign from another converter, admit it deliberately: "
            f"policy=TypePolicy.default().with_onnx_ops({_short(name)})"
        )


def _opsets(model: Any) -> dict[str, int]:
    known = _known_opsets()
    found: dict[str, int] = {}
    for entry in model.opset_import:
        domain, version = entry.domain, int(entry.version)
        if domain not in ALLOWED_DOMAINS:
            raise OnnxProblem(
                f"the model imports operator domain {_short(domain)}: only the standard ONNX "
                "domain and ai.onnx.ml are accepted"
            )
        if not 1 <= version <= known[domain]:
            raise OnnxProblem(
                f"the model imports {domain or 'ai.onnx'} opset {version}; the installed onnx "
                f"knows 1 to {known[domain]}"
            )
        key = "" if domain == "ai.onnx" else domain
        if found.get(key, version) != version:
            raise OnnxProblem(f"the model imports two opsets of {domain or 'ai.onnx'}")
        found[key] = version
    if "" not in found:
        raise OnnxProblem("the model imports no standard ONNX opset")
    return found


def _value_infos(values: Any) -> Iterator[dict[str, Any]]:
    """Graph inputs or outputs as JSON: name, type (``tensor(double)``) and shape."""
    import onnx

    for value in values:
        kind = value.type.WhichOneof("value")
        shape: list[int | str | None] | None = None
        if kind == "tensor_type":
            elem = onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type).lower()
            type_name = f"tensor({elem})"
            dims = value.type.tensor_type.shape.dim
            shape = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims
            ]
        else:
            type_name = str(kind)
        yield {"name": value.name, "type": type_name, "shape": shape}


def describe(model: Any) -> dict[str, Any]:
    """What inspect shows of a graph that passed: opsets, inputs, outputs, producer, size."""
    opsets = {(e.domain or "ai.onnx"): int(e.version) for e in model.opset_import}
    return {
        "ir_version": int(model.ir_version),
        "opset": dict(sorted(opsets.items())),
        "producer": f"{model.producer_name} {model.producer_version}".strip()[:200],
        "inputs": list(_value_infos(model.graph.input)),
        "outputs": list(_value_infos(model.graph.output)),
        "nodes": len(model.graph.node),
    }


def check_model(model: Any, limits: ScanLimits, deadline: Deadline, ops: frozenset[str]) -> None:
    """Raise :class:`OnnxProblem` for the first thing the gate does not accept.

    ``ops``: the operators a graph may use (``TypePolicy.onnx_ops``), as ``domain:OpType``.
    """
    import onnx

    if not 1 <= int(model.ir_version) <= int(onnx.IR_VERSION):
        raise OnnxProblem(
            f"the model has IR version {int(model.ir_version)}; the installed onnx reads 1 to "
            f"{onnx.IR_VERSION}"
        )
    if len(model.functions):
        raise OnnxProblem(
            f"the model defines {len(model.functions)} local function(s): a function defines "
            "operators of its own domain, which the gate does not accept (skl2onnx writes none)"
        )
    if len(model.training_info) or len(model.configuration):
        raise OnnxProblem("the model carries training info or device configurations")
    opsets = _opsets(model)
    if not model.HasField("graph"):
        raise OnnxProblem("the model has no graph")
    _Walk(limits, deadline, opsets, ops).graph(model.graph, "the main graph", 0)
    deadline.check("the ONNX graph check")
    # Only now: the checker resolves external data against the disk, and none is left.
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise OnnxProblem(f"onnx.checker refuses the graph: {_short(first)}") from None


_FIELDS: dict[str, dict[int, str]] = {}
# protobuf's own nesting limit (upb refuses deeper messages when parsing).
_PROTOBUF_DEPTH = 100
_RUNS: dict[bytes, re.Pattern[bytes]] = {}
# Bytes protobuf (upb) holds per parsed value, measured on 20,000,000 of each: an empty
# message, a repeated varint, float, double, a short (empty) string; and the fewest bytes each
# takes on the wire after its tag.
_MESSAGE_COST = 170
_COST = {0: 20, 5: 8, 1: 16, 2: 40}
_WIRE_MIN = {0: 1, 5: 4, 1: 8, 2: 1}
# What follows a tag of each fixed wire type: a varint (0), 8 bytes (1), 4 bytes (5).
_VALUE = {0: rb"[\x80-\xff]*+[\x00-\x7f]", 1: rb".{8}", 5: rb".{4}"}
# A length-delimited value shorter than 128 bytes: its one-byte length, then that many bytes.
_SHORT = b"(?:" + b"|".join(re.escape(bytes([n])) + b".{%d}" % n for n in range(128)) + b")"


def _message_fields() -> dict[str, dict[int, str]]:
    """For each ONNX message type, its message-typed fields: number to the child's type.

    Read from the installed ``onnx``'s own descriptors, so no field that holds a message is
    missed (attribute tensors and graphs, sparse tensors, type protos, training info...).
    """
    if _FIELDS:
        return _FIELDS
    import onnx

    pending = [onnx.ModelProto.DESCRIPTOR]
    while pending:
        desc = pending.pop()
        if desc.full_name in _FIELDS:
            continue
        children = {f.number: f.message_type for f in desc.fields if f.message_type is not None}
        _FIELDS[desc.full_name] = {n: t.full_name for n, t in children.items()}
        pending.extend(children.values())
    return _FIELDS


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise OnnxProblem("the file is not a valid ONNX protobuf (a truncated number)")


def _run(tag: bytes, wire: int) -> re.Pattern[bytes]:
    """A run of one field that holds no message.

    proto2 writes repeated ints unpacked (one tag per value); a tree's node modes are one short
    string per node.
    """
    pattern = _RUNS.get(tag)
    if pattern is None:
        value = _SHORT if wire == 2 else _VALUE[wire]
        # Possessive (``++``): no backtracking state, ~20 ns per value (measured).
        pattern = re.compile(b"(?:" + re.escape(tag) + value + b")++", re.DOTALL)
        _RUNS[tag] = pattern
    return pattern


def _too_costly(cost: int, limits: ScanLimits) -> None:
    if cost > limits.max_onnx_parse_bytes:
        raise OnnxProblem(
            f"parsing the ONNX file would take more than {limits.max_onnx_parse_bytes} bytes "
            "of memory (ScanLimits.max_onnx_parse_bytes; estimated from its values on the "
            "wire: protobuf holds an empty string of 2 bytes in ~40)"
        )


def count_messages(data: bytes, limits: ScanLimits, deadline: Deadline | None = None) -> int:
    """The messages of an ONNX file, counted on the wire before it is parsed.

    With them, an upper estimate of the memory the parse will take (per message, per value of
    a run by the fewest bytes it can take on the wire, per long value its length), held to
    ``ScanLimits.max_onnx_parse_bytes``.

    A depth-first walk of the protobuf encoding that allocates nothing per field (one frame per
    nesting level): each length-delimited field is one step, a run of one repeated number (a
    tree's node ids, written unpacked) one regular-expression match; the clock is asked every
    65,536 steps, so a file of a billion empty strings is stopped by ``max_seconds``.
    """
    fields = _message_fields()
    # One frame per open message: its type, where the walk is in it, where it ends.
    kinds, positions, ends = ["onnx.ModelProto"], [0], [len(data)]
    total = steps = cost = 0
    while kinds:
        kind, pos, end = kinds[-1], positions[-1], ends[-1]
        if pos >= end:
            del kinds[-1], positions[-1], ends[-1]
            continue
        steps += 1
        if steps % 65536 == 0 and deadline is not None:
            deadline.check("counting the ONNX file's messages")
        tag = data[pos]  # one-byte tags and lengths (most of a file) skip the function call
        after = pos + 1
        if tag >= 0x80:
            tag, after = _varint(data, pos, end)
        wire = tag & 7
        if wire in _VALUE:
            found = _run(data[pos:after], wire).match(data, pos, end)
            if found is None:
                raise OnnxProblem("the file is not a valid ONNX protobuf (a truncated value)")
            positions[-1] = found.end()
            cost += (found.end() - pos) // (after - pos + _WIRE_MIN[wire]) * _COST[wire]
            _too_costly(cost, limits)
            continue
        if wire != 2:  # groups (3, 4) and reserved types: ONNX writes none
            raise OnnxProblem(f"the file is not a valid ONNX protobuf (wire type {wire})")
        child = fields[kind].get(tag >> 3)
        if child is None:  # strings, bytes, packed numbers: a run of short ones in one match
            found = _run(data[pos:after], wire).match(data, pos, end)
            if found is not None:
                positions[-1] = found.end()
                cost += (found.end() - pos) // (after - pos + 1) * _COST[2]
                _too_costly(cost, limits)
                continue
        if after < end and data[after] < 0x80:
            length, start = data[after], after + 1
        else:
            length, start = _varint(data, after, end)
        stop = start + length
        if stop > end:
            raise OnnxProblem("the file is not a valid ONNX protobuf (a length past its end)")
        positions[-1] = stop
        if child is None:  # a string, bytes or packed numbers of 128 bytes or more
            cost += _COST[2] + length
            _too_costly(cost, limits)
            continue
        total += 1
        cost += _MESSAGE_COST
        _too_costly(cost, limits)
        if total > limits.max_onnx_messages:
            raise OnnxProblem(
                f"the file holds more than {limits.max_onnx_messages} protobuf messages "
                "(ScanLimits.max_onnx_messages; an empty one is 2 bytes in the file, ~100 "
                "once parsed)"
            )
        if len(kinds) >= _PROTOBUF_DEPTH:
            raise OnnxProblem(f"the file nests protobuf messages deeper than {_PROTOBUF_DEPTH}")
        kinds.append(child)
        positions.append(start)
        ends.append(stop)
    return total


def parse_model(view: memoryview, limits: ScanLimits, deadline: Deadline | None = None) -> Any:
    """The ``ModelProto`` of the verified bytes, the size checked before parsing."""
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError as exc:
        raise OperationalError(
            'checking an ONNX file needs the onnx package: pip install "safeload[onnx]"'
        ) from exc

    if view.nbytes > limits.max_onnx_bytes:
        raise OnnxProblem(
            f"the ONNX file is {view.nbytes} bytes, more than {limits.max_onnx_bytes} "
            "(ScanLimits.max_onnx_bytes)"
        )
    if view.nbytes == 0:
        raise OnnxProblem("the ONNX file is empty")
    data = view.tobytes()
    count_messages(data, limits, deadline)
    try:
        return onnx.ModelProto.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OnnxProblem(f"the file is not a valid ONNX protobuf ({type(exc).__name__})") from None


def scan_onnx(
    data: Buffer,
    policy: TypePolicy,
    path: str | None,
    limits: ScanLimits,
    deadline: Deadline,
) -> tuple[ScanReport, dict[str, Any] | None]:
    """The ONNX verdict: a report (problems, never raised) and, if accepted, the graph summary."""
    view = byte_view(data)
    try:
        model = parse_model(view, limits, deadline)
        check_model(model, limits, deadline, policy.onnx_ops)
        summary = describe(model)
    except OnnxProblem as exc:
        report = make_report(
            path=path, fmt="onnx", compression=None, policy=policy, problems=[str(exc)]
        )
        return report, None
    return make_report(path=path, fmt="onnx", compression=None, policy=policy), summary
