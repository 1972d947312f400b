"""``save(..., format="onnx")``: a fitted scikit-learn model turned into an ONNX graph, proven.

skl2onnx converts; the graph then goes through the same static ONNX gate a load would
(:mod:`safeload.typegate.onnx`), is opened by onnxruntime from its bytes, and predicts the
sample: its labels must equal the model's, its floats (probabilities, regression values,
transforms) must be within ``RTOL``/``ATOL`` of them. Otherwise nothing is written and a
:class:`~safeload.errors.ConversionError` says why.

Input types follow the sample's dtypes. Float columns become ``DoubleTensorType`` first:
scikit-learn computes in float64, so a float64 graph input keeps the rows near a threshold on
the same side (the converted graph may still compute some parts in float32: skl2onnx's tree
ensembles hold float32 thresholds, hence the tolerance). Only if skl2onnx or onnxruntime
cannot handle float64 for this model is ``FloatTensorType`` tried. Integer columns of a
DataFrame are ``Int64TensorType``, text and categorical ones ``StringTensorType``; a DataFrame
gives one graph input per column, an array one input ``X``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.errors import (
    ConversionError,
    ConversionMismatchError,
    OperationalError,
    SafeloadError,
    shown,
)
from safeload.policy import TypePolicy
from safeload.typegate.limits import ScanLimits

# Floats of the graph against the model's: float32 arithmetic in skl2onnx's tree ensembles
# and linear models leaves differences near 1e-7 relative; 1e-4 leaves room and still catches
# a wrong graph (a swapped class, a missing step) by orders of magnitude.
RTOL = 1e-4
ATOL = 1e-4
LIBRARIES = ("onnx", "onnxruntime", "skl2onnx")
_METHODS = ("predict", "predict_proba", "transform")


def _import_skl2onnx() -> Any:
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx
    except ImportError as exc:
        raise OperationalError(
            'format="onnx" needs skl2onnx and onnxruntime: pip install "safeload[onnx]"'
        ) from exc
    return skl2onnx


def _is_frame(data: object) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns")


def _input_types(sample: Any, float_type: str) -> list[tuple[str, str | None, Any]]:
    """``(graph input name, column or None, skl2onnx type)`` for the sample's columns."""
    from skl2onnx.common import data_types as t

    floating = t.DoubleTensorType if float_type == "double" else t.FloatTensorType
    if not _is_frame(sample):
        array = np.asarray(sample)
        if array.ndim != 2 or array.dtype.kind not in "biuf":
            raise OperationalError(
                "an ONNX graph takes a 2-D numeric array or a DataFrame: the sample is "
                f"{array.dtype} of shape {array.shape}"
            )
        return [("X", None, floating([None, int(array.shape[1])]))]
    inputs: list[tuple[str, str | None, Any]] = []
    for column in sample.columns:
        kind = sample[column].dtype.kind if str(sample[column].dtype) != "category" else "O"
        if kind == "f":
            made = floating([None, 1])
        elif kind in "iub":
            made = t.Int64TensorType([None, 1])
        elif kind in "OUS" or str(sample[column].dtype) in ("str", "string"):
            made = t.StringTensorType([None, 1])
        else:
            raise OperationalError(
                f"column {shown(str(column))} has dtype {sample[column].dtype}, which an ONNX "
                "input cannot take"
            )
        inputs.append((str(column), str(column), made))
    return inputs


def _estimators(model: Any) -> list[Any]:
    """The model and every estimator nested in its parameters (Pipeline steps, transformers)."""
    found = [model]
    params = model.get_params(deep=True) if hasattr(model, "get_params") else {}
    found += [v for v in params.values() if hasattr(v, "fit") and not isinstance(v, type)]
    return found


def _unsupported(model: Any) -> str:
    """The first estimator (innermost) skl2onnx has no converter for, else the model's class."""
    from skl2onnx._supported_operators import sklearn_operator_name_map

    meta = {"Pipeline", "ColumnTransformer", "FeatureUnion"}
    for est in reversed(_estimators(model)):
        if type(est).__name__ not in meta and type(est) not in sklearn_operator_name_map:
            return f"{type(est).__module__}.{type(est).__qualname__}"
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _convert(model: Any, sample: Any, float_type: str) -> tuple[bytes, list[dict[str, Any]]]:
    from sklearn.base import is_classifier

    skl2onnx = _import_skl2onnx()
    inputs = _input_types(sample, float_type)
    options = {
        id(est): {"zipmap": False}
        for est in _estimators(model)
        if is_classifier(est) and type(est).__name__ != "Pipeline"
    }
    try:
        graph = skl2onnx.to_onnx(
            model, initial_types=[(name, kind) for name, _, kind in inputs], options=options
        )
    except Exception as exc:
        estimator = _unsupported(model)
        raise ConversionError(
            f"skl2onnx cannot convert {estimator} to ONNX ({type(exc).__name__}: "
            f"{shown(str(exc).strip().splitlines()[0] if str(exc).strip() else '')}). Save "
            'this model with format="skops" or "joblib", or replace that step.',
            estimator=estimator,
        ) from None
    onnx_type = {"double": "tensor(double)", "float": "tensor(float)"}
    spec = [
        {
            "name": graph_input.name,
            "column": column,
            "type": _tensor_type(graph_input, onnx_type[float_type]),
        }
        for graph_input, (_, column, _) in zip(graph.graph.input, inputs, strict=True)
    ]
    return graph.SerializeToString(), spec


def _tensor_type(graph_input: Any, fallback: str) -> str:
    import onnx

    elem = graph_input.type.tensor_type.elem_type
    return f"tensor({onnx.TensorProto.DataType.Name(elem).lower()})" if elem else fallback


def _methods(model: Any, sample: Any, outputs: list[str]) -> dict[str, dict[str, Any]]:
    """Which graph output answers which of the model's methods (by skl2onnx's conventions)."""
    methods: dict[str, dict[str, Any]] = {}
    has_predict = hasattr(model, "predict")
    if has_predict and outputs:
        ravel = np.ndim(model.predict(sample)) == 1
        methods["predict"] = {"output": outputs[0], "ravel": ravel}
    if hasattr(model, "predict_proba"):
        proba = "probabilities" if "probabilities" in outputs else None
        if proba is None and len(outputs) == 2:
            proba = outputs[1]
        if proba is not None:
            methods["predict_proba"] = {"output": proba, "ravel": False}
    if hasattr(model, "transform") and not has_predict and outputs:
        methods["transform"] = {"output": outputs[0], "ravel": False}
    return methods


def _compare(model: Any, onnx_model: Any, sample: Any, estimator: str) -> float:
    """The largest float difference between the graph and the model; refuse a real one."""
    worst = 0.0
    for method in onnx_model.methods:
        try:
            expected = getattr(model, method)(sample)
        except Exception:  # noqa: S112 - predict_proba of a model that has none in effect
            continue
        expected = np.asarray(expected.toarray() if hasattr(expected, "toarray") else expected)
        actual = getattr(onnx_model, method)(sample)
        if actual.shape != expected.shape:
            raise ConversionMismatchError(
                f"the ONNX graph's {method} returns shape {actual.shape}, the model's "
                f"{expected.shape}",
                estimator=estimator,
                max_difference=float("inf"),
            )
        if expected.dtype.kind == "f":
            diff = float(np.max(np.abs(actual.astype(float) - expected), initial=0.0))
            worst = max(worst, diff)
            if not np.allclose(actual, expected, rtol=RTOL, atol=ATOL, equal_nan=True):
                raise ConversionMismatchError(
                    f"the ONNX graph's {method} differs from the model's by up to {diff:.3g} "
                    f"(tolerance rtol={RTOL}, atol={ATOL}): not saved",
                    estimator=estimator,
                    max_difference=diff,
                )
        elif not np.array_equal(actual.astype(object), expected.astype(object)):
            wrong = int(np.sum(actual.astype(object) != expected.astype(object)))
            raise ConversionMismatchError(
                f"the ONNX graph's {method} gives {wrong} different label(s) on the sample "
                "(labels must be equal): not saved",
                estimator=estimator,
                max_difference=float("inf"),
            )
    return worst


def convert_to_onnx(
    model: Any,
    sample: Any,
    where: str,
    limits: ScanLimits | None = None,
    policy: TypePolicy | None = None,
) -> tuple[bytes, dict[str, Any]]:
    """The ONNX bytes of ``model`` and the ``onnx`` record of its metadata, proven on ``sample``.

    ``policy`` is the gate's (default: :meth:`TypePolicy.default`, whose ONNX operators are
    those skl2onnx writes); ``benchmarks/gen_onnx_ops.py`` passes one admitting every operator.

    Raises:
        ConversionError: skl2onnx cannot convert the model (the estimator is named).
        ConversionMismatchError: the graph predicts otherwise than the model on the sample.
        MalformedArtifactError: the graph would not pass the load gate.
    """
    from safeload.onnxmodel import OnnxModel, open_session
    from safeload.typegate import check_types

    if sample is None:
        raise OperationalError(
            'format="onnx" needs sample= (a few input rows): it sets the graph\'s input types '
            "and proves that the graph predicts what the model does"
        )
    estimator = f"{type(model).__module__}.{type(model).__qualname__}"
    failure: SafeloadError | None = None
    for float_type in ("double", "float"):
        try:
            data, inputs = _convert(model, sample, float_type)
            checked = check_types(
                data, policy or TypePolicy.default(), format="onnx", path=where, limits=limits
            )
            session = open_session(checked.payload)
        except SafeloadError as exc:
            failure = failure or exc
            continue
        graph: dict[str, Any] = checked.report.graph or {}
        outputs = [str(o["name"]) for o in graph.get("outputs", [])]
        spec: dict[str, Any] = {
            "opset": graph.get("opset", {}),
            "float_type": float_type,
            "inputs": inputs,
            "methods": _methods(model, sample, outputs),
            "rtol": RTOL,
            "atol": ATOL,
        }
        if not spec["methods"]:
            raise ConversionError(
                f"the ONNX graph of {estimator} answers none of predict, predict_proba or "
                "transform as safeload can map them",
                estimator=estimator,
            )
        classes = getattr(model, "classes_", None)
        if classes is not None and np.ndim(classes) == 1:
            spec["classes"] = [c.item() if isinstance(c, np.generic) else c for c in classes]
        onnx_model = OnnxModel(session, spec, {})
        spec["max_difference"] = _compare(model, onnx_model, sample, estimator)
        return data, spec
    raise failure or ConversionError(f"{estimator} could not be converted", estimator=estimator)


def library_versions() -> dict[str, str | None]:
    """The versions of the ONNX libraries that wrote and checked the graph."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
