"""Dummy estimators: the constant they predict is allocated by ``n_outputs_``.

``DummyRegressor.predict`` fills an ``(n_samples, n_outputs_)`` array with ``constant_``, and
``DummyClassifier`` reads ``classes_``/``class_prior_`` per output: ``n_outputs_`` must count
what is stored (gradient boosting's ``init_`` is one of these).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.validation._base import Checks, Context, Invalid, array, attr, integer


def _visit_dummy_regressor(ctx: Context, dummy: Any) -> None:
    constant = attr(dummy, "constant_")
    if constant is None:
        return
    n_out = integer(attr(dummy, "n_outputs_"), "n_outputs_")
    if array(constant, "constant_").shape != (1, n_out):
        raise Invalid(f"constant_ has shape {constant.shape} for n_outputs_={n_out}")


def _visit_dummy_classifier(ctx: Context, dummy: Any) -> None:
    classes = attr(dummy, "classes_")
    if classes is None:
        return
    n_out = integer(attr(dummy, "n_outputs_"), "n_outputs_")
    prior = attr(dummy, "class_prior_")
    if n_out == 1 and isinstance(classes, np.ndarray):
        classes, prior = [classes], [prior]
    if not (isinstance(classes, list) and isinstance(prior, list)) or not (
        len(classes) == len(prior) == n_out
    ):
        raise Invalid(f"classes_ and class_prior_ are not one per output (n_outputs_={n_out})")
    for k, (cls, p) in enumerate(zip(classes, prior, strict=True)):
        n = array(cls, f"classes_[{k}]", ndim=1).shape[0]
        if array(p, f"class_prior_[{k}]").shape != (n,):
            raise Invalid(f"class_prior_[{k}] has shape {p.shape} for {n} classes")


CHECKS: Checks = [
    ((("sklearn.dummy", "DummyRegressor"),), _visit_dummy_regressor),
    ((("sklearn.dummy", "DummyClassifier"),), _visit_dummy_classifier),
]
