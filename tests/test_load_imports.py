"""A verified load imports nothing that its peer (``joblib.load``, ``skops.io.load``) would not.

Importing is most of what loading a small model costs in a fresh process (a tiny pipeline's
``joblib.load`` is 75 ms of scikit-learn imports and 0.4 ms of unpickling), so a gate that
imports one more scikit-learn subpackage (``sklearn.tree`` pulls in neighbors, covariance and
discriminant analysis: 12 ms) is slower than its peer by more than all of its own work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import safeload

CHILD = """
import json, sys
import joblib, numpy, sklearn, safeload
import safeload.loading, safeload.validation, safeload.typegate  # imported lazily by load
before = set(sys.modules)
if sys.argv[1] == "joblib":
    joblib.load(sys.argv[2])
elif sys.argv[1] == "skops":
    import skops.io  # in the clock, as safeload's scan imports it on first use

    skops.io.load(sys.argv[2], trusted=json.loads(sys.argv[3]))
else:
    safeload.load(sys.argv[2], trusted=sys.argv[3])
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _imported_by(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.fixture(scope="module")
def model() -> Pipeline:
    """A small pipeline of three scikit-learn subpackages, each imported by its loader."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 5)), rng.integers(0, 2, 60)
    return make_pipeline(StandardScaler(), PCA(2), LogisticRegression()).fit(X, y)


def test_a_verified_load_imports_only_what_joblib_load_imports(
    tmp_path: Path, key: safeload.SigningKey, keydir: Path, model: Pipeline
) -> None:
    safeload.save(model, tmp_path / "art", key=key)
    joblib.dump(model, tmp_path / "plain.joblib")

    by_joblib = _imported_by("joblib", str(tmp_path / "plain.joblib"))
    by_safeload = _imported_by("safeload", str(tmp_path / "art"), str(keydir))
    assert "sklearn.pipeline" in by_joblib  # the child really started cold
    assert by_safeload - by_joblib == set()


def test_a_verified_skops_load_imports_only_what_skops_load_imports(
    tmp_path: Path, key: safeload.SigningKey, keydir: Path, model: Pipeline
) -> None:
    safeload.save(model, tmp_path / "art", key=key, format="skops")
    skops.io.dump(model, tmp_path / "plain.skops")
    trusted = skops.io.get_untrusted_types(file=tmp_path / "plain.skops")

    by_skops = _imported_by("skops", str(tmp_path / "plain.skops"), json.dumps(trusted))
    by_safeload = _imported_by("safeload", str(tmp_path / "art"), str(keydir))
    assert "skops.io._audit" in by_skops  # the child really started cold
    assert by_safeload - by_skops == set()
