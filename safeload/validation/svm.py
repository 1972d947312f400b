"""libsvm models: support counts, vectors, dual coefficients and intercepts must agree."""

from __future__ import annotations

from typing import Any

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, array, attr, integer


def _visit_libsvm(ctx: Context, svm: Any) -> None:
    import scipy.sparse as sp

    support = attr(svm, "support_")
    if support is None:
        return  # not fitted
    support = array(support, "support_", ndim=1)
    n_sv = support.shape[0]
    n_support = array(attr(svm, "_n_support"), "_n_support", ndim=1)
    n_class = n_support.shape[0]
    if n_class < 2:
        raise Invalid(f"_n_support has {n_class} entries, expected at least 2")
    pairs = n_class * (n_class - 1) // 2
    # _impl is a class attribute (an instance may shadow it): read it the way predict does.
    if getattr(svm, "_impl", None) in ("c_svc", "nu_svc") and (
        n_support.min() < 0 or int(n_support.sum()) != n_sv
    ):
        raise Invalid(f"_n_support {shown(n_support)} does not add up to {n_sv} support vectors")
    shape_fit = attr(svm, "shape_fit_")
    if not isinstance(shape_fit, tuple) or len(shape_fit) != 2:
        raise Invalid("shape_fit_ is not a 2-tuple")
    if n_sv and (support.min() < 0 or support.max() >= integer(shape_fit[0], "shape_fit_[0]")):
        raise Invalid(f"support_ has indices outside the {shape_fit[0]} training samples")
    vectors = attr(svm, "support_vectors_")
    n_in = attr(svm, "n_features_in_")
    if sp.issparse(vectors):
        if vectors.shape[0] != n_sv:
            raise Invalid(f"support_vectors_ has {vectors.shape[0]} rows for {n_sv} supports")
    else:
        vectors = array(vectors, "support_vectors_", ndim=2)
        precomputed = vectors.size == 0
        if not precomputed and (
            vectors.shape[0] != n_sv
            or (n_in is not None and vectors.shape[1] != integer(n_in, "n_features_in_"))
        ):
            raise Invalid(
                f"support_vectors_ has shape {vectors.shape} for {n_sv} supports and "
                f"{n_in} features"
            )
    dual = attr(svm, "_dual_coef_")
    if tuple(getattr(dual, "shape", ())) != (n_class - 1, n_sv):
        raise Invalid(
            f"_dual_coef_ has shape {getattr(dual, 'shape', None)}, expected {(n_class - 1, n_sv)}"
        )
    if sp.issparse(dual) and dual.data.shape[0] != (n_class - 1) * n_sv:
        raise Invalid("sparse _dual_coef_ is not stored densely")
    intercept = array(attr(svm, "_intercept_"), "_intercept_", ndim=1)
    if intercept.shape[0] != pairs:
        raise Invalid(f"_intercept_ has {intercept.shape[0]} entries, expected {pairs}")
    prob_a = array(attr(svm, "_probA"), "_probA", ndim=1)
    prob_b = array(attr(svm, "_probB"), "_probB", ndim=1)
    if prob_a.shape != prob_b.shape or prob_a.shape[0] not in (0, pairs):
        raise Invalid(
            f"_probA/_probB have {prob_a.shape}/{prob_b.shape} entries, expected 0 or {pairs}"
        )


CHECKS: Checks = [((("sklearn.svm._base", "BaseLibSVM"),), _visit_libsvm)]
