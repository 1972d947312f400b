"""The one place in safeload that runs an unpickler. Dangerous: read before you call.

Unpickling executes whatever the stream asks for. This module is the *second* wall: it is only
ever called by :mod:`safeload.loading` after the signature, every hash and the static type scan
have passed, on the very bytes that were verified (and by :mod:`safeload.convert`, after the same
scan). It enforces the policy on its own, so that a scanner bug alone cannot run code, allocate
without bound or corrupt memory:

* ``find_class`` resolves only the policy's exact names, judged after the translation of
  Python 2 names that ``pickle`` itself makes below protocol 3 (``copy_reg`` -> ``copyreg``);
* every call the stream makes (``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``OBJ``, ``INST``) must
  be to an object ``find_class`` returned for a name the policy lets the stream *call*, in the
  form that name's rule allows (``_reconstruct`` only with shape ``(0,)``, an estimator class
  only by ``NEWOBJ`` without arguments, ...); anything else, including any value a call
  returned, is refused before it runs;
* ``BUILD`` only restores instances of classes the policy names, never a class or function
  itself, and on a numpy dtype only right after ``numpy.dtype(code, False, True)`` made it, with
  a state that rebuilds to the same dtype (the scanner's own check,
  :func:`safeload.typegate.dtypes.rebuild_dtype`): ``dtype.__setstate__`` trusts its flags blindly;
* dict keys and set members are hashed only within a budget, and never a tuple nested deeper
  than ``_MAX_DEPTH`` (hashing recurses in C without a guard: a deep tuple crashes the
  interpreter, a memo-shared tuple DAG never finishes);
* comparing keys is charged to the same budget, before it happens: a key is compared with
  each distinct key of the same hash in its container (kept per container, by hash), at the
  product of both keys' widths, fully expanded. A frozenset caches its hash but not its
  equality, so two equal memo-shared frozenset DAGs hash in linear time and compare in
  ``2**depth`` steps; and ints that hash alike make every insertion compare with every key
  before it (hash flooding);
* the pickle machine never calls a method it finds on an *instance*: ``BUILD`` runs the
  class's own ``__setstate__`` (looked up on the type), at most once per object, with a state
  whose keys do not shadow a name the machine or ``copy`` looks up on instances (dunder names,
  ``extend``, ``append``, ``add``); ``APPEND(S)`` only extends a real ``list``, ``ADDITEMS``
  only a real ``set``, ``SETITEM(S)`` only a dict whose item assignment is dict's own (or
  OrderedDict's). Otherwise a trusted *reference* stored in an instance's ``__dict__`` (or
  served by a class's ``__getattr__``, as ``Bunch`` does) would be called with the file's
  arguments.

Nothing else may import it (but :mod:`safeload._unpickle_fast`, the gate's entry to it).
Arrays are built as views on the verified buffer (no second copy, no re-read of the path), and
object-dtype arrays, which joblib stores as a nested pickle, go through this same restricted
unpickler.

The fast path (:mod:`safeload._unpickle_fast`) runs CPython's C unpickler on a stream the scan
mapped (:mod:`safeload.typegate.fastplan`): the C machine only reads and pushes plain values;
every opcode with an effect is handed back to this class's own handler (the checks above, on
the real values). It relies on the scan only for *where* those opcodes are.
"""

from __future__ import annotations

import _compat_pickle
import io
import math
import pickle
import sys
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
from joblib.numpy_pickle import NDArrayWrapper, NumpyArrayWrapper, NumpyUnpickler
from joblib.numpy_pickle_utils import _ensure_native_byte_order

from safeload import _default_types as rules
from safeload import _skops_load  # small, and step 5 of every skops load: not imported mid-load
from safeload.buffers import BufferReader
from safeload.errors import (
    MalformedArtifactError,
    SafeloadError,
    UntrustedTypeError,
    untrusted_types_message,
)

if TYPE_CHECKING:
    from safeload.typegate import TypeChecked
    from safeload.typegate.skops import SkopsPlan

from safeload._unpickle_budget import (  # the second wall's hashing and comparing budget
    _WHERE,
    _Budget,
    _eq_width,
    _refuse,
    _tuple_hash_cost,
)
from safeload.policy import TypeName, TypePolicy, format_type_name
from safeload.typegate.callrules import RULES
from safeload.typegate.dtypes import DtypeFormError, dtype_form, rebuild_dtype
from safeload.typegate.limits import Deadline, ScanLimits
from safeload.typegate.states import concrete_problem

# Keys whose hash is one cheap step (and never recursive).
_FLAT_KEYS = frozenset({str, int, float, bool, bytes, type(None), complex})
# str and bytes hash with the interpreter's secret SipHash key: a file cannot choose many keys
# whose full hashes collide (the only ones a dict or set compares), and comparing two costs
# their length, already paid to read them. Numbers hash in a way anyone can compute: counted.
_KEYED_STRINGS = frozenset({str, bytes})
# Item assignments that only store (a dict subclass that does not override it uses dict's).
_DICT_SETITEMS = (dict.__setitem__, OrderedDict.__setitem__)
# Names the machine (or copy) looks up on an instance and calls, beside dunder names.
_SHADOWED = frozenset({"extend", "append", "add"})


def _shown(names: set[TypeName]) -> str:
    return " / ".join(sorted(format_type_name(n) for n in names))


def _class_attribute_of(cls: type, name: str) -> Any:
    """``name`` as the class (not an instance) defines it, or ``None``: its MRO only."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _python3_name(proto: int, fix_imports: bool, module: str, name: str) -> TypeName:
    """The name ``pickle._Unpickler.find_class`` imports: its ``fix_imports`` step, exactly.

    Only below protocol 3 (a stream without PROTO is protocol 0, and a PROTO anywhere changes
    it), NAME_MAPPING before IMPORT_MAPPING, one translation only.
    """
    if proto < 3 and fix_imports:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            mapped: TypeName = _compat_pickle.NAME_MAPPING[(module, name)]
            return mapped
        if module in _compat_pickle.IMPORT_MAPPING:
            return _compat_pickle.IMPORT_MAPPING[module], name
    return module, name


def _resolve(proto: int, module: str, name: str) -> Any:
    """``pickle._Unpickler.find_class``'s import, on a name translated (and trusted) once.

    ``super().find_class`` would translate it again (``anydbm`` -> ``dbm`` -> ``dbm.ndbm``).
    """
    __import__(module, level=0)
    if proto >= 4:
        return pickle._getattribute(sys.modules[module], name)[0]  # type: ignore[attr-defined]
    return getattr(sys.modules[module], name)


class _RestrictedUnpickler(NumpyUnpickler):  # type: ignore[misc]
    """joblib's unpickler with exact-name ``find_class``, guarded calls, and zero-copy arrays."""

    dispatch = NumpyUnpickler.dispatch.copy()

    def __init__(
        self,
        buffer: memoryview,
        policy: TypePolicy,
        start: int = 0,
        budget: _Budget | None = None,
        namer: _RestrictedUnpickler | None = None,
        limits: ScanLimits | None = None,
    ) -> None:
        self._buffer = buffer
        self._policy = policy
        self._limits = limits or ScanLimits()
        self._budget = budget or _Budget(Deadline(ScanLimits().max_seconds))
        # joblib reads an object array's nested pickle with the outer unpickler's find_class:
        # the outermost stream's protocol (and fix_imports) decides how its names translate.
        self._namer = namer
        # id -> (object, names it was found under, call rule or None): everything find_class
        # returned, kept alive so that ids stay unique.
        self._globals: dict[int, tuple[Any, set[TypeName], str | None]] = {}
        # id -> (dtype, constructor args): dtypes numpy.dtype just made, that nothing holds yet.
        self._fresh: dict[int, tuple[np.dtype[Any], tuple[Any, ...]]] = {}
        # id -> (container, its keys by hash): for the comparisons colliding keys cost.
        self._tables: dict[int, tuple[object, dict[int, list[Any]]]] = {}
        # id -> object: everything BUILD restored (once each), kept alive so ids stay unique.
        self._built: dict[int, object] = {}
        handle = BufferReader(buffer, start)
        super().__init__("", handle, ensure_native_byte_order=True)

    # -- names ---------------------------------------------------------------------------------

    def find_class(self, module: str, name: str) -> Any:
        """``pickle._Unpickler.find_class`` on the policy's exact names, and only those.

        The name is first translated as the stdlib does (``fix_imports``: below protocol 3,
        Python 2 spellings such as ``copy_reg._reconstructor``, ``__builtin__.object`` or
        ``exceptions.*`` name their Python 3 objects), so that the policy judges the object the
        unpickler would actually import; it is then resolved without a second translation. A
        nested object-array pickle translates by the outermost stream's protocol: joblib's reader
        gives it the outer unpickler's ``find_class``.
        """
        sys.audit("pickle.find_class", module, name)  # as pickle does, with the written name
        namer = self._namer or self
        module, name = _python3_name(namer.proto, namer.fix_imports, module, name)
        if not self._policy.allows(module, name):
            found = format_type_name((module, name))
            raise UntrustedTypeError(
                untrusted_types_message([found], _WHERE),
                types=[found],
                where=_WHERE,
            )
        obj = _resolve(namer.proto, module, name)
        rule = self._policy.call_rule(module, name)
        entry = self._globals.get(id(obj))
        if entry is None:
            self._globals[id(obj)] = (obj, {(module, name)}, rule)
        else:
            entry[1].add((module, name))
            if rule is not None and rule != entry[2]:
                # The same object under another name: callable if either name allows it, but
                # two different rules for one object are not understood, so neither applies.
                merged = rule if entry[2] is None else "conflict"
                self._globals[id(obj)] = (obj, entry[1], merged)
        return obj

    def _names(self, value: object) -> set[TypeName]:
        """The names ``value`` was found under (empty if find_class did not return it)."""
        entry = self._globals.get(id(value))
        return entry[1] if entry is not None and entry[0] is value else set()

    def _is_global(self, value: object) -> bool:
        entry = self._globals.get(id(value))
        return entry is not None and entry[0] is value

    # -- calls ---------------------------------------------------------------------------------

    def _check_call(self, how: str, func: object, args: object, kwargs: object) -> str:
        """Refuse the call unless its rule allows it; return the rule."""
        self._budget.tick()
        entry = self._globals.get(id(func))
        if entry is None or entry[0] is not func:
            raise _refuse(
                f"{how} calls a value that is not a class or function the policy names (a "
                "value another call returned, or data), which no scikit-learn pickle does"
            )
        rule = entry[2]
        if rule is None:
            shown = _shown(entry[1])
            raise _refuse(
                f"it calls {shown} ({how}), which the policy trusts only as a stored reference, "
                "never as something a file may call (if you trust the signer and the call is "
                "genuine, extend the policy with TypePolicy.extend([...], callable=True))"
            )
        why = self._violation(rule, how, func, entry[1], args, kwargs)
        if why is not None:
            raise _refuse(f"it calls {_shown(entry[1])} {why}, which its own pickles never do")
        return rule

    def _violation(
        self,
        rule: str,
        how: str,
        func: object,
        names: set[TypeName],
        args: object,
        kwargs: object,
    ) -> str | None:
        """Why this call breaks ``rule`` (:mod:`safeload.typegate.callrules`), or ``None``."""
        entry = RULES.get(rule)
        if entry is None:
            return f"under a call rule this unpickler does not know ({rule!r})"
        return entry.concrete(self, how, func, names, args, kwargs)

    # -- what the call rules may ask (safeload.typegate.callrules.ConcreteSite) ----------------

    def names_of(self, value: object) -> set[TypeName]:
        """The names ``value`` was found under (empty if find_class did not return it)."""
        return self._names(value)

    def rule_of(self, value: object) -> tuple[bool, str | None]:
        """Whether find_class returned ``value``, and its call rule."""
        entry = self._globals.get(id(value))
        if entry is None or entry[0] is not value:
            return False, None
        return True, entry[2]

    def charge(self, values: list[Any] | tuple[Any, ...]) -> None:
        """Spend the hashing work of ``values`` (see :meth:`_charge`)."""
        self._charge(values)

    def violation(
        self, rule: str, how: str, func: object, names: set[TypeName], args: object, kwargs: object
    ) -> str | None:
        """:meth:`_violation`, for the copyreg rules that construct their first argument."""
        return self._violation(rule, how, func, names, args, kwargs)

    def _made(self, rule: str, args: object, result: object) -> None:
        """After a call, note a dtype that numpy.dtype just made.

        A dtype that any other call returns may be held elsewhere: it may no longer be BUILD-ed.
        """
        if self._fresh:
            self._fresh.pop(id(result), None)
        if rule == rules.DTYPE and isinstance(result, np.dtype) and type(args) is tuple:
            self._fresh[id(result)] = (result, args)

    def load_reduce(self) -> None:
        stack = self.stack
        func, args = stack[-2], stack[-1]
        rule = self._check_call("REDUCE", func, args, None)
        pickle._Unpickler.load_reduce(self)  # type: ignore[attr-defined]
        self._made(rule, args, stack[-1])

    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self) -> None:
        stack = self.stack
        cls, args = stack[-2], stack[-1]
        rule = self._check_call("NEWOBJ", cls, args, None)
        pickle._Unpickler.load_newobj(self)  # type: ignore[attr-defined]
        self._made(rule, None, stack[-1])

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self) -> None:
        stack = self.stack
        cls, args, kwargs = stack[-3], stack[-2], stack[-1]
        rule = self._check_call("NEWOBJ_EX", cls, args, kwargs)
        pickle._Unpickler.load_newobj_ex(self)  # type: ignore[attr-defined]
        self._made(rule, None, self.stack[-1])

    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def load_obj(self) -> None:
        segment = self.stack  # the items after the MARK: the class, then its arguments
        rule = self._check_call("OBJ", segment[0], tuple(segment[1:]), None)
        pickle._Unpickler.load_obj(self)  # type: ignore[attr-defined]
        self._made(rule, None, self.stack[-1])

    dispatch[pickle.OBJ[0]] = load_obj

    def load_inst(self) -> None:
        module = self.readline()[:-1].decode("ascii")
        name = self.readline()[:-1].decode("ascii")
        klass = self.find_class(module, name)
        rule = self._check_call("INST", klass, tuple(self.stack), None)
        self._instantiate(klass, self.pop_mark())
        self._made(rule, None, self.stack[-1])

    dispatch[pickle.INST[0]] = load_inst

    # -- hashing -------------------------------------------------------------------------------

    def _charge(self, values: list[Any] | tuple[Any, ...], target: object = None) -> None:
        """Spend the hashing work of ``values`` (dict keys, set members) before it is done.

        Then the comparing work: ``values`` go into ``target`` (``None``: a new container).
        """
        self._budget.tick()
        kinds = set(map(type, values))
        if kinds <= _FLAT_KEYS:  # the common case, at C speed
            self._budget.spend(len(values))
            if not kinds <= _KEYED_STRINGS:
                self._collisions(values, target)
            return
        work = 0
        for value in values:
            if isinstance(value, tuple):
                work += _tuple_hash_cost(value, self._budget.left - work)
            elif isinstance(value, frozenset):
                work += 1 + len(value)
            else:
                work += 1
        self._budget.spend(work)
        self._collisions(values, target)

    def _collisions(self, values: Any, target: object) -> None:
        """Charge the comparisons of ``values`` with the keys of equal hash in ``target``.

        Inserting a key compares it with each distinct key of the same hash already there
        (an identical one is found by identity, for free), so the keys of each container are
        kept by hash (``_tables``, by the container's id; ``None``: a new container) as
        ``[ids, distinct keys, widest]``; a comparison costs the product of both widths.
        """
        if target is None:
            table: dict[int, list[Any]] = {}
        else:
            entry = self._tables.get(id(target))
            if entry is None or entry[0] is not target:
                table = {}
                self._tables[id(target)] = (target, table)
                self._collisions(list(target), None)  # type: ignore[call-overload]
                for key in target:  # type: ignore[attr-defined]
                    first = table.setdefault(hash(key), [set(), set(), 0])
                    first[0].add(id(key))
                    first[1].add(key)
            else:
                table = entry[1]
        for key in values:
            if type(key) in _KEYED_STRINGS:
                continue  # see _KEYED_STRINGS
            digest = hash(key)  # its cost was charged (and bounded) by _charge
            bucket: list[Any] | None = table.get(digest)
            if bucket is None:
                table[digest] = [{id(key)}, {key}, 0]  # one key: no comparison yet
                continue
            ids, keys, widest = bucket
            if id(key) in ids:
                continue  # the same object: found by identity, for free
            limit = max(self._budget.left, 0)
            if not widest:
                widest = max(_eq_width(known, limit) for known in keys)
            width = _eq_width(key, limit)
            self._budget.spend_comparing(len(keys) * width * widest)
            bucket[2] = max(widest, width)
            if key not in keys:  # the comparisons this makes are the ones charged above
                keys.add(key)
                ids.add(id(key))

    def _mutable(self, target: object, how: str, kind: type) -> None:
        """``how`` fills ``target``: only a real ``kind`` (see the module docstring)."""
        if kind is dict:
            if isinstance(target, dict) and type(target).__setitem__ in _DICT_SETITEMS:
                return
            raise _refuse(
                f"{how} on a {type(target).__qualname__} object, whose item assignment is not "
                "dict's: it would run that class's own code with the file's keys"
            )
        if type(target) is not kind:
            what = "a list" if kind is list else "a set"
            raise _refuse(
                f"{how} on a {type(target).__qualname__} object, not {what}: the machine would "
                "call a method it looks up on that instance with the file's items"
            )

    def _marked(self) -> object:
        """What the opcode that pops the current MARK will fill."""
        if not self.metastack or not self.metastack[-1]:
            raise _refuse("an opcode fills a container that is not on the stack")
        return self.metastack[-1][-1]

    def load_setitem(self) -> None:
        target = self.stack[-3]
        self._mutable(target, "SETITEM", dict)
        self._charge((self.stack[-2],), target)
        pickle._Unpickler.load_setitem(self)  # type: ignore[attr-defined]

    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self) -> None:
        target = self._marked()
        self._mutable(target, "SETITEMS", dict)
        self._charge(self.stack[0::2], target)
        pickle._Unpickler.load_setitems(self)  # type: ignore[attr-defined]

    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_append(self) -> None:
        self._mutable(self.stack[-2], "APPEND", list)
        pickle._Unpickler.load_append(self)  # type: ignore[attr-defined]

    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self) -> None:
        self._mutable(self._marked(), "APPENDS", list)
        pickle._Unpickler.load_appends(self)  # type: ignore[attr-defined]

    dispatch[pickle.APPENDS[0]] = load_appends

    def load_dict(self) -> None:
        self._charge(self.stack[0::2])
        pickle._Unpickler.load_dict(self)  # type: ignore[attr-defined]

    dispatch[pickle.DICT[0]] = load_dict

    def load_additems(self) -> None:
        target = self._marked()
        self._mutable(target, "ADDITEMS", set)
        self._charge(self.stack, target)
        pickle._Unpickler.load_additems(self)  # type: ignore[attr-defined]

    dispatch[pickle.ADDITEMS[0]] = load_additems

    def load_frozenset(self) -> None:
        self._charge(self.stack)
        pickle._Unpickler.load_frozenset(self)  # type: ignore[attr-defined]

    dispatch[pickle.FROZENSET[0]] = load_frozenset

    # -- memo reads: a dtype fetched again may be held elsewhere, so it is no longer fresh ---

    def load_get(self) -> None:
        pickle._Unpickler.load_get(self)  # type: ignore[attr-defined]
        if self._fresh:
            self._fresh.pop(id(self.stack[-1]), None)

    dispatch[pickle.GET[0]] = load_get

    def load_binget(self) -> None:
        # pickle._Unpickler.load_binget, inlined: the commonest opcode after the one-byte ones.
        i = self.read(1)[0]
        try:
            value = self.memo[i]
        except KeyError:
            raise pickle.UnpicklingError(f"Memo value not found at index {i}") from None
        self.append(value)
        if self._fresh:
            self._fresh.pop(id(value), None)

    dispatch[pickle.BINGET[0]] = load_binget

    def load_long_binget(self) -> None:
        pickle._Unpickler.load_long_binget(self)  # type: ignore[attr-defined]
        if self._fresh:
            self._fresh.pop(id(self.stack[-1]), None)

    dispatch[pickle.LONG_BINGET[0]] = load_long_binget

    def load_dup(self) -> None:
        pickle._Unpickler.load_dup(self)  # type: ignore[attr-defined]
        if self._fresh:
            self._fresh.pop(id(self.stack[-1]), None)

    dispatch[pickle.DUP[0]] = load_dup

    # -- BUILD -----------------------------------------------------------------------------------

    def load_build(self) -> None:
        stack = self.stack
        inst = stack[-2]
        if self._is_global(inst):
            shown = _shown(self._names(inst))
            raise _refuse(f"BUILD sets attributes on {shown} itself, which pickles never do")
        if isinstance(inst, np.dtype):
            self._build_dtype(inst, stack.pop())
            return
        cls = type(inst)
        if not self._is_global(cls) and not self._policy.allows(cls.__module__, cls.__qualname__):
            raise _refuse(
                f"BUILD restores a {cls.__module__}.{cls.__qualname__}, a class the policy does "
                "not name (a value some call returned)"
            )
        if self._built.get(id(inst)) is inst:
            raise _refuse(
                f"BUILD runs twice on one {cls.__module__}.{cls.__qualname__}, which the pickler "
                "never writes (the second would see what the first stored on the instance)"
            )
        self._built[id(inst)] = inst
        self._build(inst, stack.pop())
        top = stack[-1]
        if isinstance(top, NDArrayWrapper):
            raise MalformedArtifactError(
                "legacy joblib array wrapper (joblib < 0.10) refused: its reader calls "
                "np.load(allow_pickle=True). Re-save the model with a current joblib."
            )
        if isinstance(top, NumpyArrayWrapper):
            stack[-1] = self._read_array(top)

    dispatch[pickle.BUILD[0]] = load_build

    def _build(self, inst: Any, state: Any) -> None:
        """``pickle._Unpickler.load_build``, with the class's own ``__setstate__``.

        Never one found on the instance, and only with a state that shadows nothing the
        machine calls.
        """
        self._budget.tick()
        parts = [state]
        if type(state) is tuple and len(state) == 2:
            parts = list(state)
        for part in parts:
            if isinstance(part, dict):
                for key in part:
                    if type(key) is not str:
                        raise _refuse(f"a BUILD state names an attribute by a {type(key).__name__}")
                    if (key.startswith("__") and key.endswith("__")) or key in _SHADOWED:
                        raise _refuse(
                            f"a BUILD state sets {key!r}, a name the pickle machine (or copy) "
                            "looks up on the instance and calls: a stored reference would be "
                            "called with the file's arguments"
                        )
        # compiled __setstate__ trusts its state's form; a pack's booster, its model's
        why = concrete_problem(inst, state, self._limits.max_booster_bytes)
        if why is not None:
            raise _refuse(why)
        self._budget.deadline.check("checking the model")  # a booster's check can take seconds
        raw = _class_attribute_of(type(inst), "__setstate__")
        if raw is not None:
            bind = getattr(type(raw), "__get__", None)  # the descriptor protocol, as the type does
            (bind(raw, inst, type(inst)) if bind is not None else raw)(state)
            return
        slotstate = None
        if isinstance(state, tuple) and len(state) == 2:
            state, slotstate = state
        if state:
            inst_dict = inst.__dict__
            for key, value in state.items():
                inst_dict[sys.intern(key)] = value
        if slotstate:
            for key, value in slotstate.items():
                setattr(inst, key, value)

    def _build_dtype(self, dtype: np.dtype[Any], state: object) -> None:
        """BUILD on a dtype: only the one numpy writes, right after numpy.dtype made it."""
        entry = self._fresh.pop(id(dtype), None)
        if entry is None or entry[0] is not dtype:
            raise _refuse(
                "BUILD changes a numpy dtype that numpy.dtype did not just make, or that was "
                "already built or used (numpy never pickles this; it could turn raw bytes of "
                "arrays already built on it into object pointers)"
            )
        try:
            candidate = rebuild_dtype(entry[1], state)
        except DtypeFormError as exc:
            raise _refuse(
                f"a numpy dtype is pickled in a form numpy never writes ({exc}); numpy would "
                "trust its sizes and flags blindly"
            ) from None
        dtype.__setstate__(state)  # type: ignore[attr-defined]
        if dtype_form(dtype) != dtype_form(candidate):
            raise _refuse("a numpy dtype does not come out as its state describes")

    def _read_array(self, wrapper: NumpyArrayWrapper) -> Any:
        """Build the array that follows ``wrapper`` in the stream, as a view on the buffer."""
        handle: BufferReader = self.file_handle
        dtype = np.dtype(wrapper.dtype)
        if dtype.hasobject:
            inner = _RestrictedUnpickler(
                self._buffer,
                self._policy,
                handle.tell(),
                self._budget,
                self._namer or self,
                self._limits,
            )
            array = inner.load()
            handle.seek(inner.file_handle.tell())
            if not isinstance(array, np.ndarray):
                raise MalformedArtifactError("object-dtype array payload is not an array")
            return array
        if getattr(wrapper, "numpy_array_alignment_bytes", None) is not None:
            pad = handle.read(1)
            if len(pad) != 1:
                raise MalformedArtifactError("truncated array padding in the model stream")
            handle.seek(pad[0], io.SEEK_CUR)
        shape = tuple(int(s) for s in wrapper.shape)
        start = handle.tell()
        array = _array_view(self._buffer, dtype, shape, wrapper.order, start)
        handle.seek(start + array.nbytes)
        return array


def _array_view(
    buffer: memoryview, dtype: np.dtype[Any], shape: tuple[int, ...], order: str, start: int
) -> Any:
    """The array of ``shape`` whose bytes start at ``start``: a view on the verified buffer."""
    if any(s < 0 for s in shape):
        raise MalformedArtifactError(f"negative array shape {shape} in the model stream")
    count = math.prod(shape)  # exact Python ints: an int64 product can wrap to 0
    nbytes = count * dtype.itemsize
    if start + nbytes > len(buffer):
        raise MalformedArtifactError(
            f"array of {nbytes} bytes declared at offset {start} runs past the end of the file"
        )
    array = np.frombuffer(buffer, dtype=dtype, count=count, offset=start)
    if order == "F":
        array = array.reshape(shape[::-1]).transpose()
    else:
        array = array.reshape(shape)
    # Exactly what joblib.load does; a dtype numpy calls native (every field too) is
    # left as it is by joblib's test, which is slow on record dtypes: skip it then.
    native = array if dtype.isnative else _ensure_native_byte_order(array)
    if native is not array:
        array = native
    elif not array.flags.aligned:
        # Files written without alignment padding: a misaligned view is slow in numpy and
        # refused by scipy and Cython code, so pay for one copy here.
        array = array.copy(order="K")
    return array


def unpickle_verified(
    buffer: bytes | bytearray | memoryview,
    policy: TypePolicy,
    deadline: Deadline | None = None,
    limits: ScanLimits | None = None,
) -> Any:
    """Deserialize ``buffer`` (already verified and scanned) under ``policy``.

    ``deadline`` is the gate's clock, started before the scan (a fresh one otherwise);
    ``limits`` the caller's (``max_booster_bytes``).
    Only :mod:`safeload.loading` may call this, and only after the gate has passed.
    """
    view = memoryview(buffer)
    clock = deadline or Deadline(ScanLimits().max_seconds)
    unpickler = _RestrictedUnpickler(view, policy, budget=_Budget(clock), limits=limits)
    try:
        obj = unpickler.load()
    except SafeloadError:
        raise
    except Exception as exc:  # bad input never escapes as a bare traceback (MemoryError too)
        raise MalformedArtifactError(f"the model stream could not be deserialized: {exc}") from exc
    frame = getattr(getattr(unpickler, "_unframer", None), "current_frame", None)
    if frame is not None and frame.read(1):
        raise MalformedArtifactError("unexpected bytes after the end of the model stream")
    if unpickler.file_handle.tell() != len(view):
        raise MalformedArtifactError(
            f"{len(view) - unpickler.file_handle.tell()} unexpected byte(s) after the end of the "
            "model stream"
        )
    return obj


def load_skops_verified(
    buffer: bytes | bytearray | memoryview,
    trusted_types: list[str],
    deadline: Deadline | None = None,
    plan: SkopsPlan | None = None,
) -> Any:
    """Construct a skops file (already verified, zip-checked and type-checked).

    ``trusted_types`` is the exact list of names skops asks for, each already checked against
    the caller's policy by :mod:`safeload.typegate.skops`; nothing broader is ever passed.
    With the scan's ``plan``, skops builds from the document the scan audited and arrays are
    views on the buffer (:mod:`safeload._skops_load`). Only :mod:`safeload.loading` may call
    this, and only after the gate has passed.
    """
    import skops.io

    # skops' loader cannot be interrupted: its work was bounded by the schema walk of the scan,
    # and the clock is asked before and after.
    clock = deadline or Deadline(ScanLimits().max_seconds)
    clock.check("deserializing the model")
    try:
        if plan is not None and list(plan.trusted) == list(trusted_types):
            model = _skops_load.construct(buffer, plan)
        else:
            # skops.io.load on a file over the verified buffer: loads(bytes(...)) would copy it.
            model = skops.io.load(BufferReader(buffer), trusted=list(trusted_types))
    except SafeloadError:
        raise
    except Exception as exc:
        from skops.io.exceptions import UntrustedTypesFoundException

        if isinstance(exc, UntrustedTypesFoundException):
            raise UntrustedTypeError(
                f"skops refused types at load time: {exc}", types=[str(exc)]
            ) from exc
        raise MalformedArtifactError(f"skops could not construct the model: {exc}") from exc
    clock.check("deserializing the model")
    return model


def deserialize_checked(checked: TypeChecked, policy: TypePolicy) -> Any:
    """Deserialize a file that passed :func:`safeload.typegate.check_types`, by its format.

    The gate calls :func:`safeload._unpickle_fast.deserialize_checked`, which tries the fast
    path first for a stream the scan mapped and comes here for everything else.
    """
    if checked.format == "skops":
        return load_skops_verified(
            checked.payload, list(checked.skops_trusted), checked.deadline, checked.skops_plan
        )
    return unpickle_verified(checked.payload, policy, checked.deadline, checked.limits)
