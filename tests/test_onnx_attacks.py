"""Hostile ONNX graphs that pass the static gate's structure checks and attack onnxruntime.

Each graph is signed with a test key (``write_signed_artifact``), so the signature and hashes
pass and only the ONNX gate and the session's own bounds stand in the way. Anything that could
take the machine's memory or never return runs in a child process with a memory cap and a
timeout, and the child prints the verdict the test asserts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import safeload
from safeload.saving import write_signed_artifact

ROOT = Path(__file__).resolve().parents[1]
# The child's peak memory in MB: VmHWM is its own (ru_maxrss carries the parent's across exec).
HWM = "int(next(x for x in open('/proc/self/status') if x.startswith('VmHWM')).split()[1]) >> 10"


@pytest.fixture
def good(tmp_path: Path, pipeline: Any, iris: Any, key: safeload.SigningKey) -> Path:
    X, _ = iris
    return Path(
        safeload.save(pipeline, tmp_path / "good" / "1.0", key=key, format="onnx", sample=X[::15])
    )


def _sign(folder: Path, model: onnx.ModelProto, good: Path, key: safeload.SigningKey) -> Path:
    files = {
        "model.onnx": model.SerializeToString(),
        "safeload.json": (good / "safeload.json").read_bytes(),
    }
    return Path(write_signed_artifact(folder, files, key=key))


def _i64(name: str, values: Any) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def _f32(name: str, values: Any) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.float32), name)


def _predictor(nodes: list[Any], initializers: list[Any], last: str) -> onnx.ModelProto:
    """The good artifact's interface (input X, outputs label and probabilities) around ``nodes``,
    whose float output ``last`` is added to every probability: predict needs it computed."""
    tail = [
        helper.make_node("ReduceSum", [last], ["total"], keepdims=0),
        helper.make_node("Cast", ["total"], ["total64"], to=TensorProto.DOUBLE),
        helper.make_node("Add", ["X", "total64"], ["probabilities"]),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    return graph_model(nodes + tail, initializers, opset=17)


def graph_model(nodes: list[Any], initializers: list[Any], opset: int) -> onnx.ModelProto:
    """A model of ``nodes`` with the good artifact's interface: input X; label, probabilities."""
    graph = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info("X", TensorProto.DOUBLE, ["N", 4])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, ["N", 4]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


def _child(code: str, timeout: float = 180) -> str:
    """Run ``code`` in a fresh interpreter (the worktree first on the path); its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r})\n{code}"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    return done.stdout


_LOAD = """
import resource
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
import safeload
from safeload.policy import TypePolicy
from safeload.typegate import ScanLimits
policy = TypePolicy.default().with_onnx_ops(*{ops!r})
try:
    safeload.load({path!r}, trusted={keys!r}, scan_limits=ScanLimits({limits}), policy=policy)
    print("LOADED")
except safeload.SafeloadError as exc:
    print("REFUSED", type(exc).__name__, exc)
print("MAXRSS_MB", {hwm})
"""


def _load_in_child(
    path: Path, keys: Path, *, cap: int = 4 << 30, limits: str = "", ops: tuple[str, ...] = ()
) -> str:
    """``ops``: operators skl2onnx never writes, admitted so the runtime bound is what is tested."""
    code = _LOAD.format(cap=cap, path=str(path), keys=str(keys), limits=limits, hwm=HWM, ops=ops)
    return _child(code)


# ---- the session build runs nothing of the graph ------------------------------------------------


def _folding_bomb(copies: int, values: int) -> onnx.ModelProto:
    """``copies`` constant tensors of ``values`` floats each, from a 10-byte shape: onnxruntime's
    constant folding (up to 1 GiB per node) computes them while it builds the session."""
    nodes, last = [], "zero"
    initializers = [_i64("shape", [values]), _f32("zero", [0.0])]
    for i in range(copies):
        nodes += [
            helper.make_node("ConstantOfShape", ["shape"], [f"big{i}"], value=_f32("v", [1.0])),
            helper.make_node("Sin", [f"big{i}"], [f"sin{i}"]),
            helper.make_node("ReduceSum", [f"sin{i}"], [f"sum{i}"], keepdims=1),
            helper.make_node("Add", [last, f"sum{i}"], [f"acc{i}"]),
        ]
        last = f"acc{i}"
    return _predictor(nodes, initializers, last)


_SESSION = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
from safeload.onnxmodel import open_session
open_session(open({path!r}, "rb").read())
print("MAXRSS_MB", {hwm})
"""


def test_building_the_session_computes_no_constant(tmp_path: Path):
    """Four 256 MiB constants from a 1 KB graph: before, 1.1 GB at session build (measured;
    six 1 GiB ones took 13 GB and 90 s); unoptimized, the session holds the graph only."""
    path = tmp_path / "fold.onnx"
    path.write_bytes(_folding_bomb(4, 1 << 26).SerializeToString())
    assert path.stat().st_size < 2000
    out = _child(_SESSION.format(path=str(path), hwm=HWM))
    rss = int(out.split("MAXRSS_MB")[1])
    assert rss < 400, out


# ---- every run is bounded in memory and time ----------------------------------------------------


_ARENA = """
import resource
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import numpy as np, safeload
from safeload.onnxmodel import OnnxModel, open_session
from safeload.typegate import ScanLimits
spec = {{"inputs": [{{"name": "X", "column": None, "type": "tensor(double)"}}],
        "methods": {{"predict": {{"output": "label", "ravel": False}}}}, "opset": {{}}}}
session = open_session(open({path!r}, "rb").read(), limits=ScanLimits(max_onnx_arena_bytes=1 << 28))
try:
    OnnxModel(session, spec, {{}}).predict(np.ones((2, 4)))
    print("PREDICTED")
except safeload.SafeloadError as exc:
    print("REFUSED", type(exc).__name__, exc)
print("MAXRSS_MB", {hwm})
"""


def test_a_tensor_beyond_the_arena_cap_is_a_refusal(tmp_path: Path):
    """A 1 GiB tensor asked for by a constant shape, against an arena capped at 256 MiB."""
    path = tmp_path / "big.onnx"
    path.write_bytes(_folding_bomb(1, 1 << 28).SerializeToString())
    out = _child(_ARENA.format(path=str(path), hwm=HWM))
    assert "REFUSED ContractError" in out, out
    assert "max_onnx_arena_bytes" in out
    assert int(out.split("MAXRSS_MB")[1]) < 600, out


def test_the_arena_cap_is_the_load_s_own_scan_limits(
    tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    """``load(scan_limits=...)``, the process's first ONNX load, sets the cap of its arena."""
    path = _sign(tmp_path / "big", _folding_bomb(1, 1 << 28), good, key)
    out = _load_in_child(path, keydir, limits="max_onnx_arena_bytes=1 << 28", ops=("ai.onnx:Sin",))
    assert "REFUSED ContractError" in out and "could not run" in out, out  # the arena said no
    assert int(out.split("MAXRSS_MB")[1]) < 800, out


def _endless_loop() -> onnx.ModelProto:
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond"], ["cond_out"]),
            helper.make_node("Identity", ["v"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1]),
        ],
    )
    loop = helper.make_node("Loop", ["trips", "", "start"], ["after"], body=body)
    initializers = [
        numpy_helper.from_array(np.array(1 << 60, dtype=np.int64), "trips"),
        _f32("start", [0.0]),
    ]
    return _predictor([loop], initializers, "after")


def test_a_loop_of_2_60_trips_is_stopped_by_the_clock(
    tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    """Before: load never returned (the saved sample's predict runs the loop)."""
    path = _sign(tmp_path / "loop", _endless_loop(), good, key)
    out = _load_in_child(path, keydir, limits="max_seconds=3", ops=("ai.onnx:Loop",))
    assert "REFUSED ContractError" in out, out
    assert "ran longer than 3 s" in out


def _gather_out_of_range() -> onnx.ModelProto:
    gather = helper.make_node("Gather", ["values", "index"], ["picked"])
    return _predictor([gather], [_f32("values", [1.0, 2.0]), _i64("index", [1 << 40])], "picked")


def test_an_onnxruntime_failure_at_predict_is_a_safeload_error(
    tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    """A kernel's refusal (a constant index out of range) reaches the caller as ContractError,
    not as onnxruntime's own exception class."""
    from safeload.onnxmodel import load_onnx_verified

    path = _sign(tmp_path / "gather", _gather_out_of_range(), good, key)
    verified = safeload.verify_artifact(path, trusted=keydir)
    model = load_onnx_verified(verified.checked.payload, verified.metadata)
    with pytest.raises(safeload.ContractError, match="could not run the graph's predict"):
        model.predict(np.ones((2, 4)))
    # And at load, the saved sample's check says the same.
    with pytest.raises(safeload.ContractError, match="inclusive range"):
        safeload.load(path, trusted=keydir)


# ---- parsing: messages counted before the parse -------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, body: bytes) -> bytes:
    """A length-delimited protobuf field (numbers below 16), written by hand."""
    return bytes([number << 3 | 2]) + _varint(len(body)) + body


def test_millions_of_empty_messages_are_refused_before_parsing(tmp_path: Path):
    """20 MB of 2-byte empty initializers parse into ~1.7 GB; counted first, they are refused
    under a 1.2 GiB memory cap. (Before: a MemoryError, or the machine's memory.)"""
    inner = b"\x2a\x00" * 10_000_000  # GraphProto.initializer (5), length 0
    bomb = tmp_path / "empty.onnx"
    bomb.write_bytes(b"\x08\x09" + b"\x3a" + _varint(len(inner)) + inner)
    code = (
        "import resource, safeload\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1200 << 20, 1200 << 20))\n"
        f"r = safeload.scan({str(bomb)!r})\n"
        "print(r.safe, r.problems)\n"
        f"print('MAXRSS_MB', {HWM})\n"
    )
    out = _child(code)
    assert out.startswith("False"), out
    assert "ScanLimits.max_onnx_messages" in out
    assert int(out.split("MAXRSS_MB")[1]) < 400, out  # the file, and a frame per nesting level


def test_nesting_deeper_than_protobuf_reads_is_refused_by_the_count(tmp_path: Path):
    """Types nested 200 deep (``sequence(sequence(...))``): refused on the wire, as protobuf
    itself would refuse them, before anything is parsed."""
    from safeload.typegate import ScanLimits
    from safeload.typegate.onnx import OnnxProblem, count_messages

    nested = b""  # protobuf's writer refuses this depth too: the bytes are written by hand
    for _ in range(200):
        nested = _field(4, _field(1, nested))  # TypeProto.sequence_type > Sequence.elem_type
    value = _field(1, b"X") + _field(2, nested)  # ValueInfoProto name, type
    data = b"\x08\x09" + _field(7, _field(11, value))  # ir_version; graph > input
    with pytest.raises(OnnxProblem, match="deeper than 100"):
        count_messages(data, ScanLimits())


def test_real_graphs_hold_few_messages(good: Path):
    """What skl2onnx writes is far below the message limit (a pipeline: tens)."""
    from safeload.typegate import ScanLimits
    from safeload.typegate.onnx import count_messages

    count = count_messages((good / "model.onnx").read_bytes(), ScanLimits())
    assert 10 < count < 1000


# ---- native code that trusts indices: onnxruntime's own checks, pinned ---------------------------


def _tree(kind: str, **bad: Any) -> onnx.ModelProto:
    """A two-leaf ai.onnx.ml tree ensemble with one attribute made inconsistent."""
    attrs: dict[str, Any] = {
        "nodes_treeids": [0, 0, 0],
        "nodes_nodeids": [0, 1, 2],
        "nodes_featureids": [0, 0, 0],
        "nodes_modes": ["BRANCH_LEQ", "LEAF", "LEAF"],
        "nodes_values": [0.0, 0.0, 0.0],
        "nodes_truenodeids": [1, 0, 0],
        "nodes_falsenodeids": [2, 0, 0],
    }
    if kind == "classifier":
        attrs |= {
            "class_treeids": [0, 0],
            "class_nodeids": [1, 2],
            "class_ids": [0, 1],
            "class_weights": [1.0, 1.0],
            "classlabels_int64s": [0, 1],
        }
        outputs = ["label", "probabilities"]
        op = "TreeEnsembleClassifier"
    else:
        attrs |= {
            "target_treeids": [0, 0],
            "target_nodeids": [1, 2],
            "target_ids": [0, 0],
            "target_weights": [1.0, 2.0],
            "n_targets": 1,
        }
        outputs = ["probabilities"]
        op = "TreeEnsembleRegressor"
    attrs |= bad
    node = helper.make_node(op, ["X"], outputs, domain="ai.onnx.ml", **attrs)
    graph = helper.make_graph(
        [node],
        "tree",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N", 2]) for o in outputs],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 9
    return model


TREES = {
    "child_node_out_of_range": ("regressor", {"nodes_truenodeids": [1_000_000, 0, 0]}),
    "node_points_to_itself": (
        "regressor",
        {"nodes_truenodeids": [0, 0, 0], "nodes_falsenodeids": [0, 0, 0]},
    ),
    "negative_feature": ("regressor", {"nodes_featureids": [-5, 0, 0]}),
    "target_id_out_of_range": ("regressor", {"target_ids": [100_000, 0]}),
    "weight_on_a_missing_node": ("regressor", {"target_nodeids": [999, 2]}),
    "attribute_lengths_differ": ("regressor", {"nodes_values": [0.0]}),
    "class_id_out_of_range": ("classifier", {"class_ids": [0, 100_000]}),
    "negative_class_id": ("classifier", {"class_ids": [0, -7]}),
}


def _ml(op: str, outputs: list[str], input_type: int = TensorProto.FLOAT, **attrs: Any) -> Any:
    """One ``ai.onnx.ml`` (or TfIdfVectorizer) node over a ``[N, 4]`` input."""
    domain = "" if op == "TfIdfVectorizer" else "ai.onnx.ml"
    node = helper.make_node(op, ["X"], outputs, domain=domain, **attrs)
    graph = helper.make_graph(
        [node],
        "ml",
        [helper.make_tensor_value_info("X", input_type, ["N", 4])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N", 2]) for o in outputs],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    model.ir_version = 9
    return model


_SVM = {"kernel_type": "RBF", "kernel_params": [0.1, 0.0, 3.0], "rho": [0.0]}
_NGRAMS = {"mode": "TF", "min_gram_length": 1, "max_skip_count": 0, "pool_int64s": [1, 2, 3]}
OTHER_ML = {
    "svm_more_vectors_than_given": lambda: _ml(
        "SVMClassifier",
        ["label", "probabilities"],
        classlabels_ints=[0, 1],
        vectors_per_class=[1000, 1000],
        support_vectors=[0.0] * 8,
        coefficients=[1.0] * 2,
        **_SVM,
    ),
    "svm_support_vectors_short": lambda: _ml(
        "SVMClassifier",
        ["label", "probabilities"],
        classlabels_ints=[0, 1],
        vectors_per_class=[2, 2],
        support_vectors=[0.0] * 3,
        coefficients=[1.0] * 4,
        **_SVM,
    ),
    "svm_regressor_coefficients_short": lambda: _ml(
        "SVMRegressor",
        ["probabilities"],
        n_supports=5,
        support_vectors=[0.0] * 3,
        coefficients=[1.0] * 5,
        **_SVM,
    ),
    "linear_coefficients_short": lambda: _ml(
        "LinearClassifier",
        ["label", "probabilities"],
        classlabels_ints=[0, 1, 2],
        coefficients=[1.0] * 5,
        intercepts=[0.0] * 3,
    ),
    "scaler_lengths_differ": lambda: _ml(
        "Scaler", ["probabilities"], offset=[0.0, 1.0], scale=[1.0, 2.0, 3.0]
    ),
    "ngram_counts_out_of_range": lambda: _ml(
        "TfIdfVectorizer",
        ["probabilities"],
        TensorProto.INT64,
        max_gram_length=2,
        ngram_counts=[0, 100],
        ngram_indexes=[0, 1, 2],
        **_NGRAMS,
    ),
    "negative_ngram_index": lambda: _ml(
        "TfIdfVectorizer",
        ["probabilities"],
        TensorProto.INT64,
        max_gram_length=1,
        ngram_counts=[0],
        ngram_indexes=[-3, 1, 2],
        **_NGRAMS,
    ),
}


def test_inconsistent_ml_operators_are_refused_cleanly(tmp_path: Path):
    """Index attacks on onnxruntime's ``ai.onnx.ml`` kernels (tree ensembles, SVMs, linear
    models, scalers, n-gram tables): each session build refuses (ORT 1.32 checks these) as
    MalformedArtifactError, in a child so that a crash would show."""
    for name, (kind, bad) in TREES.items():
        (tmp_path / f"{name}.onnx").write_bytes(_tree(kind, **bad).SerializeToString())
    for name, make in OTHER_ML.items():
        (tmp_path / f"{name}.onnx").write_bytes(make().SerializeToString())
    code = (
        "import resource, pathlib, safeload\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "from safeload.onnxmodel import open_session\n"
        f"for p in sorted(pathlib.Path({str(tmp_path)!r}).glob('*.onnx')):\n"
        "    try:\n"
        "        open_session(p.read_bytes())\n"
        "        print(p.stem, 'BUILT')\n"
        "    except safeload.MalformedArtifactError:\n"
        "        print(p.stem, 'REFUSED')\n"
    )
    out = _child(code)
    verdicts = dict(line.split() for line in out.splitlines())
    assert verdicts == dict.fromkeys([*TREES, *OTHER_ML], "REFUSED"), out


# ---- the gate's own bounds ---------------------------------------------------------------


def test_a_graph_of_more_nodes_than_a_session_builds_quickly_is_refused(
    tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    """60,000 ``Neg`` nodes (1.4 MB): onnxruntime would spend ~6 s and 200 MB building them,
    uninterruptibly (1,000,000, the former limit: ~2 min, 3.5 GB); the default refuses."""
    count = 60_000
    nodes = [
        helper.make_node("Neg", ["zero" if i == 0 else f"n{i - 1}"], [f"n{i}"])
        for i in range(count)
    ]
    path = _sign(
        tmp_path / "nodes", _predictor(nodes, [_f32("zero", [0.0])], f"n{count - 1}"), good, key
    )
    with pytest.raises(safeload.MalformedArtifactError, match="ScanLimits.max_onnx_nodes"):
        safeload.verify_artifact(path, trusted=keydir)


def test_an_empty_tensor_with_dimensions_beyond_64_bits_is_refused(
    tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    """Zero values, so it holds what it declares; but its other dimensions multiply past
    2**63, which onnxruntime built into a session and returned (measured)."""
    empty = TensorProto(name="empty", data_type=TensorProto.FLOAT, dims=[0, 1 << 62, 1 << 62])
    model = _predictor([helper.make_node("Identity", ["empty"], ["same"])], [empty], "same")
    path = _sign(tmp_path / "dims", model, good, key)
    with pytest.raises(safeload.MalformedArtifactError, match="beyond 64-bit sizes"):
        safeload.verify_artifact(path, trusted=keydir)


def test_a_parse_costlier_than_its_limit_is_refused_before_parsing(tmp_path: Path):
    """20,000,000 empty strings in one attribute (40 MB) parse into ~0.8 GB (measured): the
    estimate on the wire refuses them against a 256 MiB ``max_onnx_parse_bytes``."""
    # Written by hand: building it with onnx's helpers takes gigabytes in this process.
    strings = _field(1, b"s") + b"\x4a\x00" * 20_000_000  # AttributeProto name, strings (9)
    node = _field(1, b"X") + _field(2, b"Y") + _field(4, b"Identity") + _field(5, strings)
    bomb = tmp_path / "strings.onnx"
    bomb.write_bytes(b"\x08\x09" + _field(7, _field(1, node)))  # ir_version; graph > node
    code = (
        "import resource, safeload\n"
        "from safeload.typegate import ScanLimits\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1200 << 20, 1200 << 20))\n"
        f"r = safeload.scan({str(bomb)!r}, limits=ScanLimits(max_onnx_parse_bytes=256 << 20))\n"
        "print(r.safe, r.problems)\n"
        f"print('MAXRSS_MB', {HWM})\n"
    )
    out = _child(code)
    assert out.startswith("False"), out
    assert "ScanLimits.max_onnx_parse_bytes" in out
    assert int(out.split("MAXRSS_MB")[1]) < 400, out
