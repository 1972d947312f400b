"""Convert a joblib file into a signed skops or ONNX artifact, checking it behaves the same.

The joblib file goes through the same type gate as a load (static scan, then the restricted
unpickler, then structural validation); the object is re-saved in skops format, loaded back
from those skops bytes, and its predictions compared with the joblib object's on the same input.
To ONNX, ``save(format="onnx")`` converts and compares (:mod:`safeload.onnxconvert`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from safeload import _unpickle_fast, contract
from safeload.errors import OperationalError
from safeload.fitted import check_fitted
from safeload.keys import SigningKey
from safeload.layout import read_model_file
from safeload.policy import PolicySource, TypePolicy, resolve_policy
from safeload.remote import Url, local_or_url, staged_identity
from safeload.saving import _identity, save
from safeload.typegate import check_types


def _probe_input(model: Any, sample: Any) -> Any:
    """The input to compare predictions on: the caller's sample, or synthetic numeric rows."""
    if sample is not None:
        return sample
    n_features = getattr(model, "n_features_in_", None)
    if n_features is None or getattr(model, "feature_names_in_", None) is not None:
        raise OperationalError(
            "cannot check the conversion without input: this model expects named columns (or "
            "does not say how many features it takes). Pass sample= a few input rows (on the "
            "command line: --sample FILE, a CSV or Parquet file of them)."
        )
    return np.random.default_rng(0).normal(size=(8, int(n_features)))


def convert(
    source: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    key: SigningKey,
    name: str | None = None,
    version: str | None = None,
    policy: PolicySource = None,
    sample: Any = None,
    metrics: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    hash: str = "sha256",
    to: str = "skops",
) -> Path | Url:
    """Turn a joblib file into a signed skops (or ``to="onnx"``) artifact at ``path``.

    Untrusted types are refused; an unfitted model is refused once loaded and validated,
    before its predictions are taken. ``hash`` is the manifest's, as for
    :func:`safeload.save`. To ONNX without ``sample``, synthetic rows stand in (a model that
    takes named columns needs a sample) and are recorded as the artifact's sample.
    """
    if to not in ("skops", "onnx"):
        raise ValueError(f"unknown target format {to!r}; supported: 'skops', 'onnx'")
    where_to = local_or_url(path)
    target = where_to if isinstance(where_to, Path) else staged_identity(where_to)
    _identity(target, name, version)  # a name/version the path contradicts: refuse first
    types = resolve_policy(policy)
    src = Path(source)
    checked = check_types(read_model_file(src), types, format="joblib", path=str(src))
    model = _unpickle_fast.deserialize_validated(checked, types)
    check_fitted(model, source=str(src))

    probe = _probe_input(model, sample)
    if to == "skops":
        _check_skops_round_trip(model, probe, types)
    return save(
        model,
        path,
        key=key,
        format=to,
        name=name,
        version=version,
        policy=types,
        # the ONNX graph is proven on the probe rows, so they are recorded as its sample
        sample=probe if to == "onnx" else sample,
        metrics=metrics,
        config=config,
        hash=hash,
    )


def _check_skops_round_trip(model: Any, probe: Any, types: TypePolicy) -> None:
    """The model as skops rebuilds it from bytes must predict as the original does."""
    before = contract.record_predictions(model, probe)
    import skops.io

    try:
        skops_bytes = skops.io.dumps(model)
    except Exception as exc:
        raise OperationalError(f"skops cannot serialize this model: {exc}") from exc
    after = check_types(skops_bytes, types, format="skops", path="the converted model")
    after_model = _unpickle_fast.deserialize_validated(after, types)
    contract.check_predictions(after_model, contract.encode_sample(probe), before)
