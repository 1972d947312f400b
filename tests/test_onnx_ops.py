"""The ONNX gate admits only the operators safeload's converter writes (``TypePolicy.onnx_ops``).

The allowlist (``safeload/_onnx_ops.py``) was measured by ``benchmarks/gen_onnx_ops.py``: every
operator of every graph skl2onnx writes through ``save(format="onnx")``. A graph using anything
else is refused by the static scan, before onnxruntime sees it: the red team's 36 chained
``StringConcat`` (a 2-byte constant doubled to 2**37 bytes of string contents, outside
onnxruntime's capped arena) among them. A caller signing another converter's graphs extends the
list deliberately, in the policy.
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
from safeload import MalformedArtifactError
from safeload._onnx_ops import ONNX_OPS
from safeload.errors import PolicyError
from safeload.onnxmodel import load_onnx_verified
from safeload.policy import TypePolicy
from safeload.typegate import check_types, scan_bytes
from tests import test_onnx_attacks

pytest.importorskip("skl2onnx")

# The signed good artifact and the signing of hostile graphs, as the ONNX attack tests do it.
good = test_onnx_attacks.good
_sign = test_onnx_attacks._sign

ROOT = Path(__file__).resolve().parents[1]
NOT_WRITTEN = "is not an operator safeload's converter"


def _predictor(nodes: list[Any], initializers: list[Any], opset: int = 20) -> onnx.ModelProto:
    """The good artifact's interface (input X; label, probabilities) around ``nodes``, whose
    string output ``text`` reaches the label, so the saved sample's predict computes it."""
    tail = [
        helper.make_node("Shape", ["text"], ["n_text"]),
        helper.make_node("ReduceSum", ["n_text"], ["one"], keepdims=0),
        helper.make_node("Cast", ["one"], ["one_d"], to=TensorProto.DOUBLE),
        helper.make_node("Add", ["X", "one_d"], ["probabilities"]),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    return test_onnx_attacks.graph_model(nodes + tail, initializers, opset)


def _string_doubling(times: int) -> onnx.ModelProto:
    """The red team's graph: ``times`` chained StringConcat(x, x) of the 2-byte string "ab"."""
    seed = numpy_helper.from_array(np.array(["ab"], dtype=object), "s0")
    nodes = [
        helper.make_node("StringConcat", [f"s{i}", f"s{i}"], [f"s{i + 1}"]) for i in range(times)
    ]
    nodes.append(helper.make_node("Identity", [f"s{times}"], ["text"]))
    return _predictor(nodes, [seed])


def _einsum() -> onnx.ModelProto:
    seed = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "m")
    return _predictor(
        [helper.make_node("Einsum", ["m", "m"], ["text"], equation="ij,jk->ik")], [seed]
    )


def _binarizer_in_a_subgraph() -> onnx.ModelProto:
    """An operator outside the list hidden in the body of an allowed one (a Scan's)."""
    rows = numpy_helper.from_array(np.ones((2, 1), dtype=np.float32), "rows")
    body = helper.make_graph(
        [helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=0.5)],
        "body",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    scan = helper.make_node("Scan", ["rows"], ["text"], num_scan_inputs=1, body=body)
    model = _predictor([scan], [rows])
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 3))
    return model


def test_the_allowlist_is_exact_names_of_standard_domains():
    assert len(ONNX_OPS) > 20
    for name in ONNX_OPS:
        domain, _, op = name.partition(":")
        assert domain in ("ai.onnx", "ai.onnx.ml") and op.isidentifier(), name
        assert onnx.defs.has(op, "" if domain == "ai.onnx" else domain), name
    assert TypePolicy.default().onnx_ops == ONNX_OPS
    # The operators skl2onnx's commonest graphs cannot do without.
    assert {"ai.onnx.ml:TreeEnsembleClassifier", "ai.onnx:MatMul", "ai.onnx:Cast"} <= ONNX_OPS


_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
sys.path.insert(0, {root!r})
import safeload
try:
    safeload.load({path!r}, trusted={keys!r})
    print("LOADED")
except safeload.SafeloadError as exc:
    print("REFUSED", type(exc).__name__, exc)
print("ORT_IMPORTED", "onnxruntime" in sys.modules)
"""


def test_string_doubling_is_refused_before_any_session(
    tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    """36 StringConcat nodes (2**37 bytes once run) are refused by the static scan: in a child
    under a 4 GiB cap, load refuses and onnxruntime was never even imported."""
    model = _string_doubling(36)
    path = _sign(tmp_path / "concat", model, good, key)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT), path=str(path), keys=str(keydir))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert "REFUSED MalformedArtifactError" in out, out + done.stderr[-2000:]
    assert "ai.onnx:StringConcat" in out and NOT_WRITTEN in out
    assert "ORT_IMPORTED False" in out, out
    # The same verdict from the scan of the bare bytes, with no session at all.
    with pytest.raises(MalformedArtifactError, match=NOT_WRITTEN):
        check_types(model.SerializeToString(), TypePolicy.default(), format="onnx")
    report = scan_bytes(model.SerializeToString(), format="onnx")
    assert not report.safe and NOT_WRITTEN in report.problems[0]
    bare = tmp_path / "concat.onnx"
    bare.write_bytes(model.SerializeToString())
    scanned = safeload.scan(bare)
    assert not scanned.safe and "ai.onnx:StringConcat" in scanned.problems[0]


@pytest.mark.parametrize(
    ("make", "op"),
    [
        (lambda: _string_doubling(1), "ai.onnx:StringConcat"),
        (_einsum, "ai.onnx:Einsum"),
        (_binarizer_in_a_subgraph, "ai.onnx.ml:Binarizer"),
    ],
    ids=["StringConcat", "Einsum", "Binarizer-in-a-subgraph"],
)
def test_an_operator_outside_the_list_is_refused_and_a_caller_may_admit_it(
    make: Any, op: str, tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    assert op not in ONNX_OPS
    path = _sign(tmp_path / "other", make(), good, key)
    with pytest.raises(MalformedArtifactError, match="refused by the static scan") as info:
        safeload.verify_artifact(path, trusted=keydir)
    assert op in str(info.value) and NOT_WRITTEN in str(info.value)
    assert "with_onnx_ops" in str(info.value)
    # Admitted deliberately by the caller, the same graph passes the gate and (harmless here)
    # runs. (Its predictions are not the pipeline's, so load's sample contract would refuse.)
    extended = TypePolicy.default().with_onnx_ops(op)
    assert op in extended.onnx_ops and op not in TypePolicy.default().onnx_ops
    verified = safeload.verify_artifact(path, trusted=keydir, policy=extended)
    model = load_onnx_verified(verified.checked.payload, verified.metadata)
    assert np.asarray(model.predict(np.ones((2, 4)))).shape[0] == 2


def test_extending_keeps_other_permissions_and_refuses_malformed_names():
    policy = TypePolicy.default().with_onnx_ops("ai.onnx:Einsum")
    assert policy.names == TypePolicy.default().names
    assert "ai.onnx:Einsum" in policy.extend(["collections:OrderedDict"]).onnx_ops
    assert "ai.onnx:Einsum" in policy.with_packs().onnx_ops
    for bad in ("Einsum", "com.microsoft:FusedMatMul", "ai.onnx:", "ai.onnx:A B"):
        with pytest.raises(PolicyError):
            TypePolicy.default().with_onnx_ops(bad)
