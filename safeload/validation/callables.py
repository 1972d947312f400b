"""Stored callables: what a loaded model would have scikit-learn call on the caller's data.

The walls gate what the pickle stream calls; this family gates what scikit-learn calls later.
Every function, builtin, ufunc, method, class or ``functools.partial`` found in any object's
``__dict__`` (or inside its dicts, lists and tuples: ``kw_args``, ``metric_params``,
``transformers``) is judged by where it is stored:

* where scikit-learn calls it on the caller's data as ``f(X, **kwargs)``
  (``FunctionTransformer.func``/``inverse_func``, ``TransformedTargetRegressor``,
  ``FeatureAgglomeration.pooling_func``): it must be on :data:`safeload.callsafe.SAFE_TO_CALL`,
  compared by identity, and its keyword arguments (``kw_args``, a partial's keywords) must pass
  that entry's rules;
* where scikit-learn only keeps it and never calls it at predict, transform or score time: a
  reference, accepted only in the fields listed here and only for the values each admits
  (``dtype=numpy.float64``; ``score_func``, used by ``fit`` alone; BisectingKMeans' own
  ``_kmeans_single`` routine);
* anywhere else (a callable ``metric``, ``kernel``, ``analyzer``, ``tokenizer``,
  ``preprocessor``, ``weights``, ``feature_names_out``, or a field this module does not know):
  refused. Fail closed: a new place scikit-learn calls from is refused until it is listed.

A caller who vouches for more functions lists them in ``LoadOptions(safe_to_call=[...])``;
strings that scikit-learn dispatches by name (``metric="euclidean"``, ``kernel="rbf"``,
``analyzer="word"``) must be in the estimator's own ``_parameter_constraints``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from safeload import callsafe
from safeload._default_types import DEFAULT_TYPES
from safeload.errors import shown
from safeload.validation._base import Checks, Context, Invalid

_ADVICE = (
    "scikit-learn would call it on your data when the model is used. Re-save the model with a "
    "built-in name instead (metric='euclidean', kernel='rbf', analyzer='word', ...), or, if you "
    "trust this function on the model's arguments, list its exact name in "
    "LoadOptions(safe_to_call=['module:qualname'])"
)
_MAX_NESTED = 100_000
_PLAIN = frozenset({str, int, float, bool, bytes, type(None)})


def stored_callable(value: Any) -> bool:
    """A function-like value (not a data object the walk visits, whose class the policy named)."""
    if not callable(value):
        return False
    if isinstance(value, (type, functools.partial, np.ufunc)) or inspect.isroutine(value):
        return True
    # A callable instance with a __dict__ is a data object (a GP kernel, a scorer, a column
    # selector): its class was constructed by name under the policy and its fields are visited.
    return not isinstance(getattr(value, "__dict__", None), dict)


# ---- where scikit-learn calls a stored callable as f(X, **kwargs) -----------------------------
_FT = "sklearn.preprocessing._function_transformer:FunctionTransformer"
#: class -> {field: the field holding its keyword arguments, or None}.
CALLED_ON_DATA: dict[str, dict[str, str | None]] = {
    _FT: {"func": "kw_args", "inverse_func": "inv_kw_args"},
    # fit builds transformer_ = FunctionTransformer(func, inverse_func) that predict uses.
    "sklearn.compose._target:TransformedTargetRegressor": {"func": None, "inverse_func": None},
    # transform calls pooling_func(X[:, mask], axis=1).
    "sklearn.cluster._agglomerative:FeatureAgglomeration": {"pooling_func": None},
}

# ---- where scikit-learn keeps a callable and never calls it at use ----------------------------


def _is(*names: str) -> Callable[[Any], bool]:
    def admits(value: Any) -> bool:
        entry = callsafe.resolved(names).get(id(value))
        return entry is not None and entry[1] is value

    return admits


def _dtype_class(value: Any) -> bool:
    return callsafe.is_dtype_class(value)


def _plain_function(value: Any) -> bool:
    return inspect.isroutine(value) or isinstance(value, np.ufunc)


def _own_call_method(value: Any) -> bool:
    """One of interp1d's own ``_call_*`` functions, which it keeps (sklearn rebuilds it)."""
    from scipy.interpolate import interp1d

    return any(v is value for k, v in vars(interp1d).items() if k.startswith("_call_"))


_METRIC_MODULES = (
    "sklearn.metrics._classification:",
    "sklearn.metrics._ranking:",
    "sklearn.metrics._regression:",
    "sklearn.metrics._scorer:",
    "sklearn.metrics.cluster._supervised:",
)
_METRIC_FUNCTIONS = tuple(
    n for n in DEFAULT_TYPES if n.startswith(_METRIC_MODULES) and n.split(":")[1][0].islower()
)
_SELECTORS = (
    "GenericUnivariateSelect",
    "SelectFdr",
    "SelectFpr",
    "SelectFwe",
    "SelectKBest",
    "SelectPercentile",
)
_SEARCHES = (
    "sklearn.model_selection._search:GridSearchCV",
    "sklearn.model_selection._search:RandomizedSearchCV",
    "sklearn.model_selection._search_successive_halving:HalvingGridSearchCV",
    "sklearn.model_selection._search_successive_halving:HalvingRandomSearchCV",
)
_SCORERS = ("_Scorer", "_CurveScorer", "_PassthroughScorer")


def _anything(value: Any) -> bool:
    return True


#: (class, field) -> which stored callables the field may hold as a reference. ``*`` is any class.
REFERENCES: dict[tuple[str, str], Callable[[Any], bool]] = {
    # fit picks the k-means routine; predict walks _bisecting_tree and never calls it.
    ("sklearn.cluster._bisect_k_means:BisectingKMeans", "_kmeans_single"): _is(
        "sklearn.cluster._kmeans:_kmeans_single_lloyd",
        "sklearn.cluster._kmeans:_kmeans_single_elkan",
    ),
    ("*", "dtype"): _dtype_class,
    # A repeated splitter builds its one-shot splitter class in split(), at fit time only.
    ("sklearn.model_selection._split:RepeatedKFold", "cv"): _is(
        "sklearn.model_selection._split:KFold"
    ),
    ("sklearn.model_selection._split:RepeatedStratifiedKFold", "cv"): _is(
        "sklearn.model_selection._split:StratifiedKFold"
    ),
    ("sklearn.compose._column_transformer:make_column_selector", "dtype_include"): _dtype_class,
    ("sklearn.compose._column_transformer:make_column_selector", "dtype_exclude"): _dtype_class,
    **{
        (f"sklearn.feature_selection._univariate_selection:{c}", "score_func"): _plain_function
        for c in _SELECTORS
    },
    # Search grids and records: candidates tried by fit (cv_results_["params"], best_params_);
    # the chosen one lives on in best_estimator_, where it is judged like any other.
    **{
        (c, f): _anything
        for c in _SEARCHES
        for f in ("cv_results_", "best_params_", "param_grid", "param_distributions")
    },
    # A scorer calls its metric at score(): one of scikit-learn's own (get_scorer_names()).
    **{(f"sklearn.metrics._scorer:{c}", "_score_func"): _is(*_METRIC_FUNCTIONS) for c in _SCORERS},
    ("scipy.interpolate._interpolate:interp1d", "_call"): _own_call_method,
    ("scipy.interpolate._bsplines:BSpline", "_asarray"): _is(
        "scipy._lib.array_api_compat.numpy._aliases:asarray", "numpy:asarray"
    ),
}

#: String parameters scikit-learn dispatches by name, checked against the class's own
#: ``_parameter_constraints`` (``effective_metric_`` against ``metric``'s).
DISPATCHED = {
    "metric": "metric",
    "effective_metric_": "metric",
    "kernel": "kernel",
    "analyzer": "analyzer",
    "affinity": "affinity",
    "weights": "weights",
    "strip_accents": "strip_accents",
}


def _class_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def _nested(value: Any, ctx: Context) -> Iterator[Any]:
    """Stored callables inside a field's dicts, lists, tuples, sets and object arrays."""
    stack, seen, n = [value], set(), 0
    plain = _PLAIN
    while stack:
        item = stack.pop()
        if stored_callable(item):
            yield item
            continue
        if id(item) in seen:
            continue
        if isinstance(item, dict):
            items: Any = [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            items = item
        elif isinstance(item, np.ndarray) and item.dtype.hasobject:
            items = np.asarray(item).reshape(-1).tolist()
        else:
            continue
        seen.add(id(item))
        n += len(items)
        if n > _MAX_NESTED:
            n = 0
            ctx.deadline.check("validating stored callables")
        stack.extend(x for x in items if type(x) not in plain)


def _refuse(field: str, value: Any, why: str) -> Invalid:
    kind = type(value).__name__
    return Invalid(f"it holds {kind} {callsafe.name_of(value)}, which {why}", field, _ADVICE)


def _vouched(ctx: Context, value: Any) -> bool:
    entry = callsafe.resolved(getattr(ctx, "safe_to_call", ())).get(id(value))
    return entry is not None and entry[1] is value


def _judge_call(ctx: Context, field: str, value: Any, kwargs: Any) -> None:
    """``value`` will be called as ``value(X, **kwargs)``: it must be safe, and so its arguments."""
    if _vouched(ctx, value):
        return
    if kwargs is not None and not isinstance(kwargs, dict):
        raise Invalid(f"its keyword arguments are {type(kwargs).__name__}, not a dict", field)
    if isinstance(value, functools.partial):
        inner = value.func
        if _vouched(ctx, inner):
            return
        if value.args or value.__dict__ or isinstance(inner, functools.partial):
            raise _refuse(
                field, inner, "is bound by a functools.partial with positional arguments or state"
            )
        keywords = value.keywords if isinstance(value.keywords, dict) else None
        if keywords is None:
            raise Invalid("it is a partial whose keywords are not a dict", field)
        merged = {**keywords, **(kwargs or {})}
        why = callsafe.safe_call_problem(inner, merged)
        if why is not None:
            raise _refuse(field, inner, f"(inside a functools.partial) {why}")
        return
    why = callsafe.safe_call_problem(value, kwargs)
    if why is not None:
        raise _refuse(field, value, why)


def _check_dispatched(obj: Any, field: str, value: str) -> None:
    from sklearn.utils._param_validation import validate_parameter_constraints

    constraints = getattr(type(obj), "_parameter_constraints", None)
    rule = constraints.get(DISPATCHED[field]) if isinstance(constraints, dict) else None
    if rule is None:
        return
    try:
        validate_parameter_constraints({field: rule}, {field: value}, type(obj).__name__)
    except (ValueError, TypeError):
        raise Invalid(f"{shown(value)} is not a name {type(obj).__name__} accepts", field) from None


_SCORER_CLASSES = frozenset(f"sklearn.metrics._scorer:{c}" for c in _SCORERS)
_MAX_SCORER_ITEMS = 1024


def _check_scorer_kwargs(kwargs: Any) -> None:
    """A scorer passes ``_kwargs`` to its metric at score(): plain, short values only."""
    if kwargs is None:
        return
    if not isinstance(kwargs, dict):
        raise Invalid(f"it is {type(kwargs).__name__}, not a dict", "_kwargs")
    for key, value in kwargs.items():
        items = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
        if len(items) > _MAX_SCORER_ITEMS or any(
            not (x is None or type(x) in _PLAIN or isinstance(x, np.generic)) for x in items
        ):
            raise Invalid(
                f"the metric's argument {shown(key)} is not a plain value or a list of at most "
                f"{_MAX_SCORER_ITEMS}",
                "_kwargs",
                "scikit-learn would pass it to the metric when the model is scored; re-create "
                "the artifact with plain scorer arguments",
            )


def _visit(ctx: Context, obj: Any) -> None:
    attrs = getattr(obj, "__dict__", None)
    if not isinstance(attrs, dict) or not attrs or stored_callable(obj):
        return  # a function-like value is judged where it is stored, with its arguments
    cls = _class_name(obj)
    called = CALLED_ON_DATA.get(cls, {})
    if cls in _SCORER_CLASSES:
        _check_scorer_kwargs(attrs.get("_kwargs"))
    for field, value in attrs.items():
        name = field if isinstance(field, str) else shown(field)
        if isinstance(value, str):
            if name in DISPATCHED:
                _check_dispatched(obj, name, value)
            continue
        if value is None or isinstance(value, (int, float, np.generic)):
            continue
        if name in called and stored_callable(value):
            kwargs_field = called[name]
            _judge_call(ctx, name, value, attrs.get(kwargs_field) if kwargs_field else None)
            continue
        admits = REFERENCES.get((cls, name)) or REFERENCES.get(("*", name))
        for found in [value] if stored_callable(value) else _nested(value, ctx):
            if admits is not None and admits(found):
                continue
            if _vouched(ctx, found):
                continue
            raise _refuse(name, found, "is not a reference scikit-learn keeps there uncalled")


CHECKS: Checks = [((("builtins", "object"),), _visit)]
