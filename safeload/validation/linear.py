"""Linear models of every kind, discriminant analysis and neural networks: weight shapes.

Predictions are products of the input with ``coef_`` (or a chain of ``coefs_``) plus an
intercept, computed by numpy/BLAS: a mismatch raises, but the issue asks every fitted width to
agree with ``n_features_in_`` and with ``classes_``, so a crafted model is refused at load.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, array, attr, integer, is_text
from safeload.validation.shapes import Table, shape_of, table_check


def _visit_coef(ctx: Context, est: Any) -> None:
    """Any estimator's ``coef_``: ``(n_features_in_,)`` or ``(rows, n_features_in_)``.

    A 2-D ``coef_`` has one intercept per row, and a classifier one row per class (one for
    two classes); a 1-D one has a scalar intercept (or one of shape ``(1,)``).
    """
    coef = attr(est, "coef_")
    if coef is None:
        return
    shape = shape_of(coef)
    if shape is None or len(shape) not in (1, 2):
        raise Invalid(f"coef_ is {type(coef).__name__} of shape {shape}, not a 1-D/2-D array")
    n_in = attr(est, "n_features_in_")
    if n_in is not None and shape[-1] != integer(n_in, "n_features_in_"):
        raise Invalid(f"coef_ has shape {shape} but n_features_in_={n_in}")
    rows = shape[0] if len(shape) == 2 else 1
    intercept = attr(est, "intercept_")
    if isinstance(intercept, np.ndarray) and intercept.ndim > 0:
        if intercept.shape != (rows,):
            raise Invalid(f"intercept_ has shape {intercept.shape} for coef_ of shape {shape}")
    elif intercept is not None and len(shape) == 2 and not isinstance(intercept, (float, int)):
        raise Invalid(f"intercept_ is {type(intercept).__name__}, not an array or a number")
    classes = attr(est, "classes_")
    binarizer = attr(est, "_label_binarizer")
    multilabel = is_text(attr(binarizer, "y_type_"), "multilabel-indicator")  # one row per label
    if isinstance(classes, np.ndarray) and classes.ndim == 1 and len(shape) == 2 and not multilabel:
        n_classes = classes.shape[0]
        if n_classes >= 2 and rows != (1 if n_classes == 2 else n_classes):
            raise Invalid(f"coef_ has {rows} rows for {n_classes} classes")


def _visit_mlp(ctx: Context, mlp: Any) -> None:
    """``coefs_``/``intercepts_``: a chain from ``n_features_in_`` to ``n_outputs_``."""
    coefs = attr(mlp, "coefs_")
    if coefs is None:
        return
    intercepts = attr(mlp, "intercepts_")
    if (
        not isinstance(coefs, list)
        or not isinstance(intercepts, list)
        or not coefs
        or len(coefs) != len(intercepts)
        or len(coefs) != integer(attr(mlp, "n_layers_"), "n_layers_") - 1
    ):
        raise Invalid("coefs_ and intercepts_ are not lists of n_layers_ - 1 arrays")
    width = integer(attr(mlp, "n_features_in_"), "n_features_in_")
    for i, (weights, bias) in enumerate(zip(coefs, intercepts, strict=True)):
        weights = array(weights, f"coefs_[{i}]", ndim=2)
        if weights.shape[0] != width:
            raise Invalid(f"coefs_[{i}] has shape {weights.shape}, taking {width} inputs")
        width = weights.shape[1]
        if array(bias, f"intercepts_[{i}]").shape != (width,):
            raise Invalid(f"intercepts_[{i}] has shape {bias.shape}, expected ({width},)")
    if width != integer(attr(mlp, "n_outputs_"), "n_outputs_"):
        raise Invalid(f"the last layer has {width} outputs but n_outputs_={mlp.n_outputs_}")
    from sklearn.neural_network._base import ACTIVATIONS

    for name in ("activation", "out_activation_"):
        if not is_text(attr(mlp, name), *ACTIVATIONS):
            raise Invalid(f"{name} is {shown(attr(mlp, name))}, not one of {sorted(ACTIVATIONS)}")


_LDA: Table = {
    "classes_": ("c",),
    "means_": ("c", "f"),
    "priors_": ("c",),
    "xbar_": ("f",),
    "scalings_": ("f", "r"),
}


def _visit_qda(ctx: Context, qda: Any) -> None:
    """QDA: one rotation (features x rank) and one scaling (rank) per class."""
    means = attr(qda, "means_")
    if means is None:
        return
    n_classes = array(attr(qda, "classes_"), "classes_", ndim=1).shape[0]
    n_in = integer(attr(qda, "n_features_in_"), "n_features_in_")
    if array(means, "means_").shape != (n_classes, n_in):
        raise Invalid(f"means_ has shape {means.shape}, expected {(n_classes, n_in)}")
    rotations, scalings = attr(qda, "rotations_"), attr(qda, "scalings_")
    if not (isinstance(rotations, list) and isinstance(scalings, list)) or not (
        len(rotations) == len(scalings) == n_classes
    ):
        raise Invalid(f"rotations_ and scalings_ are not lists of {n_classes} arrays")
    for i, (rotation, scaling) in enumerate(zip(rotations, scalings, strict=True)):
        rank = array(scaling, f"scalings_[{i}]", ndim=1).shape[0]
        if array(rotation, f"rotations_[{i}]").shape != (n_in, rank):
            raise Invalid(f"rotations_[{i}] has shape {rotation.shape}, expected {(n_in, rank)}")


CHECKS: Checks = [
    ((("builtins", "object"),), _visit_coef),
    ((("sklearn.neural_network._multilayer_perceptron", "BaseMultilayerPerceptron"),), _visit_mlp),
    ((("sklearn.discriminant_analysis", "LinearDiscriminantAnalysis"),), table_check(_LDA)),
    ((("sklearn.discriminant_analysis", "QuadraticDiscriminantAnalysis"),), _visit_qda),
]
