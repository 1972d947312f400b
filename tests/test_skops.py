"""The skops format end to end: signed, type-gated by the caller's policy, tamper-evident."""

from __future__ import annotations

import io
import json
import operator
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

import safeload
from safeload.saving import write_signed_artifact
from tests.helpers import edit_skops_schema, frame_pipeline


def _metadata(fmt: str = "skops") -> bytes:
    return json.dumps(
        {"safeload_format_version": 1, "format": fmt, "name": "x", "version": "1"}
    ).encode()


@pytest.fixture
def ring(key: safeload.SigningKey) -> safeload.Keyring:
    return safeload.Keyring.of([key])


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 120).astype(float),
            "income": rng.normal(50, 10, 120),
            "plan": rng.choice(["basic", "pro", "team"], 120),
        }
    )
    y = (X["income"] + (X["plan"] == "pro") * 5 > 52).astype(int).to_numpy()
    return X, y


def test_column_transformer_dataframe_round_trip(
    tmp_path: Path, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    X, y = _frame()
    pipe = frame_pipeline(X, y)
    path = safeload.save(pipe, tmp_path / "m", key=key, format="skops", name="m", version="1")
    assert sorted(p.name for p in path.iterdir()) == ["model.sig", "model.skops", "safeload.json"]
    model = safeload.load(path, trusted=ring)
    np.testing.assert_array_equal(model.predict(X), pipe.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), pipe.predict_proba(X))


@pytest.mark.parametrize(
    "estimator",
    [
        RandomForestClassifier(n_estimators=20, random_state=0),
        GradientBoostingClassifier(n_estimators=10, random_state=0),
        HistGradientBoostingClassifier(max_iter=10, random_state=0),
        IsolationForest(n_estimators=10, random_state=0),
    ],
    ids=lambda e: type(e).__name__,
)
def test_tree_ensembles_round_trip(
    tmp_path: Path,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    iris: tuple[np.ndarray, np.ndarray],
    estimator: Any,
) -> None:
    X, y = iris
    fitted = estimator.fit(X, y)
    path = safeload.save(fitted, tmp_path / "m", key=key, format="skops", name="m", version="1")
    model = safeload.load(path, trusted=ring)
    np.testing.assert_array_equal(model.predict(X), fitted.predict(X))


def test_compressed_skops_round_trip(
    tmp_path: Path,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    pipeline: Pipeline,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    path = safeload.save(pipeline, tmp_path / "m", key=key, format="skops", compress=6)
    np.testing.assert_array_equal(
        safeload.load(path, trusted=ring).predict(iris[0]), pipeline.predict(iris[0])
    )


def _with_func(iris: tuple[np.ndarray, np.ndarray], func: Any) -> Pipeline:
    """A fitted FunctionTransformer pipeline whose stored function is then replaced by func."""
    pipe = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(max_iter=300))
    pipe.fit(*iris)
    pipe.steps[0][1].func = func
    return pipe


HOSTILE_FUNCS = {
    "builtins_eval": eval,
    "operator_methodcaller": operator.methodcaller("system", "touch PWNED"),
    "operator_attrgetter": operator.attrgetter("__class__.__init__.__globals__"),
    "estimator_method": LogisticRegression().fit,
    "numpy_load": np.load,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FUNCS))
def test_hostile_types_signed_by_trusted_key_refused_before_construction(
    tmp_path: Path,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    iris: tuple[np.ndarray, np.ndarray],
    constructed: list[str],
    name: str,
) -> None:
    pipe = _with_func(iris, HOSTILE_FUNCS[name])
    data = skops.io.dumps(pipe)
    path = write_signed_artifact(
        tmp_path / "evil", {"model.skops": data, "safeload.json": _metadata()}, key=key
    )
    with pytest.raises(safeload.UntrustedTypeError) as err:
        safeload.load(path, trusted=ring)
    assert err.value.types
    assert constructed == []
    # Saving refuses the same object: no artifact that the gate would refuse is ever written.
    with pytest.raises(safeload.UntrustedTypeError):
        safeload.save(pipe, tmp_path / "again", key=key, format="skops")
    assert not (tmp_path / "again").exists()


def test_policy_extension_is_exact(
    tmp_path: Path,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    """Trusting one extra exact name lets that file load; nothing broader is trusted."""
    X, _ = iris
    default = safeload.TypePolicy.default()
    candidates = [np.cbrt, np.square, np.negative, np.fabs, np.rint, np.sqrt]
    outside = [f for f in candidates if not default.allows("numpy", f.__name__)]
    assert outside, "every candidate ufunc is in the default policy: pick another"
    pipe = _with_func(iris, outside[0])
    data = skops.io.dumps(pipe)
    path = write_signed_artifact(
        tmp_path / "m", {"model.skops": data, "safeload.json": _metadata()}, key=key
    )
    report = safeload.scan_bytes(data)
    assert report.untrusted == (f"numpy.{outside[0].__name__}",)
    with pytest.raises(safeload.UntrustedTypeError):
        safeload.load(path, trusted=ring)
    model = safeload.load(path, trusted=ring, policy=list(report.untrusted))
    np.testing.assert_allclose(model.predict(X), pipe.predict(X))


def _rezip(data: bytes, extra: dict[str, bytes], deflate: bool = False) -> bytes:
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", method) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        for name, content in extra.items():
            dst.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize(
    "extra",
    [
        {"../escape.npy": b"x"},
        {"/abs.npy": b"x"},
        {"sub/dir.npy": b"x"},
        {"a\\b.npy": b"x"},
    ],
    ids=["dotdot", "absolute", "subdir", "backslash"],
)
def test_odd_zip_entry_names_refused(
    tmp_path: Path,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    pipeline: Pipeline,
    constructed: list[str],
    extra: dict[str, bytes],
) -> None:
    data = _rezip(skops.io.dumps(pipeline), extra)
    path = write_signed_artifact(
        tmp_path / "evil", {"model.skops": data, "safeload.json": _metadata()}, key=key
    )
    with pytest.raises(safeload.MalformedArtifactError, match="entry name"):
        safeload.load(path, trusted=ring)
    assert constructed == []


def test_zip_bomb_refused(
    tmp_path: Path,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    pipeline: Pipeline,
    constructed: list[str],
) -> None:
    bomb = _rezip(skops.io.dumps(pipeline), {"bomb.npy": b"\0" * (64 << 20)}, deflate=True)
    assert len(bomb) < 1 << 20
    path = write_signed_artifact(
        tmp_path / "evil", {"model.skops": bomb, "safeload.json": _metadata()}, key=key
    )
    with pytest.raises(safeload.MalformedArtifactError, match="bomb"):
        safeload.load(path, trusted=ring)
    assert constructed == []


def test_not_a_zip_refused(
    tmp_path: Path, key: safeload.SigningKey, ring: safeload.Keyring
) -> None:
    path = write_signed_artifact(
        tmp_path / "evil",
        {"model.skops": b"PK\x03\x04garbage", "safeload.json": _metadata()},
        key=key,
    )
    with pytest.raises(safeload.MalformedArtifactError):
        safeload.load(path, trusted=ring)


def test_crafted_schema_refused(
    tmp_path: Path,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    pipeline: Pipeline,
    constructed: list[str],
) -> None:
    """A schema edited by hand to name ``builtins.open`` where a class was."""

    def edit(schema: dict[str, Any]) -> None:
        schema["__module__"], schema["__class__"] = "builtins", "open"

    evil = edit_skops_schema(skops.io.dumps(pipeline), edit)
    path = write_signed_artifact(
        tmp_path / "evil", {"model.skops": evil, "safeload.json": _metadata()}, key=key
    )
    with pytest.raises(safeload.UntrustedTypeError, match="builtins.open"):
        safeload.load(path, trusted=ring)
    assert constructed == []


@pytest.mark.parametrize("name", ["model.skops", "safeload.json", "model.sig"])
def test_tampering_refused(
    tmp_path: Path,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    pipeline: Pipeline,
    name: str,
) -> None:
    path = safeload.save(pipeline, tmp_path / "m", key=key, format="skops")
    data = bytearray((path / name).read_bytes())
    data[len(data) // 2] ^= 1
    (path / name).write_bytes(bytes(data))
    with pytest.raises(safeload.RefusedError):
        safeload.load(path, trusted=ring)


def test_unsigned_skops_refused(
    tmp_path: Path, key: safeload.SigningKey, ring: safeload.Keyring, pipeline: Pipeline
) -> None:
    path = safeload.save(pipeline, tmp_path / "m", key=key, format="skops")
    (path / "model.sig").unlink()
    with pytest.raises(safeload.UnsignedArtifactError):
        safeload.load(path, trusted=ring)


def test_convert_round_trip(
    tmp_path: Path,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    import joblib

    X, y = iris
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    src = tmp_path / "forest.joblib"
    joblib.dump(forest, src, compress=3)
    out = safeload.convert(src, tmp_path / "forest" / "1", key=key, sample=X[:5])
    assert (out / "model.skops").exists()
    model = safeload.load(out, trusted=ring)
    np.testing.assert_array_equal(model.predict(X), forest.predict(X))


def test_convert_without_sample_uses_synthetic_rows(
    tmp_path: Path,
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    pipeline: Pipeline,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    import joblib

    src = tmp_path / "p.joblib"
    joblib.dump(pipeline, src)
    out = safeload.convert(src, tmp_path / "p" / "1", key=key)
    np.testing.assert_array_equal(
        safeload.load(out, trusted=ring).predict(iris[0]), pipeline.predict(iris[0])
    )


def test_convert_refuses_untrusted_types(
    tmp_path: Path, key: safeload.SigningKey, marker: Path
) -> None:
    from tests.malicious import malicious_joblib

    src = tmp_path / "evil.joblib"
    src.write_bytes(malicious_joblib(marker))
    with pytest.raises(safeload.UntrustedTypeError):
        safeload.convert(src, tmp_path / "out", key=key)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_convert_cli(
    tmp_path: Path, pipeline: Pipeline, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    import joblib

    from safeload._cli import main

    key = safeload.generate_key()
    key.save(tmp_path / "keys" / "k")
    src = tmp_path / "p.joblib"
    joblib.dump(pipeline, src)
    code = main(
        [
            "convert",
            str(src),
            str(tmp_path / "out"),
            "--to",
            "skops",
            "--key",
            str(tmp_path / "keys" / "k.key"),
        ]
    )
    assert code == 0
    model = safeload.load(tmp_path / "out", trusted=tmp_path / "keys")
    np.testing.assert_array_equal(model.predict(iris[0]), pipeline.predict(iris[0]))


def test_bare_unsigned_file_refused_by_default(tmp_path: Path, pipeline: Pipeline) -> None:
    path = tmp_path / "model.skops"
    path.write_bytes(skops.io.dumps(pipeline))
    with pytest.raises(safeload.UnsignedArtifactError, match="unsafe_allow_unsigned"):
        safeload.load_file(path)


@pytest.mark.parametrize("fmt", ["skops", "joblib"])
def test_unsafe_allow_unsigned_warns_and_keeps_the_type_gate(
    tmp_path: Path,
    pipeline: Pipeline,
    iris: tuple[np.ndarray, np.ndarray],
    constructed: list[str],
    marker: Path,
    fmt: str,
) -> None:
    import joblib

    good = tmp_path / f"good.{fmt}"
    if fmt == "skops":
        good.write_bytes(skops.io.dumps(pipeline))
    else:
        joblib.dump(pipeline, good)
    with pytest.warns(safeload.UnsafeUnsignedLoadWarning, match="WITHOUT any signature check"):
        model = safeload.load_file(good, unsafe_allow_unsigned=True)
    np.testing.assert_array_equal(model.predict(iris[0]), pipeline.predict(iris[0]))
    constructed.clear()
    evil = tmp_path / f"evil.{fmt}"
    if fmt == "skops":
        evil.write_bytes(skops.io.dumps(_with_func(iris, eval)))
    else:
        from tests.malicious import malicious_joblib

        evil.write_bytes(malicious_joblib(marker))
    with (
        pytest.warns(safeload.UnsafeUnsignedLoadWarning),
        pytest.raises(safeload.UntrustedTypeError),
    ):
        safeload.load_file(evil, unsafe_allow_unsigned=True)
    assert constructed == [] and not marker.exists()


def test_unsafe_unsigned_load_warns_once_per_use_on_stderr(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    """One line per unsigned load, each time: not a log line and a warning for the same load."""
    good = tmp_path / "good.skops"
    good.write_bytes(skops.io.dumps(pipeline))
    code = (
        "import safeload, sys\n"
        "for _ in range(2):\n"
        "    safeload.load_file(sys.argv[1], unsafe_allow_unsigned=True)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(good)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("WITHOUT any signature check") == 2, result.stderr
