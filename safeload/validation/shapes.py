"""Shape tables: fitted arrays whose sizes must agree with ``n_features_in_`` and each other.

Most estimators hand their fitted arrays to numpy and BLAS, which refuse a mismatch with a
``ValueError`` at predict time; the issue asks all fitted widths to agree anyway, so a crafted
model is refused at load, naming the array, not half-way through a user's request. A family
lists, per class, each array and its dimensions: ``"f"`` is ``n_features_in_``, any other
name is bound by the first array that uses it (``"k"`` components, ``"c"`` classes...), an
``int`` is exact. Arrays absent from ``__dict__`` are not checked (not fitted, or optional).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from safeload.validation._base import Check, Context, Invalid, attr, integer

Dim = str | int
#: attribute name -> its dimensions
Table = dict[str, tuple[Dim, ...]]
#: integer attribute name -> the dimension it counts
Counts = dict[str, str]


def shape_of(value: Any) -> tuple[int, ...] | None:
    """The shape of an ndarray or scipy sparse matrix, else None."""
    import scipy.sparse as sp

    if isinstance(value, np.ndarray) or sp.issparse(value):
        return tuple(int(n) for n in value.shape)
    return None


def check_table(
    obj: Any, table: Table, bound: dict[str, int] | None = None, counts: Counts | None = None
) -> dict[str, int]:
    """Check ``obj``'s arrays against ``table``; returns the sizes each name was bound to.

    ``counts`` names integer attributes that must equal a dimension (``"_n_components": "k"``):
    code allocates by those integers, so one left free would size an allocation at will.
    """
    sizes = dict(bound or {})
    n_in = attr(obj, "n_features_in_")
    if n_in is not None:
        sizes.setdefault("f", integer(n_in, "n_features_in_"))
    for name, dims in table.items():
        value = attr(obj, name)
        if value is None:
            continue
        shape = shape_of(value)
        if shape is None:
            raise Invalid(f"{name} is {type(value).__name__}, not an array")
        if len(shape) != len(dims):
            raise Invalid(f"{name} has shape {shape}, expected {len(dims)} dimension(s)")
        for dim, size in zip(dims, shape, strict=True):
            expected = dim if isinstance(dim, int) else sizes.setdefault(dim, size)
            if size != expected:
                raise Invalid(f"{name} has shape {shape}, inconsistent with {_render(dims, sizes)}")
    for name, dim in (counts or {}).items():
        value = attr(obj, name)
        if value is not None and dim in sizes and integer(value, name) != sizes[dim]:
            raise Invalid(f"{name}={value} but the fitted arrays have {sizes[dim]}")
    return sizes


def _render(dims: tuple[Dim, ...], sizes: dict[str, int]) -> str:
    named = {"f": "n_features_in_"}
    parts = [
        str(d) if isinstance(d, int) else f"{named.get(d, d)}={sizes[d]}"
        for d in dims
        if isinstance(d, int) or d in sizes
    ]
    return ", ".join(parts)


def table_check(table: Table, counts: Counts | None = None) -> Check:
    """A check applying one table to every instance of the classes it is registered for."""

    def check(ctx: Context, obj: Any) -> None:
        check_table(obj, table, counts=counts)

    return check
