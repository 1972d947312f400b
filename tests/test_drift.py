"""Drift: today's data against the signed training statistics, in Python and on the command line.

Real models trained on real frames, saved with ``training_data``; batches drawn from the same
distribution are ``stable``, batches moved on one feature are ``shifted`` naming that feature,
and unseen categories, missing columns and missing values are each reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import safeload
from safeload import drift

ROOT = Path(__file__).resolve().parents[1]


def churn(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000, 10_000, n),
            "plan": pd.Categorical(rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])),
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("drift")
    key = safeload.generate_key()
    key.save(folder / "keys" / "trainer")
    X = churn(5000, seed=0)
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["plan"]),
            remainder=StandardScaler(),
        ),
        LogisticRegression(max_iter=500),
    ).fit(X, X["income"] > 50_000)
    path = safeload.save(model, folder / "churn" / "1.0.0", key=key, training_data=X)
    return folder, path


@pytest.fixture(scope="module")
def artifact(trained: tuple[Path, Path]) -> safeload.LoadedArtifact:
    folder, path = trained
    return safeload.load_checked(path, trusted=folder / "keys")


def test_an_unchanged_sample_is_stable(artifact: safeload.LoadedArtifact) -> None:
    report = artifact.check_drift(churn(2000, seed=1))
    assert report.verdict == "stable", report.to_dict()
    assert report.rows == 2000 and report.shifted_features == []
    assert [f.name for f in report.features] == ["age", "income", "plan"]
    assert all(f.psi is not None and f.psi < drift.THRESHOLDS["psi"][0] for f in report.features)


def test_a_shifted_feature_is_named(artifact: safeload.LoadedArtifact) -> None:
    batch = churn(2000, seed=2)
    batch["income"] = batch["income"] * 1.5
    report = artifact.check_drift(batch)
    assert report.verdict == "shifted"
    assert report.shifted_features == ["income"]
    income = {f.name: f for f in report.features}["income"]
    assert income.psi is not None and income.psi >= drift.THRESHOLDS["psi"][1]
    assert income.out_of_range is not None and income.out_of_range > 0.05
    assert any("psi" in reason for reason in income.reasons)
    with pytest.raises(safeload.DriftError, match="income") as raised:
        artifact.check_drift(batch, raise_on_shift=True)
    assert raised.value.report.verdict == "shifted"
    assert isinstance(raised.value, safeload.RefusedError)
    # Never a gate by default: the model still predicts on the shifted batch.
    assert len(artifact.predict(batch)) == 2000


def test_unseen_categories_are_counted_and_named(artifact: safeload.LoadedArtifact) -> None:
    batch = churn(1000, seed=3)
    plans = batch["plan"].astype(str).to_numpy()
    plans[:300] = "enterprise"
    plans[300:310] = "trial"
    batch["plan"] = plans
    report = artifact.check_drift(batch)
    plan = {f.name: f for f in report.features}["plan"]
    assert plan.unseen == pytest.approx(0.31)
    assert plan.unseen_values == ["enterprise", "trial"]
    assert plan.verdict == "shifted" and report.verdict == "shifted"
    few = churn(1000, seed=4)
    few_plans = few["plan"].astype(str).to_numpy()
    few_plans[:20] = "enterprise"
    few["plan"] = few_plans
    some = {f.name: f for f in artifact.check_drift(few).features}["plan"]
    assert some.unseen == pytest.approx(0.02) and some.verdict == "stable"


def test_a_missing_column_is_reported_and_shifted(artifact: safeload.LoadedArtifact) -> None:
    report = artifact.check_drift(churn(1000, seed=5).drop(columns=["age"]))
    assert report.missing_columns == ["age"]
    assert report.verdict == "shifted" and report.shifted_features == ["age"]
    age = {f.name: f for f in report.features}["age"]
    assert age.reasons == ["column missing from the data"]


def test_missing_values_rising_are_reported(artifact: safeload.LoadedArtifact) -> None:
    batch = churn(1000, seed=6)
    batch.loc[:99, "income"] = np.nan
    income = {f.name: f for f in artifact.check_drift(batch).features}["income"]
    assert income.missing == pytest.approx(0.1) and income.missing_increase == pytest.approx(0.1)
    assert income.verdict == "watch"


def test_a_small_batch_is_at_most_watch(artifact: safeload.LoadedArtifact) -> None:
    batch = churn(20, seed=7)
    batch["income"] = batch["income"] * 3
    report = artifact.check_drift(batch)
    assert report.verdict == "watch"
    assert any("at most watch" in r for f in report.features for r in f.reasons)


def test_psi_is_the_textbook_formula() -> None:
    expected = np.array([50.0, 50.0])
    actual = np.array([80.0, 20.0])
    by_hand = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert drift.psi(expected, actual) == pytest.approx(by_hand)
    assert drift.psi(expected, expected) == 0.0


def test_array_models_are_matched_by_position(tmp_path: Path, key: safeload.SigningKey) -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(3000, 3))
    model = LogisticRegression().fit(X, X[:, 0] > 0)
    path = safeload.save(model, tmp_path / "m", key=key, training_data=X)
    key.save(tmp_path / "keys" / "k")
    loaded = safeload.load_checked(path, trusted=tmp_path / "keys")
    assert loaded.check_drift(rng.normal(size=(1000, 3))).verdict == "stable"
    moved = rng.normal(size=(1000, 3))
    moved[:, 2] += 3
    assert loaded.check_drift(moved).shifted_features == ["2"]


def test_the_running_accumulator_equals_one_batch(artifact: safeload.LoadedArtifact) -> None:
    batch = churn(3000, seed=9)
    running = drift.DriftAccumulator(artifact.metadata["training_stats"])
    for part in np.array_split(np.arange(3000), 7):
        running.add(batch.iloc[part])
    assert running.report().to_dict() == artifact.check_drift(batch).to_dict()


# --- the command line ---------------------------------------------------------------------------


def _cli(*args: str, cwd: Path, code: str = "") -> subprocess.CompletedProcess[str]:
    prefix = [sys.executable, "-c", code + "from safeload._cli import main; sys.exit(main())"]
    return subprocess.run(
        [*prefix, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"},
    )


def test_cli_drift_table_json_and_exit_codes(trained: tuple[Path, Path], tmp_path: Path) -> None:
    folder, path = trained
    churn(1500, seed=10).to_csv(tmp_path / "today.csv", index=False)
    moved = churn(1500, seed=11)
    moved["age"] = moved["age"] + 30
    moved.to_parquet(tmp_path / "moved.parquet")
    keys = str(folder / "keys")
    stable = _cli(
        "drift", str(path), "today.csv", "--trusted", keys, cwd=tmp_path, code="import sys;"
    )
    assert stable.returncode == 0, stable.stderr
    assert "verdict    STABLE" in stable.stdout and "income" in stable.stdout
    shifted = _cli(
        "drift", str(path), "moved.parquet", "--trusted", keys, "--json", cwd=tmp_path,
        code="import sys;",
    )  # fmt: skip
    assert shifted.returncode == 1, shifted.stderr
    doc = json.loads(shifted.stdout)
    assert doc["verdict"] == "shifted" and doc["shifted_features"] == ["age"]
    assert doc["name"] == "churn" and doc["rows"] == 1500 and doc["rows_cut_at"] is None
    cut = _cli(
        "drift", str(path), "moved.parquet", "--trusted", keys, "--json", "--max-rows", "200",
        cwd=tmp_path, code="import sys;",
    )  # fmt: skip
    assert json.loads(cut.stdout)["rows"] == 200 and json.loads(cut.stdout)["rows_cut_at"] == 200


def test_cli_drift_refuses_a_tampered_artifact_and_bad_input(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    import shutil

    folder, path = trained
    churn(200, seed=12).to_parquet(tmp_path / "today.parquet")
    keys = str(folder / "keys")
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    meta = json.loads((copy / "safeload.json").read_text())
    meta["training_stats"]["features"][0]["max"] = 1e9
    (copy / "safeload.json").write_text(json.dumps(meta))
    tampered = _cli("drift", str(copy), "today.parquet", "--trusted", keys, cwd=tmp_path,
                    code="import sys;")  # fmt: skip
    assert tampered.returncode == 1 and "TamperedArtifact" not in tampered.stdout
    assert "refused" in tampered.stderr and "safeload.json" in tampered.stderr
    no_arrow = _cli(
        "drift", str(path), "today.parquet", "--trusted", keys, cwd=tmp_path,
        code="import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None;",
    )  # fmt: skip
    assert no_arrow.returncode == 2 and "pip install pyarrow" in no_arrow.stderr
    (tmp_path / "data.txt").write_text("x")
    wrong = _cli("drift", str(path), "data.txt", "--trusted", keys, cwd=tmp_path,
                 code="import sys;")  # fmt: skip
    assert wrong.returncode == 2 and ".csv or .parquet" in wrong.stderr
