"""Settings a model keeps from training that size the work of every later prediction.

Not fitted arrays but hyper-parameters, stored in the file like any other field and read again
at predict time: how many solver iterations ``transform`` runs (NMF, LDA, dictionary learning,
sparse coding), and how many workers joblib or OpenMP start (``n_jobs``). A few bytes in the
file can make every prediction loop for ever or start a hundred thousand threads, so each must
be a true integer within the caller's budget (``ScanLimits.max_predict_iterations``) or within
what a machine can run.
"""

from __future__ import annotations

import os
from typing import Any

from safeload.validation._base import Checks, Context, Invalid, attr, integer

#: The most workers an ``n_jobs`` may ask for, either way (``-k`` means "all CPUs but k-1").
MAX_JOBS = max(1024, os.cpu_count() or 1)

# Fields read as iteration caps by transform/predict, by the classes that read them.
_ITERATION_FIELDS = ("_transform_max_iter", "transform_max_iter", "max_doc_update_iter")


def _iterations(ctx: Context, est: Any, field: str) -> None:
    value = attr(est, field)
    if value is None:
        return
    count = integer(value, field)
    if not 0 <= count <= ctx.limits.max_predict_iterations:
        raise Invalid(
            f"{field}={count} iterations per transform is outside [0, "
            f"ScanLimits.max_predict_iterations={ctx.limits.max_predict_iterations}] "
            "(raise it if the model is genuine)",
            field,
        )


def _visit_estimator(ctx: Context, est: Any) -> None:
    for field in _ITERATION_FIELDS:
        _iterations(ctx, est, field)
    jobs = attr(est, "n_jobs")
    if jobs is not None and not -MAX_JOBS <= integer(jobs, "n_jobs") <= MAX_JOBS:
        raise Invalid(f"n_jobs={int(jobs)} asks for more workers than [-{MAX_JOBS}, {MAX_JOBS}]")


# LightGBM's names for its thread count: its scikit-learn wrapper passes the stored
# ``_other_params`` (any of these) to every predict, before ``n_jobs``.
_LIGHTGBM_THREADS = ("num_threads", "num_thread", "nthread", "nthreads", "n_jobs")


def _visit_lightgbm(ctx: Context, est: Any) -> None:
    """The thread count a LightGBM estimator's stored parameters give each predict."""
    other = attr(est, "_other_params")
    if other is None:
        return
    if type(other) is not dict:
        raise Invalid(f"_other_params is a {type(other).__name__}, not a dict", "_other_params")
    for key in _LIGHTGBM_THREADS:
        if key in other and other[key] is not None:
            jobs = integer(other[key], f"_other_params[{key!r}]")
            if not -MAX_JOBS <= jobs <= MAX_JOBS:
                raise Invalid(f"{key}={jobs} asks for more threads than [-{MAX_JOBS}, {MAX_JOBS}]")


def _visit_nmf(ctx: Context, nmf: Any) -> None:
    """``NMF.transform`` solves for W with the training ``max_iter`` (other classes: fit only)."""
    _iterations(ctx, nmf, "max_iter")


CHECKS: Checks = [
    ((("sklearn.base", "BaseEstimator"),), _visit_estimator),
    ((("sklearn.decomposition._nmf", "NMF"),), _visit_nmf),
    ((("lightgbm.sklearn", "LGBMModel"),), _visit_lightgbm),
]
