"""``safeload.metaschema``: signed metadata is attacker data too.

Each attack is a ``safeload.json`` that a trusted key signed next to a real, loadable model (a
compromised training job): before the schema, each escaped as a bare Python exception, allocated
gigabytes, or was accepted. Each must now be a fast :class:`MalformedArtifactError` naming the
field.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

import safeload
from safeload.saving import write_signed_artifact
from tests.helpers import frame_pipeline

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def signer() -> safeload.SigningKey:
    return safeload.generate_key()


@pytest.fixture(scope="module")
def array_saved(
    tmp_path_factory: pytest.TempPathFactory,
    pipeline: Pipeline,
    iris: tuple[np.ndarray, np.ndarray],
    signer: safeload.SigningKey,
) -> tuple[bytes, dict[str, Any]]:
    """A real model file and the metadata save wrote for it (array sample)."""
    path = safeload.save(
        pipeline, tmp_path_factory.mktemp("a") / "m", key=signer, sample=iris[0][:3]
    )
    return (path / "model.joblib").read_bytes(), json.loads((path / "safeload.json").read_text())


@pytest.fixture(scope="module")
def frame_saved(
    tmp_path_factory: pytest.TempPathFactory, signer: safeload.SigningKey
) -> tuple[bytes, dict[str, Any]]:
    """The same for a DataFrame pipeline with an int, a float and a categorical column."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 40),
            "income": rng.normal(50, 10, 40),
            "plan": pd.Categorical(rng.choice(["basic", "pro"], 40)),
        }
    )
    y = (X["age"] > 40).to_numpy().astype(int)
    path = safeload.save(
        frame_pipeline(X, y), tmp_path_factory.mktemp("f") / "m", key=signer, sample=X.head(3)
    )
    return (path / "model.joblib").read_bytes(), json.loads((path / "safeload.json").read_text())


def signed(tmp_path: Path, key: safeload.SigningKey, model: bytes, meta: object) -> Path:
    data = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return write_signed_artifact(
        tmp_path / "art", {"model.joblib": model, "safeload.json": data}, key=key
    )


def refused_quickly(path: Path, key: safeload.SigningKey, field: str) -> str:
    start = time.perf_counter()
    with pytest.raises(safeload.MalformedArtifactError) as refused:
        safeload.load(path, trusted=safeload.Keyring.of([key]))
    assert time.perf_counter() - start < 5
    message = str(refused.value)
    assert "safeload.json" in message and field in message, message
    assert len(message) < 500, message
    return message


def test_what_save_writes_still_loads(
    tmp_path: Path,
    signer: safeload.SigningKey,
    array_saved: tuple[bytes, dict[str, Any]],
    frame_saved: tuple[bytes, dict[str, Any]],
) -> None:
    for i, (model, meta) in enumerate((array_saved, frame_saved)):
        safeload.load(
            signed(tmp_path / str(i), signer, model, meta), trusted=safeload.Keyring.of([signer])
        )


def _set(*steps: Any, value: Any) -> Edit:
    def edit(meta: dict[str, Any]) -> None:
        target = meta
        for step in steps[:-1]:
            target = target[step]
        target[steps[-1]] = value

    return edit


def _drop(*steps: Any) -> Edit:
    def edit(meta: dict[str, Any]) -> None:
        target = meta
        for step in steps[:-1]:
            target = target[step]
        del target[steps[-1]]

    return edit


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


INPUTS = ("sample", "inputs")


def _as_strings(meta: dict[str, Any]) -> None:
    inputs = meta["sample"]["inputs"]
    inputs["values"] = [str(v) for v in inputs["values"]]


PREDICT = ("sample", "predictions", "predict")

ARRAY_ATTACKS: list[Any] = [
    # wrong types in every field
    pytest.param(_set("versions", value=["1.0"]), "versions", id="versions-list"),
    pytest.param(_set("versions", "scikit-learn", value=1), "versions", id="version-int"),
    pytest.param(_set("schema", value=[1]), "schema", id="schema-list"),
    pytest.param(_set("schema", "n_features_in", value="4"), "n_features_in", id="n-str"),
    pytest.param(_set("schema", "n_features_in", value=-1), "n_features_in", id="n-negative"),
    pytest.param(_set("schema", "kind", value="graph"), "schema.kind", id="schema-kind"),
    pytest.param(_set("sample", value="x"), "sample", id="sample-str"),
    pytest.param(_set("sample", "inputs", value=[]), "sample.inputs", id="inputs-list"),
    pytest.param(_drop("sample", "predictions"), "predictions", id="no-predictions"),
    pytest.param(_set(*INPUTS, "shape", value="3,4"), "shape", id="shape-str"),
    pytest.param(_set(*INPUTS, "shape", value=[3, "4"]), "shape", id="dim-str"),
    pytest.param(_set(*INPUTS, "values", value={"a": 1}), "values", id="values-object"),
    pytest.param(_set(*INPUTS, "values", 0, value=[1.0]), "values[0]", id="value-list"),
    pytest.param(_set(*INPUTS, "values", 0, value=True), "values[0]", id="value-bool"),
    pytest.param(_set(*PREDICT, "values", 0, value=2**70), "values[0]", id="int-overflow"),
    pytest.param(_set(*PREDICT, "values", 0, value="0"), "values[0]", id="int-as-str"),
    pytest.param(_set("sample", "predictions", "rtol", value="1e-6"), "rtol", id="rtol-str"),
    pytest.param(_set("sample", "predictions", "atol", value=1e300), "atol", id="atol-huge"),
    pytest.param(_set("created_at", value=["now"]), "created_at", id="created-list"),
    pytest.param(_set("estimator", value={"a": 1}), "estimator", id="estimator-obj"),
    pytest.param(_set("metrics", value=[1]), "metrics", id="metrics-list"),
    pytest.param(_set("training_data_sha256", value="x" * 64), "sha256", id="sha-not-hex"),
    pytest.param(_set("name", value="n" * 100_000), "name", id="name-long"),
    # NaN-like: only null (missing) and the strings "inf"/"-inf" stand for non-finite floats
    pytest.param(_set(*INPUTS, "values", 0, value="nan"), "values[0]", id="nan-str"),
    pytest.param(_set(*INPUTS, "values", 0, value="NaN"), "values[0]", id="NaN-str"),
    pytest.param(_set(*INPUTS, "values", 0, value="1e999"), "values[0]", id="inf-spelled"),
    # dtypes save never writes
    pytest.param(_set(*INPUTS, "dtype", value="O"), "dtype", id="object-O"),
    pytest.param(_set(*INPUTS, "dtype", value="|O"), "dtype", id="object-|O"),
    pytest.param(_set(*INPUTS, "dtype", value="[('a', '<f8')]"), "dtype", id="structured"),
    pytest.param(_set(*INPUTS, "dtype", value="f8,f8"), "dtype", id="comma-structured"),
    pytest.param(_set(*INPUTS, "dtype", value="V8"), "dtype", id="void"),
    pytest.param(_set(*INPUTS, "dtype", value="(1000000,)f8"), "dtype", id="subarray"),
    pytest.param(_set(*INPUTS, "dtype", value="<c16"), "dtype", id="complex"),
    pytest.param(_set(*INPUTS, "dtype", value="<M8[ns]"), "dtype", id="datetime"),
    pytest.param(_set(*INPUTS, "dtype", value="S5"), "dtype", id="bytes"),
    pytest.param(_set(*PREDICT, "dtype", value="<U"), "dtype", id="unsized-str"),
    pytest.param(_set("schema", "dtype", value="(10,10)f8"), "schema.dtype", id="schema-sub"),
    # sizes and shapes
    pytest.param(_set(*INPUTS, "shape", value=[10**9, 4]), "shape", id="huge-shape"),
    pytest.param(_set(*INPUTS, "shape", value=[2, 4]), "values", id="shape-mismatch"),
    pytest.param(_set(*INPUTS, "shape", value=[12]), "shape", id="inputs-1d"),
    pytest.param(_set(*PREDICT, "shape", value=[1, 1, 3]), "shape", id="three-dims"),
    pytest.param(_set(*PREDICT, "shape", value=[1]), "predict", id="rows-disagree"),
    pytest.param(
        lambda m: (_set(*INPUTS, "dtype", value="<U9999999")(m), _as_strings(m)),
        "bytes",
        id="huge-itemsize",
    ),
    # nesting
    pytest.param(_set("metrics", "deep", value=_nested(200)), "nested", id="deep-metrics"),
    pytest.param(_set("extra", value=_nested(40)), "nested", id="deep-unknown-field"),
    # the schema and the sample disagree
    pytest.param(_set("schema", "n_features_in", value=3), "sample.inputs", id="count-differs"),
    pytest.param(_set("schema", "feature_names", value=["a"]), "feature_names", id="names-count"),
]


@pytest.mark.parametrize(("edit", "field"), ARRAY_ATTACKS)
@pytest.mark.timeout(60, method="signal")
def test_signed_array_metadata_attack_is_refused(
    tmp_path: Path,
    signer: safeload.SigningKey,
    array_saved: tuple[bytes, dict[str, Any]],
    edit: Edit,
    field: str,
) -> None:
    model, meta = array_saved
    meta = copy.deepcopy(meta)
    edit(meta)
    refused_quickly(signed(tmp_path, signer, model, meta), signer, field)


COLUMNS = ("sample", "inputs", "columns")

FRAME_ATTACKS: list[Any] = [
    pytest.param(_set(*COLUMNS, 0, "dtype", value="<U100"), "dtype", id="column-U"),
    pytest.param(_set(*COLUMNS, 0, "dtype", value="Int64"), "dtype", id="column-nullable"),
    pytest.param(
        _set(*COLUMNS, 2, "categories_dtype", value="<U9"), "categories_dtype", id="cat-U"
    ),
    pytest.param(_drop(*COLUMNS, 2, "categories"), "categor", id="cat-missing"),
    pytest.param(_set(*COLUMNS, 2, "categories", value=[[1]]), "categories[0]", id="cat-list"),
    pytest.param(_set(*COLUMNS, 0, "values", value=[1, 2]), "different numbers", id="ragged"),
    pytest.param(_set(*COLUMNS, 1, "name", value="age"), "twice", id="duplicate-name"),
    pytest.param(_set(*COLUMNS, 0, "values", value=list(range(101))), "values", id="rows"),
    pytest.param(_set(*COLUMNS, 1, "values", 0, value="nan"), "values[0]", id="float-nan-str"),
    pytest.param(_set(*COLUMNS, 0, "values", 0, value=None), "values[0]", id="int-null"),
    pytest.param(_set(*COLUMNS, 0, "secret", value=1), "unknown field", id="column-extra"),
    pytest.param(
        _set("schema", "columns", value=[{"name": "a", "dtype": "int64"}]),
        "columns",
        id="schema-cols",
    ),
    pytest.param(
        lambda m: m["sample"]["inputs"]["columns"].pop(), "sample.inputs", id="sample-cols"
    ),
]


@pytest.mark.parametrize(("edit", "field"), FRAME_ATTACKS)
@pytest.mark.timeout(60, method="signal")
def test_signed_frame_metadata_attack_is_refused(
    tmp_path: Path,
    signer: safeload.SigningKey,
    frame_saved: tuple[bytes, dict[str, Any]],
    edit: Edit,
    field: str,
) -> None:
    model, meta = frame_saved
    meta = copy.deepcopy(meta)
    edit(meta)
    refused_quickly(signed(tmp_path, signer, model, meta), signer, field)


def test_wide_document_is_refused_by_its_size(
    tmp_path: Path, signer: safeload.SigningKey, array_saved: tuple[bytes, dict[str, Any]]
) -> None:
    model, meta = array_saved
    meta = {**meta, "config": {"k": [0] * 1_000_001}}
    refused_quickly(signed(tmp_path, signer, model, meta), signer, "config.k")


_BOMB_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import safeload
    from safeload.saving import write_signed_artifact

    model, cases, out = open(sys.argv[1], "rb").read(), json.load(open(sys.argv[2])), sys.argv[3]
    key = safeload.generate_key()
    ring = safeload.Keyring.of([key])
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + (768 << 20), hard))
    for i, meta in enumerate(cases):
        path = write_signed_artifact(
            f"{out}/{i}",
            {"model.joblib": model, "safeload.json": json.dumps(meta).encode()},
            key=key,
        )
        start = time.perf_counter()
        try:
            safeload.load(path, trusted=ring)
            verdict = "loaded"
        except BaseException as exc:  # the verdict is the class name, MemoryError included
            verdict = type(exc).__name__
        print(verdict, round(time.perf_counter() - start, 2), flush=True)
    """
)


def _bombs(array_meta: dict[str, Any], frame_meta: dict[str, Any]) -> list[tuple[str, Any]]:
    """(model kind, metadata) pairs whose declared dtypes allocate gigabytes when decoded."""
    cases: list[tuple[str, Any]] = []
    for steps in (INPUTS, PREDICT, ("sample", "predictions", "predict_proba")):
        meta = copy.deepcopy(array_meta)
        _set(*steps, "dtype", value="<U100000000")(meta)
        if steps != INPUTS:
            _set(
                *steps,
                "values",
                value=["0"] * len(meta["sample"]["predictions"][steps[-1]]["values"]),
            )(meta)
        else:
            _set(*steps, "values", value=["0.5"] * 12)(meta)
        cases.append(("array", meta))
    meta = copy.deepcopy(frame_meta)
    _set(*COLUMNS, 2, "categories_dtype", value="<U100000000")(meta)
    cases.append(("frame", meta))
    return cases


@pytest.mark.timeout(300, method="signal")
def test_dtype_bombs_are_refused_in_bounded_memory(
    tmp_path: Path,
    array_saved: tuple[bytes, dict[str, Any]],
    frame_saved: tuple[bytes, dict[str, Any]],
) -> None:
    """``<U100000000`` in a signed sample: refused, not gigabytes then a bare MemoryError."""
    verdicts = []
    for kind, (model, _) in (("array", array_saved), ("frame", frame_saved)):
        cases = [m for k, m in _bombs(array_saved[1], frame_saved[1]) if k == kind]
        (tmp_path / f"{kind}.joblib").write_bytes(model)
        (tmp_path / f"{kind}.json").write_text(json.dumps(cases))
        (tmp_path / kind).mkdir()
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _BOMB_SCRIPT,
                str(tmp_path / f"{kind}.joblib"),
                str(tmp_path / f"{kind}.json"),
                str(tmp_path / kind),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        verdicts += [line.split() for line in result.stdout.splitlines()]
    assert len(verdicts) == 4
    for verdict, seconds in verdicts:
        assert verdict == "MalformedArtifactError" and float(seconds) < 5, verdicts


def test_inspect_reports_deep_metadata_instead_of_printing_it(
    tmp_path: Path, signer: safeload.SigningKey, array_saved: tuple[bytes, dict[str, Any]]
) -> None:
    """inspect shows metadata it does not load: it is bounded (nesting, sizes) all the same."""
    model, meta = array_saved
    path = signed(tmp_path, signer, model, {**meta, "config": _nested(500)})
    report = safeload.inspect(path, trusted=safeload.Keyring.of([signer]))
    assert report.metadata is None
    assert any("nested deeper" in reason for reason in report.reasons), report.reasons
