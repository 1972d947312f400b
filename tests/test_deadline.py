"""One clock for the whole gate: scan, deserialization and validation share one deadline.

A file that spends most of ``ScanLimits.max_seconds`` in the scan must not get a fresh budget
for the unpickler and another for the validator (three walls, three times the promised bound).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.ensemble import RandomForestClassifier

import safeload
from safeload import _unpickle
from safeload.errors import MalformedArtifactError
from safeload.policy import TypePolicy
from safeload.typegate import check_types, limits
from safeload.typegate.limits import Deadline, ScanLimits
from safeload.validation import validate_model
from tests.helpers import joblib_bytes

X = np.random.default_rng(0).normal(size=(60, 4))
y = (X[:, 0] > 0).astype(int)


@pytest.fixture(scope="module")
def forest() -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=40, max_depth=3, random_state=0).fit(X, y)


def expired() -> Deadline:
    clock = Deadline(0.0)
    time.sleep(0.001)
    return clock


def test_deadline_refuses_once_passed_and_names_the_step() -> None:
    Deadline(60.0).check("scanning")  # time left: nothing happens
    with pytest.raises(MalformedArtifactError, match=r"validating the model went past .* 0 s"):
        expired().check("validating the model")


def test_unpickler_stops_when_the_gate_clock_has_run_out(forest: RandomForestClassifier) -> None:
    payload = joblib_bytes(forest)
    # With time left, the same bytes load: the refusal below is the clock's alone.
    assert _unpickle.unpickle_verified(payload, TypePolicy.default(), Deadline(60.0)) is not None
    with pytest.raises(MalformedArtifactError, match="deserializing the model went past"):
        _unpickle.unpickle_verified(payload, TypePolicy.default(), expired())


def test_validator_stops_when_the_gate_clock_has_run_out(forest: RandomForestClassifier) -> None:
    validate_model(forest, deadline=Deadline(60.0))
    with pytest.raises(MalformedArtifactError, match="validating the model went past"):
        validate_model(forest, deadline=expired())


def test_skops_loader_asks_the_gate_clock(forest: RandomForestClassifier) -> None:
    data = skops.io.dumps(forest)
    checked = check_types(data, TypePolicy.default(), format="skops")
    object.__setattr__(checked, "deadline", expired())
    with pytest.raises(MalformedArtifactError, match="deserializing the model went past"):
        _unpickle.deserialize_checked(checked, TypePolicy.default())


def test_check_types_starts_the_clock_the_later_steps_use(forest: RandomForestClassifier) -> None:
    checked = check_types(joblib_bytes(forest), TypePolicy.default(), limits=ScanLimits())
    assert checked.deadline.seconds == ScanLimits().max_seconds
    given = Deadline(5.0)
    again = check_types(joblib_bytes(forest), TypePolicy.default(), deadline=given)
    assert again.deadline is given


@pytest.mark.parametrize("fmt", ["joblib", "skops"])
def test_one_load_runs_on_one_clock(
    fmt: str,
    forest: RandomForestClassifier,
    tmp_path: Path,
    key: safeload.SigningKey,
    keydir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every step of ``load`` asks the same Deadline, started once, before the scan."""
    path = tmp_path / "forest"
    safeload.save(forest, path, key=key, name="forest", version="1", format=fmt, sample=X[:3])
    made: list[Deadline] = []
    asked: list[tuple[int, str]] = []
    real_init, real_check = Deadline.__init__, Deadline.check

    def init(self: Deadline, seconds: float) -> None:
        made.append(self)
        real_init(self, seconds)

    def check(self: Deadline, stage: str) -> None:
        asked.append((id(self), stage))
        real_check(self, stage)

    monkeypatch.setattr(limits.Deadline, "__init__", init)
    monkeypatch.setattr(limits.Deadline, "check", check)
    scan_limits = ScanLimits(max_seconds=30.0)
    loaded: Any = safeload.load(path, trusted=keydir, scan_limits=scan_limits)
    assert np.array_equal(loaded.predict(X), forest.predict(X))
    assert len(made) == 1 and made[0].seconds == 30.0
    stages = {stage for _, stage in asked}
    assert {id(made[0])} == {who for who, _ in asked}
    assert "validating the model" in stages and "deserializing the model" in stages
