"""The predict-time budget: fitted values that size output rows or loops, held to ScanLimits.

A fitted count (a degree, ``n_components``, a vocabulary size) decides how wide each output
row is, or how many times a loop runs per input value, at every later ``predict``. Values
backed by stored arrays already cost their size at load; declared scalars cost nothing to
store, so a few bytes can ask for a hang or terabytes. Each width is derived from the other
fitted state first (it must agree), then held to ``ScanLimits.max_output_features``; work per
input value to ``ScanLimits.max_work_per_value``.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.validation._base import Check, Checks, Context, Invalid, array, attr, integer


def guarded(checks: Checks) -> Checks:
    """The checks, with any error a crafted value provokes in them turned into a refusal.

    Fitted values are compared, hashed and measured here; a value of an unexpected type can
    make numpy or Python raise instead of answering, and that too means the model is not what
    ``fit`` builds.
    """

    def guard(check: Check) -> Check:
        @wraps(check)
        def run(ctx: Context, obj: Any) -> None:
            try:
                check(ctx, obj)
            except (TypeError, ValueError, IndexError, KeyError, OverflowError) as exc:
                raise Invalid(
                    f"a fitted value is not what fit builds ({type(exc).__name__}: "
                    f"{shown(str(exc))})"
                ) from None

        return run

    return [(names, guard(check)) for names, check in checks]


def width(ctx: Context, value: int, what: str) -> int:
    """Refuse an output row wider than the caller's budget (``max_output_features``)."""
    cap = ctx.limits.max_output_features
    if value > cap:
        raise Invalid(
            f"{what} would make each output row {shown(value)} values wide, over "
            f"ScanLimits.max_output_features={cap} (raise it if the model is genuine)"
        )
    return value


def work(ctx: Context, value: int, what: str) -> int:
    """Refuse a per-input-value loop longer than the caller's budget (``max_work_per_value``)."""
    cap = ctx.limits.max_work_per_value
    if value > cap:
        raise Invalid(
            f"{what} would cost {shown(value)} steps per input value at predict time, over "
            f"ScanLimits.max_work_per_value={cap} (raise it if the model is genuine)"
        )
    return value


def n_features_in(ctx: Context, est: Any) -> int:
    """``n_features_in_`` of a fitted estimator: a positive integer within the width budget."""
    n = maybe_n_features_in(ctx, est)
    if n is None:
        raise Invalid("n_features_in_ is missing from a fitted estimator")
    return n


def maybe_n_features_in(ctx: Context, est: Any) -> int | None:
    """``n_features_in_`` when set (inputs are rows too: sklearn loops over their columns)."""
    value = attr(est, "n_features_in_")
    if value is None:
        return None
    n = integer(value, "n_features_in_")
    if n < 1:
        raise Invalid(f"n_features_in_={n} is not positive")
    return width(ctx, n, "n_features_in_")


def flag(value: Any, what: str) -> bool:
    """A true bool (numpy's included): sklearn branches on these flags at every call."""
    if not isinstance(value, (bool, np.bool_)):
        raise Invalid(f"{what} is {type(value).__name__}, not a bool")
    return bool(value)


def capped_comb(n: int, k: int, cap: int) -> int | None:
    """``comb(n, k)``, or None once it exceeds ``cap`` (at most ~log2(cap) steps for big ones).

    The partial products ``comb(n - k + j, j)`` grow with ``j`` and at least double per step
    while ``j <= n - k``, so a huge result is known to be over the cap after a few steps,
    instead of computing a number with millions of digits.
    """
    if k < 0 or k > n:
        return 0
    k = min(k, n - k)
    value = 1
    for j in range(1, k + 1):
        value = value * (n - k + j) // j
        if value > cap:
            return None
    return value


def vector(value: Any, what: str, length: int) -> np.ndarray:
    """A 1-D array of exactly ``length`` entries (a per-feature or per-output fitted vector)."""
    vec = array(value, what, ndim=1)
    if vec.shape[0] != length:
        raise Invalid(f"{what} has {vec.shape[0]} entries, expected {length}")
    return vec


def index_array(value: Any, what: str, bound: int, *, ndim: int = 1) -> np.ndarray:
    """An integer array whose every entry lies in ``[0, bound)`` (it indexes a buffer)."""
    arr = array(value, what, ndim=ndim)
    if arr.dtype.kind not in "iu":
        raise Invalid(f"{what} has dtype {arr.dtype.str}, not an integer dtype")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= bound):
        raise Invalid(f"{what} has entries outside [0, {bound})")
    return arr


_NUMPY_INTS = frozenset(np.dtype(code).type for code in "bhilqBHILQ")


def permutation_values(values: Any, what: str) -> None:
    """Mapping values that are exactly ``0..len-1``: they are column indices of an output."""
    items = list(values)
    n = len(items)
    if not n:
        return
    # Exact types (subclasses of int could compare or hash as they like); fast on millions.
    kinds = set(map(type, items))
    if not all(kind is int or kind in _NUMPY_INTS for kind in kinds):
        raise Invalid(f"{what} maps a key to something other than an integer column index")
    try:
        cols = np.array(items)
    except (OverflowError, ValueError):
        raise Invalid(f"{what} has column indices beyond 64 bits") from None
    if cols.dtype.kind not in "iu" or cols.ndim != 1:
        raise Invalid(f"{what} has column indices beyond 64 bits")
    if int(cols.min()) < 0 or int(cols.max()) >= n:
        raise Invalid(f"{what} has column indices outside [0, {n}) (one column per entry)")
    if np.count_nonzero(np.bincount(cols.astype(np.intp), minlength=n)) != n:
        raise Invalid(f"{what} maps two entries to one column (not a permutation of 0..{n - 1})")
