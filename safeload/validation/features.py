"""Every estimator: ``n_features_in_`` and ``feature_names_in_``, which all input checks trust.

``validate_data(reset=False)`` compares a query's width with ``n_features_in_`` and its column
names with ``feature_names_in_``; that comparison is the only thing standing between a wrong-
width query and native code reading fitted arrays with the query's width. Family checks then
hold each fitted array to ``n_features_in_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.validation._base import Checks, Context, Invalid, array, attr, integer


def _visit_estimator(ctx: Context, obj: Any) -> None:
    n_in = attr(obj, "n_features_in_")
    names = attr(obj, "feature_names_in_")
    if n_in is None:
        if names is not None:
            raise Invalid("feature_names_in_ without n_features_in_")
        return
    n = integer(n_in, "n_features_in_")
    if n < 1:
        raise Invalid(f"n_features_in_={n} is not a positive count")
    if names is None:
        return
    names = array(names, "feature_names_in_", ndim=1)
    if names.dtype != object or names.shape[0] != n:
        raise Invalid(
            f"feature_names_in_ has shape {names.shape} and dtype {names.dtype}, expected "
            f"({n},) object"
        )
    if not all(isinstance(name, str) for name in names):
        raise Invalid("feature_names_in_ holds a value that is not a str")


def _visit_classes(ctx: Context, obj: Any) -> None:
    """``n_classes_`` counts ``classes_`` (per output): predict_proba allocates by it."""
    n_classes = attr(obj, "n_classes_")
    classes = attr(obj, "classes_")
    if n_classes is None or classes is None:
        return
    if isinstance(classes, np.ndarray) and classes.ndim == 1:
        if isinstance(n_classes, (int, np.integer)) and not isinstance(n_classes, bool):
            if int(n_classes) != classes.shape[0]:
                raise Invalid(f"n_classes_={n_classes} but classes_ has {classes.shape[0]}")
    elif isinstance(classes, list) and isinstance(n_classes, (list, np.ndarray)):
        counts = [c.shape[0] if isinstance(c, np.ndarray) and c.ndim == 1 else -1 for c in classes]
        if list(np.asarray(n_classes).reshape(-1)) != counts:
            raise Invalid(
                f"n_classes_ does not count the classes_ of each of {len(classes)} outputs"
            )


CHECKS: Checks = [
    ((("builtins", "object"),), _visit_estimator),
    ((("builtins", "object"),), _visit_classes),
]
