"""The scanner's symbolic values: what it knows of each value the loader would build.

Plain scalars (None, bool, int, float, short str and bytes) are represented by themselves.
Everything else is one of the small classes here. Nothing is ever resolved or imported: a
global is a pair of names and the policy's verdict on them.
"""

from __future__ import annotations

import pickletools
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from safeload import _default_types as rules
from safeload.policy import TypeName, format_type_name, parse_type_name
from safeload.typegate.dtypes import (
    MAX_PICTURE_DEPTH,
    DtypeFormError,
    Parts,
    _Unsure,
    plain_code,
    rebuild_dtype,
)

# --- symbolic values ------------------------------------------------------------------------
#
# Plain scalars (None, bool, int, float, short str and bytes) are represented by themselves.
# Everything else is one of the small classes below. "Tainted" values are joblib's array wrapper
# class or instances of it, or containers holding one: they may only flow where joblib puts
# them, because the loader reads raw array bytes whenever a BUILD leaves a wrapper on the stack.


class _Opaque:
    """A value whose content the scanner does not track (and does not need)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


_OBJ = _Opaque("an object made by a call")  # may be anything, None included
_UNRESOLVED = _Opaque("an unresolvable global")  # reported where it was made
_LONG_STR = _Opaque("a long string")
_BYTES = _Opaque("a long bytes value")
_BIG_INT = _Opaque("a very large int")
_MISSING = _Opaque("missing")


class _Made(_Opaque):
    """One object a call to a named global made (what it is inside is not tracked).

    ``cls``: the global called; ``args``: its arguments (``None``: not readable); ``via``:
    ``"new"`` for NEWOBJ (``cls.__new__(cls)``), ``"call"`` otherwise; ``builds``: BUILDs on it
    so far (the pickler writes one) and ``state`` the last one's; ``hashes``: keys stored in it
    by SETITEMS, by hash, when it is a dict-like object. ``args`` and ``state`` let the BUILD
    state check (``typegate.states``) tell which class it is and read arrays' dtypes.
    """

    __slots__ = ("args", "builds", "cls", "hashes", "state", "via")

    def __init__(
        self, cls: _Global | None, args: tuple[Any, ...] | None = None, via: str = "call"
    ) -> None:
        super().__init__("an object made by a call")
        self.cls = cls
        self.args = args
        self.via = via
        self.builds = 0
        self.state: Any = None
        self.hashes: dict[object, list[Any]] = {}


class _JoblibArray(_Opaque):
    """An array joblib writes after its wrapper: the dtype and ndim the wrapper declared.

    ``None`` for a part the wrapper did not declare readably (object arrays' shapes).
    """

    __slots__ = ("dtype", "ndim")

    def __init__(self, dtype: np.dtype[Any] | None, ndim: int | None) -> None:
        super().__init__("a joblib array")
        self.dtype = dtype
        self.ndim = ndim


class _Global:
    """A class or function the stream names (never resolved, never imported).

    ``trusted``: the policy names it; ``rule``: how the stream may call it (``None``: only as a
    stored reference, or not at all when untrusted).
    """

    __slots__ = ("kind", "module", "name", "rule", "trusted")

    def __init__(
        self, module: str, name: str, kind: str | None, trusted: bool, rule: str | None
    ) -> None:
        self.module = module
        self.name = name
        self.kind = kind
        self.trusted = trusted
        self.rule = rule

    @property
    def shown(self) -> str:
        return format_type_name((self.module, self.name))


# Every container knows its nesting ``depth`` (1 for a container of plain values) and its
# ``size``: 1 plus the hash cost of its items, where a tuple costs its own size (hashing a tuple
# hashes every item again, memo-shared or not), a frozenset 1 plus its length (its items'
# hashes are stored) and anything else 1 (unhashable containers stop hashing at once). For a
# tuple or frozenset, ``size`` is what hashing it costs; for a list it is what ``set(list)``
# costs. Tuples are immutable, so both numbers are exact for them.
#
# For equality, caching does not help: comparing two distinct equal values walks every path
# through both (frozensets included). ``width`` is that fully expanded count (1 plus the widths
# of the items, saturating) and ``widest`` the largest width of one item: see ``_keys``.


class _Tuple:
    __slots__ = ("depth", "items", "size", "tainted", "widest", "width")

    def __init__(
        self, items: tuple[Any, ...] | None, tainted: bool, depth: int = 1, size: int = 1
    ) -> None:
        self.items = items  # None when too long to keep
        self.tainted = tainted
        self.depth = depth
        self.size = size
        self.width = 1
        self.widest = 1


class _List:
    __slots__ = ("depth", "items", "size", "tainted", "widest", "width")

    def __init__(
        self, items: list[Any] | None, tainted: bool, depth: int = 1, size: int = 1
    ) -> None:
        self.items = items
        self.tainted = tainted
        self.depth = depth
        self.size = size
        self.width = 1
        self.widest = 1


class _Dict:
    __slots__ = ("depth", "hashes", "items", "tainted")

    def __init__(self) -> None:
        self.items: dict[Any, Any] | None = {}  # None when a key is symbolic or it grew large
        self.tainted = False
        self.depth = 1
        self.hashes: dict[object, list[Any]] = {}  # its keys, by hash: see _keys


class _Set:
    __slots__ = ("depth", "frozen", "hashes", "size", "tainted", "widest", "width")

    def __init__(self, tainted: bool, frozen: bool, depth: int = 1, size: int = 1) -> None:
        self.tainted = tainted
        self.frozen = frozen
        self.depth = depth
        self.size = size
        self.width = 1
        self.widest = 1
        self.hashes: dict[object, list[Any]] = {}


class _Wrapper:
    """An instance of joblib's NumpyArrayWrapper: its attributes, as the loader will see them."""

    __slots__ = ("attrs", "builds")

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.builds = 0


class _Dtype:
    """A ``numpy.dtype`` the stream constructs, and the state a BUILD gives it."""

    __slots__ = ("args", "built", "busy", "dtype", "state", "used")

    def __init__(self, args: tuple[Any, ...] | None) -> None:
        self.args = args  # None: constructed in a way we do not follow
        self.state: Any = None
        self.built = False
        self.used = False
        self.busy = False
        self.dtype: np.dtype[Any] | None = None


# Sets of exact types, only ever tested as ``type(value) in ...``: a type hashes and compares by
# identity, so a set answers exactly what a tuple would, in one probe instead of a comparison
# per member (these tests run for nearly every value an opcode consumes).
_CONTAINERS = frozenset({_Tuple, _List, _Dict, _Set})
_PLAIN = frozenset({str, int, float, bool, bytes, type(None), _Opaque, _Made, _JoblibArray})
_NATIVE_KEYS = frozenset({str, int, float, bool, bytes, type(None)})
_KEEP_ITEMS = 4096  # containers longer than this are tracked for taint only


def _tainted(value: object) -> bool:
    """Whether ``value`` carries joblib's array wrapper; called on every value an opcode consumes.

    It also marks a numpy dtype as used: a BUILD on a dtype that anything already holds would
    change it under that holder (an array, a structured dtype), so such a BUILD is refused.
    """
    kind = type(value)
    if kind in _PLAIN:
        return False
    if kind is _Dtype:
        value.used = True  # type: ignore[attr-defined]
        return False
    if kind is _Wrapper:
        return True
    if kind is _Global:
        return value.kind == "naw"  # type: ignore[attr-defined, no-any-return]
    if kind in _CONTAINERS:
        return value.tainted  # type: ignore[attr-defined, no-any-return]
    return False


def _any_tainted(values: Iterable[object]) -> bool:
    return any(_tainted(v) for v in values)


_SIZE_CAP = 1 << 62  # sizes saturate here (a 64-level tuple DAG expands to 2**64 items)


def _hash_cost(value: object) -> int:
    """Steps ``hash(value)`` takes in the loader (see the container classes)."""
    kind = type(value)
    if kind is _Tuple or (kind is _Set and value.frozen):  # type: ignore[attr-defined]
        return value.size  # type: ignore[attr-defined, no-any-return]
    return 1


def _measure(items: Iterable[Any]) -> tuple[bool, int, int]:
    """``(tainted, depth, size)`` of a container holding ``items`` (marks dtypes used)."""
    tainted = False
    depth = 0
    size = 1
    for value in items:
        kind = type(value)
        if kind in _PLAIN:
            size += 1
        elif kind in _CONTAINERS:
            tainted = tainted or value.tainted
            if value.depth > depth:
                depth = value.depth
            # _hash_cost(value), inline: this loop runs for every item of every container.
            size += value.size if kind is _Tuple or (kind is _Set and value.frozen) else 1
        else:
            tainted = _tainted(value) or tainted
            size += 1
    return tainted, depth + 1, size if size < _SIZE_CAP else _SIZE_CAP


def _width(value: object) -> int:
    """Values comparing ``value`` with an equal one may visit (see the container classes)."""
    kind = type(value)
    if kind is _Tuple or kind is _Set or kind is _List:
        return value.width  # type: ignore[attr-defined, no-any-return]
    return 1


def _shape(target: _Tuple | _List | _Set, items: Iterable[Any]) -> None:
    """Add the equality measures of ``items`` to ``target`` (see the container classes)."""
    width = target.width
    widest = target.widest
    for value in items:
        w = 1 if type(value) in _PLAIN else _width(value)
        width += w
        if w > widest:
            widest = w
    target.width = width if width < _SIZE_CAP else _SIZE_CAP
    target.widest = widest


def _falsy(value: object) -> bool:
    """Whether ``if value:`` is certainly false in the loader (``None``, ``0``, ``''``, ...)."""
    if type(value) in _NATIVE_KEYS:
        return not value
    if type(value) in (_Tuple, _List):
        return value.items == () or value.items == []  # type: ignore[attr-defined, no-any-return]
    if type(value) is _Dict:
        return value.items == {}
    return False


# Globals whose behaviour the scanner models. Exact names only: anything else is opaque.
_JOBLIB_WRAPPER: TypeName = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_KINDS: dict[TypeName, str] = {
    _JOBLIB_WRAPPER: "naw",
    ("numpy", "dtype"): "dtype",
    ("numpy._core", "dtype"): "dtype",
    ("numpy.core", "dtype"): "dtype",
    ("numpy._core.multiarray", "dtype"): "dtype",
    ("numpy.core.multiarray", "dtype"): "dtype",
    # Python 2 spellings (copy_reg, __builtin__) are translated before a kind is looked up.
    ("copyreg", "_reconstructor"): "reconstructor",
    ("copyreg", "__newobj__"): "newobj",
    ("copyreg", "__newobj_ex__"): "newobj_ex",
    ("builtins", "object"): "object",
    ("builtins", "set"): "set",
    ("builtins", "frozenset"): "frozenset",
    # Protocols 0-2 spell bytes as _codecs.encode(text, "latin1"), empty ones as bytes().
    ("builtins", "bytes"): "bytes",
    ("_codecs", "encode"): "encode",
    ("codecs", "encode"): "encode",
}
# Classes whose instances SETITEMS may fill: their item assignment is dict's own (Bunch,
# defaultdict: the lightgbm pack) or OrderedDict's, never code of their own. Everything else
# gets no SETITEMS.
_DICT_CLASSES: frozenset[TypeName] = frozenset(
    {
        ("collections", "OrderedDict"),
        ("sklearn.utils._bunch", "Bunch"),
        ("collections", "defaultdict"),
    }
)
# Names the pickle machine calls after looking them up on the instance (beside dunder names).
_SHADOWED = frozenset({"extend", "append", "add"})
_WRAPPER_FIELDS = (
    "subclass",
    "shape",
    "order",
    "dtype",
    "allow_mmap",
    "numpy_array_alignment_bytes",
)
_LEGACY_WRAPPERS = ("NDArrayWrapper", "ZNDArrayWrapper")
_BIT_GENERATORS = frozenset(parse_type_name(n) for n in rules.BIT_GENERATOR_CLASSES)
_BIT_GENERATOR_CTOR: TypeName = ("numpy.random._pickle", "__bit_generator_ctor")
_ZERO_SHAPE_DTYPES = ("b", b"b")  # what numpy's reconstructors are always given
_NEWOBJ_OPS = ("NEWOBJ", "NEWOBJ_EX")

_OPNAMES = {op.code.encode("latin-1")[0]: op.name for op in pickletools.opcodes}
_NEWLINE = re.compile(b"\n")
_MAX_NUMBER_LINE = 4400  # CPython refuses longer decimal ints anyway
_MAX_PROBLEMS = 50


class _Fatal(Exception):
    """The stream cannot be followed further with certainty."""


class _Stopped(Exception):
    def __init__(self, resume: int) -> None:
        super().__init__(resume)
        self.resume = resume


def _realize(value: object, depth: int, parts: Parts) -> Any:
    """The real value a symbolic one stands for, or ``_Unsure`` if any part is not certain."""
    if depth > MAX_PICTURE_DEPTH:
        raise _Unsure("too deeply nested")
    parts.take()
    kind = type(value)
    if kind in (type(None), bool, int, str, bytes):
        return value
    if kind is _Tuple:
        items = value.items  # type: ignore[attr-defined]
        if items is None:
            raise _Unsure("tuple too long")
        return tuple(_realize(v, depth + 1, parts) for v in items)
    if kind is _Dict:
        content = value.items  # type: ignore[attr-defined]
        if content is None:
            raise _Unsure("dict with symbolic keys")
        return {
            _realize(k, depth + 1, parts): _realize(v, depth + 1, parts) for k, v in content.items()
        }
    if kind is _Dtype:
        return _resolve_dtype(value, depth + 1)  # type: ignore[arg-type]
    raise _Unsure("a value the scanner does not track")


def _resolve_dtype(sym: _Dtype, depth: int = 0) -> np.dtype[Any]:
    """The dtype the loader will get from this constructor call and BUILD, or ``_Unsure``."""
    sym.used = True  # relied upon from now on: a later BUILD on it is refused
    if sym.dtype is not None:
        return sym.dtype
    if sym.busy or depth > MAX_PICTURE_DEPTH:
        raise _Unsure("self-referential or too deeply nested dtype")
    args = sym.args
    if args is None:
        raise _Unsure("dtype constructed in a way numpy never pickles")
    sym.busy = True
    try:
        if not sym.built:
            # numpy.dtype(code[, align[, copy]]) and no BUILD: exactly what the loader calls.
            if not 1 <= len(args) <= 3 or not all(type(a) is bool for a in args[1:]):
                raise _Unsure("dtype constructed with unexpected arguments")
            result: np.dtype[Any] = np.dtype(plain_code(args[0]), *args[1:])
        else:
            parts = Parts()
            real_args = tuple(_realize(a, depth + 1, parts) for a in args)
            result = rebuild_dtype(real_args, _realize(sym.state, depth + 1, parts))
    except DtypeFormError:
        raise
    except (TypeError, ValueError, OverflowError, KeyError) as exc:
        raise _Unsure(f"numpy rejects it ({exc})") from None
    finally:
        sym.busy = False
    sym.dtype = result
    return result
