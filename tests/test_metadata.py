"""``safeload.metadata``: the plain-JSON record that travels with the model, at its own level.

``parse_metadata`` reads bytes that already verified, but is the one place that decides whether
this safeload understands them: every refusal is a :class:`MalformedArtifactError`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pytest
import sklearn
from sklearn.pipeline import Pipeline

from safeload.errors import MalformedArtifactError
from safeload.layout import FORMATS
from safeload.metadata import (
    FORMAT_VERSION,
    LIBRARIES,
    build_metadata,
    parse_metadata,
    running_sklearn_version,
)

GOOD: dict[str, Any] = {
    "safeload_format_version": FORMAT_VERSION,
    "format": "joblib",
    "name": "churn",
    "version": "1.2.0",
}


def encoded(doc: object) -> bytes:
    return json.dumps(doc).encode()


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != key}


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_minimal_record_of_each_format_parses(fmt: str) -> None:
    doc = {**GOOD, "format": fmt, "extra": {"kept": [1, 2]}}
    for wrap in (bytes, bytearray, memoryview):
        assert parse_metadata(wrap(encoded(doc))) == doc


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        pytest.param([GOOD], "not a JSON object", id="list"),
        pytest.param("churn", "not a JSON object", id="string"),
        pytest.param(None, "not a JSON object", id="null"),
        pytest.param(without("safeload_format_version"), "no safeload_format_version", id="none"),
        pytest.param({**GOOD, "safeload_format_version": True}, "no safeload_format", id="bool"),
        pytest.param({**GOOD, "safeload_format_version": "1"}, "no safeload_format", id="str"),
        pytest.param({**GOOD, "safeload_format_version": 1.0}, "no safeload_format", id="float"),
        pytest.param({**GOOD, "safeload_format_version": 0}, "never existed", id="zero"),
        pytest.param({**GOOD, "safeload_format_version": -1}, "never existed", id="negative"),
        pytest.param(
            {**GOOD, "safeload_format_version": FORMAT_VERSION + 1}, "upgrade safeload", id="future"
        ),
        pytest.param({**GOOD, "format": "pickle"}, "unknown format 'pickle'", id="fmt-pickle"),
        pytest.param({**GOOD, "format": "torch"}, "unknown format", id="fmt-torch"),
        pytest.param({**GOOD, "format": ["joblib"]}, "unknown format", id="fmt-list"),
        pytest.param(without("format"), "unknown format None", id="fmt-missing"),
        pytest.param(without("name"), "has no name", id="name-missing"),
        pytest.param({**GOOD, "name": 1}, "has no name", id="name-int"),
        pytest.param(without("version"), "has no version", id="version-missing"),
        pytest.param({**GOOD, "version": 1.2}, "has no version", id="version-float"),
        pytest.param({**GOOD, "version": None}, "has no version", id="version-null"),
    ],
)
def test_every_refusal(doc: object, says: str) -> None:
    with pytest.raises(MalformedArtifactError, match=says) as refused:
        parse_metadata(encoded(doc))
    assert "safeload.json" in str(refused.value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b'{"name": "a", "name": "b"}',
        b'{"safeload_format_version": NaN}',
        b"\xff\xfe{}",
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["empty", "truncated", "duplicate-key", "nan", "not-utf8", "deep"],
)
def test_text_that_is_not_strict_json_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedArtifactError, match="safeload.json"):
        parse_metadata(data)


def test_build_metadata_records_every_field(pipeline: Pipeline, iris: tuple[Any, Any]) -> None:
    X, _ = iris
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    record = build_metadata(
        pipeline,
        format="skops",
        name="iris",
        version="2.0.0",
        metrics={"accuracy": 0.97},
        config={"C": 1.0, "steps": ["scale", "clf"]},
        sample=X[:3],
    )
    assert record["safeload_format_version"] == FORMAT_VERSION
    assert (record["format"], record["name"], record["version"]) == ("skops", "iris", "2.0.0")
    created = dt.datetime.fromisoformat(record["created_at"])
    assert created.tzinfo is not None and created.utcoffset() == dt.timedelta(0)
    assert before <= created <= dt.datetime.now(dt.timezone.utc)
    assert record["estimator"] == "sklearn.pipeline.Pipeline"
    assert record["metrics"] == {"accuracy": 0.97}
    assert record["config"] == {"C": 1.0, "steps": ["scale", "clf"]}
    assert set(record["versions"]) == {"python", "platform", *LIBRARIES}
    assert record["versions"]["scikit-learn"] == sklearn.__version__
    assert record["versions"]["numpy"] == np.__version__
    assert record["sample"]["predictions"]["predict"]["shape"] == [3]
    assert "training_data_sha256" not in record
    # what it builds is plain JSON that parse_metadata reads back unchanged
    assert parse_metadata(encoded(record)) == json.loads(encoded(record))


def test_build_metadata_without_optional_parts(pipeline: Pipeline) -> None:
    record = build_metadata(pipeline, format="joblib", name="n", version="v")
    assert record["metrics"] == {} and record["config"] == {}
    assert "sample" not in record
    assert parse_metadata(encoded(record))["name"] == "n"


@pytest.mark.parametrize(
    ("metrics", "says"),
    [
        ({"acc": np.int64(1)}, "int64"),
        ({"acc": float("nan")}, "non-finite"),
        ({1: 0.5}, "non-string key"),
        ({"a": {"b": object()}}, r"metrics\.a\.b"),
    ],
)
def test_build_metadata_refuses_what_json_cannot_hold(
    pipeline: Pipeline, metrics: dict[Any, Any], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        build_metadata(pipeline, format="joblib", name="n", version="v", metrics=metrics)


def test_running_sklearn_version_is_the_imported_one() -> None:
    assert running_sklearn_version() == sklearn.__version__
    assert isinstance(running_sklearn_version(), str)
