"""Meta-estimators and small predictors: fitted counts that decide output shape must agree.

A column transformer's column indices, a multiclass wrapper's estimator count, a chain's
order and a dummy's output count are read at every call to index inputs, stack outputs or
size the output array. Each is checked against the state it must match, and output widths
against the predict-time budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, array, attr, integer
from safeload.validation._budget import (
    guarded,
    maybe_n_features_in,
    permutation_values,
    vector,
    width,
)


def _count(value: Any, what: str) -> int:
    if not isinstance(value, (list, tuple)):
        raise Invalid(f"{what} is {type(value).__name__}, not a list")
    return len(value)


def _visit_isotonic(ctx: Context, est: Any) -> None:
    xs = attr(est, "X_thresholds_")
    if xs is None:
        return
    xs = array(xs, "X_thresholds_", ndim=1)
    vector(attr(est, "y_thresholds_"), "y_thresholds_", xs.shape[0])
    if xs.shape[0] < 1 or np.any(xs[1:] < xs[:-1]):
        raise Invalid("X_thresholds_ is empty or not sorted")


def _visit_dummy_regressor(ctx: Context, est: Any) -> None:
    constant = attr(est, "constant_")
    if constant is None:
        return
    n_outputs = width(ctx, integer(attr(est, "n_outputs_"), "n_outputs_"), "n_outputs_")
    if np.shape(constant) != (1, n_outputs):
        raise Invalid(f"constant_ has shape {np.shape(constant)} for n_outputs_={n_outputs}")


def _visit_dummy_classifier(ctx: Context, est: Any) -> None:
    classes = attr(est, "classes_")
    if classes is None:
        return
    n_outputs = width(ctx, integer(attr(est, "n_outputs_"), "n_outputs_"), "n_outputs_")
    n_classes = attr(est, "n_classes_")
    prior = attr(est, "class_prior_")
    if n_outputs == 1:
        classes, n_classes, prior = [classes], [n_classes], [prior]
    for name, value in (("classes_", classes), ("n_classes_", n_classes), ("class_prior_", prior)):
        if _count(value, name) != n_outputs:
            raise Invalid(f"{name} has {len(value)} entries for n_outputs_={n_outputs}")
    for k in range(n_outputs):
        count = integer(n_classes[k], "n_classes_")
        vector(classes[k], "classes_", count)
        vector(prior[k], "class_prior_", count)


def _visit_one_vs_rest(ctx: Context, est: Any) -> None:
    estimators = attr(est, "estimators_")
    classes = attr(est, "classes_")
    if estimators is None or classes is None:
        return
    n_classes = width(ctx, len(array(classes, "classes_", ndim=1)), "classes_")
    expected = 1 if n_classes == 2 and not _multilabel(est) else n_classes
    if _count(estimators, "estimators_") != expected:
        raise Invalid(f"estimators_ has {len(estimators)} estimators for {n_classes} classes")


def _multilabel(est: Any) -> bool:
    binarizer = attr(est, "label_binarizer_")
    return bool(attr(binarizer, "y_type_") == "multilabel-indicator")


def _visit_one_vs_one(ctx: Context, est: Any) -> None:
    estimators = attr(est, "estimators_")
    classes = attr(est, "classes_")
    if estimators is None or classes is None:
        return
    n_classes = width(ctx, len(array(classes, "classes_", ndim=1)), "classes_")
    pairs = n_classes * (n_classes - 1) // 2
    if _count(estimators, "estimators_") != pairs:
        raise Invalid(f"estimators_ has {len(estimators)} estimators, expected {pairs} pairs")
    indices = attr(est, "pairwise_indices_")
    if indices is not None and _count(indices, "pairwise_indices_") != pairs:
        raise Invalid(f"pairwise_indices_ has {len(indices)} entries, expected {pairs}")


def _visit_output_code(ctx: Context, est: Any) -> None:
    book = attr(est, "code_book_")
    if book is None:
        return
    book = array(book, "code_book_", ndim=2)
    n_classes = len(array(attr(est, "classes_"), "classes_", ndim=1))
    n_estimators = _count(attr(est, "estimators_"), "estimators_")
    if book.shape != (n_classes, n_estimators):
        raise Invalid(f"code_book_ has shape {book.shape}, expected {(n_classes, n_estimators)}")


def _visit_multi_output(ctx: Context, est: Any) -> None:
    estimators = attr(est, "estimators_")
    if estimators is None:
        return
    n_out = width(ctx, _count(estimators, "estimators_"), "estimators_")
    classes = attr(est, "classes_")
    if isinstance(classes, list) and len(classes) != n_out:
        raise Invalid(f"classes_ has {len(classes)} entries for {n_out} outputs")
    order = attr(est, "order_")
    if order is not None:
        order = array(order, "order_", ndim=1)
        if order.shape[0] != n_out:
            raise Invalid(f"order_ has {order.shape[0]} entries for {n_out} chained estimators")
        permutation_values(order.tolist(), "order_")


def _visit_calibrated(ctx: Context, est: Any) -> None:
    calibrators = attr(est, "calibrators")
    classes = attr(est, "classes")
    if calibrators is None or classes is None:
        return
    n_classes = len(array(classes, "classes", ndim=1))
    # Temperature scaling fits one calibrator for all classes; the one-vs-rest methods one per
    # class (one for a binary problem).
    expected = 1 if n_classes == 2 or attr(est, "method") == "temperature" else n_classes
    if _count(calibrators, "calibrators") != expected:
        raise Invalid(f"{len(calibrators)} calibrators for {n_classes} classes")


def _is_index(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _visit_column_transformer(ctx: Context, est: Any) -> None:
    transformers = attr(est, "transformers_")
    if transformers is None:
        return
    if not isinstance(transformers, list) or any(
        not isinstance(t, tuple) or len(t) != 3 or not isinstance(t[0], str) for t in transformers
    ):
        raise Invalid("transformers_ is not a list of (name, transformer, columns)")
    n = maybe_n_features_in(ctx, est)
    indices = attr(est, "_transformer_to_input_indices")
    if n is not None and indices is not None:
        if not isinstance(indices, dict):
            raise Invalid("_transformer_to_input_indices is not a dict")
        for name, index in indices.items():
            if not isinstance(index, list) or not all(_is_index(i) for i in index):
                raise Invalid(f"_transformer_to_input_indices[{shown(name)}] is not a list of ints")
            if index and (min(index) < 0 or max(index) >= n):
                raise Invalid(f"_transformer_to_input_indices[{shown(name)}] is outside [0, {n})")
    outputs = attr(est, "output_indices_")
    if isinstance(outputs, dict):
        for name, where in outputs.items():
            if not isinstance(where, slice) or not all(
                isinstance(v, int) and v >= 0 for v in (where.start, where.stop)
            ):
                raise Invalid(f"output_indices_[{shown(name)}] is not a slice of columns")
            width(ctx, where.stop, "output_indices_")


CHECKS: Checks = guarded(
    [
        ((("sklearn.isotonic", "IsotonicRegression"),), _visit_isotonic),
        ((("sklearn.dummy", "DummyRegressor"),), _visit_dummy_regressor),
        ((("sklearn.dummy", "DummyClassifier"),), _visit_dummy_classifier),
        ((("sklearn.multiclass", "OneVsRestClassifier"),), _visit_one_vs_rest),
        ((("sklearn.multiclass", "OneVsOneClassifier"),), _visit_one_vs_one),
        ((("sklearn.multiclass", "OutputCodeClassifier"),), _visit_output_code),
        (
            (
                ("sklearn.multioutput", "_MultiOutputEstimator"),
                ("sklearn.multioutput", "_BaseChain"),
            ),
            _visit_multi_output,
        ),
        ((("sklearn.calibration", "_CalibratedClassifier"),), _visit_calibrated),
        (
            (("sklearn.compose._column_transformer", "ColumnTransformer"),),
            _visit_column_transformer,
        ),
    ]
)
