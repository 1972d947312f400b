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
  count parses each message with a *shallow* copy of ONNX's schema (every message field read as
  bytes), one nesting level at a time, never holding more than the file's bytes; after it,
  parsing costs at most a few bytes per byte (an empty repeated string: 2 bytes to 16);
* operators of the standard (``""``, ``ai.onnx``) and ``ai.onnx.ml`` domains that the installed
  ``onnx`` knows, at opsets it knows: a custom domain is a native library's code (onnxruntime
  contrib ops, EP context nodes that name cache files), refused;
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

    def __init__(self, limits: ScanLimits, deadline: Deadline, opsets: dict[str, int]) -> None:
        self.limits = limits
        self.deadline = deadline
        self.opsets = opsets
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
        _check_op(node.domain, node.op_type, self.opsets)
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


def _check_op(domain: str, op_type: str, opsets: dict[str, int]) -> None:
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


def check_model(model: Any, limits: ScanLimits, deadline: Deadline) -> None:
    """Raise :class:`OnnxProblem` for the first thing the gate does not accept."""
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
    _Walk(limits, deadline, opsets).graph(model.graph, "the main graph", 0)
    deadline.check("the ONNX graph check")
    # Only now: the checker resolves external data against the disk, and none is left.
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise OnnxProblem(f"onnx.checker refuses the graph: {_short(first)}") from None


_SHALLOW: dict[str, tuple[Any, tuple[tuple[str, str], ...]]] = {}
# protobuf's own nesting limit (upb refuses deeper messages when parsing).
_PROTOBUF_DEPTH = 100


def _shallow_schema() -> dict[str, tuple[Any, tuple[tuple[str, str], ...]]]:
    """For each ONNX message type: a class reading its message fields as bytes, and those fields.

    Built once from the installed ``onnx``'s own descriptors, so no message field is missed.
    """
    if _SHALLOW:
        return _SHALLOW
    import onnx
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(
        name="safeload_onnx_shallow.proto", package="safeload_shallow", syntax="proto2"
    )
    seen: dict[str, Any] = {}
    pending = [onnx.ModelProto.DESCRIPTOR]
    while pending:
        desc = pending.pop()
        if desc.full_name in seen:
            continue
        seen[desc.full_name] = desc
        pending.extend(f.message_type for f in desc.fields if f.message_type is not None)
    children: dict[str, tuple[tuple[str, str], ...]] = {}
    for full_name, desc in seen.items():
        message = proto.message_type.add(name=full_name.replace(".", "_"))
        fields = []
        for field in desc.fields:
            if field.message_type is None:
                continue  # scalars stay unknown fields: kept raw, as many bytes as on the wire
            message.field.add(
                name=field.name,
                number=field.number,
                type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
            )
            fields.append((field.name, field.message_type.full_name))
        children[full_name] = tuple(fields)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    for full_name in seen:
        shallow = pool.FindMessageTypeByName("safeload_shallow." + full_name.replace(".", "_"))
        _SHALLOW[full_name] = (message_factory.GetMessageClass(shallow), children[full_name])
    return _SHALLOW


def count_messages(data: bytes, limits: ScanLimits) -> int:
    """The protobuf messages of an ONNX file, counted level by level before it is parsed."""
    from google.protobuf.message import DecodeError

    schema = _shallow_schema()
    level: list[tuple[str, bytes]] = [("onnx.ModelProto", data)]
    total = depth = 0
    while level:
        depth += 1
        if depth > _PROTOBUF_DEPTH:
            raise OnnxProblem(f"the file nests protobuf messages deeper than {_PROTOBUF_DEPTH}")
        following: list[tuple[str, bytes]] = []
        for type_name, body in level:
            shallow, fields = schema[type_name]
            try:
                message = shallow.FromString(body)
            except (DecodeError, RuntimeError, ValueError) as exc:
                raise OnnxProblem(
                    f"the file is not a valid ONNX protobuf ({type(exc).__name__})"
                ) from None
            for name, child in fields:
                items = getattr(message, name)
                total += len(items)
                if total > limits.max_onnx_messages:
                    raise OnnxProblem(
                        f"the file holds more than {limits.max_onnx_messages} protobuf messages "
                        "(ScanLimits.max_onnx_messages; each costs ~100 bytes once parsed, "
                        "2 in the file)"
                    )
                following.extend((child, item) for item in items)
        level = following
    return total


def parse_model(view: memoryview, limits: ScanLimits) -> Any:
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
    count_messages(data, limits)
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
        model = parse_model(view, limits)
        check_model(model, limits, deadline)
        summary = describe(model)
    except OnnxProblem as exc:
        report = make_report(
            path=path, fmt="onnx", compression=None, policy=policy, problems=[str(exc)]
        )
        return report, None
    return make_report(path=path, fmt="onnx", compression=None, policy=policy), summary
