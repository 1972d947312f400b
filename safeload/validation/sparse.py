"""scipy sparse matrices and splines: index arrays and knots that compiled code trusts."""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.validation._base import Checks, Context, Invalid, attr, integer


def check_sparse(matrix: Any) -> None:
    """Full index checks of a CSR/CSC/BSR matrix, coordinate bounds of a COO one."""
    fmt = getattr(matrix, "format", None)
    try:
        if fmt in ("csr", "csc", "bsr"):
            matrix.check_format(full_check=True)
        elif fmt == "coo":
            coords = getattr(matrix, "coords", None)
            if coords is None:
                coords = (matrix.row, matrix.col)
            nnz = np.asarray(matrix.data).shape[0]
            for axis, (index, size) in enumerate(zip(coords, matrix.shape, strict=True)):
                index = np.asarray(index)
                if index.shape != (nnz,):
                    raise ValueError(f"axis {axis} has {index.shape} coordinates for {nnz} values")
                if index.size and (index.min() < 0 or index.max() >= size):
                    raise ValueError(f"axis {axis} has coordinates outside [0, {size})")
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise Invalid(f"sparse {fmt} matrix is inconsistent: {exc}") from None


def _visit_bspline(ctx: Context, spline: Any) -> None:
    from scipy.interpolate import BSpline

    knots = attr(spline, "_t")
    coefs = attr(spline, "_c")
    if knots is None:
        knots = attr(spline, "t")
        coefs = attr(spline, "c")
    try:
        BSpline(
            np.asarray(knots),
            np.asarray(coefs),
            integer(attr(spline, "k"), "k"),
            extrapolate=attr(spline, "extrapolate"),
        )
    except (ValueError, TypeError) as exc:
        raise Invalid(f"BSpline knots, coefficients and degree are inconsistent: {exc}") from None


CHECKS: Checks = [((("scipy.interpolate._bsplines", "BSpline"),), _visit_bspline)]
