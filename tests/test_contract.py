"""Saving is a contract: metadata, schema, sample predictions, versions, identity."""

from __future__ import annotations

import io
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import safeload
from safeload import loading
from safeload.saving import write_signed_artifact
from tests.helpers import frame_pipeline


def _frame(n: int = 80, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype("int64"),
            "income": rng.normal(50, 10, n),
            "plan": pd.Categorical(rng.choice(["basic", "pro", "team"], n)),
        }
    )
    y = (X["income"] + (X["plan"] == "pro") * 5 > 52).astype(int).to_numpy()
    return X, y


@pytest.fixture
def ring(key: safeload.SigningKey) -> safeload.Keyring:
    return safeload.Keyring.of([key])


@pytest.fixture
def frame_artifact(tmp_path: Path, key: safeload.SigningKey) -> tuple[Path, pd.DataFrame]:
    X, y = _frame()
    pipe = frame_pipeline(X, y)
    path = safeload.save(
        pipe,
        tmp_path / "churn" / "1.0.0",
        key=key,
        name="churn",
        version="1.0.0",
        metrics={"accuracy": 0.9},
        config={"C": 1.0, "features": ["age", "income", "plan"]},
        sample=X.head(5),
        training_data=X,
    )
    return path, X


def test_metadata_complete_for_dataframe_pipeline(
    frame_artifact: tuple[Path, pd.DataFrame],
) -> None:
    path, _ = frame_artifact
    meta = json.loads((path / "safeload.json").read_text())
    assert meta["format"] == "joblib" and meta["safeload_format_version"] == 1
    assert meta["name"] == "churn" and meta["version"] == "1.0.0"
    assert meta["created_at"].endswith("+00:00")
    assert meta["estimator"] == "sklearn.pipeline.Pipeline"
    schema = meta["schema"]
    assert schema["kind"] == "dataframe" and schema["n_features_in"] == 3
    assert schema["feature_names"] == ["age", "income", "plan"]
    assert [c["dtype"] for c in schema["columns"]] == ["int64", "float64", "category"]
    assert schema["columns"][2]["categories"] == ["basic", "pro", "team"]
    assert meta["metrics"] == {"accuracy": 0.9}
    assert meta["config"]["features"] == ["age", "income", "plan"]
    for lib in (
        "python",
        "scikit-learn",
        "numpy",
        "scipy",
        "joblib",
        "skops",
        "safeload",
        "platform",
    ):
        assert meta["versions"][lib], lib
    assert len(meta["training_data_sha256"]) == 64
    assert meta["sample"]["inputs"]["kind"] == "dataframe"
    assert set(meta["sample"]["predictions"]) >= {"predict", "predict_proba", "rtol", "atol"}


def test_metadata_complete_for_ndarray_model(
    tmp_path: Path, key: safeload.SigningKey, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    model = Ridge().fit(X, y)
    path = safeload.save(
        model, tmp_path / "r", key=key, name="r", version="2", sample=X[:4], training_data=X
    )
    meta = json.loads((path / "safeload.json").read_text())
    assert meta["estimator"] == "sklearn.linear_model._ridge.Ridge"
    assert meta["schema"] == {"kind": "array", "dtype": "float64", "n_features_in": 4}
    assert meta["sample"]["predictions"]["predict"]["shape"] == [4]
    loaded = safeload.load_artifact(path, trusted=safeload.Keyring.of([key]))
    np.testing.assert_allclose(loaded.predict(X[:3]), model.predict(X[:3]))


def test_fingerprint_changes_with_data(tmp_path: Path, key: safeload.SigningKey) -> None:
    from safeload.contract import fingerprint

    X, _ = _frame()
    Y = X.copy()
    Y.loc[0, "income"] += 1e-9
    assert fingerprint(X) == fingerprint(X.copy())
    assert fingerprint(X) != fingerprint(Y)


@pytest.mark.parametrize("bad", [{"acc": np.float32(1)}, {"f": float("nan")}, {1: 2}, {"s": {1}}])
def test_non_json_metrics_refused(
    tmp_path: Path, key: safeload.SigningKey, pipeline: Pipeline, bad: dict[Any, Any]
) -> None:
    with pytest.raises(safeload.OperationalError, match="metrics"):
        safeload.save(pipeline, tmp_path / "m", key=key, metrics=bad)
    assert not (tmp_path / "m").exists()


def test_sample_predictions_reverified(
    frame_artifact: tuple[Path, pd.DataFrame], ring: safeload.Keyring
) -> None:
    path, X = frame_artifact
    loaded = safeload.load_artifact(path, trusted=ring)
    assert loaded.metadata["name"] == "churn"
    np.testing.assert_array_equal(loaded.predict(X), loaded.model.predict(X))


def test_swapped_model_resigned_by_trusted_key_fails_contract(
    frame_artifact: tuple[Path, pd.DataFrame],
    key: safeload.SigningKey,
    ring: safeload.Keyring,
    tmp_path: Path,
) -> None:
    """Another model (same schema) re-signed by a trusted key: the saved sample catches it."""
    path, X = frame_artifact
    _, y = _frame()
    other = frame_pipeline(X, 1 - y)  # behaves differently
    buffer = io.BytesIO()
    joblib.dump(other, buffer)
    forged = write_signed_artifact(
        tmp_path / "forged",
        {"model.joblib": buffer.getvalue(), "safeload.json": (path / "safeload.json").read_bytes()},
        key=key,
    )
    with pytest.raises(safeload.ContractError, match="predict"):
        safeload.load(forged, trusted=ring)


def test_version_policy_default_warns_and_strict_refuses(
    frame_artifact: tuple[Path, pd.DataFrame],
    ring: safeload.Keyring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, _ = frame_artifact
    monkeypatch.setattr(loading, "running_sklearn_version", lambda: "99.0.0")
    with pytest.warns(safeload.VersionMismatchWarning, match=r"99\.0\.0"):
        safeload.load(path, trusted=ring)
    with pytest.raises(safeload.ContractError, match="retrain"):
        safeload.load(path, trusted=ring, versions="strict")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        safeload.load(path, trusted=ring, versions="ignore")


def test_same_version_gives_no_warning(
    frame_artifact: tuple[Path, pd.DataFrame], ring: safeload.Keyring
) -> None:
    path, _ = frame_artifact
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        safeload.load(path, trusted=ring, versions="strict")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda X: X.drop(columns=["plan"]), r"missing columns \['plan'\]"),
        (lambda X: X.assign(extra=1), r"unexpected columns \['extra'\]"),
        (lambda X: X[["income", "age", "plan"]], "wrong order"),
        (lambda X: X.assign(age=X["age"].astype(str)), "column 'age' has dtype"),
        (lambda X: X.assign(plan=pd.Categorical(["gold"] * len(X))), "unknown categories"),
        (lambda X: X.to_numpy(), "pass a DataFrame"),
    ],
    ids=["missing", "extra", "order", "dtype", "category", "not-a-frame"],
)
def test_schema_violations(
    frame_artifact: tuple[Path, pd.DataFrame], ring: safeload.Keyring, mutate: Any, message: str
) -> None:
    path, X = frame_artifact
    loaded = safeload.load_artifact(path, trusted=ring)
    with pytest.raises(safeload.ContractError, match=message):
        loaded.predict(mutate(X))
    with pytest.raises(safeload.ContractError):
        loaded.predict_proba(mutate(X))


def test_load_checked_refuses_text_where_a_number_was_saved_and_load_does_not(
    frame_artifact: tuple[Path, pd.DataFrame], ring: safeload.Keyring
) -> None:
    """The issue's case: the bare estimator predicts on a text column; load_checked refuses."""
    path, X = frame_artifact
    texty = X.head(5).assign(income=X["income"].head(5).astype(str))
    checked = safeload.load_checked(path, trusted=ring)
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        with pytest.raises(safeload.ContractError, match="income"):
            getattr(checked, method)(texty)
    assert len(safeload.load(path, trusted=ring).predict(texty)) == 5
    assert safeload.load_artifact is safeload.load_checked


def test_array_schema_violations(
    tmp_path: Path, key: safeload.SigningKey, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = iris
    path = safeload.save(
        make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        tmp_path / "m",
        key=key,
        training_data=X,
    )
    loaded = safeload.load_artifact(path, trusted=safeload.Keyring.of([key]))
    with pytest.raises(safeload.ContractError, match="3 features, the model expects 4"):
        loaded.predict(X[:, :3])
    with pytest.raises(safeload.ContractError, match="dtype"):
        loaded.predict(X.astype(str))
    assert loaded.predict(X[:2]).shape == (2,)


# --- identity, store, rollback ---------------------------------------------------------------


def test_signed_identity_must_match(
    frame_artifact: tuple[Path, pd.DataFrame], ring: safeload.Keyring
) -> None:
    path, _ = frame_artifact
    safeload.load(path, trusted=ring, name="churn", version="1.0.0")
    with pytest.raises(safeload.ContractError, match="older or a different"):
        safeload.load(path, trusted=ring, name="churn", version="1.1.0")
    with pytest.raises(safeload.ContractError):
        safeload.load(path, trusted=ring, name="fraud")


def test_store_lists_orders_and_resolves_latest(
    tmp_path: Path,
    key: safeload.SigningKey,
    pipeline: Pipeline,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    store = safeload.Store(tmp_path / "models")
    assert store.names() == []
    for version in ["1.9.0", "1.10.0", "1.2.0"]:
        store.save(pipeline, "iris", version, key=key)
    store.save(pipeline, "other", "0.1", key=key)
    assert store.names() == ["iris", "other"]
    assert store.versions("iris") == ["1.2.0", "1.9.0", "1.10.0"]
    assert store.resolve("iris") == "1.10.0"
    ring = safeload.Keyring.of([key])
    model = store.load("iris", trusted=ring)
    np.testing.assert_array_equal(model.predict(iris[0]), pipeline.predict(iris[0]))
    assert store.load_artifact("iris", "1.2.0", trusted=ring).metadata["version"] == "1.2.0"
    with pytest.raises(safeload.ArtifactExistsError):
        store.save(pipeline, "iris", "1.9.0", key=key)
    with pytest.raises(safeload.ArtifactNotFoundError):
        store.load("nothing", trusted=ring)


def test_store_rollback_refused(
    tmp_path: Path, key: safeload.SigningKey, pipeline: Pipeline
) -> None:
    """An old signed version copied to a newer version's path is refused."""
    store = safeload.Store(tmp_path / "models")
    store.save(pipeline, "iris", "1.0.0", key=key)
    shutil.copytree(store.path("iris", "1.0.0"), store.path("iris", "2.0.0"))
    ring = safeload.Keyring.of([key])
    with pytest.raises(safeload.ContractError, match="'1.0.0'"):
        store.load("iris", trusted=ring)
    with pytest.raises(safeload.ContractError):
        store.load("iris", "2.0.0", trusted=ring)


def test_store_swap_refused(tmp_path: Path, key: safeload.SigningKey, pipeline: Pipeline) -> None:
    """Another model's signed artifact put in place of this one is refused."""
    store = safeload.Store(tmp_path / "models")
    store.save(pipeline, "fraud", "3.0.0", key=key)
    shutil.copytree(store.path("fraud", "3.0.0"), store.path("iris", "3.0.0"))
    with pytest.raises(safeload.ContractError, match="'fraud'"):
        store.load("iris", "3.0.0", trusted=safeload.Keyring.of([key]))


def test_store_refuses_odd_names(tmp_path: Path) -> None:
    store = safeload.Store(tmp_path)
    with pytest.raises(safeload.MalformedArtifactError):
        store.path("../etc", "1")
