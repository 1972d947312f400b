"""BUILD states of classes whose ``__setstate__`` is compiled code, in exactly their own form.

``KDTree.__setstate__`` is Cython compiled with ``boundscheck=False``: it reads ``state[12]``
from whatever the file gives, so a 3-item tuple reads past the end of the tuple and crashes
the interpreter inside the unpickler, before any validation; a ``None`` where a memoryview
belongs crashes the first query. Each class of the default policy whose ``__setstate__`` (or
``__reduce__``) is compiled is listed in :data:`FORMS` with the one state form its own
``__reduce__``/``__getstate__`` writes (scikit-learn 1.9.1, numpy 2.4.6): the exact tuple
length or key set, and each element's kind (an array of one ndim and dtype, an int, a float,
an instance of exact classes, ``None`` only where the class writes it). Classes whose pickles
carry no state at all are :data:`NO_STATE`: a BUILD on one is refused. Compiled classes that
parse their own state with checks (numpy's ``ndarray`` and ``dtype``) are :data:`OWN_CHECKS`;
``tests/test_build_states.py`` fails if a compiled class of the policy is in none of the three.

As for call rules (:mod:`safeload.typegate.callrules`), each wall has its own check, side by
side here and sharing only the table: ``symbolic_problem`` (the scanner, on the values it
tracked: where it cannot know an element's kind for certain it refuses), ``concrete_problem``
(the unpickler, on the real values, before ``__setstate__`` runs) and ``skops_problem`` (the
state skops' ``ObjectNode``/``TreeNode`` hands to ``__setstate__``, with arrays' dtypes and
shapes read from their ``.npy`` headers).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from safeload import _default_types as rules
from safeload.errors import shown
from safeload.policy import TypeName, format_type_name, parse_type_name
from safeload.typegate import boosters, partialrule
from safeload.typegate._symbols import (
    _BIG_INT,
    _LONG_STR,
    _Dict,
    _Dtype,
    _Global,
    _JoblibArray,
    _Made,
    _resolve_dtype,
    _Tuple,
)
from safeload.typegate.dtypes import _Unsure
from safeload.typegate.limits import ScanLimits
from safeload.typegate.skops_schema import SchemaNode

__all__ = ["FORMS", "NO_STATE", "OWN_CHECKS", "concrete_problem", "skops_problem"]


# --- the forms --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arr:
    """An ndarray of exactly this ndim and dtype (byte order included: numpy writes native)."""

    ndim: int
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class Scalar:
    """An exact ``int``, ``float`` or ``str`` (never bool, never a numpy scalar)."""

    kind: type


@dataclass(frozen=True)
class Instance:
    """An object of exactly one of these classes (``module:qualname``)."""

    names: frozenset[TypeName]


@dataclass(frozen=True)
class Maybe:
    """``None``, or ``item``."""

    item: Element


@dataclass(frozen=True)
class TupleOf:
    """A tuple of exactly these items."""

    items: tuple[Element, ...]


@dataclass(frozen=True)
class DictOf:
    """A dict of exactly these str keys."""

    fields: dict[str, Element]


Element = Arr | Scalar | Instance | Maybe | TupleOf | DictOf

INT = Scalar(int)
FLOAT = Scalar(float)
STR = Scalar(str)
_F8 = np.dtype("<f8")
_I8 = np.dtype("<i8")  # intp on the 64-bit platforms scikit-learn ships for
_U4 = np.dtype("<u4")
_U8 = np.dtype("<u8")
# sklearn.neighbors._binary_tree's NodeData_t and sklearn.tree._tree's NODE_DTYPE.
_NODE_DATA = np.dtype(
    {
        "names": ["idx_start", "idx_end", "is_leaf", "radius"],
        "formats": ["<i8", "<i8", "<i8", "<f8"],
        "offsets": [0, 8, 16, 24],
        "itemsize": 32,
    }
)
_TREE_NODE = np.dtype(
    {
        "names": [
            "left_child",
            "right_child",
            "feature",
            "threshold",
            "impurity",
            "n_node_samples",
            "weighted_n_node_samples",
            "missing_go_to_left",
        ],
        "formats": ["<i8", "<i8", "<i8", "<f8", "<f8", "<i8", "<f8", "u1"],
        "offsets": [0, 8, 16, 24, 32, 40, 48, 56],
        "itemsize": 64,
    }
)
_METRICS = (
    "Euclidean",
    "SEuclidean",
    "Manhattan",
    "Chebyshev",
    "Minkowski",
    "Mahalanobis",
    "Hamming",
    "Canberra",
    "BrayCurtis",
    "Jaccard",
    "Matching",
    "Dice",
    "RogersTanimoto",
    "RussellRao",
    "SokalSneath",
    "Haversine",
)
METRIC_CLASSES: frozenset[TypeName] = frozenset(
    ("sklearn.metrics._dist_metrics", f"{m}Distance64") for m in _METRICS
)
# DistanceMetric64.__getstate__: (float(p), vec, mat).
_METRIC_STATE = TupleOf((FLOAT, Arr(1, _F8), Arr(2, _F8)))
# BinaryTree64.__getstate__: data, idx_array, node_data, node_bounds, seven ints, the metric,
# sample_weight (None unless given).
_BINARY_TREE_STATE = TupleOf(
    (
        Arr(2, _F8),
        Arr(1, _I8),
        Arr(1, _NODE_DATA),
        Arr(3, _F8),
        *(INT,) * 7,
        Instance(METRIC_CLASSES),
        Maybe(Arr(1, _F8)),
    )
)
_SEED_SEQUENCE = Maybe(Instance(frozenset({("numpy.random.bit_generator", "SeedSequence")})))
_INT_STATE = DictOf({"state": INT, "inc": INT})


def _bit_generator(state: Element, **extra: Element) -> TupleOf:
    """BitGenerator.__reduce__: (its ``state`` dict, its seed sequence or None)."""
    return TupleOf((DictOf({"bit_generator": STR, "state": state, **extra}), _SEED_SEQUENCE))


_CARRY = {"has_uint32": INT, "uinteger": INT}
FORMS: dict[TypeName, TupleOf | DictOf] = {
    ("sklearn.neighbors._kd_tree", "KDTree"): _BINARY_TREE_STATE,
    ("sklearn.neighbors._ball_tree", "BallTree"): _BINARY_TREE_STATE,
    **dict.fromkeys(METRIC_CLASSES, _METRIC_STATE),
    ("sklearn.tree._tree", "Tree"): DictOf(
        {"max_depth": INT, "node_count": INT, "nodes": Arr(1, _TREE_NODE), "values": Arr(3, _F8)}
    ),
    ("numpy.random._mt19937", "MT19937"): _bit_generator(DictOf({"key": Arr(1, _U4), "pos": INT})),
    ("numpy.random._pcg64", "PCG64"): _bit_generator(_INT_STATE, **_CARRY),
    ("numpy.random._pcg64", "PCG64DXSM"): _bit_generator(_INT_STATE, **_CARRY),
    ("numpy.random._philox", "Philox"): _bit_generator(
        DictOf({"counter": Arr(1, _U8), "key": Arr(1, _U8)}),
        buffer=Arr(1, _U8),
        buffer_pos=INT,
        **_CARRY,
    ),
    ("numpy.random._sfc64", "SFC64"): _bit_generator(DictOf({"state": Arr(1, _U8)}), **_CARRY),
    ("numpy.random.mtrand", "RandomState"): DictOf(
        {
            "bit_generator": STR,
            "state": DictOf({"key": Arr(1, _U4), "pos": INT}),
            "has_gauss": INT,
            "gauss": FLOAT,
        }
    ),
}
_LOSSES = (
    "CyHalfSquaredError",
    "CyAbsoluteError",
    "CyPinballLoss",
    "CyHuberLoss",
    "CyHalfPoissonLoss",
    "CyHalfGammaLoss",
    "CyHalfTweedieLoss",
    "CyHalfTweedieLossIdentity",
    "CyHalfBinomialLoss",
    "CyHalfMultinomialLoss",
    "CyExponentialLoss",
)
_SGD_LOSSES = ("Hinge", "SquaredHinge", "ModifiedHuber", "EpsilonInsensitive")
_NUMPY_SCALARS = (
    *("bool", "bool_", "object_", "float16", "float32", "float64", "complex64", "complex128"),
    *(f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)),
)
# Compiled classes whose pickles carry no BUILD: their state travels in the reconstructor's
# arguments (``__pyx_unpickle_*``, ``Generator``'s bit generator) or not at all (the losses,
# whose parameters are constructor arguments; numpy scalars, made by ``scalar``).
NO_STATE: frozenset[TypeName] = frozenset(
    {
        ("numpy.random._generator", "Generator"),
        *(("sklearn._loss._loss", n) for n in _LOSSES),
        *(
            ("sklearn.linear_model._sgd_fast", n)
            for n in (*_SGD_LOSSES, "SquaredEpsilonInsensitive")
        ),
        *(("numpy", n) for n in _NUMPY_SCALARS),
    }
)
# Compiled classes that parse their state themselves, with checks: ``ndarray.__setstate__``
# unpacks a fixed argument tuple and checks the data's length against shape and dtype; a
# dtype's BUILD is held to numpy's own forms by ``typegate.dtypes`` in both walls; Cython's
# generated ``__setstate_cython__`` (SeedSequence) checks the tuple's type, length and each
# typed field (measured: a short state raises IndexError, a list TypeError); partial's C
# ``__setstate__`` checks the tuple's length and parts' types, and both walls hold it to its
# one form besides (:mod:`safeload.typegate.partialrule`).
OWN_CHECKS: frozenset[TypeName] = frozenset(
    {
        partialrule.PARTIAL_CLASS,
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.random.bit_generator", "SeedSequence"),
    }
)


def _described(element: Element) -> str:
    """What ``element`` asks for, in words (for refusals)."""
    if isinstance(element, Arr):
        kind = "a structured" if element.dtype.names else element.dtype.name
        return f"a {element.ndim}-d {kind} array"
    if isinstance(element, Scalar):
        return f"a plain {element.kind.__name__}"
    if isinstance(element, Instance):
        return "a " + " or ".join(sorted(n for _, n in element.names)[:3])
    if isinstance(element, Maybe):
        return f"None or {_described(element.item)}"
    if isinstance(element, TupleOf):
        return f"a tuple of {len(element.items)}"
    return f"a dict of {sorted(element.fields)}"


def _refusal(cls: TypeName, why: str, who: str = "BUILD") -> str:
    return (
        f"{who} restores a {format_type_name(cls)} whose {why}; its compiled __setstate__ "
        "reads the state without checking it (a short tuple or a wrong element crashes the "
        "interpreter), so only the exact form its own pickles have is accepted"
    )


def form_of(cls: TypeName) -> TupleOf | DictOf | None:
    """The exact state form of ``cls``, or ``None`` when the table does not fix one."""
    return FORMS.get(cls)


# --- the unpickler's check, on the real values ----------------------------------------------


def _real_name(value: object) -> TypeName:
    kind = type(value)
    return (kind.__module__, kind.__qualname__)


def _real(element: Element, value: object, where: str) -> str | None:
    if isinstance(element, Maybe):
        return None if value is None else _real(element.item, value, where)
    if isinstance(element, Arr):
        if type(value) is not np.ndarray:
            return f"{where}is a {type(value).__name__}, not {_described(element)}"
        if value.ndim != element.ndim or value.dtype != element.dtype:
            return f"{where}is a {value.ndim}-d {value.dtype.name} array, not {_described(element)}"
        return None
    if isinstance(element, Scalar):
        if type(value) is not element.kind:
            return f"{where}is a {type(value).__name__}, not {_described(element)}"
        return None
    if isinstance(element, Instance):
        if _real_name(value) not in element.names:
            return f"{where}is a {type(value).__name__}, not {_described(element)}"
        return None
    if isinstance(element, TupleOf):
        if type(value) is not tuple or len(value) != len(element.items):
            length = f" of {len(value)}" if type(value) is tuple else ""
            return f"{where}is a {type(value).__name__}{length}, not {_described(element)}"
        for i, (item, got) in enumerate(zip(element.items, value, strict=True)):
            why = _real(item, got, f"{where.rstrip()}[{i}] ")
            if why is not None:
                return why
        return None
    if type(value) is not dict or set(value) != set(element.fields):
        keys = f" with keys {shown(sorted(map(str, value)))}" if type(value) is dict else ""
        return f"{where}is a {type(value).__name__}{keys}, not {_described(element)}"
    for key, item in element.fields.items():
        why = _real(item, value[key], f"{where.rstrip()}[{key!r}] ")
        if why is not None:
            return why
    return None


def concrete_problem(
    inst: object, state: object, max_booster_bytes: int = ScanLimits.max_booster_bytes
) -> str | None:
    """Why the unpickler must not hand ``state`` to ``inst``'s ``__setstate__``, or ``None``.

    A pack's booster (:mod:`safeload.typegate.boosters`) has its model blob checked.
    """
    cls = _real_name(inst)
    if cls in boosters.CHECKED:
        return boosters.booster_problem(cls, state, max_booster_bytes)
    if cls == partialrule.PARTIAL_CLASS:
        return partialrule.concrete_state(inst, state)
    if cls in NO_STATE:
        return _refusal(cls, "state is restored at all, which its own pickles never do")
    form = FORMS.get(cls)
    if form is None:
        return None
    why = _real(form, state, "state ")
    return None if why is None else _refusal(cls, why)


# --- the scanner's check, on the values it tracked ------------------------------------------

_BIT_GENERATOR_BY_NAME = {
    parse_type_name(n)[1]: parse_type_name(n) for n in rules.BIT_GENERATOR_CLASSES
}
_MT19937 = parse_type_name(rules.BIT_GENERATOR_CLASSES[0])
# Reconstructors whose first argument is the class they make.
_CLASS_ARGUMENT_RULES = frozenset(
    {
        rules.MODULE_CLASS,
        rules.PYX_UNPICKLE,
        rules.COPYREG_RECONSTRUCTOR,
        rules.COPYREG_NEWOBJ,
        rules.COPYREG_NEWOBJ_EX,
    }
)
_FACTORY_RULES = _CLASS_ARGUMENT_RULES | {rules.BIT_GENERATOR, rules.RNG}
_RNG_MADE = {
    "__randomstate_ctor": ("numpy.random.mtrand", "RandomState"),
    "__generator_ctor": ("numpy.random._generator", "Generator"),
}


# What a reconstructor does is a fact of its name, not of the caller's policy (which may not
# trust it, and then reports it as untrusted): the default table's rule, else the policy's.
_DEFAULT_RULES = {parse_type_name(n): r for n, r in rules.CALL_RULES.items()}


def _rule_of(func: _Global) -> str | None:
    return _DEFAULT_RULES.get((func.module, func.name), func.rule)


def made_class(made: _Made) -> TypeName | None:
    """The class of the object a call or NEWOBJ made, or ``None`` when it cannot be told."""
    func = made.cls
    if func is None:
        return None
    rule = _rule_of(func)
    if made.via == "new" or rule not in _FACTORY_RULES:
        return (func.module, func.name)  # a class called (or NEWOBJ'd) makes an instance of itself
    args = made.args
    if args is None:
        return None
    if rule == rules.RNG:
        return _RNG_MADE.get(func.name)
    first = args[0] if args else None
    if type(first) is _Global:
        return (first.module, first.name)
    if rule == rules.BIT_GENERATOR:
        if first is None:
            return _MT19937  # numpy's default
        if type(first) is str:
            return _BIT_GENERATOR_BY_NAME.get(first)
    return None


def _symbolic_array(value: object) -> tuple[np.dtype[Any] | None, int | None] | None:
    """``(dtype, ndim)`` of an array the stream builds, or ``None`` if it is not one.

    A part the scanner cannot read for certain is ``None`` (the caller refuses it).
    """
    if type(value) is _JoblibArray:
        return value.dtype, value.ndim
    if type(value) is not _Made or value.cls is None:
        return None
    rule = _rule_of(value.cls)
    if rule == rules.RECONSTRUCT:  # _reconstruct(ndarray, (0,), b'b'), BUILD (1, shape, dtype, ..)
        state = value.state
        items = state.items if type(state) is _Tuple else None
        if items is None or len(items) != 5:
            return None, None
        shape, dtype = items[1], items[2]
    elif rule == rules.FROMBUFFER:  # _frombuffer(data, dtype, shape, order)
        args = value.args
        if args is None or len(args) < 3:
            return None, None
        dtype, shape = args[1], args[2]
    else:
        return None
    ndim = len(shape.items) if type(shape) is _Tuple and shape.items is not None else None
    try:
        real = _resolve_dtype(dtype) if type(dtype) is _Dtype else None
    except _Unsure:
        real = None
    return real, ndim


def _symbolic(element: Element, value: object, where: str) -> str | None:
    if isinstance(element, Maybe):
        return None if value is None else _symbolic(element.item, value, where)
    if isinstance(element, Arr):
        found = _symbolic_array(value)
        if found is None:
            return (
                f"{where}is not an array the scanner can see being built, but {_described(element)}"
            )
        dtype, ndim = found
        if dtype is None or ndim is None:
            return f"{where}is an array whose dtype or shape the scanner cannot read for certain"
        if ndim != element.ndim or dtype != element.dtype:
            return f"{where}is a {ndim}-d {dtype.name} array, not {_described(element)}"
        return None
    if isinstance(element, Scalar):
        ok = type(value) is element.kind or (
            (value is _BIG_INT and element.kind is int)
            or (value is _LONG_STR and element.kind is str)
        )
        return None if ok else f"{where}is not {_described(element)}"
    if isinstance(element, Instance):
        made = made_class(value) if type(value) is _Made else None
        return None if made in element.names else f"{where}is not {_described(element)}"
    if isinstance(element, TupleOf):
        items = value.items if type(value) is _Tuple else None
        if items is None or len(items) != len(element.items):
            length = f" of {len(items)}" if items is not None else ""
            return f"{where}is not {_described(element)} (it is a {_kind(value)}{length})"
        for i, (item, got) in enumerate(zip(element.items, items, strict=True)):
            why = _symbolic(item, got, f"{where.rstrip()}[{i}] ")
            if why is not None:
                return why
        return None
    content = value.items if type(value) is _Dict else None
    if content is None or set(content) != set(element.fields):
        return f"{where}is not {_described(element)} (keys the scanner reads exactly)"
    for key, item in element.fields.items():
        why = _symbolic(item, content[key], f"{where.rstrip()}[{key!r}] ")
        if why is not None:
            return why
    return None


def _kind(value: object) -> str:
    return {_Tuple: "tuple", _Dict: "dict"}.get(
        type(value), type(value).__name__.strip("_").lower()
    )


def symbolic_problem(inst: _Made, state: object) -> str | None:
    """Why the scanner refuses this BUILD state for the object ``inst`` stands for, or ``None``."""
    cls = made_class(inst)
    if cls is None:
        return (
            "BUILD restores an object whose class the scanner cannot tell, so it cannot check "
            "the state against the form that class's compiled __setstate__ needs"
        )
    if cls == partialrule.PARTIAL_CLASS:
        return partialrule.symbolic_state(state)
    if cls in NO_STATE:
        return _refusal(cls, "state is restored at all, which its own pickles never do")
    form = FORMS.get(cls)
    if form is None:
        return None
    why = _symbolic(form, state, "state ")
    return None if why is None else _refusal(cls, why)


# --- the skops wall's check, on the state skops' loader hands to __setstate__ ---------------

ArrayHeader = Callable[[str], "tuple[np.dtype[Any], int] | None"]
_JSON_KINDS = {int: "int", float: "float", str: "str"}


def _skops(element: Element, node: SchemaNode, header: ArrayHeader, where: str) -> str | None:
    kind, name = node.kind, (node.module, node.name)
    if isinstance(element, Maybe):
        if kind == "JsonNode" and node.content == "null":
            return None
        return _skops(element.item, node, header, where)
    if isinstance(element, Arr):
        found = header(node.content) if kind == "NdArrayNode" and node.content else None
        if found is None or name != ("numpy", "ndarray"):
            return f"{where}is not a .npy array of {_described(element)}"
        dtype, ndim = found
        if ndim != element.ndim or dtype != element.dtype:
            return f"{where}is a {ndim}-d {dtype.name} array, not {_described(element)}"
        return None
    if isinstance(element, Scalar):
        value: object = None
        if kind == "JsonNode" and node.content is not None:
            try:
                value = json.loads(node.content)
            except ValueError:
                value = None
        return None if type(value) is element.kind else f"{where}is not {_described(element)}"
    if isinstance(element, Instance):
        ok = kind == "ObjectNode" and name in element.names
        return None if ok else f"{where}is not {_described(element)}"
    if isinstance(element, TupleOf):
        items = node.children.get("content")
        if kind != "TupleNode" or name != ("builtins", "tuple") or type(items) is not list:
            return f"{where}is not {_described(element)}"
        if len(items) != len(element.items):
            return f"{where}is a tuple of {len(items)}, not {_described(element)}"
        for i, (item, got) in enumerate(zip(element.items, items, strict=True)):
            why = _skops(item, got, header, f"{where.rstrip()}[{i}] ")
            if why is not None:
                return why
        return None
    content = node.children.get("content")
    key_types = node.children.get("key_types")
    str_keys = isinstance(key_types, SchemaNode) and all(
        (k.kind, k.module, k.name) == ("TypeNode", "builtins", "str")
        for k in key_types.child_nodes()
    )
    if kind != "DictNode" or type(content) is not dict or not str_keys:
        return f"{where}is not {_described(element)} with str keys"
    if set(content) != set(element.fields):
        return f"{where}has keys {shown(sorted(content))}, not {_described(element)}"
    for key, item in element.fields.items():
        why = _skops(item, content[key], header, f"{where.rstrip()}[{key!r}] ")
        if why is not None:
            return why
    return None


_SKOPS = "the skops file"
# skops' loaders that hand a state to ``__setstate__``, and the child holding it.
_SKOPS_STATE_CHILD = {"ObjectNode": "content", "TreeNode": "attrs"}


def skops_problem(node: SchemaNode, header: ArrayHeader) -> str | None:
    """Why skops must not hand this node's state to its class's ``__setstate__``, or ``None``.

    ``header(file)``: the dtype and ndim an ``.npy`` entry's header declares (``None``: not
    readable).
    """
    child = _SKOPS_STATE_CHILD.get(node.kind)
    cls = (node.module, node.name)
    if child is not None and cls in boosters.CHECKED:
        return (
            f"{_SKOPS} restores a {format_type_name(cls)}, whose model blob safeload checks "
            "only in joblib files (skops' loader would hand it to the library's native parser "
            "unchecked): save this model with format='joblib'"
        )
    if child is None or (cls not in FORMS and cls not in NO_STATE):
        return None
    state = node.children.get(child)
    if cls in NO_STATE:
        if state is None:
            return None
        return _refusal(cls, "state is restored at all, which its own files never do", _SKOPS)
    if not isinstance(state, SchemaNode):
        return _refusal(cls, "state is missing", _SKOPS)
    why = _skops(FORMS[cls], state, header, "state ")
    return None if why is None else _refusal(cls, why, _SKOPS)
