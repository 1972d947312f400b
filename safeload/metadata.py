"""``safeload.json``: the plain-JSON record that travels with (and is signed with) the model.

It is written at save time and read, after the signature and hashes verified, at load time.
It is never pickle: reading it can run nothing.
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
import sys
from collections.abc import Mapping
from importlib import metadata as _importlib_metadata
from typing import Any

from safeload import contract, datastats, metaschema, strictjson
from safeload.errors import MalformedArtifactError, shown
from safeload.layout import FORMATS, METADATA_FILE

FORMAT_VERSION = 1
LIBRARIES = ("scikit-learn", "numpy", "scipy", "joblib", "skops", "safeload")

JSONValue = Any


_MODULES = {"scikit-learn": "sklearn"}


def library_versions() -> dict[str, str | None]:
    """Versions of Python, the libraries a model depends on, and the platform.

    A library already imported reports the version of the code actually running (and costs
    nothing); others are looked up in their installed distribution metadata.
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in LIBRARIES:
        module = sys.modules.get(_MODULES.get(dist, dist))
        running = getattr(module, "__version__", None)
        if isinstance(running, str):
            versions[dist] = running
            continue
        try:
            versions[dist] = _importlib_metadata.version(dist)
        except _importlib_metadata.PackageNotFoundError:
            versions[dist] = None
    versions["platform"] = f"{sys.platform}-{platform.machine()}"
    return versions


def running_sklearn_version() -> str:
    """The scikit-learn version in this process (cheap: no distribution metadata scan)."""
    import sklearn

    return str(sklearn.__version__)


def check_json_value(value: JSONValue, where: str) -> JSONValue:
    """Refuse anything that is not plain JSON (str keys, finite numbers, lists, dicts)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} holds a non-finite number ({value}); JSON cannot store it")
        return value
    if isinstance(value, (list, tuple)):
        return [check_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a non-string key {key!r}")
            out[key] = check_json_value(item, f"{where}.{key}")
        return out
    raise ValueError(
        f"{where} holds a {type(value).__name__}, which is not a JSON value; convert it "
        "(for example float(x) for numpy numbers, list(a) for arrays)"
    )


def estimator_class_path(obj: object) -> str:
    """``module.qualname`` of the saved object's class."""
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def build_metadata(
    obj: object,
    *,
    format: str,
    name: str,
    version: str,
    metrics: Mapping[str, JSONValue] | None = None,
    config: Mapping[str, JSONValue] | None = None,
    sample: Any = None,
    training_data: Any = None,
    lineage: Mapping[str, JSONValue] | None = None,
) -> dict[str, JSONValue]:
    """The metadata record for a model about to be saved.

    ``lineage`` (from :func:`safeload.lineage.lineage_record`) is recorded as given; with
    ``training_data`` its digest is also ``training_data_sha256``, and its statistics
    (:func:`safeload.datastats.training_stats`) are ``training_stats``.

    Raises:
        ValueError: a caller-given value cannot be recorded as plain JSON.
    """
    record: dict[str, JSONValue] = {
        "safeload_format_version": FORMAT_VERSION,
        "format": format,
        "name": name,
        "version": version,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "estimator": estimator_class_path(obj) if obj is not None else None,
        "schema": contract.schema_of(training_data if training_data is not None else sample, obj),
        "metrics": check_json_value(dict(metrics or {}), "metrics"),
        "config": check_json_value(dict(config or {}), "config"),
        "versions": library_versions(),
    }
    if lineage is not None:
        record["lineage"] = check_json_value(dict(lineage), "lineage")
    if training_data is not None:
        data = record.get("lineage", {}).get("data", {})
        record["training_data_sha256"] = data.get("sha256") or contract.fingerprint(training_data)
        record["training_stats"] = datastats.training_stats(training_data)
    if sample is not None:
        record["sample"] = {
            "inputs": contract.encode_sample(sample),
            "predictions": contract.record_predictions(obj, sample),
        }
    return record


def parse_metadata(data: bytes | bytearray | memoryview) -> dict[str, JSONValue]:
    """Read verified ``safeload.json`` bytes, checking the fields the loader relies on."""
    doc = strictjson.loads(data, METADATA_FILE)
    if not isinstance(doc, dict):
        raise MalformedArtifactError(f"{METADATA_FILE} is not a JSON object")
    version = doc.get("safeload_format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedArtifactError(f"{METADATA_FILE} has no safeload_format_version")
    if version > FORMAT_VERSION:
        raise MalformedArtifactError(
            f"{METADATA_FILE} uses safeload format {version}, newer than this safeload "
            f"understands ({FORMAT_VERSION}); upgrade safeload"
        )
    if version != FORMAT_VERSION:
        raise MalformedArtifactError(
            f"{METADATA_FILE} names safeload format {version}, which never existed"
        )
    if doc.get("format") not in FORMATS:
        raise MalformedArtifactError(
            f"{METADATA_FILE} names an unknown format {shown(doc.get('format'))}"
        )
    for key in ("name", "version"):
        if not isinstance(doc.get(key), str):
            raise MalformedArtifactError(f"{METADATA_FILE} has no {key}")
    metaschema.check_document(doc)
    return doc
