"""Shared fixtures: a real key pair, a real fitted Pipeline, a real signed artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import safeload


@pytest.fixture(scope="session")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def pipeline(iris: tuple[np.ndarray, np.ndarray]) -> Pipeline:
    X, y = iris
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


@pytest.fixture
def key() -> safeload.SigningKey:
    return safeload.generate_key()


@pytest.fixture
def keydir(tmp_path: Path, key: safeload.SigningKey) -> Path:
    folder = tmp_path / "keys"
    key.save(folder / "trainer")
    return folder


@pytest.fixture
def artifact(tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey) -> Path:
    return safeload.save(
        pipeline, tmp_path / "models" / "iris" / "1.0.0", key=key, name="iris", version="1.0.0"
    )


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A path that a malicious payload would create; tests assert it never exists."""
    return tmp_path / "PWNED"


@pytest.fixture
def constructed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every object skops constructs: proof that a refusal came before construction."""
    from skops.io._audit import Node

    calls: list[str] = []
    real = Node.construct

    def spy(self: Any) -> Any:
        calls.append(f"{self.module_name}.{self.class_name}")
        return real(self)

    monkeypatch.setattr(Node, "construct", spy)
    return calls


@pytest.fixture(autouse=True)
def _fast_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """``SAFELOAD_FAST_ENTRY=1``: every direct call of the restricted unpickler goes through the
    fast path's entry first (scan, then the C unpickler when the scan proved the stream), so
    that the second wall's own tests run against it (``tests/test_unpickle_fast.py``)."""
    import os

    if os.environ.get("SAFELOAD_FAST_ENTRY") != "1":
        return
    from safeload import _unpickle
    from tests.fastentry import through_fast_path

    monkeypatch.setattr(_unpickle, "unpickle_verified", through_fast_path)
