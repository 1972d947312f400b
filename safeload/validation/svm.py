"""libsvm models: support counts, vectors, dual coefficients and intercepts must agree.

libsvm builds its model from these arrays without checking them against each other: it reads
one support vector row per ``support_`` entry (an empty ``support_vectors_`` on a non-
precomputed kernel is read past its end), ``_n_support`` per class, one dual coefficient per
support vector and class pair.
"""

from __future__ import annotations

from typing import Any

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, array, attr, integer, is_text


def _visit_libsvm(ctx: Context, svm: Any) -> None:
    import scipy.sparse as sp

    support = attr(svm, "support_")
    if support is None:
        return  # not fitted
    own_impl = str(getattr(type(svm), "_impl", ""))
    if attr(svm, "_impl") is not None and not is_text(attr(svm, "_impl"), own_impl):
        raise Invalid(f"_impl is shadowed: {shown(attr(svm, '_impl'))}, not {own_impl!r}")
    kernel = attr(svm, "kernel")  # its name or function: validation/callables.py
    # A callable kernel predicts from the kernel matrix, like "precomputed": no vectors kept.
    precomputed = callable(kernel) or is_text(kernel, "precomputed")
    support = array(support, "support_", ndim=1)
    n_sv = support.shape[0]
    n_support = array(attr(svm, "_n_support"), "_n_support", ndim=1)
    n_class = n_support.shape[0]
    if n_class < 2:
        raise Invalid(f"_n_support has {n_class} entries, expected at least 2")
    pairs = n_class * (n_class - 1) // 2
    # _impl is a class attribute (an instance may shadow it): read it the way predict does.
    if own_impl in ("c_svc", "nu_svc") and (n_support.min() < 0 or int(n_support.sum()) != n_sv):
        raise Invalid(f"_n_support {shown(n_support)} does not add up to {n_sv} support vectors")
    shape_fit = attr(svm, "shape_fit_")
    if not isinstance(shape_fit, tuple) or len(shape_fit) != 2:
        raise Invalid("shape_fit_ is not a 2-tuple")
    if n_sv and (support.min() < 0 or support.max() >= integer(shape_fit[0], "shape_fit_[0]")):
        raise Invalid(f"support_ has indices outside the {shape_fit[0]} training samples")
    vectors = attr(svm, "support_vectors_")
    n_in = attr(svm, "n_features_in_")
    sparse = attr(svm, "_sparse")
    if not isinstance(sparse, bool) or sparse != sp.issparse(vectors):
        raise Invalid(f"_sparse={shown(sparse)} but support_vectors_ is {type(vectors).__name__}")
    if not sparse:
        vectors = array(vectors, "support_vectors_", ndim=2)
    if precomputed and not sparse:
        if vectors.size != 0:
            raise Invalid(f"a precomputed kernel keeps no support vectors, not {vectors.shape}")
    elif vectors.shape[0] != n_sv or (
        n_in is not None and vectors.shape[1] != integer(n_in, "n_features_in_")
    ):
        raise Invalid(
            f"support_vectors_ has shape {vectors.shape} for {n_sv} supports and {n_in} features"
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
    weights = attr(svm, "class_weight_")
    if weights is not None and own_impl in ("c_svc", "nu_svc"):
        weights = array(weights, "class_weight_", ndim=1)
        if weights.shape[0] != n_class:
            raise Invalid(f"class_weight_ has {weights.shape[0]} entries for {n_class} classes")
    prob_a = array(attr(svm, "_probA"), "_probA", ndim=1)
    prob_b = array(attr(svm, "_probB"), "_probB", ndim=1)
    if prob_a.shape != prob_b.shape or prob_a.shape[0] not in (0, pairs):
        raise Invalid(
            f"_probA/_probB have {prob_a.shape}/{prob_b.shape} entries, expected 0 or {pairs}"
        )


CHECKS: Checks = [((("sklearn.svm._base", "BaseLibSVM"),), _visit_libsvm)]
