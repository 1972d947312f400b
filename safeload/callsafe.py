"""The functions a loaded model may have scikit-learn *call* on the caller's data, and how.

The type policy decides which names a file may store; it cannot decide what scikit-learn does
with them afterwards. A fitted ``FunctionTransformer`` calls ``func(X, **kw_args)`` at
``transform``, so ``func=numpy.random.SeedSequence, kw_args={"pool_size": 10**6}`` (both
trusted as stored values) loads cleanly and then hangs ``predict``: a name trusted to be
*stored* is not thereby trusted to be *called*. :data:`SAFE_TO_CALL` is the separate, small list
of functions a stored callable may be: elementwise or reducing numpy math whose cost is bounded
by the data it is given, each with a rule for every keyword argument the file may add (no
``out=``, ``where=``, ``dtype=``: those write into or resize what the caller passes).

Entries are exact ``module:qualname`` names resolved to objects and compared by identity
(never by ``__name__``, which a file could fake), looked up in modules already imported: a
model can only hold a function whose module its loading imported, so nothing is imported here.
A caller who vouches for more functions passes them in ``LoadOptions(safe_to_call=[...])``;
never from the artifact.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np

from safeload.errors import shown
from safeload.typegate.dtypes import NUMERIC_SCALARS

#: A keyword argument's rule: why the value is refused, or ``None``.
ArgRule = Callable[[Any], "str | None"]

_MAX_ITEMS = 64


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def integer(lo: int, hi: int) -> ArgRule:
    """An integer in ``[lo, hi]`` (``bool`` is not one)."""

    def rule(value: Any) -> str | None:
        if not _is_int(value):
            return f"is {type(value).__name__}, not an integer"
        return None if lo <= int(value) <= hi else f"is {shown(value)}, outside [{lo}, {hi}]"

    return rule


def scalar(value: Any) -> str | None:
    """A real number or ``None`` (never an array: broadcasting would size the output)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        return f"is {type(value).__name__}, not a real number"
    return None


def finite(value: Any) -> str | None:
    """A finite real number."""
    why = scalar(value)
    if why is None and (value is None or not math.isfinite(float(value))):
        return f"is {shown(value)}, not a finite number"
    return why


def flag(value: Any) -> str | None:
    """``True`` or ``False``."""
    return None if isinstance(value, (bool, np.bool_)) else f"is {type(value).__name__}, not bool"


def choice(*allowed: object) -> ArgRule:
    """One of a few exact values (``None``, short strings, ``bool``)."""

    def rule(value: Any) -> str | None:
        ok = any(value is a or (type(value) is type(a) and value == a) for a in allowed)
        return None if ok else f"is {shown(value)}, not one of {allowed}"

    return rule


def one_or_more(item: ArgRule) -> ArgRule:
    """One value, or a short list or tuple of values, each held to ``item``."""

    def rule(value: Any) -> str | None:
        if not isinstance(value, (list, tuple)):
            return item(value)
        if len(value) > _MAX_ITEMS:
            return f"holds {len(value)} items, more than {_MAX_ITEMS}"
        return next((why for why in map(item, value) if why is not None), None)

    return rule


_AXIS = choice(None, -2, -1, 0, 1)


def _dtype_spec(value: Any) -> str | None:
    """A dtype as sklearn's conversions accept it: a scalar type, a dtype, a short name."""
    if value is None or isinstance(value, np.dtype) or is_dtype_class(value):
        return None
    if isinstance(value, str) and len(value) <= 16:
        return None
    return f"is {type(value).__name__}, not a dtype"


_UNARY: tuple[str, ...] = (
    "numpy:log",
    "numpy:log1p",
    "numpy:log2",
    "numpy:log10",
    "numpy:exp",
    "numpy:expm1",
    "numpy:exp2",
    "numpy:sqrt",
    "numpy:cbrt",
    "numpy:square",
    "numpy:absolute",
    "numpy:abs",
    "numpy:fabs",
    "numpy:sign",
    "numpy:negative",
    "numpy:reciprocal",
    "numpy:tanh",
    "numpy:arctan",
    "numpy:arcsinh",
    "numpy:sinh",
    "numpy:cosh",
    "numpy:sin",
    "numpy:cos",
    "numpy:floor",
    "numpy:ceil",
    "numpy:rint",
    "numpy:trunc",
    "scipy.special:expit",
    "scipy.special:logit",
    "scipy.special._special_ufuncs:expit",
    "scipy.special._special_ufuncs:logit",
)
_REDUCE: dict[str, ArgRule] = {"axis": _AXIS, "keepdims": flag}

#: Exact name -> {keyword: rule}: the only functions a stored callable may be, and the only
#: keyword arguments (from ``kw_args``, ``inv_kw_args`` or a ``functools.partial``) each takes.
SAFE_TO_CALL: dict[str, Mapping[str, ArgRule]] = {
    **{name: {} for name in _UNARY},
    "numpy:round": {"decimals": integer(-30, 30)},
    "numpy:around": {"decimals": integer(-30, 30)},
    "numpy:clip": {"a_min": scalar, "a_max": scalar, "min": scalar, "max": scalar},
    "numpy:nan_to_num": {"copy": flag, "nan": finite, "posinf": finite, "neginf": finite},
    "numpy:mean": _REDUCE,
    "numpy:median": _REDUCE,
    "numpy:sum": _REDUCE,
    "numpy:max": _REDUCE,
    "numpy:min": _REDUCE,
    "numpy:amax": _REDUCE,
    "numpy:amin": _REDUCE,
    "numpy:std": _REDUCE,
    "numpy:var": _REDUCE,
    "numpy:nanmean": _REDUCE,
    "numpy:nanmedian": _REDUCE,
    # HistGradientBoosting with categorical features keeps partial(check_array, dtype=[float64],
    # ensure_all_finite=False) as a FunctionTransformer's func: a conversion of its input.
    "sklearn.utils.validation:check_array": {
        "accept_sparse": one_or_more(choice(True, False, "csr", "csc", "coo")),
        "accept_large_sparse": flag,
        "dtype": one_or_more(_dtype_spec),
        "order": choice(None, "C", "F"),
        "copy": flag,
        "force_writeable": flag,
        "ensure_all_finite": choice(True, False, "allow-nan"),
        "ensure_non_negative": flag,
        "ensure_2d": flag,
        "allow_nd": flag,
        "ensure_min_samples": integer(0, 2**31 - 1),
        "ensure_min_features": integer(0, 2**31 - 1),
    },
}

#: Classes stored where scikit-learn expects a dtype (``dtype=numpy.float64``); at most called
#: on one value (``DictVectorizer``), which costs what the value costs.
DTYPE_CLASSES: tuple[str, ...] = (
    "builtins:float",
    "builtins:int",
    "builtins:bool",
    "builtins:complex",
    "builtins:object",
    *(
        f"numpy:{n}"
        for n in (
            *NUMERIC_SCALARS,
            "object_",
            "number",
            "integer",
            "signedinteger",
            "unsignedinteger",
            "floating",
            "inexact",
            "complexfloating",
        )
    ),
)


def resolve(name: str) -> object | None:
    """The object an exact ``module:qualname`` names, from modules already imported, or None."""
    module, _, qualname = name.partition(":")
    obj: object = sys.modules.get(module)
    for part in qualname.split("."):
        if obj is None:
            return None
        obj = getattr(obj, part, None)  # attributes of trusted modules and classes only
    return obj


def resolved(names: Iterable[str]) -> dict[int, tuple[str, object]]:
    """Each name that resolves, by its object's id: ``id -> (name, object)`` (kept alive)."""
    found: dict[int, tuple[str, object]] = {}
    for name in names:
        obj = resolve(name)
        if obj is not None:
            found.setdefault(id(obj), (name, obj))
    return found


def is_dtype_class(value: Any) -> bool:
    """Whether ``value`` is exactly one of :data:`DTYPE_CLASSES`."""
    entry = resolved(DTYPE_CLASSES).get(id(value))
    return entry is not None and entry[1] is value


def safe_call_problem(func: Any, kwargs: Mapping[Any, Any] | None) -> str | None:
    """Why calling ``func(X, **kwargs)`` on the caller's data is not known to be safe, or None."""
    entry = resolved(SAFE_TO_CALL).get(id(func))
    if entry is None or entry[1] is not func:
        return "is not on the list of functions safe to call on your data"
    rules = SAFE_TO_CALL[entry[0]]
    for key, value in (kwargs or {}).items():
        rule = rules.get(key) if isinstance(key, str) else None
        if rule is None:
            return f"takes no keyword argument {shown(key)} from a model file"
        why = rule(value)
        if why is not None:
            return f"is given the keyword argument {key} that {why}"
    return None


def name_of(func: Any) -> str:
    """``module.qualname`` as the object claims it (for messages only, never for trust)."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return shown(f"{module}.{qualname}")
    return type(func).__name__
