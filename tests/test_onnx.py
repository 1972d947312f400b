"""ONNX artifacts: save converts and proves the graph, load builds onnxruntime from verified bytes.

The attacks are real ``ModelProto`` graphs, signed with a test key through safeload's own
signing path (``write_signed_artifact``), so the signature and every hash pass and only the
ONNX gate (:mod:`safeload.typegate.onnx`) stands between the graph and onnxruntime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

import safeload
from safeload import strictjson
from safeload.errors import (
    ContractError,
    ConversionError,
    ConversionMismatchError,
    MalformedArtifactError,
    TamperedArtifactError,
)
from safeload.onnxmodel import load_onnx_verified, open_session
from safeload.policy import TypePolicy
from safeload.saving import write_signed_artifact
from safeload.typegate import ScanLimits
from tests.test_cli import run

SECRET = "TOP-SECRET-0123456789"


@pytest.fixture(scope="module")
def numeric() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(1)
    data = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 120),
            "city": rng.choice(["paris", "lyon", "nice"], 120),
            "visits": rng.integers(0, 9, 120),
        }
    )
    return data, (data["age"] + 3 * (data["city"] == "nice") > 41).to_numpy().astype(int)


@pytest.fixture(scope="module")
def mixed_pipeline(frame: tuple[pd.DataFrame, np.ndarray]) -> Pipeline:
    data, y = frame
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "visits"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    return make_pipeline(columns, LogisticRegression()).fit(data, y)


@pytest.fixture
def good(tmp_path: Path, pipeline: Pipeline, iris: Any, key: safeload.SigningKey) -> Path:
    X, _ = iris
    return Path(
        safeload.save(pipeline, tmp_path / "good" / "1.0", key=key, format="onnx", sample=X[::15])
    )


# ---- the round trip ----------------------------------------------------------------------------


def test_numeric_pipeline_round_trip(good: Path, pipeline: Pipeline, iris: Any, keydir: Path):
    X, _ = iris
    assert sorted(os.listdir(good)) == ["model.onnx", "model.sig", "safeload.json"]
    loaded = safeload.load_checked(good, trusted=keydir)
    assert type(loaded.model).__name__ == "OnnxModel"
    np.testing.assert_array_equal(loaded.predict(X), pipeline.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), pipeline.predict_proba(X), atol=1e-6)
    assert loaded.predict_proba(X).dtype == np.float64
    np.testing.assert_array_equal(loaded.model.classes_, pipeline.classes_)
    meta = loaded.metadata
    assert meta["format"] == "onnx"
    assert meta["onnx"]["float_type"] == "double"
    assert meta["onnx"]["opset"]["ai.onnx"] >= 13
    for library in ("onnx", "onnxruntime", "skl2onnx"):
        assert meta["versions"][library]
    assert meta["onnx"]["max_difference"] < 1e-6


def test_forest_round_trip(tmp_path: Path, numeric: Any, key: safeload.SigningKey, keydir: Path):
    X, y = numeric
    # An odd number of fully grown trees (pure leaves: votes): two-class probabilities never
    # tie at 0.5, where onnxruntime breaks ties otherwise than numpy (see the mismatch test).
    forest = RandomForestClassifier(n_estimators=11, random_state=0).fit(X, y)
    path = safeload.save(forest, tmp_path / "forest" / "1.0", key=key, format="onnx", sample=X[:20])
    model = safeload.load(path, trusted=keydir)
    np.testing.assert_array_equal(model.predict(X), forest.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), forest.predict_proba(X), atol=1e-4)


def test_regressor_round_trip(tmp_path: Path, numeric: Any, key: safeload.SigningKey, keydir: Path):
    X, _ = numeric
    forest = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(X, X[:, 0])
    path = safeload.save(forest, tmp_path / "reg" / "1.0", key=key, format="onnx", sample=X[:20])
    model = safeload.load(path, trusted=keydir)
    assert model.predict(X).shape == (200,)
    np.testing.assert_allclose(model.predict(X), forest.predict(X), rtol=1e-4, atol=1e-4)
    assert not hasattr(model, "predict_proba")


def test_dataframe_and_array_input(
    tmp_path: Path,
    frame: Any,
    mixed_pipeline: Pipeline,
    key: safeload.SigningKey,
    keydir: Path,
):
    data, _ = frame
    path = safeload.save(
        mixed_pipeline, tmp_path / "mixed" / "1.0", key=key, format="onnx", sample=data.head(12)
    )
    loaded = safeload.load_checked(path, trusted=keydir)
    expected = mixed_pipeline.predict(data)
    np.testing.assert_array_equal(loaded.predict(data), expected)
    np.testing.assert_allclose(
        loaded.predict_proba(data), mixed_pipeline.predict_proba(data), atol=1e-6
    )
    # The bare model also takes the same columns as an array, by position.
    np.testing.assert_array_equal(loaded.model.predict(data.to_numpy()), expected)
    assert [i["type"] for i in loaded.metadata["onnx"]["inputs"]] == [
        "tensor(double)",
        "tensor(string)",
        "tensor(int64)",
    ]


def test_load_checked_refuses_a_wrong_column_type(
    tmp_path: Path, frame: Any, mixed_pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
):
    data, _ = frame
    path = safeload.save(
        mixed_pipeline, tmp_path / "mixed" / "1.0", key=key, format="onnx", sample=data.head(12)
    )
    loaded = safeload.load_checked(path, trusted=keydir)
    wrong = data.head(5).assign(age=data["age"].head(5).astype(str))
    with pytest.raises(ContractError, match="age"):
        loaded.predict(wrong)


def test_the_session_needs_only_the_verified_bytes(
    good: Path, pipeline: Pipeline, iris: Any, keydir: Path
):
    """The artifact folder can vanish after verify-and-read: onnxruntime never sees a path."""
    X, _ = iris
    verified = safeload.verify_artifact(good, trusted=keydir)
    shutil.rmtree(good)
    model = load_onnx_verified(verified.checked.payload, verified.metadata)
    np.testing.assert_array_equal(model.predict(X), pipeline.predict(X))


def test_a_tampered_graph_is_refused_by_its_hash(good: Path, keydir: Path):
    target = good / "model.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(TamperedArtifactError):
        safeload.load(good, trusted=keydir)


def test_the_saved_sample_contract_runs_on_the_graph(good: Path, keydir: Path, key: Any):
    """The sample predictions recorded at save are re-checked on the ONNX model at load."""
    meta = json.loads((good / "safeload.json").read_text())
    proba = meta["sample"]["predictions"]["predict_proba"]
    proba["values"] = [1.0 - v for v in proba["values"]]  # predictions the graph does not make
    path = write_signed_artifact(
        good.parent / "other",
        {"model.onnx": (good / "model.onnx").read_bytes(), "safeload.json": strictjson.dumps(meta)},
        key=key,
    )
    with pytest.raises(ContractError, match="predict_proba on the saved sample differs"):
        safeload.load(path, trusted=keydir)


# ---- save refuses what it cannot prove --------------------------------------------------------


def test_an_estimator_skl2onnx_cannot_convert_is_named(
    tmp_path: Path, numeric: Any, key: safeload.SigningKey
):
    X, _ = numeric
    model = make_pipeline(StandardScaler(), SplineTransformer(), LinearRegression()).fit(X, X[:, 0])
    target = tmp_path / "spline" / "1.0"
    with pytest.raises(ConversionError) as info:
        safeload.save(model, target, key=key, format="onnx", sample=X[:5])
    assert info.value.estimator == "sklearn.preprocessing._polynomial.SplineTransformer"
    assert "SplineTransformer" in str(info.value)
    assert not target.parent.exists()


def test_a_graph_that_predicts_otherwise_is_not_saved(
    tmp_path: Path, numeric: Any, key: safeload.SigningKey
):
    """A tie at 0.5 between ten trees: scikit-learn takes the first class, onnxruntime not."""
    X, y = numeric
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    ties = np.flatnonzero(forest.predict_proba(X)[:, 1] == 0.5)
    assert ties.size  # the data above have such rows (row 188)
    with pytest.raises(ConversionMismatchError, match="label") as info:
        safeload.save(forest, tmp_path / "f" / "1.0", key=key, format="onnx", sample=X[ties])
    assert info.value.max_difference == float("inf")
    assert not (tmp_path / "f").exists()


def test_onnx_needs_a_sample(tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey):
    with pytest.raises(safeload.OperationalError, match="sample"):
        safeload.save(pipeline, tmp_path / "m" / "1.0", key=key, format="onnx")


# ---- hostile graphs, signed -------------------------------------------------------------------


def _sign(folder: Path, model: onnx.ModelProto, good: Path, key: safeload.SigningKey) -> Path:
    """Sign a hostile graph with the good artifact's metadata: only the ONNX gate can refuse."""
    files = {
        "model.onnx": model.SerializeToString(),
        "safeload.json": (good / "safeload.json").read_bytes(),
    }
    return Path(write_signed_artifact(folder, files, key=key))


# The hand-made graphs below use Constant and If, which skl2onnx never writes: admitted here so
# that each test proves its own defence, not the operator allowlist (tests/test_onnx_ops.py).
OPS = TypePolicy.default().with_onnx_ops("ai.onnx:Constant", "ai.onnx:If")


def _model(
    nodes: list[Any], *, initializers: Any = (), opsets: Any = None, shape: Any = (4,)
) -> Any:
    out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, list(shape))
    graph = helper.make_graph(nodes, "g", [], [out], list(initializers))
    model = helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def _external(name: str, location: str, dtype: Any = np.float32) -> TensorProto:
    tensor = numpy_helper.from_array(np.zeros(4, dtype=dtype), name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    length = str(4 * np.dtype(dtype).itemsize)
    for k, v in (("location", location), ("offset", "0"), ("length", length)):
        entry = tensor.external_data.add()
        entry.key, entry.value = k, v
    return tensor


@pytest.fixture
def secret_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding links to a secret outside it (onnxruntime reads external
    data of a model given as bytes relative to the working directory)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.bin"
    secret.write_text(SECRET * 4)
    work = tmp_path / "work"
    work.mkdir()
    (work / "link.bin").symlink_to(secret)
    os.link(secret, work / "hard.bin")
    monkeypatch.chdir(work)
    return secret


def _locations(secret: Path) -> dict[str, str]:
    return {
        "dotdot": "../outside/secret.bin",
        "absolute": str(secret),
        "symlink": "link.bin",
        "hardlink": "hard.bin",
    }


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "hardlink"])
def test_external_data_in_an_initializer_is_refused(
    how: str,
    secret_dir: Path,
    good: Path,
    key: safeload.SigningKey,
    keydir: Path,
    capsys: pytest.CaptureFixture[str],
):
    location = _locations(secret_dir)[how]
    model = _model(
        [helper.make_node("Identity", ["W"], ["Y"])], initializers=[_external("W", location)]
    )
    path = _sign(secret_dir.parent.parent / f"evil-{how}", model, good, key)
    with pytest.raises(MalformedArtifactError) as info:
        safeload.load(path, trusted=keydir)
    message = str(info.value)
    assert "refused by the static scan" in message
    assert "refers to external data" in message
    captured = capsys.readouterr()
    assert SECRET not in message + captured.out + captured.err


def test_a_symlink_inside_the_artifact_is_refused(
    secret_dir: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    model = _model(
        [helper.make_node("Identity", ["W"], ["Y"])], initializers=[_external("W", "w.bin")]
    )
    path = _sign(secret_dir.parent.parent / "evil-inside", model, good, key)
    (path / "w.bin").symlink_to(secret_dir)
    with pytest.raises(MalformedArtifactError, match="symlink") as info:
        safeload.load(path, trusted=keydir)
    assert SECRET not in str(info.value)


def _if_with_external_constant() -> Any:
    constant = helper.make_node(
        "Constant", [], ["Y"], value=_external("C", "../outside/secret.bin")
    )
    plain = helper.make_node(
        "Constant", [], ["Y"], value=numpy_helper.from_array(np.zeros(4, np.float32))
    )
    out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4])
    then_branch = helper.make_graph([constant], "then", [], [out])
    else_branch = helper.make_graph([plain], "else", [], [out])
    cond = helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True)))
    node = helper.make_node("If", ["cond"], ["Y"], then_branch=then_branch, else_branch=else_branch)
    return _model([cond, node])


def test_external_data_in_a_nested_subgraph_is_refused(
    secret_dir: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    path = _sign(secret_dir.parent.parent / "evil-if", _if_with_external_constant(), good, key)
    with pytest.raises(MalformedArtifactError, match="refers to external data") as info:
        safeload.load(path, trusted=keydir, policy=OPS)
    assert "If" in str(info.value)
    assert SECRET not in str(info.value)


def test_onnxruntime_alone_never_reads_external_data_from_the_working_directory(
    secret_dir: Path,
):
    """The second wall: without the gate, the session looks only in an empty folder.

    (Without that folder, onnxruntime reads these bytes from ``hard.bin`` in the working
    directory: a model given as bytes resolves external data against the working directory.)
    """
    out = helper.make_tensor_value_info("Y", TensorProto.UINT8, [4])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["W"], ["Y"])],
        "g",
        [],
        [out],
        [_external("W", "hard.bin", np.uint8)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    with pytest.raises(MalformedArtifactError, match="onnxruntime could not build") as info:
        open_session(model.SerializeToString())
    assert SECRET[:4] not in str(info.value)


def _function_model() -> Any:
    model = _model([helper.make_node("Identity", ["X"], ["Y"])])
    model.graph.input.append(helper.make_tensor_value_info("X", TensorProto.FLOAT, [4]))
    function = helper.make_function(
        "local.fn",
        "Twice",
        ["a"],
        ["b"],
        [helper.make_node("Add", ["a", "a"], ["b"])],
        [helper.make_opsetid("", 17)],
    )
    model.functions.append(function)
    return model


def _custom(domain: str, imported: bool) -> Any:
    node = helper.make_node("FusedMatMul", ["X", "X"], ["Y"], domain=domain)
    opsets = [helper.make_opsetid("", 17)]
    if imported:
        opsets.append(helper.make_opsetid(domain, 1))
    model = _model([node], opsets=opsets)
    model.graph.input.append(helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 2]))
    return model


def _unknown_opset() -> Any:
    return _model(
        [helper.make_node("Identity", ["X"], ["Y"])],
        opsets=[helper.make_opsetid("", 17), helper.make_opsetid("evil.domain", 1)],
    )


def _unknown_op() -> Any:
    return _model([helper.make_node("NotAnOperator", [], ["Y"])])


def _short_tensor() -> Any:
    tensor = numpy_helper.from_array(np.zeros(1, dtype=np.float32), "W")
    del tensor.dims[:]
    tensor.dims.extend([1_000_000_000])
    return _model([helper.make_node("Identity", ["W"], ["Y"])], initializers=[tensor])


def _sparse_bomb() -> Any:
    values = numpy_helper.from_array(np.ones(1, dtype=np.float32), "v")
    indices = numpy_helper.from_array(np.zeros(1, dtype=np.int64), "i")
    sparse = helper.make_sparse_tensor(values, indices, [1 << 20, 1 << 20])
    return _model([helper.make_node("Constant", [], ["Y"], sparse_value=sparse)])


HOSTILE = {
    "sparse_tensor_dense_bomb": (_sparse_bomb, "sparse tensor"),
    "custom_domain_imported": (lambda: _custom("evil.custom", True), "domain"),
    "com_microsoft_imported": (lambda: _custom("com.microsoft", True), "domain"),
    "custom_domain_node_only": (lambda: _custom("com.microsoft", False), "of domain"),
    "local_function": (_function_model, "local function"),
    "unknown_opset_domain": (_unknown_opset, "imports operator domain"),
    "unknown_standard_operator": (_unknown_op, "not a standard operator"),
    "declared_more_than_stored": (_short_tensor, "declares 1000000000 values but holds 1"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_graph_is_refused_by_the_gate(
    case: str, tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    make, why = HOSTILE[case]
    path = _sign(tmp_path / f"evil-{case}", make(), good, key)
    with pytest.raises(MalformedArtifactError) as info:
        safeload.load(path, trusted=keydir, policy=OPS)
    assert "refused by the static scan" in str(info.value)
    assert why in str(info.value)


@pytest.mark.parametrize(
    ("limits", "why"),
    [
        (ScanLimits(max_onnx_bytes=100), "ScanLimits.max_onnx_bytes"),
        (ScanLimits(max_onnx_nodes=2), "ScanLimits.max_onnx_nodes"),
    ],
)
def test_graphs_beyond_the_limits_are_refused(good: Path, keydir: Path, limits: Any, why: str):
    with pytest.raises(MalformedArtifactError, match=why):
        safeload.load(good, trusted=keydir, scan_limits=limits)


def test_nesting_beyond_the_limit_is_refused(
    tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    zero = numpy_helper.from_array(np.zeros(1, np.float32))
    cond = numpy_helper.from_array(np.array(True))
    leaf = helper.make_node("Constant", [], ["y0"], value=zero)
    inner = helper.make_graph(
        [leaf], "leaf", [], [helper.make_tensor_value_info("y0", TensorProto.FLOAT, [1])]
    )
    for level in range(1, 4):  # three Ifs nested: the top one's branches hold two more levels
        name = "Y" if level == 3 else f"y{level}"
        make_c = helper.make_node("Constant", [], [f"c{level}"], value=cond)
        node = helper.make_node("If", [f"c{level}"], [name], then_branch=inner, else_branch=inner)
        out = helper.make_tensor_value_info(name, TensorProto.FLOAT, [1])
        inner = helper.make_graph([make_c, node], f"level{level}", [], [out])
    model = _model(list(inner.node), shape=(1,))
    path = _sign(tmp_path / "deep", model, good, key)
    safeload.verify_artifact(path, trusted=keydir, policy=OPS)  # within the default depth
    with pytest.raises(MalformedArtifactError, match="ScanLimits.max_onnx_depth"):
        safeload.verify_artifact(
            path, trusted=keydir, policy=OPS, scan_limits=ScanLimits(max_onnx_depth=1)
        )


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty"])
def test_a_malformed_proto_is_a_clean_refusal(
    kind: str, tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path
):
    data = (good / "model.onnx").read_bytes()
    body = {"garbage": b"\xff" * 64, "truncated": data[: len(data) // 2], "empty": b""}[kind]
    files = {"model.onnx": body, "safeload.json": (good / "safeload.json").read_bytes()}
    path = write_signed_artifact(tmp_path / kind, files, key=key)
    with pytest.raises(MalformedArtifactError, match="ONNX"):
        safeload.load(path, trusted=keydir)


def test_a_huge_declared_length_is_refused_without_allocating(tmp_path: Path):
    """A graph field declaring 8 GiB in a 16-byte file, parsed under a 1.5 GiB memory cap."""
    bomb = tmp_path / "bomb.onnx"
    length = 8 << 30
    varint = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    bomb.write_bytes(b"\x08\x09" + b"\x3a" + bytes(varint) + b"\x00" * 4)  # ir_version, graph
    code = (
        "import resource, safeload\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))\n"
        f"r = safeload.scan({str(bomb)!r})\n"
        "print(r.safe, r.format, r.problems)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("False onnx"), done.stdout
    assert "not a valid ONNX protobuf" in done.stdout


# ---- the command line and bare files ------------------------------------------------------------


def test_scan_runs_the_onnx_gate_on_a_bare_file(tmp_path: Path, good: Path):
    plain = tmp_path / "plain.onnx"
    plain.write_bytes((good / "model.onnx").read_bytes())
    report = safeload.scan(plain)
    assert report.safe and report.format == "onnx"
    assert report.graph is not None and report.graph["inputs"][0]["name"] == "X"
    evil = tmp_path / "evil.onnx"
    evil.write_bytes(_custom("evil.custom", True).SerializeToString())
    refused = safeload.scan(evil)
    assert not refused.safe and "domain" in refused.problems[0]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(*args, cwd=cwd, timeout=300)  # a conversion to ONNX takes a while


def test_cli_convert_to_onnx_and_inspect(tmp_path: Path, pipeline: Pipeline, iris: Any):
    import joblib

    joblib.dump(pipeline, tmp_path / "model.joblib")
    assert _cli("keygen", "trainer", cwd=tmp_path).returncode == 0
    (tmp_path / "keys").mkdir()
    shutil.copy(tmp_path / "trainer.pub", tmp_path / "keys")
    done = _cli(
        "convert",
        "model.joblib",
        "out/iris/1.0",
        "--to",
        "onnx",
        "--key",
        "trainer.key",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "onnx, signed, predictions match" in done.stdout
    assert (tmp_path / "out/iris/1.0/model.onnx").is_file()
    shown = _cli("inspect", "out/iris/1.0", "--trusted", "keys", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    graph = json.loads(shown.stdout)["types"]["graph"]
    assert graph["inputs"] == [{"name": "X", "type": "tensor(double)", "shape": [None, 4]}]
    assert [o["name"] for o in graph["outputs"]] == ["label", "probabilities"]
    assert graph["opset"]["ai.onnx.ml"] == 1
    table = _cli("inspect", "out/iris/1.0", "--trusted", "keys", cwd=tmp_path)
    assert "opset ai.onnx" in table.stdout and "probabilities" in table.stdout
    model = safeload.load(tmp_path / "out/iris/1.0", trusted=tmp_path / "keys")
    X, _ = iris
    np.testing.assert_array_equal(model.predict(X), pipeline.predict(X))


def test_sign_an_unsigned_onnx_folder(
    tmp_path: Path, good: Path, key: safeload.SigningKey, keydir: Path, iris: Any
):
    """``safeload sign DIR`` runs the ONNX gate on the folder before vouching for it."""
    from safeload.saving import sign_directory

    folder = tmp_path / "unsigned"
    folder.mkdir()
    for name in ("model.onnx", "safeload.json"):
        shutil.copy(good / name, folder / name)
    sign_directory(folder, key=key)
    X, _ = iris
    assert safeload.load(folder, trusted=keydir).predict(X[:3]).shape == (3,)
    evil = tmp_path / "evil-unsigned"
    evil.mkdir()
    shutil.copy(good / "safeload.json", evil / "safeload.json")
    (evil / "model.onnx").write_bytes(_custom("evil.custom", True).SerializeToString())
    with pytest.raises(MalformedArtifactError, match="domain"):
        sign_directory(evil, key=key)
    assert not (evil / "model.sig").exists()


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        pytest.param(
            lambda m: m["onnx"]["inputs"][0].update(type="tensor(bfloat16)"),
            "onnx.inputs",
            id="unknown_input_type",
        ),
        pytest.param(
            lambda m: m["onnx"]["methods"].update(decision_function={}),
            "onnx.methods",
            id="unknown_method",
        ),
        pytest.param(
            lambda m: m["onnx"]["inputs"][0].update(name="Z"),
            "graph's inputs",
            id="input_not_in_graph",
        ),
        pytest.param(
            lambda m: m["onnx"]["methods"]["predict"].update(output="nope"),
            "does not have",
            id="output_not_in_graph",
        ),
        pytest.param(lambda m: m.pop("onnx"), "no 'onnx' section", id="no_onnx_section"),
    ],
)
def test_signed_metadata_that_does_not_describe_the_graph_is_refused(
    edit: Any, why: str, good: Path, key: safeload.SigningKey, keydir: Path
):
    """The graph record is signed attacker data too: checked, then matched against the graph."""
    meta = json.loads((good / "safeload.json").read_text())
    edit(meta)
    files = {
        "model.onnx": (good / "model.onnx").read_bytes(),
        "safeload.json": strictjson.dumps(meta),
    }
    path = write_signed_artifact(good.parent / "edited", files, key=key)
    with pytest.raises(MalformedArtifactError, match=why):
        safeload.load(path, trusted=keydir)


def test_a_bare_onnx_file_is_not_packed(tmp_path: Path, good: Path, key: safeload.SigningKey):
    from safeload.saving import pack_model_file

    bare = tmp_path / "model.onnx"
    bare.write_bytes((good / "model.onnx").read_bytes())
    with pytest.raises(safeload.OperationalError, match='format="onnx"'):
        pack_model_file(bare, tmp_path / "packed", key=key)
    assert not (tmp_path / "packed").exists()


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_a_missing_onnx_library_is_an_operational_error(
    missing: str, good: Path, keydir: Path, monkeypatch: pytest.MonkeyPatch
):
    """Without the [onnx] extra, loading says what to install (exit 2), not a traceback."""
    monkeypatch.setitem(sys.modules, missing, None)  # `import` raises ImportError
    with pytest.raises(safeload.OperationalError, match=r"safeload\[onnx\]"):
        safeload.load(good, trusted=keydir)
