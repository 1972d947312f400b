"""The fast path of the second wall: CPython's C unpickler reads, the Python wall judges.

Dangerous, like :mod:`safeload._unpickle`: it runs an unpickler. The gate's step 5 enters
here (:func:`deserialize_checked`), and only the gate's modules import it. It is an
optimisation of the pure-Python restricted unpickler, never a replacement: it only ever sees
a stream the scan found safe and mapped (:mod:`safeload.typegate.fastplan`); anything it
doubts returns :data:`FALLBACK`, and the Python unpickler, the reference, decides.

Most opcodes of a model only push values: strings, numbers, tuples, memo reads and writes.
The C unpickler does those five times faster than ``pickle._Unpickler``. Every opcode that
*calls, builds, fills or hashes* (``REDUCE``, ``NEWOBJ``, ``BUILD``, ``APPEND(S)``,
``SETITEM(S)``, ``ADDITEMS``, ``DICT``, ``FROZENSET``) is cut out of the stream the C machine
reads and replaced by opcodes that pack its operands into one tuple and hand it to
``persistent_load``, which runs the restricted unpickler's own handler for that opcode on them
(:class:`_Judge`): the same exact-name ``find_class``, call rules on the real arguments, BUILD
through the class's own ``__setstate__`` with the same state checks, the same hashing and
comparing budgets, the same dtype checks. So the C machine never calls, builds, fills or
hashes anything itself. Each memo fetch of a numpy dtype is followed by a hand-over too, so
that a dtype fetched again is no longer fresh (a dtype BUILD after it was used is refused, as
the Python wall refuses it). Frames are dropped (they are optional), and each joblib array's
bytes are cut out: the wrapper's ``BUILD`` hands over the wrapper, whose fields the judge
checks against where the scanner found the array before it makes a view on the buffer.

What the fast path takes from the scan alone: *where* the opcodes are (the scanner walked
these very bytes with the unframer's exact rules, and refuses what it cannot follow); if it
had missed an opcode, the C machine would run that one unjudged. Everything the opcodes do is
judged again here.
"""

from __future__ import annotations

import _pickle
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from safeload import _unpickle
from safeload._unpickle import _array_view, _RestrictedUnpickler
from safeload._unpickle_budget import _Budget, _refuse
from safeload.errors import MalformedArtifactError, SafeloadError
from safeload.policy import TypePolicy
from safeload.typegate.fastplan import ArrayPlace, FastPlan
from safeload.typegate.limits import Deadline, ScanLimits
from safeload.validation import validate_model

if TYPE_CHECKING:
    from collections.abc import Iterable

    from safeload.typegate import TypeChecked

#: Set to ``False`` to load every stream with the pure-Python unpickler (tests, measurements).
ENABLED = True
#: What :func:`load_fast` returns when the Python unpickler must decide.
FALLBACK: Any = object()

_MARK_OPS = frozenset(b"ue\x90d\x91")  # they take their items from the last MARK
# Each judged opcode becomes: pack its operands (and, for the MARK ones, its items as a LIST)
# into one tuple, push its tag (BININT1), pair them (TUPLE2), BINPERSID.
_PACK = {
    b"b"[0]: b"\x86",  # BUILD: (inst, state)
    b"R"[0]: b"\x86",  # REDUCE: (func, args)
    b"\x81"[0]: b"\x86",  # NEWOBJ: (cls, args)
    b"a"[0]: b"\x86",  # APPEND: (list, value)
    b"s"[0]: b"\x87",  # SETITEM: (dict, key, value)
    b"u"[0]: b"l\x86",  # SETITEMS: (dict, [items])
    b"e"[0]: b"l\x86",  # APPENDS: (list, [items])
    b"\x90"[0]: b"l\x86",  # ADDITEMS: (set, [items])
    b"d"[0]: b"l\x85",  # DICT: ([items],)
    b"\x91"[0]: b"l\x85",  # FROZENSET: ([items],)
}
_GET_TAG = 0  # a dtype just fetched from the memo: (dtype,)
_GET_HANDOVER = b"\x85K\x00\x86Q"
_REPLACEMENTS = {op: pack + b"K" + bytes((op,)) + b"\x86Q" for op, pack in _PACK.items()}
_FRAME = b"\x95"[0]
_BUILD = b"b"[0]
_INSERTED, _REPLACED = 0, 1  # an insertion after a GET comes before the next opcode


class _Fallback(Exception):
    """The fast path cannot vouch for this stream: the Python unpickler decides."""


class _Judge(_RestrictedUnpickler):
    """The restricted unpickler's handlers, run on operands the C machine hands over."""

    def __init__(
        self, plan: FastPlan, policy: TypePolicy, deadline: Deadline, limits: ScanLimits
    ) -> None:
        super().__init__(plan.buffer, policy, budget=_Budget(deadline), limits=limits)
        self.proto = plan.proto  # what pickle._Unpickler.load sets from PROTO
        self._places = iter(plan.arrays)
        self.handlers = {op: self.dispatch[op] for op in _PACK}

    def judge(self, pid: Any) -> Any:
        """Run the handler ``pid`` names on its operands; return what it leaves on the stack."""
        if type(pid) is not tuple or len(pid) != 2 or type(pid[0]) is not tuple:
            raise _refuse("the stream uses a persistent id, which safeload never writes")
        operands, tag = pid
        if tag == _GET_TAG and len(operands) == 1:
            if self._fresh:
                self._fresh.pop(id(operands[0]), None)
            return operands[0]
        handler = self.handlers.get(tag)
        if handler is None:
            raise _refuse("the stream uses a persistent id, which safeload never writes")
        if tag in _MARK_OPS:
            items = operands[-1]
            self.metastack = [list(operands[:-1])]
            self.stack = items if type(items) is list else list(items)
        else:
            self.metastack = []
            self.stack = list(operands)
        self.append = self.stack.append
        handler(self)
        if len(self.stack) != 1 or self.metastack:
            raise _Fallback
        return self.stack[0]

    def _read_array(self, wrapper: Any) -> Any:
        """The array the wrapper declares, where the scanner found it: both must agree."""
        place: ArrayPlace | None = next(self._places, None)
        if place is None:
            raise _Fallback
        dtype = np.dtype(wrapper.dtype)
        shape = tuple(int(s) for s in wrapper.shape)
        if dtype.hasobject or dtype != place.dtype or shape != place.shape:
            raise _Fallback
        if wrapper.order != place.order:
            raise _Fallback
        start = place.region
        if getattr(wrapper, "numpy_array_alignment_bytes", None) is not None:
            start += 1 + self._buffer[place.region]  # the padding, as joblib reads it
        if start != place.data:
            raise _Fallback
        return _array_view(self._buffer, dtype, shape, wrapper.order, start)


class _Reader(_pickle.Unpickler):
    """The C machine: it reads and pushes; ``find_class`` and every judged opcode: the judge."""

    def __init__(self, file: io.BufferedReader[io.BytesIO], judge: _Judge) -> None:
        super().__init__(file)
        self.find_class = judge.find_class  # type: ignore[method-assign]
        self.persistent_load = judge.judge  # type: ignore[method-assign]


def _rewrite(plan: FastPlan) -> bytes:
    """The stream the C machine reads (see the module docstring)."""
    buffer = plan.buffer
    cuts = [(pos, _REPLACED) for pos in plan.ops]
    if plan.gets:
        cuts += [(end, _INSERTED) for end in plan.gets]
        cuts.sort()
    arrays = {place.region: place for place in plan.arrays}
    replacements = _REPLACEMENTS
    parts: list[Any] = []
    at = 0
    for pos, kind in cuts:
        if pos < at:
            raise _Fallback  # overlapping cuts: not a stream the scanner walked
        parts.append(buffer[at:pos])
        if kind == _INSERTED:
            parts.append(_GET_HANDOVER)
            at = pos
            continue
        op = buffer[pos]
        if op == _FRAME:
            at = pos + 9
            continue
        replacement = replacements.get(op)
        if replacement is None:  # INST, OBJ, NEWOBJ_EX: never on the fast path
            raise _Fallback
        parts.append(replacement)
        place = arrays.get(pos + 1) if op == _BUILD else None
        at = pos + 1 if place is None else place.data + place.dtype.itemsize * _count(place)
    parts.append(buffer[at:])
    return b"".join(parts)


def _count(place: ArrayPlace) -> int:
    count = 1
    for size in place.shape:
        count *= size
    return count


def load_fast(
    plan: FastPlan, policy: TypePolicy, deadline: Deadline, limits: ScanLimits | None = None
) -> Any:
    """The model, or :data:`FALLBACK` when the Python unpickler must decide.

    ``limits`` are the caller's, for what the judge checks (a pack booster's blob size).
    """
    if not ENABLED or plan.policy != policy:
        return FALLBACK
    try:
        data = _rewrite(plan)
        judge = _Judge(plan, policy, deadline, limits or ScanLimits())
        handle = io.BufferedReader(io.BytesIO(data), buffer_size=1 << 16)
        judge._budget.tick()
        model = _Reader(handle, judge).load()
        if handle.tell() != len(data) or next(judge._places, None) is not None:
            raise _Fallback
        judge._budget.tick()
    except SafeloadError:
        raise
    except Exception:  # _Fallback, or the machine failing: the Python unpickler decides
        return FALLBACK
    return model


def deserialize_checked(checked: TypeChecked, policy: TypePolicy) -> Any:
    """Deserialize a file that passed :func:`safeload.typegate.check_types`, by its format.

    A stream the scan mapped (``checked.plan``) goes to the fast path first; everything else,
    and anything the fast path doubts, to :func:`safeload._unpickle.deserialize_checked`.
    """
    if checked.format != "skops" and checked.plan is not None:
        model = load_fast(checked.plan, policy, checked.deadline, checked.limits)
        if model is not FALLBACK:
            return model
    return _unpickle.deserialize_checked(checked, policy)


def deserialize_validated(
    checked: TypeChecked,
    policy: TypePolicy,
    *,
    limits: ScanLimits | None = None,
    safe_to_call: Iterable[str] = (),
) -> Any:
    """Step 5 whole: deserialize a checked file, then validate the model's structure.

    One function, so that no caller holds a deserialized model that was not validated before
    anything calls it (a contract check runs its predictions).
    """
    model = deserialize_checked(checked, policy)
    validate_model(model, limits=limits, deadline=checked.deadline, safe_to_call=safe_to_call)
    return model


__all__ = [
    "ENABLED",
    "FALLBACK",
    "MalformedArtifactError",
    "deserialize_checked",
    "deserialize_validated",
    "load_fast",
]
