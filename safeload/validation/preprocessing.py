"""Preprocessing: encoders, expansions and scalers whose fitted counts size each output row.

Two kinds of danger. OneHotEncoder (and MultiLabelBinarizer) build a CSR matrix from fitted
column offsets without checking them, so counts that disagree with ``categories_`` give column
indices past the matrix's width: ``toarray()`` writes out of bounds (a segfault, the contract's
sample check included). PolynomialFeatures' degrees and SplineTransformer's output count are
small scalars that set how wide every output row is and how long the degree loop runs. Each
count is re-derived here exactly as ``fit`` derives it, and held to the predict-time budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid, array, attr, integer
from safeload.validation._budget import (
    capped_comb,
    flag,
    guarded,
    index_array,
    maybe_n_features_in,
    n_features_in,
    permutation_values,
    vector,
    width,
    work,
)

# ---- PolynomialFeatures --------------------------------------------------------------------


def poly_width(
    n: int, lo: int, hi: int, interaction_only: bool, bias: bool, cap: int
) -> int | None:
    """scikit-learn's ``_num_combinations``, or None once it exceeds ``cap`` (never a bignum)."""
    if interaction_only:
        total = 0
        for degree in range(max(1, lo), min(hi, n) + 1):
            term = capped_comb(n, degree, cap)
            if term is None or (total := total + term) > cap:
                return None
    else:
        full = capped_comb(n + hi, hi, cap + 1)
        if full is None:
            return None
        total = full - 1
        if lo > 0:
            below = capped_comb(n + lo - 1, lo - 1, cap + 1)
            total -= (below or 0) - 1
    total += int(bias)
    return total if total <= cap else None


def _visit_polynomial(ctx: Context, est: Any) -> None:
    if attr(est, "n_output_features_") is None:
        return  # not fitted
    n = n_features_in(ctx, est)
    lo = integer(attr(est, "_min_degree"), "_min_degree")
    hi = integer(attr(est, "_max_degree"), "_max_degree")
    if not 0 <= lo <= hi:
        raise Invalid(f"degrees ({shown(lo)}, {shown(hi)}) are not 0 <= min <= max")
    # transform loops over degrees 2.._max_degree whatever the output width.
    work(ctx, hi, "_max_degree (PolynomialFeatures' degree loop)")
    interaction_only = flag(attr(est, "interaction_only"), "interaction_only")
    bias = flag(attr(est, "include_bias"), "include_bias")
    cap = ctx.limits.max_output_features
    for name, low in (("_n_out_full", 0), ("n_output_features_", lo)):
        stored = integer(attr(est, name), name)
        derived = poly_width(n, low, hi, interaction_only, bias, cap)
        if derived is None:
            width(ctx, cap + 1, f"degree {hi} over {n} features ({name})")
        if stored != derived:
            raise Invalid(
                f"{name}={shown(stored)} disagrees with the {derived} columns of degrees "
                f"{low}..{hi} over n_features_in_={n}"
            )


# ---- SplineTransformer ---------------------------------------------------------------------


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _visit_spline(ctx: Context, est: Any) -> None:
    splines = attr(est, "bsplines_")
    if splines is None:
        return
    n = n_features_in(ctx, est)
    if not isinstance(splines, list) or len(splines) != n:
        raise Invalid(f"bsplines_ is not a list of n_features_in_={n} splines")
    coefs = [np.shape(_first(attr(spline, "_c"), attr(spline, "c"))) for spline in splines]
    n_splines = coefs[0][1] if len(coefs[0]) == 2 else 0
    if n_splines < 1 or any(shape != (shape[0], n_splines) for shape in coefs):
        raise Invalid(f"bsplines_ coefficients have shapes {shown(coefs)}, not (m, n_splines)")
    degree = integer(attr(est, "degree"), "degree")
    if any(attr(spline, "k") != degree for spline in splines):
        raise Invalid(f"a spline's degree differs from degree={degree}")
    bias = flag(attr(est, "include_bias"), "include_bias")
    derived = width(ctx, n * n_splines, "bsplines_") - n * (not bias)
    stored = integer(attr(est, "n_features_out_"), "n_features_out_")
    if stored != derived:
        raise Invalid(f"n_features_out_={shown(stored)}, expected {derived} from bsplines_")


# ---- encoders: OneHotEncoder, OrdinalEncoder, TargetEncoder --------------------------------


def _missing(values: np.ndarray) -> np.ndarray:
    """Where NaN (or NaT) is: ``np.unique`` puts one of them last, the rest are sorted."""
    if values.dtype.kind == "f":
        return np.asarray(np.isnan(values), dtype=bool)
    if values.dtype.kind in "mM":
        return np.asarray(np.isnat(values), dtype=bool)
    return np.zeros(values.shape, dtype=bool)


def categories(ctx: Context, enc: Any) -> list[np.ndarray] | None:
    """``categories_``: one non-empty 1-D array per input feature; numeric ones sorted unique.

    Numeric values are encoded by ``searchsorted`` into these arrays: unsorted, a known value
    can be given index ``len(categories)``, one past its block of output columns.
    """
    cats = attr(enc, "categories_")
    if cats is None:
        return None
    n = n_features_in(ctx, enc)
    if not isinstance(cats, list) or len(cats) != n:
        raise Invalid(f"categories_ is not a list of n_features_in_={n} arrays")
    for i, cat in enumerate(cats):
        cat = array(cat, f"categories_[{i}]", ndim=1)
        if cat.shape[0] < 1:
            raise Invalid(f"categories_[{i}] is empty")
        if cat.dtype.kind in "biufmM":
            missing = _missing(cat)
            values = cat[~missing]
            if values.shape[0] < cat.shape[0] - 1 or (
                values.shape[0] < cat.shape[0] and not missing[-1]
            ):
                raise Invalid(f"categories_[{i}] holds NaN other than once, last")
            if np.any(values[1:] <= values[:-1]):
                raise Invalid(f"categories_[{i}] is not sorted and unique")
        elif cat.dtype.kind not in "OUS":
            raise Invalid(f"categories_[{i}] has dtype {cat.dtype.str}")
    return cats


def grouped_counts(enc: Any, cats: list[np.ndarray]) -> list[int]:
    """Categories per feature once infrequent ones are grouped; mappings as fit sets them."""
    counts = [cat.shape[0] for cat in cats]
    if not flag(attr(enc, "_infrequent_enabled"), "_infrequent_enabled"):
        return counts
    missing = attr(enc, "_missing_indices") or {}
    infrequent = attr(enc, "_infrequent_indices")
    mappings = attr(enc, "_default_to_infrequent_mappings")
    n = len(cats)
    for name, value in (
        ("_infrequent_indices", infrequent),
        ("_default_to_infrequent_mappings", mappings),
    ):
        if not isinstance(value, list) or len(value) != n:
            raise Invalid(f"{name} is not a list of {n} entries")
    for i, (idx, mapping) in enumerate(zip(infrequent or (), mappings or (), strict=True)):
        if idx is None and mapping is None:
            continue
        if idx is None or mapping is None:
            raise Invalid(f"_infrequent_indices[{i}] and its mapping disagree on being set")
        n_cats = counts[i] - (1 if i in missing else 0)
        idx = index_array(idx, f"_infrequent_indices[{i}]", n_cats)
        if idx.shape[0] < 1 or np.any(idx[1:] <= idx[:-1]):
            raise Invalid(f"_infrequent_indices[{i}] is empty or not sorted and unique")
        n_frequent = n_cats - idx.shape[0]
        expected = np.empty(n_cats, dtype=np.int64)
        expected[idx] = n_frequent
        expected[np.setdiff1d(np.arange(n_cats), idx)] = np.arange(n_frequent)
        mapping = array(mapping, f"_default_to_infrequent_mappings[{i}]", ndim=1)
        if mapping.dtype.kind not in "iu" or not np.array_equal(mapping, expected):
            raise Invalid(f"_default_to_infrequent_mappings[{i}] is not the mapping fit builds")
        counts[i] -= idx.shape[0] - 1
    return counts


def _drop_indices(value: Any, what: str, bounds: list[int]) -> list[int | None] | None:
    if value is None:
        return None
    drops = array(value, what, ndim=1)
    if drops.shape[0] != len(bounds):
        raise Invalid(f"{what} has {drops.shape[0]} entries for {len(bounds)} features")
    out: list[int | None] = []
    for i, drop in enumerate(drops):
        if drop is None:
            out.append(None)
            continue
        index = integer(drop, f"{what}[{i}]")
        if not 0 <= index < bounds[i]:
            raise Invalid(f"{what}[{i}]={shown(index)} is outside [0, {bounds[i]})")
        out.append(index)
    return out


def _visit_one_hot(ctx: Context, enc: Any) -> None:
    cats = categories(ctx, enc)
    if cats is None:
        return
    counts = grouped_counts(enc, cats)
    _drop_indices(attr(enc, "drop_idx_"), "drop_idx_", [cat.shape[0] for cat in cats])
    drops = _drop_indices(attr(enc, "_drop_idx_after_grouping"), "_drop_idx_after_grouping", counts)
    derived = [c - (drops is not None and drops[i] is not None) for i, c in enumerate(counts)]
    stored = attr(enc, "_n_features_outs")
    if (
        not isinstance(stored, list)
        or [integer(v, "_n_features_outs[i]") for v in stored] != derived
    ):
        raise Invalid(
            "_n_features_outs disagrees with categories_ and the dropped and infrequent "
            "categories (it sets each feature's block of output columns)"
        )
    width(ctx, sum(derived), "categories_")


def _visit_ordinal(ctx: Context, enc: Any) -> None:
    cats = categories(ctx, enc)
    if cats is None:
        return
    missing = attr(enc, "_missing_indices")
    if not isinstance(missing, dict):
        raise Invalid("_missing_indices is not a dict")
    for feature, index in missing.items():
        f = integer(feature, "a _missing_indices key")
        if not 0 <= f < len(cats) or integer(index, "_missing_indices[i]") != len(cats[f]) - 1:
            raise Invalid(f"_missing_indices {shown(missing)} does not point at last categories")
    grouped_counts(enc, cats)


def _visit_target(ctx: Context, enc: Any) -> None:
    cats = categories(ctx, enc)
    encodings = attr(enc, "encodings_")
    if cats is None or encodings is None:
        return
    classes = attr(enc, "classes_")
    per_feature = len(classes) if attr(enc, "target_type_") == "multiclass" else 1
    if not isinstance(encodings, list) or len(encodings) != len(cats) * per_feature:
        raise Invalid(f"encodings_ is not a list of {len(cats) * per_feature} arrays")
    for i, encoding in enumerate(encodings):
        vector(encoding, f"encodings_[{i}]", len(cats[i // per_feature]))
    width(ctx, len(encodings), "encodings_")


# ---- discretizer, scalers and other per-feature vectors ------------------------------------


def _visit_kbins(ctx: Context, est: Any) -> None:
    edges = attr(est, "bin_edges_")
    if edges is None:
        return
    n = n_features_in(ctx, est)
    n_bins = index_array(vector(attr(est, "n_bins_"), "n_bins_", n), "n_bins_", 1 << 62)
    edges = array(edges, "bin_edges_", ndim=1)
    if edges.shape[0] != n:
        raise Invalid(f"bin_edges_ has {edges.shape[0]} entries for {n} features")
    for j in range(n):
        edge = vector(edges[j], f"bin_edges_[{j}]", int(n_bins[j]) + 1)
        if np.any(edge[1:] < edge[:-1]):
            raise Invalid(f"bin_edges_[{j}] is not sorted")
    width(ctx, int(n_bins.sum()), "n_bins_")


#: Per-feature vectors each scaler applies to its input columns (absent ones are skipped).
_SCALER_VECTORS = (
    "scale_",
    "mean_",
    "var_",
    "min_",
    "data_min_",
    "data_max_",
    "data_range_",
    "max_abs_",
    "center_",
    "lambdas_",
    "statistics_",
)


def _visit_scaler(ctx: Context, est: Any) -> None:
    n = maybe_n_features_in(ctx, est)
    if n is None:
        return
    for name in _SCALER_VECTORS:
        value = attr(est, name)
        if value is not None and not np.isscalar(value):
            vector(value, name, n)


def _visit_quantile(ctx: Context, est: Any) -> None:
    quantiles = attr(est, "quantiles_")
    if quantiles is None:
        return
    n = n_features_in(ctx, est)
    quantiles = array(quantiles, "quantiles_", ndim=2)
    references = array(attr(est, "references_"), "references_", ndim=1)
    n_q = integer(attr(est, "n_quantiles_"), "n_quantiles_")
    if quantiles.shape != (n_q, n) or references.shape != (n_q,):
        raise Invalid(
            f"quantiles_ {quantiles.shape} and references_ {references.shape} do not match "
            f"n_quantiles_={shown(n_q)} and n_features_in_={n}"
        )


def _visit_label_binarizer(ctx: Context, est: Any) -> None:
    classes = attr(est, "classes_")
    if classes is not None:
        width(ctx, len(array(classes, "classes_", ndim=1)), "classes_")


def _is_int(value: Any, expected: int) -> bool:
    return isinstance(value, (int, np.integer)) and int(value) == expected


def _visit_multilabel(ctx: Context, est: Any) -> None:
    classes = attr(est, "classes_")
    if classes is None:
        return
    classes = array(classes, "classes_", ndim=1)
    width(ctx, classes.shape[0], "classes_")
    cached = attr(est, "_cached_dict")
    if cached is None:
        return
    # transform builds a CSR matrix of len(_cached_dict) columns from its values, unchecked.
    if not isinstance(cached, dict) or len(cached) != classes.shape[0]:
        raise Invalid("_cached_dict does not map each of classes_ to its column")
    permutation_values(cached.values(), "_cached_dict")
    if any(not _is_int(cached.get(c), i) for i, c in enumerate(classes.tolist())):
        raise Invalid("_cached_dict does not map each of classes_ to its column")


CHECKS: Checks = guarded(
    [
        ((("sklearn.preprocessing._polynomial", "PolynomialFeatures"),), _visit_polynomial),
        ((("sklearn.preprocessing._polynomial", "SplineTransformer"),), _visit_spline),
        ((("sklearn.preprocessing._encoders", "OneHotEncoder"),), _visit_one_hot),
        ((("sklearn.preprocessing._encoders", "OrdinalEncoder"),), _visit_ordinal),
        ((("sklearn.preprocessing._target_encoder", "TargetEncoder"),), _visit_target),
        ((("sklearn.preprocessing._discretization", "KBinsDiscretizer"),), _visit_kbins),
        (
            (
                ("sklearn.preprocessing._data", "StandardScaler"),
                ("sklearn.preprocessing._data", "MinMaxScaler"),
                ("sklearn.preprocessing._data", "MaxAbsScaler"),
                ("sklearn.preprocessing._data", "RobustScaler"),
                ("sklearn.preprocessing._data", "PowerTransformer"),
                ("sklearn.impute._base", "SimpleImputer"),
            ),
            _visit_scaler,
        ),
        ((("sklearn.preprocessing._data", "QuantileTransformer"),), _visit_quantile),
        ((("sklearn.preprocessing._label", "LabelBinarizer"),), _visit_label_binarizer),
        ((("sklearn.preprocessing._label", "MultiLabelBinarizer"),), _visit_multilabel),
    ]
)
