"""The static opcode walker: name every global a pickle/joblib stream would load.

Nothing here unpickles, imports a module the stream names, or calls anything the stream names.
The scanner walks the opcode stream with a symbolic stack and memo, following the *exact*
semantics of the pure-Python unpickler that :mod:`safeload._unpickle` runs (frames, marks,
``POP`` on an empty segment, ...), because any difference between what the scanner believes and
what the loader does is a place to hide a global.

joblib writes raw array bytes in the middle of the pickle stream, right after the ``BUILD`` of a
``joblib.numpy_pickle.NumpyArrayWrapper``. The scanner computes the size of that payload from the
symbolic wrapper state with the same rule as the loader and skips it without reading it (so the
cost follows the number of opcodes, not the size of the arrays), and it descends into the nested
pickle that joblib writes for object-dtype arrays. numpy dtypes are only accepted in the exact
form numpy itself pickles them: a dtype state is rebuilt from safe parts and compared with what
numpy would write (:func:`rebuild_dtype`, which the restricted unpickler runs too), because
``dtype.__setstate__`` trusts its flags and sizes blindly.

Below protocol 3 the loader's ``find_class`` translates Python 2 names (``copy_reg``,
``__builtin__``, ...; ``fix_imports``): the scanner follows PROTO wherever it appears and judges,
and reports, the translated name (:func:`_py3_spelling`).

Names are not all equal: a stream may *store* any trusted name, but it may only *call* the
names the policy marks callable, each in the one form its rule allows (``_reconstruct`` with
shape ``(0,)``, an estimator class by ``NEWOBJ`` without arguments, ...; see
:mod:`safeload._default_types`). A call to a reference-only name, or in another form, is a
problem naming it: calling "harmless" names with the file's arguments is how a 100-byte stream
allocates terabytes.

Every container the scanner tracks knows its nesting depth and what hashing it costs the loader
(expanded: tuples shared through the memo are counted once per use, as ``hash`` walks them).
Values nested deeper than ``ScanLimits.max_depth`` are refused (the loader's C code recurses
through them without a guard), and so is a file whose dict keys and set members would take more
than ``ScanLimits.max_hash_work`` steps to hash (a memo-shared tuple DAG as a key is a 2**64-step
hashing bomb in a kilobyte).

Anything the scanner cannot follow with certainty is a *problem* in the report, and a report
with problems is refused just like one with untrusted types. Scanning never raises on bad input.

What a call to a trusted global returns is opaque. The scanner relies on the policy never
trusting a function that hands back a numpy dtype or a joblib array wrapper it was not given
(``copyreg``'s constructors are modelled; calling anything that is not a named global is
refused), since a BUILD on such a value would escape the checks above.

The walker reads opcodes with the unframer's exact rules, keeps a symbolic stack and memo
(:mod:`safeload.typegate._symbols`), hands each opcode to its handler
(:mod:`safeload.typegate._opcodes`) and checks each call against its rule
(:mod:`safeload.typegate.callrules`).
"""

from __future__ import annotations

import _compat_pickle
import time
from collections.abc import Iterable
from typing import Any, NoReturn

import numpy as np

from safeload.buffers import Buffer, byte_view
from safeload.errors import shown
from safeload.policy import TypeName, TypePolicy, format_type_name, resolve_policy
from safeload.typegate._containers import _Containers
from safeload.typegate._opcodes import DISPATCH
from safeload.typegate._symbols import (
    _BYTES,
    _JOBLIB_WRAPPER,
    _KINDS,
    _LEGACY_WRAPPERS,
    _LONG_STR,
    _MAX_PROBLEMS,
    _MISSING,
    _NEWLINE,
    _OBJ,
    _OPNAMES,
    _UNRESOLVED,
    _WRAPPER_FIELDS,
    _any_tainted,
    _Dict,
    _Dtype,
    _falsy,
    _Fatal,
    _Global,
    _JoblibArray,
    _List,
    _Made,
    _Opaque,
    _resolve_dtype,
    _Stopped,
    _tainted,
    _Tuple,
    _Wrapper,
)
from safeload.typegate.callrules import RULES
from safeload.typegate.dtypes import _Unsure, plain_code
from safeload.typegate.fastplan import ArrayPlace, FastPlan
from safeload.typegate.limits import Deadline, ScanLimits
from safeload.typegate.report import ScanReport, make_report
from safeload.typegate.states import symbolic_problem


def _py3_spelling(module: str, name: str) -> tuple[str, str]:
    """What the loader's ``find_class`` imports for a Python 2 name, below protocol 3.

    The unpickler's ``fix_imports`` (on in every loader safeload models): an exact pair of
    NAME_MAPPING first, else the module alone through IMPORT_MAPPING, translated once. The
    policy judges, and the report shows, the translated name.
    """
    pair = _compat_pickle.NAME_MAPPING.get((module, name))
    if pair is not None:
        return str(pair[0]), str(pair[1])
    return str(_compat_pickle.IMPORT_MAPPING.get(module, module)), name


# --- following one pickle stream ------------------------------------------------------------

# The opcodes the main loop runs itself (see _Stream.run).
_BINGET = ord("h")
_BININT1 = ord("K")
_MEMOIZE = 0x94


class _Scan:
    """What one scan shares between the pickles it follows (top level, trailing, nested)."""

    def __init__(
        self, buf: memoryview, policy: TypePolicy, limits: ScanLimits, deadline: float
    ) -> None:
        self.buf = buf
        self.n = len(buf)
        self.policy = policy
        self.limits = limits
        self.deadline = deadline
        self.names: set[TypeName] = set()
        self.problems: list[str] = []
        self.dropped = 0
        self.quiet = False  # while scanning bytes after STOP: report globals, not details
        self.count = 0
        self.interval = max(1, min(4096, limits.max_stack_depth // 8, limits.max_opcodes))
        self.next_check = min(self.interval, limits.max_opcodes + 1)
        self.globals_cache: dict[TypeName, _Global] = {}
        self.hash_work = 0  # steps the loader will spend hashing keys and set members
        # The fast path's proof (typegate.fastplan): each joblib array's place in the stream,
        # and why the C unpickler may not load it (None: every property it needs holds).
        self.places: list[ArrayPlace] = []
        self.ops: list[int] = []  # where each opcode that calls, builds, fills or hashes is
        self.gets: list[int] = []  # where each memo fetch of a numpy.dtype ends
        self.slow_reason: str | None = None
        self.proto = 0

    def slow(self, reason: str) -> None:
        """This stream may not go to the C unpickler (see :mod:`safeload.typegate.fastplan`)."""
        if self.slow_reason is None:
            self.slow_reason = reason

    def problem(self, message: str) -> None:
        if self.quiet or message in self.problems:
            return
        if len(self.problems) >= _MAX_PROBLEMS:
            self.dropped += 1
            return
        self.problems.append(message)

    def periodic(self, stream: _Stream) -> None:
        limits = self.limits
        if self.count > limits.max_opcodes:
            raise _Fatal(
                f"more than {limits.max_opcodes} opcodes (ScanLimits.max_opcodes): refused. "
                "If the model is genuine and this large, raise that limit."
            )
        if time.monotonic() > self.deadline:
            raise _Fatal(
                f"the scan took longer than {limits.max_seconds:g} s "
                "(ScanLimits.max_seconds): refused."
            )
        depth = len(stream.stack) + stream.meta_items + len(stream.meta)
        if depth > limits.max_stack_depth:
            raise _Fatal(
                f"the pickle stack grows past {limits.max_stack_depth} items "
                "(ScanLimits.max_stack_depth): refused."
            )
        self.next_check = min(self.count + self.interval, limits.max_opcodes + 1)

    def global_(self, module: str, name: str, where: int) -> _Global:
        key = (module, name)
        cached = self.globals_cache.get(key)
        if cached is not None:
            return cached
        self.names.add(key)
        kind = _KINDS.get(key)
        parts = {*module.split("."), *name.split(".")}
        shown = format_type_name(key)
        if parts & set(_LEGACY_WRAPPERS):
            self.problem(
                f"legacy joblib array wrapper {shown} (joblib < 0.10) at byte {where}: its "
                "reader calls np.load(allow_pickle=True). Re-save the model with a current "
                "joblib."
            )
        elif kind is None and "NumpyArrayWrapper" in parts:
            # e.g. "NumpyArrayWrapper.__call__" also makes wrappers the scanner would not see.
            self.problem(
                f"{shown} at byte {where} reaches joblib's array wrapper by another name; the "
                "scanner cannot tell where its array data ends. Re-save the model with joblib."
            )
        elif kind is None and module.partition(".")[0] == "numpy" and "dtype" in name.lower():
            kind = "dtype_other"  # made dtypes may never be BUILD-ed or size an array
        trusted = self.policy.allows(module, name)
        rule = self.policy.call_rule(module, name) if trusted else None
        result = _Global(module, name, kind, trusted, rule)
        self.globals_cache[key] = result
        return result


class _Stream(_Containers):
    """One pickle stream: the symbolic twin of ``pickle._Unpickler`` over the shared buffer."""

    def __init__(self, scan: _Scan, start: int, depth: int, top: _Stream | None = None) -> None:
        self.scan = scan
        # joblib reads an object array's nested pickle with the outer unpickler's find_class,
        # so the outermost stream's protocol decides how the nested one's names translate.
        self.top = top
        self.buf = scan.buf
        self.n = scan.n
        self.depth = depth
        self.p = start
        self.end = scan.n  # end of the current frame, or of the buffer
        self.in_frame = False
        self.op_pos = start
        self.stack: list[Any] = []
        self.meta: list[list[Any]] = []
        self.meta_items = 0
        self.memo: dict[int, Any] = {}
        self.proto = 0
        self.max_depth = scan.limits.max_depth

    # -- reading, with the unframer's rules --------------------------------------------------

    def take(self, k: int) -> int:
        """Consume ``k`` bytes and return where they start."""
        p = self.p
        q = p + k
        if q > self.end:
            if self.in_frame and p == self.end:
                # The frame is used up: the unframer falls back to reading the file.
                self.in_frame = False
                self.end = self.n
                if q <= self.n:
                    self.p = q
                    return p
            if self.in_frame:
                self.fatal("an opcode argument runs past the end of its frame")
            self.fatal("the pickle stream is truncated")
        self.p = q
        return p

    def line(self) -> tuple[int, int]:
        """Consume one newline-terminated argument; return its bounds without the newline."""
        if self.in_frame and self.p == self.end:
            self.in_frame = False
            self.end = self.n
        match = _NEWLINE.search(self.buf, self.p, self.end)
        if match is None:
            if self.in_frame:
                self.fatal("a text argument runs past the end of its frame")
            self.fatal("the pickle stream is truncated (unterminated text argument)")
        start = self.p
        stop: int = match.start()
        self.p = stop + 1
        return start, stop

    def line_bytes(self, limit: int) -> bytes:
        start, stop = self.line()
        if stop - start > limit:
            self.fatal(f"a {stop - start}-byte text argument is longer than any valid one")
        return bytes(self.buf[start:stop])

    def fatal(self, message: str) -> NoReturn:
        name = _OPNAMES.get(self.buf[self.op_pos], "?") if self.op_pos < self.n else "?"
        raise _Fatal(f"{message} ({name} at byte {self.op_pos}): refused.")

    def problem(self, message: str) -> None:
        name = _OPNAMES.get(self.buf[self.op_pos], "?")
        self.scan.problem(f"{message} ({name} at byte {self.op_pos}).")

    def desync(self, how: str) -> None:
        self.problem(
            f"joblib's array wrapper is {how}, which joblib never writes: the scanner could no "
            "longer tell array bytes from opcodes, so the file is refused"
        )

    # -- the main loop -----------------------------------------------------------------------

    def run(self) -> int:
        """Follow the stream to its STOP; return where the loader's file position ends up.

        The commonest opcodes of a fitted model (BINGET alone is 40% of a forest's, then
        MEMOIZE and BININT1) run here without a call: each block is its handler's body in
        :mod:`~safeload.typegate._opcodes`, byte for byte in effect (same reads through the
        unframer, same errors, same limits), after the same opcode count and periodic checks.
        Every other opcode goes to its handler.
        """
        scan = self.scan
        buf = self.buf
        table = DISPATCH
        memo = self.memo  # never rebound; a missing entry is the KeyError handled below
        gets = scan.gets
        max_memo = scan.limits.max_memo
        try:
            while True:
                p = self.p
                if p < self.end:  # fast path of take(1)
                    self.p = p + 1
                else:
                    p = self.take(1)
                self.op_pos = p
                op = buf[p]
                scan.count += 1
                if scan.count >= scan.next_check:
                    scan.periodic(self)
                if op == _BINGET or op == _BININT1:
                    # Their one-byte argument: take(1)'s fast path, else take(1) itself.
                    if p + 2 <= self.end:
                        self.p = p + 2
                        arg = buf[p + 1]
                    else:
                        arg = buf[self.take(1)]
                    if op == _BININT1:
                        self.stack.append(arg)
                        continue
                    value = memo[arg]  # _get
                    self.stack.append(value)
                    if type(value) is _Dtype:
                        gets.append(self.p)  # the fast path marks it used (fastplan)
                    continue
                if op == _MEMOIZE:  # memoize(len(memo))
                    memo[len(memo)] = self.stack[-1]
                    if len(memo) > max_memo:
                        self.memo_overflow()
                    continue
                handler = table[op]
                if handler is None:
                    raise _Fatal(
                        f"unknown opcode 0x{buf[self.op_pos]:02x} at byte {self.op_pos}: "
                        "this is not a pickle stream, or it is corrupt. Refused."
                    )
                handler(self)
        except _Stopped as stop:
            return stop.resume
        except IndexError:
            self.fatal("the opcode needs more items than the pickle stack holds")
        except KeyError:
            self.fatal("the opcode reads a memo entry that was never stored")

    # -- stack helpers -----------------------------------------------------------------------

    def push(self, value: object) -> None:
        self.stack.append(value)

    def pop(self) -> Any:
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        items = self.stack
        if not self.meta:
            self.fatal("the opcode needs a MARK that is not there")
        self.stack = self.meta.pop()
        self.meta_items -= len(self.stack)
        return items

    def memoize(self, index: int) -> None:
        memo = self.memo
        memo[index] = self.stack[-1]
        if len(memo) > self.scan.limits.max_memo:
            self.memo_overflow()

    def memo_overflow(self) -> NoReturn:
        self.fatal(f"the memo grows past {self.scan.limits.max_memo} entries")

    def text(self, start: int, stop: int, encoding: str) -> object:
        """Decode a string argument the way the unpickler does (long ones stay opaque)."""
        if stop - start > self.scan.limits.max_string_bytes:
            return _LONG_STR
        try:
            if encoding == "ascii":
                return str(self.buf[start:stop], "ascii")
            return str(self.buf[start:stop], "utf-8", "surrogatepass")
        except UnicodeDecodeError:
            self.fatal("a string argument does not decode as the unpickler requires")

    def raw(self, start: int, stop: int) -> object:
        if stop - start > self.scan.limits.max_string_bytes:
            return _BYTES
        return bytes(self.buf[start:stop])

    def global_(self, module: object, name: object) -> _Global | _Opaque:
        if type(module) is not str or type(name) is not str:
            shown = [v.what if isinstance(v, _Opaque) else type(v).__name__ for v in (module, name)]
            self.problem(
                f"unresolvable global: STACK_GLOBAL takes its module and name from values the "
                f"scanner cannot read ({shown[0]}, {shown[1]}); this is how scanners are evaded, "
                "so the file is refused"
            )
            return _UNRESOLVED
        if (self.top or self).proto < 3:
            module, name = _py3_spelling(module, name)
        return self.scan.global_(module, name, self.op_pos)

    # -- calls -------------------------------------------------------------------------------

    def call(self, func: object, args: object, how: str = "REDUCE") -> object:
        """``func(*args)`` as REDUCE does it (and OBJ/INST with arguments)."""
        items = args.items if type(args) is _Tuple else None
        self.check_call(how, func, items, None)
        if type(func) is _Global:
            kind = func.kind
            if kind == "naw":
                if items is None:
                    self.fatal("the array wrapper is called with arguments the scanner cannot read")
                return self.wrapper_init(items)
            if kind == "dtype":
                return self.dtype(items, args)
            if kind == "dtype_other":
                return self.dtype(None, args)
            if kind == "encode" and items is not None and len(items) == 2:
                text, codec = items
                if codec in ("latin1", "latin-1") and text is _LONG_STR:
                    return _BYTES
                if type(text) is str and codec in ("latin1", "latin-1"):
                    try:
                        return text.encode("latin-1")
                    except UnicodeEncodeError:
                        return _OBJ  # the loader fails here
            if kind == "bytes" and items == ():
                return b""  # an empty numpy scalar's raw bytes, at protocols 0-2
            if kind in ("reconstructor", "newobj", "newobj_ex") and items:
                cls = items[0]
                if type(cls) is _Global and cls.kind in ("naw", "dtype", "dtype_other"):
                    return self.special_new(kind, cls, items)
            if kind in ("set", "frozenset") and items is not None and len(items) <= 1:
                return self.made_set(kind == "frozenset", items[0] if items else None)
        else:
            self.not_a_global(func)
        if _tainted(func) or _tainted(args):
            self.desync("passed to a call")
        return _Made(func if type(func) is _Global else None, items)

    # -- who may be called, and how ----------------------------------------------------------

    def check_call(
        self, how: str, func: object, items: tuple[Any, ...] | None, kwargs: object
    ) -> None:
        """Refuse a call to a reference-only name, or in a form its rule does not allow.

        Untrusted names are reported as such (once, where they are named); values that are
        not globals are refused by the caller.
        """
        if type(func) is not _Global or not func.trusted:
            return
        if func.rule is None:
            self.problem(
                f"the stream calls {func.shown} ({how}), which the policy trusts only as a "
                "stored reference (a function or class kept as a value), never as something a "
                "file may call: calling even a harmless name with arguments of the file's "
                "choice is how a tiny file exhausts memory. If you trust the signer and this "
                "call is genuine, extend the policy with TypePolicy.extend("
                f"[{func.module + ':' + func.name!r}], callable=True)"
            )
            return
        why = self.rule_violation(func, how, items, kwargs)
        if why is not None:
            self.problem(
                f"the stream calls {func.shown} {why}; its own pickles never do, and the "
                "arguments would decide what it allocates or calls: refused"
            )

    def rule_violation(
        self, func: _Global, how: str, items: tuple[Any, ...] | None, kwargs: object
    ) -> str | None:
        """Why this call breaks ``func``'s rule (see ``callrules``), or ``None``."""
        if func.rule is None:
            return None
        rule = RULES.get(func.rule)
        if rule is None:  # a rule this scanner does not know: refuse rather than guess
            return f"under an unknown call rule {func.rule!r}"
        return rule.symbolic(self, func, how, items, kwargs)

    def copyreg_target(self, cls: object, how: str, items: tuple[Any, ...] | None) -> str | None:
        """Copyreg's helpers construct ``cls``: it must be callable, and in that form."""
        if type(cls) is not _Global:
            return "on a value that is not a named class"
        if not cls.trusted:
            return None  # reported as untrusted
        if cls.rule is None:
            return f"to construct {cls.shown}, which the policy trusts only as a reference"
        why = self.rule_violation(cls, how, items, None)
        return None if why is None else f"to construct {cls.shown} {why}"

    def not_a_global(self, func: object) -> None:
        if func is not _UNRESOLVED:  # reported where it was made
            self.problem(
                "the stream calls a value that is not a named global (a callable returned by "
                "another call, or data), which no scikit-learn pickle does and which would "
                "bypass the type check"
            )

    def special_new(self, kind: str, cls: _Global, items: tuple[Any, ...]) -> object:
        """Apply copyreg's helpers to the wrapper or dtype class."""
        if _any_tainted(items[1:]):
            self.desync("passed to a copyreg helper")
        if cls.kind == "naw":
            if kind == "reconstructor":
                base = items[1] if len(items) == 3 else None
                if not (type(base) is _Global and base.kind == "object" and items[2] is None):
                    self.fatal("copyreg._reconstructor builds the array wrapper unexpectedly")
            return _Wrapper({})
        if kind == "newobj" and cls.kind == "dtype":
            return self.dtype(items[1:], None)
        return self.dtype(None, None)

    def dtype(self, items: tuple[Any, ...] | None, args: object) -> _Dtype:
        if args is not None and _tainted(args):
            self.desync("passed to numpy.dtype")
        return _Dtype(items)

    def wrapper_init(self, items: Iterable[Any]) -> _Wrapper:
        """``NumpyArrayWrapper(*args)``: __init__ binds positional arguments and defaults."""
        values = list(items)
        if not 4 <= len(values) <= len(_WRAPPER_FIELDS):
            self.fatal("the array wrapper is constructed with the wrong number of arguments")
        if _any_tainted(values):
            self.desync("passed to its own constructor")
        attrs: dict[str, Any] = {"allow_mmap": False, "numpy_array_alignment_bytes": 16}
        attrs.update(zip(_WRAPPER_FIELDS, values, strict=False))
        return _Wrapper(attrs)

    def instantiate(self, klass: object, args: list[Any], how: str) -> object:
        """INST and OBJ: ``klass(*args)``, or ``klass.__new__(klass)`` without arguments."""
        if type(klass) is _Global:
            if klass.kind == "naw":
                self.check_call(how, klass, tuple(args), None)
                return self.wrapper_init(args) if args else _Wrapper({})
            if klass.kind in ("dtype", "dtype_other"):
                self.check_call(how, klass, tuple(args), None)
                usable = bool(args) and klass.kind == "dtype"
                return self.dtype(tuple(args) if usable else None, self.tuple_of(args))
        return self.call(klass, self.tuple_of(args), how)

    def new(self, cls: object, args: object, kwargs: object) -> object:
        """NEWOBJ and NEWOBJ_EX: ``cls.__new__(cls, *args, **kwargs)``."""
        items = args.items if type(args) is _Tuple else None
        self.check_call("NEWOBJ" if kwargs is None else "NEWOBJ_EX", cls, items, kwargs)
        if type(cls) is _Global and cls.kind == "naw":
            if _tainted(args) or _tainted(kwargs):
                self.desync("passed to its own constructor")
            return _Wrapper({})  # object.__new__: no __init__, no attributes yet
        if type(cls) is _Global and cls.kind in ("dtype", "dtype_other"):
            if _tainted(kwargs):
                self.desync("passed to numpy.dtype")
            plain = type(args) is _Tuple and (kwargs is None or _falsy(kwargs))
            usable = plain and cls.kind == "dtype"
            return self.dtype(args.items if usable else None, args)  # type: ignore[attr-defined]
        if type(cls) is not _Global:
            self.not_a_global(cls)
        if _tainted(cls) or _tainted(args) or _tainted(kwargs):
            self.desync("passed to a constructor")
        return _Made(cls if type(cls) is _Global else None, items, "new")

    # -- BUILD -------------------------------------------------------------------------------

    def build(self, inst: object, state: object) -> None:
        kind = type(inst)
        if kind is _Wrapper:
            self.stack[-1] = self.read_array(inst, state)  # type: ignore[arg-type]
            return
        if kind is _Dtype:
            self.build_dtype(inst, state)  # type: ignore[arg-type]
            return
        if kind is _Global:
            self.problem(
                f"BUILD sets attributes on the class {format_type_name((inst.module, inst.name))} "  # type: ignore[attr-defined]
                "itself, which would change that trusted type for everything loaded after; "
                "pickles never do this"
            )
            return
        if kind is _JoblibArray:
            self.problem("BUILD replaces the state of a joblib array, which joblib never writes")
            return
        if _tainted(inst) or _tainted(state):
            self.desync("given to BUILD")
            return
        if kind is _Made:
            inst.builds += 1  # type: ignore[attr-defined]
            inst.state = state  # type: ignore[attr-defined]
            if inst.builds > 1:  # type: ignore[attr-defined]
                self.problem(
                    "BUILD restores one object a second time, which the pickler never writes "
                    "(the second BUILD would see what the first stored on the instance)"
                )
            why = symbolic_problem(inst, state)  # type: ignore[arg-type]
            if why is not None:
                self.problem(why)
        parts = [state]
        if type(state) is _Tuple and state.items is not None and len(state.items) == 2:
            parts = list(state.items)
        for part in parts:
            if type(part) is _Dict:
                self.state_keys(part)

    def build_dtype(self, sym: _Dtype, state: object) -> None:
        if sym.built or sym.used:
            self.problem(
                "BUILD changes a numpy dtype that was already set up or used, which numpy "
                "never pickles (it could change arrays already built on it)"
            )
            sym.args = None
            return
        sym.built = True
        sym.state = state
        try:
            _resolve_dtype(sym)
        except _Unsure as exc:
            self.problem(
                f"a numpy dtype is pickled in a form numpy never writes ({exc}); numpy would "
                "trust its sizes and flags blindly, so the file is refused"
            )
            sym.args = None

    def wrapper_state(self, wrapper: _Wrapper, state: object) -> None:
        """Apply a BUILD state to the wrapper as ``load_build`` does (no ``__setstate__``)."""
        parts = [state]
        if type(state) is _Tuple and state.items is not None and len(state.items) == 2:
            parts = list(state.items)
        for part in parts:
            if _falsy(part):
                continue
            if type(part) is not _Dict or part.items is None:
                self.fatal("the array wrapper's state is not a plain dict")
            for key, value in part.items.items():
                if type(key) is not str or key not in _WRAPPER_FIELDS:
                    self.fatal(f"the array wrapper's state has an unexpected field {shown(key)}")
                if _tainted(value):
                    self.desync("stored inside another array wrapper")
                wrapper.attrs[key] = value

    def read_array(self, wrapper: _Wrapper, state: object) -> object:
        """Skip the payload the loader reads after this BUILD, exactly as it reads it."""
        self.wrapper_state(wrapper, state)
        wrapper.builds += 1
        if wrapper.builds > 1:
            self.problem("one joblib array wrapper is built twice, which joblib never writes")
        if self.in_frame:
            if self.p != self.end:
                self.fatal(
                    "a joblib array starts in the middle of a pickle frame, which joblib never "
                    "writes"
                )
            self.in_frame = False
            self.end = self.n
        attrs = wrapper.attrs
        region = self.p  # where the loader leaves the opcodes (the fast path skips from here)
        dtype = self.array_dtype(attrs.get("dtype", _MISSING))
        if dtype.hasobject:
            self.scan.slow("an object-dtype joblib array (a nested pickle)")
            limits = self.scan.limits
            if self.depth + 1 > limits.max_nesting:
                self.fatal(
                    f"object arrays nest more than {limits.max_nesting} deep "
                    "(ScanLimits.max_nesting)"
                )
            # The loader starts a fresh unpickler here and continues where it stopped.
            self.p = _Stream(self.scan, self.p, self.depth + 1, self.top or self).run()
            shape = attrs.get("shape", _MISSING)
            known = shape.items if type(shape) is _Tuple else None
            return _JoblibArray(dtype, None if known is None else len(known))
        align = attrs.get("numpy_array_alignment_bytes", _MISSING)
        if align is _OBJ or align is _UNRESOLVED or type(align) is _Made:
            self.fatal("the array wrapper's alignment is not a value the scanner can read")
        if align is not _MISSING and align is not None:
            padding = self.buf[self.take(1)]
            self.take(padding)
        shape = attrs.get("shape", _MISSING)
        items = shape.items if type(shape) in (_Tuple, _List) else None
        if items is None or not all(type(s) in (int, bool) for s in items):
            self.fatal("the array wrapper's shape is not a tuple of ints")
        if any(s < 0 for s in items):
            self.fatal("the array wrapper declares a negative shape")
        if attrs.get("order", _MISSING) not in ("C", "F"):
            self.fatal("the array wrapper's order is not 'C' or 'F'")
        count = 1
        for size in items:
            count *= int(size)
        nbytes = count * dtype.itemsize
        limit = self.scan.limits.max_array_bytes
        if nbytes > limit:
            self.fatal(
                f"a joblib array declares {nbytes} bytes, more than ScanLimits.max_array_bytes "
                f"({limit})"
            )
        if self.p + nbytes > self.n:
            self.fatal(
                f"a joblib array declares {nbytes} bytes but only {self.n - self.p} remain in "
                "the file"
            )
        if self.depth or self.scan.quiet:
            self.scan.slow("an array outside the top-level stream")
        else:
            shape = tuple(int(size) for size in items)
            self.scan.places.append(ArrayPlace(region, self.p, dtype, shape, attrs["order"]))
        self.p += nbytes
        return _JoblibArray(dtype, len(items))

    def array_dtype(self, value: object) -> np.dtype[Any]:
        try:
            if type(value) is str:
                return np.dtype(plain_code(value))
            if type(value) is _Dtype:
                value.used = True
                return _resolve_dtype(value)
        except _Unsure as exc:
            self.fatal(f"the dtype of a joblib array cannot be determined with certainty ({exc})")
        except (TypeError, ValueError, OverflowError):
            self.fatal("the dtype of a joblib array is not a valid numpy type code")
        self.fatal("the dtype of a joblib array is not a numpy dtype the scanner can read")


_PROTO = 0x80
_NOT_A_MODEL = (
    "not a pickle, joblib or skops file: it does not start like one (no pickle protocol "
    "header, no zip or compression magic) and does not parse as an old (protocol 0-1) "
    "pickle: refused."
)


def scan_payload(
    payload: Buffer,
    *,
    policy: TypePolicy | None = None,
    limits: ScanLimits | None = None,
    compression: str | None = None,
    path: str | None = None,
    deadline: Deadline | None = None,
) -> ScanReport:
    """Scan an already-decompressed pickle or joblib stream, without copying it.

    Never raises on bad input: whatever is wrong with the bytes is a problem in the report.
    """
    return scan_planned(payload, policy, limits, compression, path, deadline)[0]


def scan_planned(
    payload: Buffer,
    policy: TypePolicy | None,
    limits: ScanLimits | None,
    compression: str | None,
    path: str | None,
    deadline: Deadline | None,
) -> tuple[ScanReport, FastPlan | None]:
    """:func:`scan_payload`, and the fast path's plan when the scan proved it sound."""
    chosen = resolve_policy(policy)
    limits = limits or ScanLimits()
    view = byte_view(payload)
    clock = deadline or Deadline(limits.max_seconds)
    scan = _Scan(view, chosen, limits, clock.expires)
    try:
        _scan_all(scan)
    except _Fatal as exc:
        # No protocol header, no compression or zip magic, and not a valid old pickle
        # either: most likely not a model file at all (a script, a text, a CSV).
        not_a_model = compression is None and len(view) > 0 and view[0] != _PROTO
        scan.problem(_NOT_A_MODEL if not_a_model else str(exc))
    except RecursionError:
        scan.problem("the stream nests too deeply to follow: refused.")
    except MemoryError:
        scan.problem("the scan ran out of memory: refused. Lower the ScanLimits.")
    except Exception as exc:  # hostile bytes must never escape as an exception
        scan.problem(f"the scanner could not follow the stream ({type(exc).__name__}): refused.")
    is_joblib = compression is not None or _JOBLIB_WRAPPER in scan.names
    problems = list(scan.problems)
    if scan.dropped:
        problems.append(f"... and {scan.dropped} more problem(s) of the same kinds.")
    report = make_report(
        path=path,
        fmt="joblib" if is_joblib else "pickle",
        compression=compression,
        policy=chosen,
        names=scan.names,
        problems=problems,
    )
    plan = None
    if scan.slow_reason is None and report.safe:
        plan = FastPlan(view, chosen, tuple(scan.places), scan.ops, scan.gets, scan.proto)
    return report, plan


def _scan_all(scan: _Scan) -> None:
    if scan.n == 0:
        raise _Fatal("the file is empty: refused.")
    top = _Stream(scan, 0, 0)
    pos = top.run()
    scan.proto = top.proto
    if top.proto < 3:
        scan.slow(f"pickle protocol {top.proto} (Python 2 names are translated below 3)")
    if pos >= scan.n:
        return
    scan.slow("bytes after the end of the stream")
    scan.problem(
        f"{scan.n - pos} byte(s) follow the end of the pickle stream at byte {pos}; safeload "
        "deserializes exactly one pickle, so a file with anything after it is refused."
    )
    # Keep reading what follows as further pickles, to report the globals they would name.
    scan.quiet = True
    try:
        while pos < scan.n:
            pos = _Stream(scan, pos, 0).run()
    except _Fatal:
        pass
    finally:
        scan.quiet = False
