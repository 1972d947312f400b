"""The call rules: the only forms in which a file may call a trusted name, in every wall.

The policy marks a few trusted names *callable*, each under one rule (see
:mod:`safeload._default_types`): ``numpy.core.multiarray._reconstruct`` only with shape
``(0,)``, an estimator class only by ``NEWOBJ`` without arguments, and so on. Each rule is
enforced three times, and this module keeps the three checks of a rule next to each other in
one :class:`CallRule`, so that a rule missing in one wall is a failing test
(``tests/test_callrules.py``), not a surprise at run time:

* ``symbolic``: the static scanner's check, on the values it tracked
  (:mod:`safeload.typegate._symbols`), before anything is deserialized;
* ``concrete``: the restricted unpickler's check (:mod:`safeload._unpickle`), on the real
  values, just before it makes the call;
* ``skops``: the skops gate's check, on its own walk of the skops schema, for the two calls
  skops' loaders make with a type the file names: ``cls.__new__(cls)`` (``ObjectNode``) and
  ``constructor(*args)`` (``TreeNode``, ``LossNode``, ``ConstructorFromReduceNode``).

The three implementations are independent on purpose: walls that shared code would share a bug.
Every check returns why the call breaks its rule (a phrase that follows "it calls X"), or
``None`` when it keeps to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.random.bit_generator import BitGenerator

from safeload import _default_types as rules
from safeload.policy import TypeName, format_type_name, parse_type_name
from safeload.typegate import packrules, partialrule
from safeload.typegate._symbols import (
    _BIT_GENERATOR_CTOR,
    _BIT_GENERATORS,
    _BYTES,
    _DICT_CLASSES,
    _LONG_STR,
    _OBJ,
    _ZERO_SHAPE_DTYPES,
    _Dict,
    _Dtype,
    _falsy,
    _Global,
    _JoblibArray,
    _List,
    _Made,
    _Tuple,
)
from safeload.typegate.dtypes import dtype_call_problem

if TYPE_CHECKING:
    from safeload.typegate._stream import _Stream
    from safeload.typegate.skops_schema import SchemaNode

__all__ = ["RULES", "CallRule", "ConcreteSite", "skops_call_problem"]


class ConcreteSite(Protocol):
    """What the restricted unpickler tells a concrete check about the values it holds."""

    def names_of(self, value: object) -> set[TypeName]:
        """The policy names ``value`` was found under (empty: not a global find_class gave)."""

    def rule_of(self, value: object) -> tuple[bool, str | None]:
        """``(is a global find_class gave, its call rule or None)``."""

    def charge(self, values: list[Any] | tuple[Any, ...]) -> None:
        """Spend the hashing work of ``values`` before the call hashes them."""

    def violation(
        self, rule: str, how: str, func: object, names: set[TypeName], args: object, kwargs: object
    ) -> str | None:
        """Why calling ``func`` (under ``rule``) this way breaks the rule, or ``None``."""


def _made(value: object) -> bool:
    """Whether ``value`` stands for an object some call made (contents unknown)."""
    return value is _OBJ or type(value) is _Made


SymbolicCheck = Callable[["_Stream", _Global, str, "tuple[Any, ...] | None", object], "str | None"]
ConcreteCheck = Callable[[ConcreteSite, str, object, "set[TypeName]", object, object], "str | None"]
SkopsCheck = Callable[[str, "SchemaNode | None"], "str | None"]


@dataclass(frozen=True)
class CallRule:
    """One rule of :mod:`safeload._default_types`, as each wall enforces it."""

    name: str
    symbolic: SymbolicCheck
    concrete: ConcreteCheck
    skops: SkopsCheck


_NEWOBJ_OPS = ("NEWOBJ", "NEWOBJ_EX")
_NAMEDTUPLE_RULES = frozenset(rules.namedtuple_rule(n) for n in rules.NAMEDTUPLES)
_RECONSTRUCTOR_FORMS = (
    "with other than (<class>, object, None), (<dict class>, dict, <dict>) or "
    "(<namedtuple>, tuple, <values>)"
)


# --- the scanner's wall: symbolic values ------------------------------------------------------


SymbolicArgs = Callable[["_Stream", _Global, "tuple[Any, ...]"], "str | None"]


def _symbolic_reduce(check: SymbolicArgs) -> SymbolicCheck:
    """A rule whose calls are always ``REDUCE`` with positional arguments the scanner read."""

    def symbolic(
        s: _Stream, func: _Global, how: str, items: tuple[Any, ...] | None, kwargs: object
    ) -> str | None:
        if kwargs is not None and not _falsy(kwargs):
            return "with keyword arguments"
        if how != "REDUCE":
            return f"by {how}"
        if items is None:
            return "with arguments the scanner cannot read"
        return check(s, func, items)

    return symbolic


def _symbolic_any(
    s: _Stream, func: _Global, how: str, items: tuple[Any, ...] | None, kwargs: object
) -> str | None:
    return None


def _symbolic_new(
    s: _Stream, func: _Global, how: str, items: tuple[Any, ...] | None, kwargs: object
) -> str | None:
    if kwargs is not None and not _falsy(kwargs):
        return "with keyword arguments"
    if how not in _NEWOBJ_OPS:
        return (
            f"by {how}, which would run its constructor on the file's arguments "
            "(pickles create it with NEWOBJ and no arguments)"
        )
    return None if items == () else "by NEWOBJ with arguments"


def _symbolic_no_args(
    s: _Stream, func: _Global, how: str, items: tuple[Any, ...] | None, kwargs: object
) -> str | None:
    if kwargs is not None and not _falsy(kwargs):
        return "with keyword arguments"
    return None if items == () else "with arguments"


def _is_zero_shape(value: object) -> bool:
    items = value.items if type(value) is _Tuple else None
    return items is not None and len(items) == 1 and type(items[0]) is int and items[0] == 0


def _is_bit_generator(value: object) -> bool:
    if type(value) is str:
        return True
    return type(value) is _Global and (value.module, value.name) in _BIT_GENERATORS


def _check_dtype(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    return dtype_call_problem(items)


def _zero_shape_call(items: tuple[Any, ...], classes: int) -> bool:
    """``(<class>, ..., (0,), 'b')``: numpy's reconstructors as numpy pickles call them."""
    return (
        len(items) == classes + 2
        and all(type(c) is _Global for c in items[:classes])
        and _is_zero_shape(items[classes])
        and items[classes + 1] in _ZERO_SHAPE_DTYPES
    )


def _check_reconstruct(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if not _zero_shape_call(items, 1):
        return "with other than (<array class>, (0,), b'b'): an allocation the file would choose"
    return None


def _check_mareconstruct(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if not _zero_shape_call(items, 2):
        return "with other than (<class>, <class>, (0,), 'b'): an allocation the file would choose"
    return None


def _check_scalar(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) != 2 or type(items[0]) is not _Dtype:
        return "with other than (<dtype>, <raw bytes>) (the one-argument form allocates)"
    if type(items[1]) is not bytes and items[1] is not _BYTES:
        return "with a value that is not its raw bytes"
    return None


def _check_frombuffer(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) not in (4, 5) or type(items[1]) is not _Dtype:
        return "with other than (<bytes>, <dtype>, <shape>, <order>[, <axes>])"
    buf, _, shape, order = items[:4]
    if type(buf) is not bytes and buf is not _BYTES:
        return "on something other than bytes from the file"
    if not _is_int_tuple(shape) or order not in ("C", "F", "K"):
        return "with a shape or order numpy never writes"
    if len(items) == 5 and items[4] is not None and not _is_int_tuple(items[4]):
        return "with an axis order that is not a tuple of ints"
    return None


def _is_int_tuple(value: object) -> bool:
    items = value.items if type(value) is _Tuple else None
    return items is not None and all(type(v) is int for v in items)


def _check_bit_generator(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) > 1 or (items and not _is_bit_generator(items[0])):
        return "with something other than a bit generator's name or class (it calls what it gets)"
    return None


def _check_rng(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) > 2:
        return "with more than two arguments"
    if items and not (_is_bit_generator(items[0]) or _made(items[0])):
        return "with something other than a bit generator or its name"
    if len(items) == 2:
        ctor = items[1]
        if type(ctor) is not _Global or (ctor.module, ctor.name) != _BIT_GENERATOR_CTOR:
            return "with a constructor other than numpy's __bit_generator_ctor (it is called)"
    return None


def _check_module_class(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    cls = items[0] if len(items) == 1 else None
    if type(cls) is not _Global or cls.module != func.module or cls is func:
        return f"with something other than one class of {func.module} (it creates what it gets)"
    return None


def _check_pyx_unpickle(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    target = (func.module, func.name.removeprefix("__pyx_unpickle_"))
    cls = items[0] if len(items) == 3 else None
    if type(cls) is not _Global or (cls.module, cls.name) != target or type(items[1]) is not int:
        return f"with other than ({format_type_name(target)}, <checksum>, <state>)"
    return None


def _check_tree(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) != 3:
        return "with other than (n_features, n_classes, n_outputs)"
    n_features, n_classes, n_outputs = items
    if type(n_features) is not int or n_features < 0:
        return "with a feature count that is not a non-negative int"
    if type(n_outputs) is not int or n_outputs < 1:
        return "with an output count that is not a positive int"
    if type(n_classes) is not _JoblibArray and not _made(n_classes):
        return "with class counts that are not an array"
    return None


def _check_hashed(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) > 1:
        return "with more than one argument"
    if items:
        arg = items[0]
        if type(arg) is not _List and type(arg) is not _Tuple:
            return "with something other than a list or tuple of its items"
        if arg.items is None:
            return (
                "with more items than the scanner follows one by one (protocols 4 and 5 write "
                "large sets with ADDITEMS)"
            )
        s.hashed(arg.items)
    return None


def _check_copyreg_reconstructor(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    """Protocols 0-1 write ``(cls, object, None)``; for a dict or tuple class, that base.

    ``dict.__new__(cls, d)`` then ``dict.__init__(obj, d)`` copies a dict the stream built (its
    keys already hashed and charged) into a class whose item assignment is dict's own (what
    SETITEMS may fill at protocol 2); ``tuple.__new__(cls, values)`` is a namedtuple's NEWOBJ.
    Any other base would run its own ``__new__(cls, state)`` and ``__init__(obj, state)``.
    """
    if len(items) != 3:
        return "with other than (class, base, state)"
    cls, base, state = items
    if type(base) is not _Global or type(cls) is not _Global:
        return _RECONSTRUCTOR_FORMS
    if base.kind == "object" and state is None:  # object.__new__(cls)
        return s.copyreg_target(cls, "NEWOBJ", ())
    if (base.module, base.name) == ("builtins", "dict") and (cls.module, cls.name) in _DICT_CLASSES:
        if type(state) is not _Dict:
            return "with a state for a dict class that is not a dict the stream built"
        return s.copyreg_target(cls, "NEWOBJ", ())
    if (base.module, base.name) == ("builtins", "tuple") and cls.rule in _NAMEDTUPLE_RULES:
        if type(state) is not _Tuple or state.items is None:
            return "with a namedtuple's values the scanner cannot read"
        return s.copyreg_target(cls, "NEWOBJ", state.items)  # tuple.__new__(cls, values)
    return _RECONSTRUCTOR_FORMS


def _check_encode(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    """``(text, 'latin1')``: what pickle writes for bytes; one byte per character of the file."""
    if len(items) != 2 or type(items[1]) is not str or items[1] != "latin1":
        return "with other than (<str>, 'latin1') (another codec would be looked up and run)"
    if type(items[0]) is not str and items[0] is not _LONG_STR:
        return "on something other than a str from the file"
    return None


def _symbolic_namedtuple(fields: int) -> SymbolicCheck:
    """``cls.__new__(cls, *values)`` with one value per field: it only stores them."""

    def symbolic(
        s: _Stream, func: _Global, how: str, items: tuple[Any, ...] | None, kwargs: object
    ) -> str | None:
        if kwargs is not None and not _falsy(kwargs):
            return "with keyword arguments"
        if how not in _NEWOBJ_OPS:
            return f"by {how} (pickles create it with NEWOBJ and its field values)"
        if items is None or len(items) != fields:
            return f"with other than its {fields} field values"
        return None

    return symbolic


def _check_copyreg_newobj(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if not items:
        return "without a class"
    return s.copyreg_target(items[0], "NEWOBJ", items[1:])


def _check_copyreg_newobj_ex(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) != 3:
        return "with other than (class, args, kwargs)"
    cls, args, kwargs = items
    if type(args) is not _Tuple or not _falsy(kwargs):
        return "with arguments the scanner cannot read"
    return s.copyreg_target(cls, "NEWOBJ_EX", args.items)


# --- the unpickler's wall: real values --------------------------------------------------------


ConcreteArgs = Callable[[ConcreteSite, object, "set[TypeName]", "tuple[Any, ...]"], "str | None"]


def _positional(args: object, kwargs: object) -> tuple[Any, ...] | str:
    """The positional arguments, or why not: keyword arguments, or arguments not a tuple."""
    if kwargs:
        return "with keyword arguments"
    if type(args) is not tuple:
        return "with arguments that are not a tuple"
    return args


def _concrete_reduce(check: ConcreteArgs) -> ConcreteCheck:
    """A rule whose calls are always ``REDUCE`` with a tuple of positional arguments."""

    def concrete(
        site: ConcreteSite,
        how: str,
        func: object,
        names: set[TypeName],
        args: object,
        kwargs: object,
    ) -> str | None:
        args = _positional(args, kwargs)
        if isinstance(args, str):
            return args
        if how != "REDUCE":
            return f"by {how}"
        return check(site, func, names, args)

    return concrete


def _concrete_any(
    site: ConcreteSite, how: str, func: object, names: set[TypeName], args: object, kwargs: object
) -> str | None:
    return None


def _concrete_new(
    site: ConcreteSite, how: str, func: object, names: set[TypeName], args: object, kwargs: object
) -> str | None:
    args = _positional(args, kwargs)
    if isinstance(args, str):
        return args
    if how not in _NEWOBJ_OPS:
        return f"by {how}, which would run its constructor on the file's arguments"
    return None if not args else "by NEWOBJ with arguments"


def _concrete_no_args(
    site: ConcreteSite, how: str, func: object, names: set[TypeName], args: object, kwargs: object
) -> str | None:
    args = _positional(args, kwargs)
    if isinstance(args, str):
        return args
    return None if not args else "with arguments"


def _real_zero(shape: object, code: object) -> bool:
    return (
        type(shape) is tuple
        and len(shape) == 1
        and type(shape[0]) is int
        and shape[0] == 0
        and type(code) in (str, bytes)
        and code in _ZERO_SHAPE_DTYPES
    )


def _real_bit_generator(site: ConcreteSite, value: object) -> bool:
    return type(value) is str or bool(site.names_of(value) & _BIT_GENERATORS)


def _real_int_tuple(value: object) -> bool:
    return type(value) is tuple and all(type(v) is int for v in value)


def _real_dtype(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    return dtype_call_problem(args)


def _real_zero_shape_call(site: ConcreteSite, args: tuple[Any, ...], classes: int) -> bool:
    """``(<class>, ..., (0,), 'b')``, every class one that find_class returned."""
    return (
        len(args) == classes + 2
        and all(site.rule_of(c)[0] for c in args[:classes])
        and _real_zero(args[classes], args[classes + 1])
    )


def _real_reconstruct(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    if _real_zero_shape_call(site, args, 1):
        return None
    return "with other than (<array class>, (0,), b'b')"


def _real_mareconstruct(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    if _real_zero_shape_call(site, args, 2):
        return None
    return "with other than (<class>, <class>, (0,), 'b')"


def _real_scalar(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    if len(args) == 2 and isinstance(args[0], np.dtype) and type(args[1]) is bytes:
        return None
    return "with other than (<dtype>, <raw bytes>)"


def _real_frombuffer(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    """_frombuffer(buf, dtype, shape, order[, axis_order]): a view on bytes from the file."""
    if len(args) not in (4, 5) or not isinstance(args[1], np.dtype):
        return "with other than (<bytes>, <dtype>, <shape>, <order>[, <axes>])"
    if type(args[0]) not in (bytes, bytearray, memoryview):
        return "on something other than bytes from the file"
    if not _real_int_tuple(args[2]) or type(args[3]) is not str or args[3] not in ("C", "F", "K"):
        return "with a shape or order numpy never writes"
    if len(args) == 5 and args[4] is not None and not _real_int_tuple(args[4]):
        return "with an axis order that is not a tuple of ints"
    return None


def _real_bit_generator_ctor(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    if len(args) > 1 or (args and not _real_bit_generator(site, args[0])):
        return "with something other than a bit generator's name or class"
    return None


def _real_rng(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    if len(args) > 2:
        return "with more than two arguments"
    if args and not (_real_bit_generator(site, args[0]) or isinstance(args[0], BitGenerator)):
        return "with something other than a bit generator or its name"
    if len(args) == 2 and _BIT_GENERATOR_CTOR not in site.names_of(args[1]):
        return "with a constructor other than numpy's __bit_generator_ctor"
    return None


def _real_module_class(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    modules = {m for m, _ in names}
    if len(args) == 1 and args[0] is not func and modules & {m for m, _ in site.names_of(args[0])}:
        return None
    return "with something other than a class of its own module"


def _real_pyx_unpickle(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    targets = {(m, n.removeprefix("__pyx_unpickle_")) for m, n in names}
    if len(args) == 3 and targets & site.names_of(args[0]) and type(args[1]) is int:
        return None
    return "with other than (<its class>, <checksum>, <state>)"


def _real_tree(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    """Tree(n_features, n_classes, n_outputs) allocates n_outputs and reads n_classes."""
    if len(args) != 3:
        return "with other than (n_features, n_classes, n_outputs)"
    n_features, n_classes, n_outputs = args
    if type(n_features) is not int or n_features < 0:
        return "with a feature count that is not a non-negative int"
    if type(n_outputs) is not int or n_outputs < 1:
        return "with an output count that is not a positive int"
    if (
        not isinstance(n_classes, np.ndarray)
        or n_classes.ndim != 1
        or n_classes.dtype.kind not in "iu"
        or len(n_classes) != n_outputs
    ):
        return "with class counts that are not one integer per output"
    return None


def _real_hashed(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    if len(args) > 1 or (args and type(args[0]) not in (list, tuple)):
        return "with something other than a list or tuple of its items"
    if args:
        site.charge(args[0])
    return None


def _real_copyreg(rule: str) -> ConcreteArgs:
    """Copyreg's helpers construct their first argument: hold it to its own rule."""

    def check(
        site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
    ) -> str | None:
        if not args:
            return "without a class"
        how, cls_args, kwargs = "NEWOBJ", args[1:], None
        if rule == rules.COPYREG_RECONSTRUCTOR:
            # object.__new__(cls), or tuple.__new__(cls, values) for a namedtuple; any other
            # base would run base.__new__(cls, state) and base.__init__(obj, state).
            if len(args) != 3:
                return "with other than (class, base, state)"
            cls, base, state = args
            if base is object and state is None:
                cls_args = ()
            elif base is dict and type(state) is dict:
                if not (isinstance(cls, type) and issubclass(cls, dict)):
                    return "with base dict for a class that is not a dict"
                cls_args = ()
            elif base is tuple and type(state) is tuple:
                if site.rule_of(args[0])[1] not in _NAMEDTUPLE_RULES:
                    return "with base tuple for a class that is not a namedtuple the policy names"
                cls_args = state
            else:
                return _RECONSTRUCTOR_FORMS
        elif rule == rules.COPYREG_NEWOBJ_EX:
            if len(args) != 3:
                return "with other than (class, args, kwargs)"
            how, cls_args, kwargs = "NEWOBJ_EX", args[1], args[2]
        cls = args[0]
        is_global, cls_rule = site.rule_of(cls)
        if not is_global or cls_rule is None:
            return "to construct a class the policy does not let the file call"
        why = site.violation(cls_rule, how, cls, site.names_of(cls), cls_args, kwargs)
        return None if why is None else f"to construct a class {why}"

    return check


def _real_encode(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    if len(args) == 2 and type(args[0]) is str and type(args[1]) is str and args[1] == "latin1":
        return None
    return "with other than (<str>, 'latin1')"


def _concrete_namedtuple(name: str, fields: tuple[str, ...]) -> ConcreteCheck:
    """NEWOBJ with one value per field, on the class whose real fields are the policy's."""
    pair = parse_type_name(name)

    def concrete(
        site: ConcreteSite,
        how: str,
        func: object,
        names: set[TypeName],
        args: object,
        kwargs: object,
    ) -> str | None:
        args = _positional(args, kwargs)
        if isinstance(args, str):
            return args
        if how not in _NEWOBJ_OPS:
            return f"by {how} (pickles create it with NEWOBJ and its field values)"
        real = vars(func).get("_fields") if isinstance(func, type) else None
        if pair not in names or real != fields:
            return f"as {format_type_name(pair)}, whose fields are not {fields}"
        if len(args) != len(fields):
            return f"with other than its {len(fields)} field values"
        return None

    return concrete


# --- the skops wall: skops' node tree ---------------------------------------------------------
#
# ``how`` is "NEWOBJ" for ``ObjectNode`` (``cls.__new__(cls)``, then its state) and "REDUCE"
# for the reduce-like nodes (``constructor(*args)``), whose ``args`` is the arguments' node of
# the gate's own walk of the schema (:mod:`safeload.typegate.skops_schema`), never skops' tree.


def _skops_any(how: str, args: SchemaNode | None) -> str | None:
    return None


def _skops_new(how: str, args: SchemaNode | None) -> str | None:
    if how != "NEWOBJ":
        return f"by {how}, which would run its constructor on the file's arguments"
    return None


def _skops_no_args(how: str, args: SchemaNode | None) -> str | None:
    items = _skops_items(args)
    if how == "NEWOBJ" or items == []:
        return None
    return "with arguments"


def _skops_never(how: str, args: SchemaNode | None) -> str | None:
    """Reconstructors numpy, scipy and Cython write into pickles: never a skops call.

    skops stores arrays, dtypes, generators and sparse matrices with loaders of its own.
    """
    return f"by {how}, which skops never writes for it"


def _skops_items(args: SchemaNode | None) -> list[SchemaNode] | None:
    """The argument nodes of a reduce-like node, if they are a plain tuple or list of nodes."""
    if args is None:
        return []
    if args.kind not in ("TupleNode", "ListNode"):
        return None
    content = args.children.get("content")
    return list(content) if isinstance(content, list) else None


def _skops_int(node: SchemaNode) -> int | None:
    """The int a ``JsonNode`` holds, read from its JSON text as skops' loader reads it."""
    content = node.content if node.kind == "JsonNode" else None
    if type(content) is not str or len(content) > 32:
        return None
    try:
        value = json.loads(content)
    except (TypeError, ValueError, AttributeError):
        return None
    return value if type(value) is int else None


def _skops_tree(how: str, args: SchemaNode | None) -> str | None:
    """``Tree(n_features, n_classes, n_outputs)``; the shapes are validated after loading."""
    if how != "REDUCE":
        return f"by {how}"
    items = _skops_items(args)
    if items is None or len(items) != 3:
        return "with other than (n_features, n_classes, n_outputs)"
    n_features, n_outputs = _skops_int(items[0]), _skops_int(items[2])
    if n_features is None or n_features < 0:
        return "with a feature count that is not a non-negative int"
    if n_outputs is None or n_outputs < 1:
        return "with an output count that is not a positive int"
    if items[1].kind != "NdArrayNode":
        return "with class counts that are not an array"
    return None


def _skops_namedtuple(fields: int) -> SkopsCheck:
    """A TupleNode naming a namedtuple: skops calls the class on its items, one per field."""

    def skops(how: str, args: SchemaNode | None) -> str | None:
        items = _skops_items(args)
        if how != "REDUCE" or items is None or len(items) != fields:
            return f"by {how} with other than its {fields} field values"
        return None

    return skops


def skops_call_problem(rule: str | None, how: str, args: SchemaNode | None) -> str | None:
    """Why skops' call of a type under ``rule`` breaks it (``None``: reference-only, refused)."""
    if rule is None:
        return (
            f"by {how}: the policy trusts it only as a stored reference, never as something a "
            "file may construct"
        )
    entry = RULES.get(rule)
    if entry is None:
        return f"under an unknown call rule {rule!r}"
    return entry.skops(how, args)


# --- the rules, side by side -------------------------------------------------------------------

RULES: dict[str, CallRule] = {
    rule.name: rule
    for rule in (
        CallRule(rules.ANY, _symbolic_any, _concrete_any, _skops_any),
        CallRule(rules.NEW, _symbolic_new, _concrete_new, _skops_new),
        CallRule(rules.NO_ARGS, _symbolic_no_args, _concrete_no_args, _skops_no_args),
        CallRule(
            rules.DTYPE, _symbolic_reduce(_check_dtype), _concrete_reduce(_real_dtype), _skops_never
        ),
        CallRule(
            rules.RECONSTRUCT,
            _symbolic_reduce(_check_reconstruct),
            _concrete_reduce(_real_reconstruct),
            _skops_never,
        ),
        CallRule(
            rules.MARECONSTRUCT,
            _symbolic_reduce(_check_mareconstruct),
            _concrete_reduce(_real_mareconstruct),
            _skops_never,
        ),
        CallRule(
            rules.SCALAR,
            _symbolic_reduce(_check_scalar),
            _concrete_reduce(_real_scalar),
            _skops_never,
        ),
        CallRule(
            rules.FROMBUFFER,
            _symbolic_reduce(_check_frombuffer),
            _concrete_reduce(_real_frombuffer),
            _skops_never,
        ),
        CallRule(
            rules.BIT_GENERATOR,
            _symbolic_reduce(_check_bit_generator),
            _concrete_reduce(_real_bit_generator_ctor),
            _skops_never,
        ),
        CallRule(
            rules.RNG, _symbolic_reduce(_check_rng), _concrete_reduce(_real_rng), _skops_never
        ),
        CallRule(
            rules.MODULE_CLASS,
            _symbolic_reduce(_check_module_class),
            _concrete_reduce(_real_module_class),
            _skops_never,
        ),
        CallRule(
            rules.PYX_UNPICKLE,
            _symbolic_reduce(_check_pyx_unpickle),
            _concrete_reduce(_real_pyx_unpickle),
            _skops_never,
        ),
        CallRule(
            rules.TREE, _symbolic_reduce(_check_tree), _concrete_reduce(_real_tree), _skops_tree
        ),
        CallRule(
            rules.HASHED,
            _symbolic_reduce(_check_hashed),
            _concrete_reduce(_real_hashed),
            _skops_never,
        ),
        CallRule(
            rules.COPYREG_RECONSTRUCTOR,
            _symbolic_reduce(_check_copyreg_reconstructor),
            _concrete_reduce(_real_copyreg(rules.COPYREG_RECONSTRUCTOR)),
            _skops_never,
        ),
        CallRule(
            rules.COPYREG_NEWOBJ,
            _symbolic_reduce(_check_copyreg_newobj),
            _concrete_reduce(_real_copyreg(rules.COPYREG_NEWOBJ)),
            _skops_never,
        ),
        CallRule(
            rules.COPYREG_NEWOBJ_EX,
            _symbolic_reduce(_check_copyreg_newobj_ex),
            _concrete_reduce(_real_copyreg(rules.COPYREG_NEWOBJ_EX)),
            _skops_never,
        ),
        CallRule(
            rules.ENCODE,
            _symbolic_reduce(_check_encode),
            _concrete_reduce(_real_encode),
            _skops_never,
        ),
        CallRule(
            rules.PARTIAL,
            _symbolic_reduce(partialrule.symbolic_args),
            _concrete_reduce(partialrule.concrete_args),
            partialrule.skops_call,
        ),
        CallRule(
            rules.BYTEARRAY,
            _symbolic_reduce(packrules.symbolic_bytearray),
            _concrete_reduce(packrules.concrete_bytearray),
            packrules.skops_never,
        ),
        CallRule(
            rules.DEFAULTDICT,
            _symbolic_reduce(packrules.symbolic_defaultdict),
            _concrete_reduce(packrules.concrete_defaultdict),
            packrules.skops_never,
        ),
        *(
            CallRule(
                rules.namedtuple_rule(name),
                _symbolic_namedtuple(len(fields)),
                _concrete_namedtuple(name, fields),
                _skops_namedtuple(len(fields)),
            )
            for name, fields in rules.NAMEDTUPLES.items()
        ),
    )
}
