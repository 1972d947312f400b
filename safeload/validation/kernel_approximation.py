"""Kernel approximations: sketch and projection widths that size every transformed row.

PolynomialCountSketch allocates ``(n_samples, degree, n_components)`` floats per call from two
scalars, then scatters each input column into the column ``indexHash_`` names; the random
feature maps multiply by stored weights whose shapes must match the input and their offsets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, array, attr, integer
from safeload.validation._budget import guarded, index_array, n_features_in, vector, width


def _positive(value: Any, what: str) -> int:
    number = integer(value, what)
    if number < 1:
        raise Invalid(f"{what}={shown(number)} is not positive")
    return number


def _out_width(ctx: Context, est: Any, expected: int) -> None:
    """``_n_features_out`` (names the output columns) must be the width transform produces."""
    stored = attr(est, "_n_features_out")
    if stored is not None and integer(stored, "_n_features_out") != expected:
        raise Invalid(f"_n_features_out={shown(stored)}, expected {expected}")
    width(ctx, expected, "the transformed width")


def _visit_count_sketch(ctx: Context, est: Any) -> None:
    index_hash = attr(est, "indexHash_")
    if index_hash is None:
        return
    n = n_features_in(ctx, est)
    degree = _positive(attr(est, "degree"), "degree")
    n_components = _positive(attr(est, "n_components"), "n_components")
    # The per-sample intermediate is degree x n_components wide, before the FFT product.
    width(ctx, n_components, "n_components")
    width(ctx, degree * n_components, "degree x n_components (the count sketches)")
    coef0 = attr(est, "coef0")
    if not isinstance(coef0, (int, float, np.integer, np.floating)) or isinstance(coef0, bool):
        raise Invalid(f"coef0 is {type(coef0).__name__}, not a number")
    shape = (degree, n + (coef0 != 0))
    index_hash = index_array(index_hash, "indexHash_", n_components, ndim=2)
    bits = array(attr(est, "bitHash_"), "bitHash_", ndim=2)
    if index_hash.shape != shape or bits.shape != shape:
        raise Invalid(
            f"indexHash_ {index_hash.shape} and bitHash_ {bits.shape} are not {shape} "
            "(degree, input columns)"
        )
    if bits.size and not np.isin(bits, (-1, 1)).all():
        raise Invalid("bitHash_ holds values other than -1 and 1")
    _out_width(ctx, est, n_components)


def _visit_random_features(ctx: Context, est: Any) -> None:
    weights = attr(est, "random_weights_")
    if weights is None:
        return
    n = n_features_in(ctx, est)
    weights = array(weights, "random_weights_", ndim=2)
    if weights.shape[0] != n:
        raise Invalid(f"random_weights_ has {weights.shape[0]} rows for {n} input features")
    n_out = weights.shape[1]
    vector(attr(est, "random_offset_"), "random_offset_", n_out)
    if _positive(attr(est, "n_components"), "n_components") != n_out:
        raise Invalid(f"n_components disagrees with random_weights_' {n_out} columns")
    _out_width(ctx, est, n_out)


def _visit_nystroem(ctx: Context, est: Any) -> None:
    components = attr(est, "components_")
    if components is None:
        return
    n = n_features_in(ctx, est)
    components = array(components, "components_", ndim=2)
    n_out = components.shape[0]
    if attr(est, "kernel") != "precomputed" and components.shape[1] != n:
        raise Invalid(f"components_ has {components.shape[1]} columns for {n} input features")
    norm = array(attr(est, "normalization_"), "normalization_", ndim=2)
    if norm.shape != (n_out, n_out):
        raise Invalid(f"normalization_ has shape {norm.shape} for {n_out} components")
    vector(attr(est, "component_indices_"), "component_indices_", n_out)
    _out_width(ctx, est, n_out)


def _visit_additive_chi2(ctx: Context, est: Any) -> None:
    n = attr(est, "n_features_in_")
    if n is None:
        return
    steps = _positive(attr(est, "sample_steps"), "sample_steps")
    width(ctx, n_features_in(ctx, est) * (2 * steps - 1), "sample_steps")


CHECKS: Checks = guarded(
    [
        ((("sklearn.kernel_approximation", "PolynomialCountSketch"),), _visit_count_sketch),
        (
            (
                ("sklearn.kernel_approximation", "RBFSampler"),
                ("sklearn.kernel_approximation", "SkewedChi2Sampler"),
            ),
            _visit_random_features,
        ),
        ((("sklearn.kernel_approximation", "Nystroem"),), _visit_nystroem),
        ((("sklearn.kernel_approximation", "AdditiveChi2Sampler"),), _visit_additive_chi2),
    ]
)
