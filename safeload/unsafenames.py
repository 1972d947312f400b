"""Names a caller may not trust by accident: the doors from a model file to code or to the OS.

A trusted name is a global the file may name; a trusted *callable* is one it may call with
arguments of its choice. Some globals are a whole interpreter on their own: ``os.system``,
``builtins.eval``, ``pickle.loads`` (a nested, unrestricted unpickler), ``importlib.
import_module``, ``operator.attrgetter`` (reaches any attribute of what it is given). Exact
names stop a *file* from reaching them, but not a *user* who types one into ``--allow`` to
make an error go away. So :func:`unsafe_reason` refuses, for names a caller adds, everything
that is one of those doors, judged by what the name is rather than by a list of payloads:

1. **Door modules**: the name lives in a module (or a submodule of a package) whose purpose is
   reaching the OS, the file system, the network, processes or threads, the interpreter itself
   (imports, code objects, frames, ``ctypes``), or deserializing other formats that run code
   (``pickle``, ``marshal``, ``dill``, ``joblib``, ``yaml``, numpy's and pandas' file readers).
   Module names are compared after Unicode NFKC and case folding: on a case-insensitive file
   system with ``PYTHONCASEOK`` set, ``import OS`` finds ``os.py``.
2. **Dunder components**: any ``__name__`` part of the qualname (``ndarray.__reduce__``,
   ``x.__class__``, ``__globals__``, ``__subclasses__``, ``__import__``) is the interpreter's
   attribute machinery, never a class or function a model is made of.
3. **Re-exports**: a qualname that walks through a door module's name (``numpy:os.system``,
   ``sklearn:utils.sys.modules``) reaches that module whatever the first module is, and a
   global named like one (``numpy.testing._private.utils:os``) is that module.
4. **Door names, in any module**: functions whose last component says they load serialized
   objects (``load``, ``loads``, ``loadtxt``, ``read_pickle``, ``Unpickler``), evaluate text
   (``eval``, ``exec``, ``compile``, ``runstring``), import (``import_module``, ``reload``),
   reach attributes by name (``getattr``, ``attrgetter``, ``methodcaller``, ``vars``),
   open files or URLs (``open``, ``memmap``, ``fromfile``, ``fetch_*``), run commands
   (``system``, ``popen``, ``spawn*``, ``exec*``, ``fork``) or call what they are given
   (``partial``, ``apply``, ``starmap``, ``vectorize``, ``frompyfunc``). Modules re-export such
   names freely (``sklearn.utils.getattr``, ``numpy.load``), so the module does not matter.
5. **Builtins that reach code**: ``type``, ``help``, ``exit`` and the interactive helpers,
   beyond those rule 4 already names.

Python 2 spellings (``__builtin__``, ``cPickle``, ``commands``) are judged both as written and
as ``pickle`` translates them. The names of the default policy and of ``CALL_RULES`` were
reviewed with their call rules, which fix the one harmless form a stream may call them in; the
rule is for names a caller adds and passes them (the few it would otherwise catch, such as
``functools.partial`` and ``copyreg._reconstructor``, are pinned in
``tests/test_policy_file.py``). A caller who really means a door passes ``unsafe=True``
(``--unsafe-allow``, ``unsafe = true`` in a policy file) and is warned each time.
"""

from __future__ import annotations

import _compat_pickle
import functools
import re
import unicodedata

from safeload._default_types import CALL_RULES, DEFAULT_TYPES
from safeload.typenames import TypeName


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Top-level modules (and their submodules) that are doors, by what they are for.
DOOR_MODULES: dict[str, frozenset[str]] = {
    "the OS, its processes and files": _words(
        "antigravity anydbm asyncio bz2 commands concurrent crypt dbm fcntl filecmp fileinput "
        "genericpath glob grp gzip _io io linecache lzma macpath mailbox mmap msvcrt "
        "_multiprocessing multiprocessing nt ntpath os pathlib pipes platform posix posixpath "
        "_posixsubprocess pty pwd resource select selectors shutil _signal signal spwd _sqlite3 "
        "sqlite3 subprocess tarfile tempfile termios _thread thread threading tty webbrowser "
        "_winapi _winreg winreg zipfile"
    ),
    "the network": _words(
        "aiohttp ftplib http httplib httpx imaplib nntplib paramiko poplib requests smtplib "
        "_socket socket SocketServer socketserver _ssl ssl telnetlib urllib urllib2 urllib3 "
        "xmlrpc xmlrpclib"
    ),
    "the interpreter (imports, code, frames, memory)": _words(
        "atexit bdb cffi code codeop compileall copy cProfile _ctypes ctypes distutils doctest "
        "ensurepip faulthandler _frozen_importlib _frozen_importlib_external _functools "
        "functools gc idlelib _imp imp importlib inspect _lsprof numexpr _operator operator pdb "
        "pip pkgutil profile py_compile pydoc runpy setuptools site sys timeit Tkinter _tkinter "
        "tkinter trace types venv zipimport"
    ),
    "deserializers that run code": _words(
        "cloudpickle copy_reg copyreg cPickle dill joblib jsonpickle marshal _pickle pickle "
        "pickletools shelve _yaml yaml"
    ),
}

#: Submodules that are doors inside packages that are not (file readers, evaluators, runners).
DOOR_SUBMODULES = _words(
    "logging.config logging.handlers numpy.compat numpy.ctypeslib numpy.distutils numpy.f2py "
    "numpy.lib._datasource numpy.lib._format_impl numpy.lib._npyio_impl numpy.lib.format "
    "numpy.lib.npyio numpy.testing pandas.core.computation pandas.io scipy.io scipy.weave "
    "sklearn.datasets sklearn.externals sklearn.utils._joblib sklearn.utils._testing "
    "sklearn.utils.parallel torch.serialization"
)

_DOOR_TOPS: dict[str, str] = {m.casefold(): why for why, ms in DOOR_MODULES.items() for m in ms}
_DOOR_ATTRS = frozenset(
    {m for ms in DOOR_MODULES.values() for m in ms} | {"builtins", "__builtin__"}
)

#: Last components that are doors in whatever module they are found (leading underscores off).
DOOR_NAMES: dict[str, frozenset[str]] = {
    "evaluates text as code": _words(
        "compile eval exec execfile parse_expr run_code runstring sympify"
    ),
    "imports modules": _words(
        "find_class find_library import_module load_library reload ufunc_reconstruct"
    ),
    "reaches attributes by name": _words(
        "attrgetter delattr getattr getattr_static globals locals methodcaller setattr vars"
    ),
    "opens files or URLs": _words(
        "DataSource dump FileHandler FileIO fromfile fromregex genfromtxt memmap open save "
        "savetxt savez savez_compressed tofile urlopen urlretrieve"
    ),
    "runs commands or processes": _words(
        "check_call check_output fork forkpty getoutput getstatusoutput kill killpg Popen popen "
        "popen2 popen3 popen4 run_module run_path startfile system"
    ),
    "calls what it is given": _words(
        "apply apply_along_axis apply_over_axes call delayed filter frompyfunc map partial "
        "partialmethod piecewise reconstruct starmap vectorize"
    ),
    "reads input or starts a debugger": _words("breakpoint input interact raw_input set_trace"),
}
_DOOR_NAMES: dict[str, str] = {n: why for why, ns in DOOR_NAMES.items() for n in ns}

#: Loaders by shape: a name that starts with ``load`` or has a word ``load``, ``loads``,
#: ``pickle`` or ``unpickler`` (``loadtxt``, ``unsafe_load``, ``read_pickle``, ``NumpyUnpickler``;
#: not Cython's ``__pyx_unpickle_X`` reconstructors); spawn*/exec* families; network fetchers.
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_LOADER_WORDS = frozenset({"load", "loads", "pickle", "unpickler"})
_SPAWN = re.compile(r"^(spawn|posix_spawn)|^exec[lv]p?e?$|^fetch_|^download")
#: Callers of a callable they are given: numpy's ``*_ctor`` reconstructors (``__randomstate_ctor
#: (name, ctor)`` calls ``ctor``) and scikit-learn's Python-function metric wrappers.
_TRAMPOLINE = re.compile(r"_ctor$|^PyFunc")

#: Door modules whose name is no ordinary word: a global by that very name is the module
#: re-exported (``numpy.testing._private.utils.os``, ``numpy._core._internal._ctypes``).
DOOR_MODULE_NAMES = _words(
    "builtins cffi cloudpickle cPickle ctypes dill importlib marshal nt os pickle posix pty "
    "runpy shutil socket subprocess sys"
)

#: Builtins beyond rule 4 that reach the interpreter or the terminal.
DOOR_BUILTINS = frozenset(
    {"type", "help", "exit", "quit", "license", "credits", "copyright", "file"}
)

_DUNDER = re.compile(r"^__\w+__$")

#: What the default and the call rules already reviewed (the rule is for names a user adds).
REVIEWED: frozenset[TypeName] = frozenset(
    (m, q) for m, _, q in (n.partition(":") for n in (*DEFAULT_TYPES, *CALL_RULES))
)


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _translated(module: str, qualname: str) -> TypeName:
    """The name the unpickler imports below protocol 3 (``fix_imports``), as the walls do."""
    pair = _compat_pickle.NAME_MAPPING.get((module, qualname))
    if pair is not None:
        return str(pair[0]), str(pair[1])
    return str(_compat_pickle.IMPORT_MAPPING.get(module, module)), qualname


def _module_door(module: str) -> str | None:
    folded = _fold(module)
    why = _DOOR_TOPS.get(folded.partition(".")[0])
    if why is not None:
        return f"it is in `{module}`, a module for {why}"
    for door in DOOR_SUBMODULES:
        if folded == door or folded.startswith(door + "."):
            return f"it is in `{module}` (`{door}` reads files, evaluates or runs code)"
    return None


def _name_door(module: str, qualname: str) -> str | None:
    parts = qualname.split(".")
    for part in parts:
        if _DUNDER.match(part):
            return f"`{part}` is interpreter attribute machinery, never part of a model"
    for part in parts[:-1]:  # attributes are case-sensitive: compared exactly
        if part in _DOOR_ATTRS:
            return f"it reaches the module `{part}` through `{module}`"
    last = parts[-1].lstrip("_")
    if last in DOOR_MODULE_NAMES:
        return f"`{parts[-1]}` is the module `{last}` re-exported by `{module}`"
    if _TRAMPOLINE.search(last):
        return f"`{parts[-1]}` calls the callable it is given"
    why = _DOOR_NAMES.get(last)
    if why is not None:
        return f"`{parts[-1]}` {why}, in whatever module it is found"
    if last.lower().startswith("load") or _LOADER_WORDS & {w.lower() for w in _WORDS.findall(last)}:
        return f"`{parts[-1]}` loads serialized objects, in whatever module it is found"
    if _SPAWN.search(last):
        return f"`{parts[-1]}` runs processes or fetches from the network"
    if module == "builtins" and parts[-1] in DOOR_BUILTINS:
        return f"`builtins.{parts[-1]}` reaches the interpreter or the terminal"
    return None


@functools.lru_cache(maxsize=4096)
def unsafe_reason(module: str, qualname: str) -> str | None:
    """Why trusting ``module:qualname`` would let a file run code or reach the OS, or None.

    None for every name the default policy and the call rules reviewed. Otherwise the first
    rule (see the module docstring) that the name, or its Python 3 translation, trips.
    """
    translated = _translated(module, qualname)
    if (module, qualname) in REVIEWED or translated in REVIEWED:
        return None
    for mod, qual in dict.fromkeys([(module, qualname), translated]):
        why = _module_door(mod) or _name_door(mod, qual)
        if why is not None:
            return why
    return None


def unsafe_message(name: TypeName, why: str) -> str:
    """The refusal a user reads: what the name is, and the one explicit way to insist."""
    return (
        f"`{name[0]}:{name[1]}` lets a file run code or reach the OS ({why}); it is refused "
        "even when asked. If you really mean it, use extend(..., unsafe=True) / "
        "--unsafe-allow / `unsafe = true` in the policy file"
    )
