"""The fast path of the second wall: CPython's C unpickler, on a stream the scan proved.

Dangerous, like :mod:`safeload._unpickle` (the only module that imports this one): it runs an
unpickler. It is an optimisation of the pure-Python restricted unpickler, never a replacement:
it only ever sees a stream whose scan found no problem *and* proved, on these very bytes, every
property the C machine would not check itself (:mod:`safeload.typegate.fastplan`); anything it
doubts on the way returns :data:`FALLBACK`, and the Python unpickler, the reference, decides.

What the C machine sees is the scanned stream with each joblib array's bytes cut out and
replaced by ``POP`` (the wrapper) and a persistent id whose ``persistent_load`` hands over the
array as a view on the verified buffer, where the scanner found it: the machine executes
exactly the opcodes the scanner walked. Its own defences, which do not rely on the proof:

* ``find_class`` resolves only the policy's exact names, and refuses any name the stdlib would
  translate (Python 2 spellings) rather than judge one name and import another;
* a name whose rule checks its arguments (``numpy.dtype``, ``_reconstruct``, ``Tree``, copyreg's
  helpers, ...) is handed over as a guarded callable: the rule's concrete check (the Python
  wall's own, :mod:`safeload.typegate.callrules`) runs on the real arguments before the real
  callable, and what it returns must be an instance of a class the policy names;
* a class is handed over only if the machine's instance lookups find the class's own code: no
  ``__getattribute__`` of its own, no ``__getattr__`` without ``__setstate__``, no dict class
  with item assignment of its own, no list subclass;
* the result is walked before anything reaches the caller: every instance of a class the
  policy names, every attribute name plain (no dunder name, ``extend``, ``append`` or
  ``add``), no guarded callable left.

What it relies on the scan for (one wall only): that a reference-only name is never called
and a ``NEW`` class never called with arguments (the machine needs the real class for
``NEWOBJ``), a single ``BUILD`` per object and the dtype ``BUILD`` states, the targets of
``APPEND``/``SETITEM``, and the cost of hashing keys (see ``fastplan``).
"""

from __future__ import annotations

import _pickle
import functools
import io
import struct
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from safeload import _default_types as rules
from safeload._unpickle import (
    _DICT_SETITEMS,
    _SHADOWED,
    _WHERE,
    _array_view,
    _Budget,
    _class_attribute_of,
    _KeyCharges,
    _python3_name,
    _refuse,
    _resolve,
    _shown,
)
from safeload.errors import SafeloadError, UntrustedTypeError, untrusted_types_message
from safeload.policy import TypeName, TypePolicy, format_type_name
from safeload.typegate.callrules import RULES
from safeload.typegate.fastplan import FastPlan
from safeload.typegate.limits import Deadline

#: Set to ``False`` to load every stream with the pure-Python unpickler (tests, measurements).
ENABLED = True
#: What :func:`load_fast` returns when the Python unpickler must decide.
FALLBACK: Any = object()

# Classes the machine may construct for these rules (NEWOBJ needs the real class); every other
# rule's callable is guarded.
_REAL_FOR = frozenset({rules.ANY, rules.NEW, rules.NO_ARGS})  # and namedtuple classes
_VALUES = frozenset({str, bytes, int, float, bool, complex, type(None), bytearray})
_CONTAINERS = (list, tuple, set, frozenset)
_OBJECT_GETATTRIBUTE = object.__getattribute__
# Attribute lookups that are CPython's generic one (these types set it explicitly).
_GENERIC_OWNERS = (object, dict, list, tuple, set, frozenset, int, float, complex, bytes, str)
_GENERIC_GETATTRIBUTE = frozenset(
    id(vars(owner)["__getattribute__"]) for owner in (*_GENERIC_OWNERS, slice, functools.partial)
)
_WALK_LIMIT = 50_000_000


class _Fallback(Exception):
    """The fast path cannot vouch for this stream: the Python unpickler decides."""


class _Guarded:
    """A callable the stream may call only as its rule allows, checked on the real arguments."""

    __slots__ = ("func", "names", "rule", "site")

    def __init__(self, site: _Site, func: Callable[..., Any], names: set[TypeName], rule: str):
        self.site = site
        self.func = func
        self.names = names
        self.rule = rule

    def __call__(self, *args: Any) -> Any:
        site = self.site
        site._budget.tick()
        real = tuple(a.func if type(a) is _Guarded else a for a in args)
        entry = RULES.get(self.rule)
        why = (
            f"under a call rule this unpickler does not know ({self.rule!r})"
            if entry is None
            else entry.concrete(site, "REDUCE", self.func, self.names, real, None)
        )
        if why is not None:
            raise _refuse(f"it calls {_shown(self.names)} {why}, which its own pickles never do")
        result = self.func(*real)
        site.returned(self.rule, result)
        return result


class _Site(_KeyCharges):
    """What the rules' concrete checks ask (``callrules.ConcreteSite``), for the fast path."""

    def __init__(self, policy: TypePolicy, deadline: Deadline) -> None:
        self._policy = policy
        self._budget = _Budget(deadline)
        self._tables = {}
        # id -> (object, names it was found under, call rule or None), kept alive.
        self.globals: dict[int, tuple[Any, set[TypeName], str | None]] = {}
        self.guards: dict[int, _Guarded] = {}
        self.classes: dict[type, bool] = {}

    def names_of(self, value: object) -> set[TypeName]:
        entry = self.globals.get(id(value))
        return entry[1] if entry is not None and entry[0] is value else set()

    def rule_of(self, value: object) -> tuple[bool, str | None]:
        entry = self.globals.get(id(value))
        if entry is None or entry[0] is not value:
            return False, None
        return True, entry[2]

    def charge(self, values: list[Any] | tuple[Any, ...]) -> None:
        self._charge(values)

    def violation(
        self, rule: str, how: str, func: object, names: set[TypeName], args: object, kwargs: object
    ) -> str | None:
        entry = RULES.get(rule)
        if entry is None:
            return f"under a call rule this unpickler does not know ({rule!r})"
        return entry.concrete(self, how, func, names, args, kwargs)

    def class_ok(self, cls: type) -> bool:
        """Whether the machine's lookups on an instance of ``cls`` find only the class's code."""
        known = self.classes.get(cls)
        if known is None:
            getattribute = _class_attribute_of(cls, "__getattribute__")
            known = id(getattribute) in _GENERIC_GETATTRIBUTE  # type objects live forever
            if _class_attribute_of(cls, "__getattr__") is not None:
                known = known and _class_attribute_of(cls, "__setstate__") is not None
            if issubclass(cls, dict):
                known = known and cls.__setitem__ in _DICT_SETITEMS
            if issubclass(cls, list) and cls is not list:
                known = False
            self.classes[cls] = known
        return known

    def allowed(self, cls: type) -> bool:
        """A class whose instances may be in the model (and BUILD-ed): the policy names it."""
        return (
            cls in _VALUES
            or cls in (list, tuple, dict, set, frozenset)
            or issubclass(cls, np.dtype)
            or self._policy.allows(cls.__module__, cls.__qualname__)
        ) and self.class_ok(cls)

    def returned(self, rule: str, result: object) -> None:
        """What a guarded call made must be an instance of a class the policy names.

        And no dtype unless ``numpy.dtype`` made it (a dtype from elsewhere could be BUILD-ed
        unchecked).
        """
        if isinstance(result, np.dtype) and rule != rules.DTYPE:
            raise _Fallback
        if not self.allowed(type(result)) and self.rule_of(result) == (False, None):
            raise _Fallback


class _FastUnpickler(_pickle.Unpickler):
    """The C machine, with exact-name ``find_class`` and arrays as views."""

    def __init__(self, file: io.BufferedReader[io.BytesIO], plan: FastPlan, site: _Site) -> None:
        super().__init__(file)
        self._plan = plan
        self._site = site
        self._next = 0

    def find_class(self, module: str, name: str) -> Any:
        sys.audit("pickle.find_class", module, name)
        site = self._site
        if _python3_name(2, True, module, name) != (module, name) or "." in name:
            raise _Fallback  # the scan proved protocol >= 3; nested names: the Python path
        if not site._policy.allows(module, name):
            found = format_type_name((module, name))
            raise UntrustedTypeError(
                untrusted_types_message([found], _WHERE), types=[found], where=_WHERE
            )
        obj = _resolve(4, module, name)
        rule = site._policy.call_rule(module, name)
        entry = site.globals.get(id(obj))
        if entry is None:
            site.globals[id(obj)] = entry = (obj, {(module, name)}, rule)
        else:
            entry[1].add((module, name))
            if rule is not None and rule != entry[2]:
                merged = rule if entry[2] is None else "conflict"
                site.globals[id(obj)] = entry = (obj, entry[1], merged)
        rule = entry[2]
        if isinstance(obj, type):
            if not site.class_ok(obj):
                raise _Fallback
            if rule in _REAL_FOR or (rule or "").startswith("namedtuple "):
                return obj  # NEWOBJ needs the class itself: the scan proved its calls
        if rule is None:
            return obj  # a reference: the scan proved it is never called
        guard = site.guards.get(id(obj))
        if guard is None or guard.rule != rule:
            guard = site.guards[id(obj)] = _Guarded(site, obj, entry[1], rule)
        return guard

    def persistent_load(self, pid: Any) -> Any:
        """The next joblib array, in stream order, as a view on the verified buffer."""
        if type(pid) is not int or pid != self._next or pid >= len(self._plan.arrays):
            raise _Fallback
        self._next += 1
        place = self._plan.arrays[pid]
        return _array_view(self._plan.buffer, place.dtype, place.shape, place.order, place.data)


def _stream(plan: FastPlan) -> bytes:
    """The scanned opcodes, each array's bytes replaced by POP and a persistent id."""
    buffer = plan.buffer
    parts: list[Any] = []
    at = 0
    for index, place in enumerate(plan.arrays):
        parts.append(buffer[at : place.region])
        parts.append(b"0J" + struct.pack("<i", index) + b"Q")  # POP, BININT, BINPERSID
        at = place.data + place.dtype.itemsize * _count(place.shape)
    parts.append(buffer[at : plan.length])
    return b"".join(parts)


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def _audit(root: object, site: _Site) -> None:
    """Walk what the machine built before the caller sees it (see the module docstring)."""
    seen: set[int] = set()
    todo = [root]
    steps = 0
    known_globals = site.globals
    while todo:
        obj = todo.pop()
        cls = type(obj)
        if cls in _VALUES:
            continue
        key = id(obj)
        if key in seen:
            continue
        seen.add(key)
        steps += 1
        if steps > _WALK_LIMIT:
            raise _Fallback
        if cls is _Guarded:
            raise _Fallback  # a guarded callable stored as a value: the Python path decides
        if key in known_globals and known_globals[key][0] is obj:
            continue  # a class or function find_class returned
        if cls in _CONTAINERS:
            todo.extend(obj)  # type: ignore[arg-type]
            continue
        if cls is dict:
            todo.extend(obj.keys())  # type: ignore[attr-defined]
            todo.extend(obj.values())  # type: ignore[attr-defined]
            continue
        if cls is np.ndarray or isinstance(obj, (np.dtype, np.generic)):
            if cls is np.ndarray and obj.dtype.hasobject:  # type: ignore[attr-defined]
                todo.extend(obj.ravel().tolist())  # type: ignore[attr-defined]
            continue
        if not site.allowed(cls):
            raise _Fallback
        if isinstance(obj, dict):
            todo.extend(obj.keys())
            todo.extend(obj.values())
        elif isinstance(obj, tuple):
            todo.extend(obj)
        try:
            attrs = _OBJECT_GETATTRIBUTE(obj, "__dict__")
        except AttributeError:
            continue
        for name, value in attrs.items():
            if type(name) is not str or (
                (name.startswith("__") and name.endswith("__")) or name in _SHADOWED
            ):
                raise _refuse(
                    f"an object's attribute is named {name!r}, a name the pickle machine (or "
                    "copy) looks up on the instance and calls"
                )
            todo.append(value)


def load_fast(plan: FastPlan, policy: TypePolicy, deadline: Deadline) -> Any:
    """The model, or :data:`FALLBACK` when the Python unpickler must decide."""
    if not ENABLED or plan.policy != policy:
        return FALLBACK
    site = _Site(policy, deadline)
    data = _stream(plan)
    handle = io.BufferedReader(io.BytesIO(data), buffer_size=1 << 16)
    unpickler = _FastUnpickler(handle, plan, site)
    try:
        site._budget.tick()
        model = unpickler.load()
        if handle.tell() != len(data) or unpickler._next != len(plan.arrays):
            return FALLBACK
        _audit(model, site)
        site._budget.tick()
    except SafeloadError:
        raise
    except Exception:  # _Fallback, or the machine failing: the Python unpickler decides
        return FALLBACK
    return model


__all__ = ["ENABLED", "FALLBACK", "load_fast"]
