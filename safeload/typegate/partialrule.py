"""``functools.partial``, in the one form HistGradientBoosting's preprocessor pickles it.

``partial`` binds any callable to any arguments, so the policy trusts it under one exact rule:
it may bind ``sklearn.utils.validation.check_array`` (a reference the stream never calls)
and nothing else. Pickle writes ``partial.__reduce__``: ``REDUCE`` of ``partial`` on
``(check_array,)``, then ``BUILD`` with ``(check_array, (), {kwarg: value}, None)``; skops
writes a ``PartialNode`` of the same four parts. Each wall holds its own form here, on its own
values (no shared code between the walls): the call (``partial(check_array)`` only) and the
state (the same ``check_array``, no positional arguments, keywords that are ``check_array``'s
own parameters holding plain data or dtype classes, an empty ``__dict__``). What the keywords
may be when scikit-learn calls the partial on data is :mod:`safeload.validation.callables`'
judgement, after loading.
"""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any

from safeload.callsafe import DTYPE_CLASSES, is_dtype_class
from safeload.policy import TypeName, parse_type_name
from safeload.typegate._symbols import _Dict, _Global, _List, _Tuple

if TYPE_CHECKING:
    from safeload.typegate._stream import _Stream
    from safeload.typegate.callrules import ConcreteSite
    from safeload.typegate.skops_schema import SchemaNode

__all__ = ["PARTIAL_CLASS", "concrete_state", "symbolic_state"]

PARTIAL_CLASS: TypeName = ("functools", "partial")
_BOUND: TypeName = ("sklearn.utils.validation", "check_array")
_DTYPES = frozenset(parse_type_name(n) for n in DTYPE_CLASSES)
_PLAIN = (bool, type(None), str, int, float)
_CALL = (
    "with other than (sklearn.utils.validation.check_array,): it binds whatever callable and "
    "arguments it is given"
)
_FORM = "(check_array, (), {<check_array keyword>: <plain data>}, None)"


def _keywords() -> frozenset[str]:
    """``check_array``'s own keyword parameters (read from the installed function)."""
    from sklearn.utils.validation import check_array

    params = inspect.signature(check_array).parameters
    return frozenset(n for n in params if n != "array")


def _state_problem(why: str) -> str:
    return (
        f"BUILD restores a functools.partial whose {why}; only the form scikit-learn's own "
        f"pickles have, {_FORM}, is accepted (a partial binds whatever its state names)"
    )


# --- the scanner's wall -----------------------------------------------------------------------


def _is_bound(value: object) -> bool:
    return type(value) is _Global and (value.module, value.name) == _BOUND


def symbolic_args(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    """``partial(check_array)`` (by REDUCE): the one positional argument, exactly that name."""
    if len(items) != 1 or not _is_bound(items[0]):
        return _CALL
    return None


def _symbolic_value(value: object) -> bool:
    if type(value) in _PLAIN:
        return True
    if type(value) is _Global:
        return (value.module, value.name) in _DTYPES
    if type(value) is _List and value.items is not None:
        return bool(value.items) and all(
            type(v) is _Global and (v.module, v.name) in _DTYPES for v in value.items
        )
    return False


def symbolic_state(state: object) -> str | None:
    """The scanner's check of a partial's BUILD state, on the values it tracked."""
    items = state.items if type(state) is _Tuple else None
    if items is None or len(items) != 4:
        return _state_problem("state is not a tuple of 4 the scanner reads")
    func, args, kwds, extra = items
    if not _is_bound(func):
        return _state_problem("function is not sklearn.utils.validation.check_array")
    if type(args) is not _Tuple or args.items != ():
        return _state_problem("positional arguments are not ()")
    if extra is not None and not (type(extra) is _Dict and extra.items == {}):
        return _state_problem("__dict__ is neither None nor empty")
    if kwds is None:
        return None
    content = kwds.items if type(kwds) is _Dict else None
    if content is None:
        return _state_problem("keywords are not a dict the scanner reads")
    names = _keywords()
    for key, value in content.items():
        if type(key) is not str or key not in names:
            return _state_problem("keywords name something that is not check_array's parameter")
        if not _symbolic_value(value):
            return _state_problem(f"keyword {key!r} is not plain data or a dtype class")
    return None


# --- the unpickler's wall ---------------------------------------------------------------------


def _real_bound(value: object) -> bool:
    from sklearn.utils.validation import check_array

    return value is check_array


def concrete_args(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    """``partial(check_array)`` (by REDUCE), ``check_array`` by identity."""
    if len(args) != 1 or not _real_bound(args[0]) or _BOUND not in site.names_of(args[0]):
        return _CALL
    return None


def _real_value(value: object) -> bool:
    if type(value) in _PLAIN:
        return True
    if type(value) is list:
        return bool(value) and all(is_dtype_class(v) for v in value)
    return is_dtype_class(value)


def concrete_state(inst: object, state: object) -> str | None:
    """The unpickler's check of a partial's BUILD state, on the real values."""
    if type(state) is not tuple or len(state) != 4:
        return _state_problem("state is not a tuple of 4")
    func, args, kwds, extra = state
    if not _real_bound(func) or func is not getattr(inst, "func", None):
        return _state_problem("function is not the check_array it was made with")
    if type(args) is not tuple or args:
        return _state_problem("positional arguments are not ()")
    if extra is not None and not (type(extra) is dict and not extra):
        return _state_problem("__dict__ is neither None nor empty")
    if kwds is None:
        return None
    if type(kwds) is not dict:
        return _state_problem("keywords are not a dict")
    names = _keywords()
    for key, value in kwds.items():
        if type(key) is not str or key not in names:
            return _state_problem("keywords name something that is not check_array's parameter")
        if not _real_value(value):
            return _state_problem(f"keyword {key!r} is not plain data or a dtype class")
    return None


# --- the skops wall: skops' PartialNode does partial(func, *args, **kwds), then setstate ------


def _skops_value(node: SchemaNode) -> bool:
    if node.kind == "JsonNode":
        try:
            value = json.loads(node.content or "")
        except ValueError:
            return False
        return type(value) in _PLAIN
    if node.kind == "TypeNode":
        return (node.module, node.name) in _DTYPES
    if node.kind == "ListNode" and (node.module, node.name) == ("builtins", "list"):
        content = node.children.get("content")
        return (
            isinstance(content, list)
            and bool(content)
            and all(c.kind == "TypeNode" and (c.module, c.name) in _DTYPES for c in content)
        )
    return False


def skops_call(how: str, node: SchemaNode | None) -> str | None:
    """A ``PartialNode`` of ``(check_array, (), {<its kwarg>: <plain data>}, None)``, only."""
    if how != "REDUCE" or node is None or node.kind != "PartialNode":
        return f"by {how}, other than a PartialNode, which skops never writes for it"
    func, args = node.children.get("func"), node.children.get("args")
    kwds, namespace = node.children.get("kwds"), node.children.get("namespace")
    if not (
        func is not None
        and not isinstance(func, (list, dict))
        and func.kind == "FunctionNode"
        and (func.module, func.name) == _BOUND
    ):
        return "binding something other than sklearn.utils.validation.check_array"
    if args is None or isinstance(args, (list, dict)) or args.kind != "TupleNode":
        return "with positional arguments that are not a tuple"
    if args.children.get("content") != [] or (args.module, args.name) != ("builtins", "tuple"):
        return "with positional arguments"
    ns_ok = namespace is not None and not isinstance(namespace, (list, dict))
    if not ns_ok or not (
        (namespace.kind == "JsonNode" and namespace.content == "null")  # type: ignore[union-attr]
        or (namespace.kind == "DictNode" and namespace.children.get("content") == {})  # type: ignore[union-attr]
    ):
        return "with a __dict__ that is neither None nor empty"
    if kwds is None or isinstance(kwds, (list, dict)) or kwds.kind != "DictNode":
        return "with keywords that are not a dict"
    content = kwds.children.get("content")
    key_types = kwds.children.get("key_types")
    str_keys = key_types is not None and not isinstance(key_types, (list, dict))
    if not str_keys or not isinstance(content, dict):
        return "with keywords that are not a dict of str keys"
    if any(
        (k.kind, k.module, k.name) != ("TypeNode", "builtins", "str")
        for k in key_types.child_nodes()  # type: ignore[union-attr]
    ):
        return "with keywords that are not a dict of str keys"
    names = _keywords()
    for key, value in content.items():
        if key not in names:
            return "with a keyword that is not check_array's parameter"
        if not _skops_value(value):
            return f"with keyword {key!r} that is not plain data or a dtype class"
    return None
