"""The static type gate: read a pickle/joblib/skops file and name every global it would load.

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
"""

from __future__ import annotations

import codecs
import mmap
import os
import pickletools
import re
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from safeload import _default_types as rules
from safeload.compression import decompress, detect_compression
from safeload.errors import (
    ArtifactNotFoundError,
    MalformedArtifactError,
    UntrustedTypeError,
    untrusted_types_message,
)
from safeload.policy import (
    TypeName,
    TypePolicy,
    format_type_name,
    parse_type_name,
    resolve_policy,
)

Buffer = bytes | bytearray | memoryview

__all__ = ["ScanLimits", "ScanReport", "scan", "scan_bytes", "scan_payload"]

_GIB = 1 << 30
_MIB = 1 << 20


@dataclass(frozen=True)
class ScanLimits:
    """Bounds on the work and memory a scan (and decompression) may spend on one file.

    Every limit turns hostile input into a reported problem instead of a hang or a crash.
    The defaults accept multi-gigabyte models; lower them for untrusted uploads.

    Attributes:
        max_opcodes: opcodes followed in total (nested and trailing pickles included).
        max_stack_depth: items on the symbolic stack, marks included (checked every few
            opcodes, so it may be passed by a small fraction before the scan stops).
        max_memo: entries in one stream's memo.
        max_nesting: object-dtype arrays nested in object-dtype arrays (each is a pickle).
        max_depth: containers (tuples, lists, dicts, sets) nested in one another. Deep values
            crash the loader's C code (``hash`` of a deep tuple recurses without a guard) and
            break ``repr``, ``copy`` and scikit-learn code; no model nests this deep.
        max_hash_work: steps the loader may spend hashing dict keys and set members, over the
            whole file (a tuple costs one step per item, expanded: memo-shared tuple DAGs
            make hashing exponential). A legitimate file spends about one step per key.
        max_array_bytes: payload one joblib array may declare; also never more than the bytes
            actually present in the file.
        max_decompressed_bytes: output of decompression, checked while decompressing.
        max_ratio: decompressed size over the compressed bytes read so far, enforced
            continuously once the output passes ``ratio_floor_bytes`` (small files may
            legitimately compress very well). Real models compress less than 20x (measured at
            every level of every joblib compressor); zlib reaches ~1032x and lz4 ~255x on runs
            of zeros, so a bomb stops after about ``ratio_floor_bytes`` of output.
        ratio_floor_bytes: output size below which ``max_ratio`` is not enforced.
        max_seconds: wall-clock time for one scan (checked every few thousand opcodes).
        max_string_bytes: longest string whose value the scanner tracks; a longer string used
            as a global name is refused as unresolvable.
        max_zip_entries: entries in a skops (zip) file.
    """

    max_opcodes: int = 50_000_000
    max_stack_depth: int = 1_000_000
    max_memo: int = 10_000_000
    max_nesting: int = 32
    max_depth: int = 1000
    max_hash_work: int = 50_000_000
    max_array_bytes: int = 64 * _GIB
    max_decompressed_bytes: int = 16 * _GIB
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 16 * _MIB
    max_seconds: float = 60.0
    max_string_bytes: int = 64 * 1024
    max_zip_entries: int = 100_000


@dataclass(frozen=True)
class ScanReport:
    """What a scan found. ``safe`` only if every global is trusted and nothing else is wrong.

    Attributes:
        path: the file scanned, if any.
        format: ``"pickle"``, ``"joblib"`` or ``"skops"``.
        compression: the joblib compressor found by magic bytes, or ``None``.
        globals: every global the file names, as ``module.qualname``, sorted, unique.
        untrusted: those of ``globals`` outside the policy, sorted, unique.
        problems: other reasons to refuse, each a sentence a user can act on.
    """

    path: str | None
    format: str
    compression: str | None
    globals: tuple[str, ...]
    untrusted: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def safe(self) -> bool:
        """Whether the file passed the type gate."""
        return not self.untrusted and not self.problems

    def raise_if_unsafe(self) -> None:
        """Raise the refusal this report stands for; do nothing if it is safe.

        Raises:
            UntrustedTypeError: the file names globals outside the policy.
            MalformedArtifactError: the file has other problems (malformed, limits, evasion).
        """
        where = f"{self.path}" if self.path else "The model stream"
        if self.untrusted:
            message = untrusted_types_message(self.untrusted, where)
            if self.problems:
                message += " Other problems: " + " ".join(self.problems)
            raise UntrustedTypeError(message, types=self.untrusted)
        if self.problems:
            raise MalformedArtifactError(
                f"{where} was refused by the static scan; nothing was deserialized. "
                + " ".join(self.problems)
            )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view with stable keys (the ``--json`` output of ``safeload scan``)."""
        return {
            "path": self.path,
            "format": self.format,
            "compression": self.compression,
            "safe": self.safe,
            "globals": list(self.globals),
            "untrusted": list(self.untrusted),
            "problems": list(self.problems),
        }


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
_ARRAY = _Opaque("a joblib array")
_MISSING = _Opaque("missing")


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


class _Tuple:
    __slots__ = ("depth", "items", "size", "tainted")

    def __init__(
        self, items: tuple[Any, ...] | None, tainted: bool, depth: int = 1, size: int = 1
    ) -> None:
        self.items = items  # None when too long to keep
        self.tainted = tainted
        self.depth = depth
        self.size = size


class _List:
    __slots__ = ("depth", "items", "size", "tainted")

    def __init__(
        self, items: list[Any] | None, tainted: bool, depth: int = 1, size: int = 1
    ) -> None:
        self.items = items
        self.tainted = tainted
        self.depth = depth
        self.size = size


class _Dict:
    __slots__ = ("depth", "items", "tainted")

    def __init__(self) -> None:
        self.items: dict[Any, Any] | None = {}  # None when a key is symbolic or it grew large
        self.tainted = False
        self.depth = 1


class _Set:
    __slots__ = ("depth", "frozen", "size", "tainted")

    def __init__(self, tainted: bool, frozen: bool, depth: int = 1, size: int = 1) -> None:
        self.tainted = tainted
        self.frozen = frozen
        self.depth = depth
        self.size = size


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


_CONTAINERS = (_Tuple, _List, _Dict, _Set)
_PLAIN = (str, int, float, bool, bytes, type(None), _Opaque)
_NATIVE_KEYS = (str, int, float, bool, bytes, type(None))
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
            size += _hash_cost(value)
        else:
            tainted = _tainted(value) or tainted
            size += 1
    return tainted, depth + 1, size if size < _SIZE_CAP else _SIZE_CAP


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
    ("copyreg", "_reconstructor"): "reconstructor",
    ("copy_reg", "_reconstructor"): "reconstructor",
    ("copyreg", "__newobj__"): "newobj",
    ("copy_reg", "__newobj__"): "newobj",
    ("copyreg", "__newobj_ex__"): "newobj_ex",
    ("builtins", "object"): "object",
    ("__builtin__", "object"): "object",
    # Protocols 0-2 spell bytes as _codecs.encode(text, "latin1"); dtype states contain bytes.
    ("_codecs", "encode"): "encode",
    ("codecs", "encode"): "encode",
}
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
_PLAIN_DTYPE = re.compile(r"[<>=|]?[A-Za-z?][0-9]{0,9}")
_DATETIME_UNITS = frozenset(
    ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "generic"]
)
_MAX_DTYPE_DEPTH = 16
_MAX_NUMBER_LINE = 4400  # CPython refuses longer decimal ints anyway
_MAX_PROBLEMS = 50


class _Fatal(Exception):
    """The stream cannot be followed further with certainty."""


class _Stopped(Exception):
    def __init__(self, resume: int) -> None:
        super().__init__(resume)
        self.resume = resume


class DtypeFormError(ValueError):
    """A numpy dtype described in a form numpy never writes, or one that cannot be checked."""


_Unsure = DtypeFormError  # what the scanner raises when it cannot be certain of a dtype


# --- numpy dtypes ---------------------------------------------------------------------------


def _real_key(value: object, depth: int = 0) -> tuple[Any, ...]:
    """A type-tagged, hashable picture of a value numpy puts in a dtype's ``__reduce__``."""
    if depth > _MAX_DTYPE_DEPTH:
        raise _Unsure("too deeply nested")
    kind = type(value)
    if value is None:
        return ("n",)
    if kind is bool:
        return ("b", value)
    if kind is int:
        return ("i", value)
    if kind is str:
        return ("s", value)
    if kind is bytes:
        return ("y", value)
    if kind is tuple:
        return ("t", *(_real_key(v, depth + 1) for v in value))  # type: ignore[attr-defined]
    if kind is dict:
        pairs = [(_real_key(k, depth + 1), _real_key(v, depth + 1)) for k, v in value.items()]  # type: ignore[attr-defined]
        return ("d", *sorted(pairs, key=repr))
    if isinstance(value, np.dtype):
        reduced = value.__reduce__()
        if not isinstance(reduced, tuple) or reduced[0] is not np.dtype or len(reduced) != 3:
            raise _Unsure(f"numpy reduces {value!r} in an unexpected way")
        return ("D", _real_key(reduced[1], depth + 1), _real_key(reduced[2], depth + 1))
    raise _Unsure(f"unexpected {kind.__name__} in a dtype state")


def _plain_code(code: object) -> str:
    if type(code) is not str or not _PLAIN_DTYPE.fullmatch(code):
        raise _Unsure(f"dtype code {code!r} is not a plain numpy type code")
    return code


def _ints(value: object, what: str) -> tuple[int, ...]:
    if type(value) is not tuple or not all(type(v) is int for v in value):
        raise _Unsure(f"{what} is not a tuple of ints")
    return value


def dtype_form(dtype: np.dtype[Any]) -> tuple[Any, ...]:
    """An exact picture of how numpy pickles ``dtype`` (flags and offsets included)."""
    return _real_key(dtype)


def rebuild_dtype(args: object, state: object) -> np.dtype[Any]:
    """The dtype that ``numpy.dtype(*args)`` followed by ``BUILD(state)`` stands for.

    Shared by both walls: the scanner calls it on the values it tracked, the restricted
    unpickler on the real ones, before numpy ever sees the state. ``dtype.__setstate__`` copies
    flags, sizes and offsets without checking them (a float64 can be told it holds objects,
    which turns raw bytes into object pointers), so the state is never trusted: a candidate is
    built from its parts with numpy's public constructors, and numpy's own ``__reduce__`` of
    that candidate must give back exactly ``args`` and ``state``.

    Raises:
        DtypeFormError: the arguments or the state are not what numpy writes for any dtype.
    """
    if type(args) is not tuple or len(args) != 3 or args[1] is not False or args[2] is not True:
        raise _Unsure("dtype arguments are not (code, False, True) as numpy writes them")
    code = _plain_code(args[0])
    if type(state) is not tuple or len(state) not in (8, 9):
        raise _Unsure("dtype state is not the tuple numpy writes")
    version, endian, sub, names, fields, elsize, _, flags = state[:8]
    if (version, len(state)) not in ((3, 8), (4, 9)) or endian not in ("<", ">", "|", "="):
        raise _Unsure("unknown dtype state version")
    prefix = endian if endian in ("<", ">") else ""
    try:
        if sub is not None:
            if type(sub) is not tuple or len(sub) != 2:
                raise _Unsure("dtype subarray is not (base, shape)")
            base, shape = sub
            if not isinstance(base, np.dtype):
                raise _Unsure("dtype subarray base is not a dtype")
            candidate = np.dtype((base, _ints(shape, "subarray shape")))
        elif names is not None:
            candidate = _structured(names, fields, elsize, flags)
        elif version == 4:
            candidate = _datetime(code, prefix, state[8])
        else:
            candidate = np.dtype(prefix + code)
    except DtypeFormError:
        raise
    except (TypeError, ValueError, OverflowError, KeyError) as exc:
        raise _Unsure(f"numpy rejects it ({exc})") from None
    if _real_key(candidate) != ("D", _real_key(args), _real_key(state)):
        raise _Unsure("its state is not the one numpy writes for that dtype")
    return candidate


def _structured(names: object, fields: object, elsize: object, flags: object) -> np.dtype[Any]:
    if type(names) is not tuple:
        raise _Unsure("dtype field names are not a tuple")
    if type(fields) is not dict:
        raise _Unsure("dtype fields are not a dict")
    if type(elsize) is not int or type(flags) is not int:
        raise _Unsure("dtype sizes are not ints")
    if not all(type(n) is str for n in names) or set(fields) != set(names):
        raise _Unsure("dtype fields do not match their names (titles are not supported)")
    formats: list[np.dtype[Any]] = []
    offsets: list[int] = []
    for name in names:
        entry = fields[name]
        if type(entry) is not tuple or len(entry) != 2:
            raise _Unsure("dtype field is not (dtype, offset)")
        field_dtype, offset = entry
        if not isinstance(field_dtype, np.dtype) or type(offset) is not int:
            raise _Unsure("dtype field is not (dtype, offset)")
        formats.append(field_dtype)
        offsets.append(offset)
    spec: Any = {"names": list(names), "formats": formats, "offsets": offsets, "itemsize": elsize}
    result: np.dtype[Any] = np.dtype(spec, align=bool(flags & 0x80))
    return result


def _datetime(code: str, prefix: str, meta: object) -> np.dtype[Any]:
    if type(meta) is not tuple or len(meta) != 2:
        raise _Unsure("dtype metadata is not the pair numpy writes for datetimes")
    if meta[0] is not None:
        raise _Unsure("dtype carries metadata")
    info = meta[1]
    if type(info) is not tuple or len(info) != 4:
        raise _Unsure("datetime unit is not (unit, count, 1, 1)")
    unit, count = info[:2]
    if type(unit) is not bytes or type(count) is not int or count < 1:
        raise _Unsure("datetime unit is not (unit, count, 1, 1)")
    unit_text = unit.decode("ascii", "replace")
    if unit_text not in _DATETIME_UNITS or code not in ("M8", "m8"):
        raise _Unsure("unknown datetime unit")
    step = "" if count == 1 else str(count)
    return np.dtype(f"{prefix}{code}[{step}{unit_text}]")


def _realize(value: object, depth: int = 0) -> Any:
    """The real value a symbolic one stands for, or ``_Unsure`` if any part is not certain."""
    if depth > _MAX_DTYPE_DEPTH:
        raise _Unsure("too deeply nested")
    kind = type(value)
    if kind in (type(None), bool, int, str, bytes):
        return value
    if kind is _Tuple:
        items = value.items  # type: ignore[attr-defined]
        if items is None:
            raise _Unsure("tuple too long")
        return tuple(_realize(v, depth + 1) for v in items)
    if kind is _Dict:
        content = value.items  # type: ignore[attr-defined]
        if content is None:
            raise _Unsure("dict with symbolic keys")
        return {_realize(k, depth + 1): _realize(v, depth + 1) for k, v in content.items()}
    if kind is _Dtype:
        return _resolve_dtype(value, depth + 1)  # type: ignore[arg-type]
    raise _Unsure("a value the scanner does not track")


def _resolve_dtype(sym: _Dtype, depth: int = 0) -> np.dtype[Any]:
    """The dtype the loader will get from this constructor call and BUILD, or ``_Unsure``."""
    sym.used = True  # relied upon from now on: a later BUILD on it is refused
    if sym.dtype is not None:
        return sym.dtype
    if sym.busy or depth > _MAX_DTYPE_DEPTH:
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
            result: np.dtype[Any] = np.dtype(_plain_code(args[0]), *args[1:])
        else:
            real_args = tuple(_realize(a, depth + 1) for a in args)
            result = rebuild_dtype(real_args, _realize(sym.state, depth + 1))
    except DtypeFormError:
        raise
    except (TypeError, ValueError, OverflowError, KeyError) as exc:
        raise _Unsure(f"numpy rejects it ({exc})") from None
    finally:
        sym.busy = False
    sym.dtype = result
    return result


# --- following one pickle stream ------------------------------------------------------------


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


_Handler = Callable[["_Stream"], None]
_DISPATCH: list[_Handler | None] = [None] * 256


def _op(code: bytes) -> Callable[[_Handler], _Handler]:
    def register(fn: _Handler) -> _Handler:
        _DISPATCH[code[0]] = fn
        return fn

    return register


class _Stream:
    """One pickle stream: the symbolic twin of ``pickle._Unpickler`` over the shared buffer."""

    def __init__(self, scan: _Scan, start: int, depth: int) -> None:
        self.scan = scan
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
        """Follow the stream to its STOP; return where the loader's file position ends up."""
        scan = self.scan
        buf = self.buf
        table = _DISPATCH
        try:
            while True:
                p = self.p
                if p < self.end:  # fast path of take(1)
                    self.p = p + 1
                else:
                    p = self.take(1)
                self.op_pos = p
                handler = table[buf[p]]
                scan.count += 1
                if scan.count >= scan.next_check:
                    scan.periodic(self)
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
            if kind in ("reconstructor", "newobj", "newobj_ex") and items:
                cls = items[0]
                if type(cls) is _Global and cls.kind in ("naw", "dtype", "dtype_other"):
                    return self.special_new(kind, cls, items)
        else:
            self.not_a_global(func)
        if _tainted(func) or _tainted(args):
            self.desync("passed to a call")
        return _OBJ

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
        """Why this call breaks ``func``'s rule (see ``_default_types``), or ``None``."""
        rule = func.rule
        if rule is None or rule == rules.ANY:
            return None
        if kwargs is not None and not _falsy(kwargs):
            return "with keyword arguments"
        if rule == rules.NEW:
            if how not in _NEWOBJ_OPS:
                return (
                    f"by {how}, which would run its constructor on the file's arguments "
                    "(pickles create it with NEWOBJ and no arguments)"
                )
            return None if items == () else "by NEWOBJ with arguments"
        if rule == rules.NO_ARGS:
            return None if items == () else "with arguments"
        if how != "REDUCE":
            return f"by {how}"
        if items is None:
            return "with arguments the scanner cannot read"
        check = _RULE_CHECKS.get(rule)
        if check is None:  # a rule this scanner does not know: refuse rather than guess
            return f"under an unknown call rule {rule!r}"
        return check(self, func, items)

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
        return _OBJ

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
        if inst is _ARRAY:
            self.problem("BUILD replaces the state of a joblib array, which joblib never writes")
            return
        if _tainted(inst) or _tainted(state):
            self.desync("given to BUILD")
            return
        if type(state) is _Tuple and state.items is not None and len(state.items) == 2:
            slots = state.items[1]
            if type(slots) is _Dict and (slots.items is None or "__class__" in slots.items):
                self.problem("BUILD may assign __class__ through its slot state")

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
                    self.fatal(f"the array wrapper's state has an unexpected field {key!r}")
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
        dtype = self.array_dtype(attrs.get("dtype", _MISSING))
        if dtype.hasobject:
            limits = self.scan.limits
            if self.depth + 1 > limits.max_nesting:
                self.fatal(
                    f"object arrays nest more than {limits.max_nesting} deep "
                    "(ScanLimits.max_nesting)"
                )
            # The loader starts a fresh unpickler here and continues where it stopped.
            self.p = _Stream(self.scan, self.p, self.depth + 1).run()
            return _ARRAY
        align = attrs.get("numpy_array_alignment_bytes", _MISSING)
        if align is _OBJ or align is _UNRESOLVED:
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
        self.p += nbytes
        return _ARRAY

    def array_dtype(self, value: object) -> np.dtype[Any]:
        try:
            if type(value) is str:
                return np.dtype(_plain_code(value))
            if type(value) is _Dtype:
                value.used = True
                return _resolve_dtype(value)
        except _Unsure as exc:
            self.fatal(f"the dtype of a joblib array cannot be determined with certainty ({exc})")
        except (TypeError, ValueError, OverflowError):
            self.fatal("the dtype of a joblib array is not a valid numpy type code")
        self.fatal("the dtype of a joblib array is not a numpy dtype the scanner can read")

    # -- container helpers -------------------------------------------------------------------

    def too_deep(self) -> NoReturn:
        self.fatal(
            f"values nest more than {self.max_depth} levels deep (ScanLimits.max_depth): the "
            "loader's C code recurses through nested values without a guard (hashing a deep "
            "tuple crashes the interpreter), and no model nests this deep"
        )

    def charge_hash(self, work: int) -> None:
        """Count ``work`` steps of hashing in the loader against ScanLimits.max_hash_work."""
        scan = self.scan
        scan.hash_work += work
        if scan.hash_work > scan.limits.max_hash_work:
            self.fatal(
                f"the dict keys and set members of this file take more than "
                f"{scan.limits.max_hash_work} steps to hash (ScanLimits.max_hash_work): refused "
                "as a hashing bomb (a tuple shared through the memo expands exponentially when "
                "hashed). If the model is genuine and this large, raise that limit"
            )

    def hashed(self, values: Iterable[Any]) -> None:
        """The loader hashes each of ``values`` (dict keys, set members)."""
        self.charge_hash(sum(_hash_cost(v) for v in values))

    def tuple_of(self, items: list[Any]) -> _Tuple:
        tainted, depth, size = _measure(items)
        if depth > self.max_depth:
            self.too_deep()
        kept = tuple(items) if len(items) <= _KEEP_ITEMS else None
        return _Tuple(kept, tainted, depth, size)

    def grow(self, target: _List | _Dict | _Set, items: list[Any]) -> bool:
        """Account for ``items`` added to a mutable container; return whether any is tainted."""
        tainted, depth, size = _measure(items)
        target.tainted = target.tainted or tainted
        if depth > target.depth:
            if depth > self.max_depth:
                self.too_deep()
            target.depth = depth
        if type(target) is not _Dict:
            target.size = min(target.size + size - 1, _SIZE_CAP)  # type: ignore[union-attr]
        return tainted

    def extend(self, target: object, items: list[Any]) -> None:
        """APPEND/APPENDS."""
        if type(target) is _List:
            self.grow(target, items)
            if target.items is not None:
                target.items.extend(items)
                if len(target.items) > _KEEP_ITEMS:
                    target.items = None
        elif _any_tainted(items) or _tainted(target):
            self.desync("added to a container")

    def setitems(self, target: object, items: list[Any]) -> None:
        """SETITEM/SETITEMS (an odd item count fails in the loader after the pairs)."""
        self.hashed(items[0 : len(items) - 1 : 2])
        if type(target) is _Dict:
            self.grow(target, items)
            content = target.items
            if content is not None:
                for i in range(0, len(items) - 1, 2):
                    key = items[i]
                    if type(key) not in _NATIVE_KEYS or len(content) >= _KEEP_ITEMS:
                        target.items = content = None
                        break
                    content[key] = items[i + 1]
        elif _any_tainted(items) or _tainted(target):
            self.desync("added to a container")
        if len(items) % 2:
            self.fatal("SETITEMS has a key without a value")


# --- call rules (see safeload._default_types): the only forms the library's pickles take --


def _is_zero_shape(value: object) -> bool:
    items = value.items if type(value) is _Tuple else None
    return items is not None and len(items) == 1 and type(items[0]) is int and items[0] == 0


def _is_bit_generator(value: object) -> bool:
    if type(value) is str:
        return True
    return type(value) is _Global and (value.module, value.name) in _BIT_GENERATORS


def _check_dtype(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    return dtype_call_problem(items)


def dtype_call_problem(items: tuple[Any, ...]) -> str | None:
    """Why ``numpy.dtype(*items)`` is not a call numpy pickles, or ``None`` (both walls)."""
    if not 1 <= len(items) <= 3:
        return "with other than (code[, align[, copy]])"
    if type(items[0]) is not str or not _PLAIN_DTYPE.fullmatch(items[0]):
        return "with something other than a plain numpy type code"
    if not all(type(a) is bool for a in items[1:]):
        return "with flags that are not booleans"
    return None


def _check_reconstruct(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if (
        len(items) != 3
        or type(items[0]) is not _Global
        or not _is_zero_shape(items[1])
        or items[2] not in _ZERO_SHAPE_DTYPES
    ):
        return "with other than (<array class>, (0,), b'b'): an allocation the file would choose"
    return None


def _check_mareconstruct(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if (
        len(items) != 4
        or type(items[0]) is not _Global
        or type(items[1]) is not _Global
        or not _is_zero_shape(items[2])
        or items[3] not in _ZERO_SHAPE_DTYPES
    ):
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
    if items and not (_is_bit_generator(items[0]) or items[0] is _OBJ):
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
    if n_classes is not _ARRAY and n_classes is not _OBJ:
        return "with class counts that are not an array"
    return None


def _check_hashed(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) > 1:
        return "with more than one argument"
    if items:
        arg = items[0]
        if type(arg) is not _List and type(arg) is not _Tuple:
            return "with something other than a list or tuple of its items"
        s.charge_hash(arg.size - 1)
    return None


def _check_copyreg_reconstructor(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    if len(items) != 3:
        return "with other than (class, base, state)"
    cls, base = items[0], items[1]
    if type(base) is _Global and base.kind == "object":  # object.__new__(cls)
        return s.copyreg_target(cls, "NEWOBJ", ())
    # base.__new__(cls, state) and base.__init__(obj, state): both must be callable freely.
    why = s.copyreg_target(base, "REDUCE", None)
    return why if why is not None else s.copyreg_target(cls, "NEWOBJ", ())


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


_RULE_CHECKS: dict[str, Callable[[_Stream, _Global, tuple[Any, ...]], str | None]] = {
    rules.DTYPE: _check_dtype,
    rules.RECONSTRUCT: _check_reconstruct,
    rules.MARECONSTRUCT: _check_mareconstruct,
    rules.SCALAR: _check_scalar,
    rules.FROMBUFFER: _check_frombuffer,
    rules.BIT_GENERATOR: _check_bit_generator,
    rules.RNG: _check_rng,
    rules.MODULE_CLASS: _check_module_class,
    rules.PYX_UNPICKLE: _check_pyx_unpickle,
    rules.TREE: _check_tree,
    rules.HASHED: _check_hashed,
    rules.COPYREG_RECONSTRUCTOR: _check_copyreg_reconstructor,
    rules.COPYREG_NEWOBJ: _check_copyreg_newobj,
    rules.COPYREG_NEWOBJ_EX: _check_copyreg_newobj_ex,
}


# One handler per opcode, following pickle._Unpickler line by line.


@_op(b"\x80")  # PROTO
def _proto(s: _Stream) -> None:
    version = s.buf[s.take(1)]
    if version > 5:
        s.fatal(f"pickle protocol {version} is higher than 5, the highest that exists")
    s.proto = version


@_op(b"\x95")  # FRAME
def _frame(s: _Stream) -> None:
    (size,) = struct.unpack_from("<Q", s.buf, s.take(8))
    if s.in_frame and s.p != s.end:
        s.fatal("a new frame starts before the current one ends")
    if size > sys.maxsize or s.p + size > s.n:
        s.fatal(f"a frame of {size} bytes runs past the end of the stream")
    s.in_frame = True
    s.end = s.p + size


@_op(b".")  # STOP
def _stop(s: _Stream) -> None:
    s.pop()
    resume = s.p
    if s.in_frame and s.p < s.end:
        s.problem(
            f"{s.end - s.p} byte(s) after STOP inside the last frame, which the loader would "
            "silently skip"
        )
        resume = s.end
    raise _Stopped(resume)


@_op(b"(")  # MARK
def _mark(s: _Stream) -> None:
    s.meta.append(s.stack)
    s.meta_items += len(s.stack)
    s.stack = []


@_op(b"N")
def _none(s: _Stream) -> None:
    s.push(None)


@_op(b"\x88")
def _true(s: _Stream) -> None:
    s.push(True)


@_op(b"\x89")
def _false(s: _Stream) -> None:
    s.push(False)


@_op(b"I")
def _int(s: _Stream) -> None:
    data = s.line_bytes(_MAX_NUMBER_LINE)
    if data == b"00":
        s.push(False)
    elif data == b"01":
        s.push(True)
    else:
        try:
            s.push(int(data, 0))
        except ValueError:
            s.fatal("INT argument is not a number")


@_op(b"J")
def _binint(s: _Stream) -> None:
    s.push(struct.unpack_from("<i", s.buf, s.take(4))[0])


@_op(b"K")
def _binint1(s: _Stream) -> None:
    s.push(s.buf[s.take(1)])


@_op(b"M")
def _binint2(s: _Stream) -> None:
    s.push(struct.unpack_from("<H", s.buf, s.take(2))[0])


@_op(b"L")
def _long(s: _Stream) -> None:
    data = s.line_bytes(_MAX_NUMBER_LINE)
    if data.endswith(b"L"):
        data = data[:-1]
    try:
        s.push(int(data, 0))
    except ValueError:
        s.fatal("LONG argument is not a number")


def _decode_long(s: _Stream, size: int) -> None:
    start = s.take(size)
    if size > 64:
        s.push(_BIG_INT)
    else:
        s.push(int.from_bytes(s.buf[start : start + size], "little", signed=True))


@_op(b"\x8a")
def _long1(s: _Stream) -> None:
    _decode_long(s, s.buf[s.take(1)])


@_op(b"\x8b")
def _long4(s: _Stream) -> None:
    (size,) = struct.unpack_from("<i", s.buf, s.take(4))
    if size < 0:
        s.fatal("LONG4 has a negative byte count")
    _decode_long(s, size)


@_op(b"F")
def _float(s: _Stream) -> None:
    try:
        s.push(float(s.line_bytes(_MAX_NUMBER_LINE)))
    except ValueError:
        s.fatal("FLOAT argument is not a number")


@_op(b"G")
def _binfloat(s: _Stream) -> None:
    s.push(struct.unpack_from(">d", s.buf, s.take(8))[0])


@_op(b"S")
def _string(s: _Stream) -> None:
    start, stop = s.line()
    buf = s.buf
    if stop - start < 2 or buf[start] != buf[stop - 1] or buf[start] not in b"\"'":
        s.fatal("the STRING argument must be quoted")
    if stop - start > s.scan.limits.max_string_bytes:
        s.push(_LONG_STR)
        return
    try:
        s.push(codecs.escape_decode(bytes(buf[start + 1 : stop - 1]))[0].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        s.fatal("the STRING argument does not decode as the unpickler requires")


def _counted_string(s: _Stream, size: int) -> None:
    start = s.take(size)
    s.push(s.text(start, start + size, "ascii"))


@_op(b"T")
def _binstring(s: _Stream) -> None:
    (size,) = struct.unpack_from("<i", s.buf, s.take(4))
    if size < 0:
        s.fatal("BINSTRING has a negative byte count")
    _counted_string(s, size)


@_op(b"U")
def _short_binstring(s: _Stream) -> None:
    _counted_string(s, s.buf[s.take(1)])


def _counted_unicode(s: _Stream, size: int) -> None:
    start = s.take(size)
    s.push(s.text(start, start + size, "utf-8"))


@_op(b"V")
def _unicode(s: _Stream) -> None:
    start, stop = s.line()
    if stop - start > s.scan.limits.max_string_bytes:
        s.push(_LONG_STR)
        return
    try:
        s.push(str(s.buf[start:stop], "raw-unicode-escape"))
    except UnicodeDecodeError:
        s.fatal("the UNICODE argument does not decode")


@_op(b"X")
def _binunicode(s: _Stream) -> None:
    _counted_unicode(s, struct.unpack_from("<I", s.buf, s.take(4))[0])


@_op(b"\x8c")
def _short_binunicode(s: _Stream) -> None:
    _counted_unicode(s, s.buf[s.take(1)])


@_op(b"\x8d")
def _binunicode8(s: _Stream) -> None:
    (size,) = struct.unpack_from("<Q", s.buf, s.take(8))
    if size > sys.maxsize:
        s.fatal("BINUNICODE8 is larger than any buffer")
    _counted_unicode(s, size)


def _counted_bytes(s: _Stream, size: int) -> None:
    start = s.take(size)
    s.push(s.raw(start, start + size))


@_op(b"B")
def _binbytes(s: _Stream) -> None:
    _counted_bytes(s, struct.unpack_from("<I", s.buf, s.take(4))[0])


@_op(b"C")
def _short_binbytes(s: _Stream) -> None:
    _counted_bytes(s, s.buf[s.take(1)])


@_op(b"\x8e")
def _binbytes8(s: _Stream) -> None:
    (size,) = struct.unpack_from("<Q", s.buf, s.take(8))
    if size > sys.maxsize:
        s.fatal("BINBYTES8 is larger than any buffer")
    _counted_bytes(s, size)


@_op(b"\x96")
def _bytearray8(s: _Stream) -> None:
    (size,) = struct.unpack_from("<Q", s.buf, s.take(8))
    if size > sys.maxsize:
        s.fatal("BYTEARRAY8 is larger than any buffer")
    s.take(size)
    s.push(_BYTES)


@_op(b"\x97")
def _next_buffer(s: _Stream) -> None:
    s.problem("the stream asks for an out-of-band buffer, which safeload never provides")
    s.push(_OBJ)


@_op(b"\x98")
def _readonly_buffer(s: _Stream) -> None:
    s.stack[-1]  # the loader reads it (and fails on an empty stack)


@_op(b")")
def _empty_tuple(s: _Stream) -> None:
    s.push(_Tuple((), False))


@_op(b"t")
def _tuple(s: _Stream) -> None:
    items = s.pop_mark()
    s.push(s.tuple_of(items))


@_op(b"\x85")
def _tuple1(s: _Stream) -> None:
    s.stack[-1] = s.tuple_of(s.stack[-1:])


@_op(b"\x86")
def _tuple2(s: _Stream) -> None:
    stack = s.stack
    stack[-2]  # IndexError on a short segment, as in the loader
    stack[-2:] = [s.tuple_of(stack[-2:])]


@_op(b"\x87")
def _tuple3(s: _Stream) -> None:
    stack = s.stack
    stack[-3]
    stack[-3:] = [s.tuple_of(stack[-3:])]


@_op(b"]")
def _empty_list(s: _Stream) -> None:
    s.push(_List([], False))


@_op(b"l")
def _list(s: _Stream) -> None:
    items = s.pop_mark()
    kept = items if len(items) <= _KEEP_ITEMS else None
    tainted, depth, size = _measure(items)
    if depth > s.max_depth:
        s.too_deep()
    s.push(_List(kept, tainted, depth, size))


@_op(b"}")
def _empty_dict(s: _Stream) -> None:
    s.push(_Dict())


@_op(b"d")
def _dict(s: _Stream) -> None:
    items = s.pop_mark()
    if len(items) % 2:
        s.fatal("DICT has a key without a value")
    target = _Dict()
    s.setitems(target, items)
    s.push(target)


@_op(b"\x8f")
def _empty_set(s: _Stream) -> None:
    s.push(_Set(False, False))


@_op(b"\x91")
def _frozenset(s: _Stream) -> None:
    items = s.pop_mark()
    s.hashed(items)
    tainted, depth, _ = _measure(items)
    if depth > s.max_depth:
        s.too_deep()
    s.push(_Set(tainted, True, depth, min(1 + len(items), _SIZE_CAP)))


@_op(b"\x90")
def _additems(s: _Stream) -> None:
    items = s.pop_mark()
    target = s.stack[-1]
    s.hashed(items)
    if type(target) is _Set:
        s.grow(target, items)
    elif _any_tainted(items) or _tainted(target):
        s.desync("added to a container")


@_op(b"a")
def _append(s: _Stream) -> None:
    value = s.pop()
    s.extend(s.stack[-1], [value])


@_op(b"e")
def _appends(s: _Stream) -> None:
    items = s.pop_mark()
    s.extend(s.stack[-1], items)


@_op(b"s")
def _setitem(s: _Stream) -> None:
    value = s.pop()
    key = s.pop()
    s.setitems(s.stack[-1], [key, value])


@_op(b"u")
def _setitems(s: _Stream) -> None:
    items = s.pop_mark()
    s.setitems(s.stack[-1], items)


@_op(b"0")
def _pop(s: _Stream) -> None:
    if s.stack:
        s.stack.pop()
    else:
        s.pop_mark()  # pickle._Unpickler discards the MARK itself on an empty segment


@_op(b"1")
def _pop_mark(s: _Stream) -> None:
    s.pop_mark()


@_op(b"2")
def _dup(s: _Stream) -> None:
    s.push(s.stack[-1])


def _get(s: _Stream, index: int) -> None:
    s.push(s.memo[index])


@_op(b"g")
def _get_text(s: _Stream) -> None:
    try:
        index = int(s.line_bytes(_MAX_NUMBER_LINE))
    except ValueError:
        s.fatal("GET argument is not a number")
    _get(s, index)


@_op(b"h")
def _binget(s: _Stream) -> None:
    _get(s, s.buf[s.take(1)])


@_op(b"j")
def _long_binget(s: _Stream) -> None:
    _get(s, struct.unpack_from("<I", s.buf, s.take(4))[0])


@_op(b"p")
def _put(s: _Stream) -> None:
    try:
        index = int(s.line_bytes(_MAX_NUMBER_LINE))
    except ValueError:
        s.fatal("PUT argument is not a number")
    if index < 0:
        s.fatal("PUT has a negative index")
    s.memoize(index)


@_op(b"q")
def _binput(s: _Stream) -> None:
    s.memoize(s.buf[s.take(1)])


@_op(b"r")
def _long_binput(s: _Stream) -> None:
    s.memoize(struct.unpack_from("<I", s.buf, s.take(4))[0])


@_op(b"\x94")
def _memoize(s: _Stream) -> None:
    s.memoize(len(s.memo))


def _global_line(s: _Stream, encoding: str) -> str:
    start, stop = s.line()
    if stop - start > s.scan.limits.max_string_bytes:
        s.fatal(f"a global name longer than {s.scan.limits.max_string_bytes} bytes")
    try:
        return str(s.buf[start:stop], encoding)
    except UnicodeDecodeError:
        s.fatal("a global name does not decode as the unpickler requires")


@_op(b"c")
def _global(s: _Stream) -> None:
    module = _global_line(s, "utf-8")
    name = _global_line(s, "utf-8")
    s.push(s.global_(module, name))


@_op(b"\x93")
def _stack_global(s: _Stream) -> None:
    name = s.pop()
    module = s.pop()
    s.push(s.global_(module, name))


@_op(b"i")
def _inst(s: _Stream) -> None:
    module = _global_line(s, "ascii")
    name = _global_line(s, "ascii")
    klass = s.global_(module, name)
    s.push(s.instantiate(klass, s.pop_mark(), "INST"))


@_op(b"o")
def _obj(s: _Stream) -> None:
    args = s.pop_mark()
    klass = args.pop(0)
    s.push(s.instantiate(klass, args, "OBJ"))


@_op(b"\x81")
def _newobj(s: _Stream) -> None:
    args = s.pop()
    cls = s.pop()
    s.push(s.new(cls, args, None))


@_op(b"\x92")
def _newobj_ex(s: _Stream) -> None:
    kwargs = s.pop()
    args = s.pop()
    cls = s.pop()
    s.push(s.new(cls, args, kwargs))


@_op(b"R")
def _reduce(s: _Stream) -> None:
    args = s.pop()
    s.stack[-1] = s.call(s.stack[-1], args)


@_op(b"b")
def _build(s: _Stream) -> None:
    state = s.pop()
    s.build(s.stack[-1], state)


def _extension(s: _Stream, code: int) -> None:
    s.problem(
        f"the stream names a global through the copyreg extension registry (code {code}), "
        "which cannot be resolved statically; refused"
    )
    s.push(_UNRESOLVED)


@_op(b"\x82")
def _ext1(s: _Stream) -> None:
    _extension(s, s.buf[s.take(1)])


@_op(b"\x83")
def _ext2(s: _Stream) -> None:
    _extension(s, struct.unpack_from("<H", s.buf, s.take(2))[0])


@_op(b"\x84")
def _ext4(s: _Stream) -> None:
    _extension(s, struct.unpack_from("<i", s.buf, s.take(4))[0])


@_op(b"P")
def _persid(s: _Stream) -> None:
    s.line()
    s.problem("the stream uses a persistent id, which safeload never writes; refused")
    s.push(_UNRESOLVED)


@_op(b"Q")
def _binpersid(s: _Stream) -> None:
    if _tainted(s.pop()):
        s.desync("used as a persistent id")
    s.problem("the stream uses a persistent id, which safeload never writes; refused")
    s.push(_UNRESOLVED)


# --- public entry points --------------------------------------------------------------------


def _as_view(data: Buffer) -> memoryview:
    view = data if isinstance(data, memoryview) else memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _report(
    scan: _Scan | None,
    *,
    path: str | None,
    fmt: str,
    compression: str | None,
    problems: Iterable[str] = (),
    names: Iterable[TypeName] = (),
    policy: TypePolicy,
) -> ScanReport:
    found = set(names)
    found_problems = list(problems)
    if scan is not None:
        found |= scan.names
        found_problems = scan.problems + found_problems
        if scan.dropped:
            found_problems.append(f"... and {scan.dropped} more problem(s) of the same kinds.")
    return ScanReport(
        path=path,
        format=fmt,
        compression=compression,
        globals=tuple(sorted({format_type_name(n) for n in found})),
        untrusted=tuple(policy.untrusted(found)),
        problems=tuple(found_problems),
    )


def scan_payload(
    payload: Buffer,
    *,
    policy: TypePolicy | None = None,
    limits: ScanLimits | None = None,
    compression: str | None = None,
    path: str | None = None,
) -> ScanReport:
    """Scan an already-decompressed pickle or joblib stream, without copying it.

    Never raises on bad input: whatever is wrong with the bytes is a problem in the report.
    """
    chosen = resolve_policy(policy)
    limits = limits or ScanLimits()
    view = _as_view(payload)
    scan = _Scan(view, chosen, limits, time.monotonic() + limits.max_seconds)
    try:
        _scan_all(scan)
    except _Fatal as exc:
        scan.problem(str(exc))
    except RecursionError:
        scan.problem("the stream nests too deeply to follow: refused.")
    except MemoryError:
        scan.problem("the scan ran out of memory: refused. Lower the ScanLimits.")
    except Exception as exc:  # hostile bytes must never escape as an exception
        scan.problem(f"the scanner could not follow the stream ({type(exc).__name__}): refused.")
    is_joblib = compression is not None or _JOBLIB_WRAPPER in scan.names
    return _report(
        scan,
        path=path,
        fmt="joblib" if is_joblib else "pickle",
        compression=compression,
        policy=chosen,
    )


def _scan_all(scan: _Scan) -> None:
    if scan.n == 0:
        raise _Fatal("the file is empty: refused.")
    pos = _Stream(scan, 0, 0).run()
    if pos >= scan.n:
        return
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


def scan_bytes(
    data: Buffer,
    *,
    policy: TypePolicy | None = None,
    limits: ScanLimits | None = None,
    path: str | None = None,
) -> ScanReport:
    """Scan a whole file's bytes: skops (zip), compressed joblib, or a raw pickle stream."""
    chosen = resolve_policy(policy)
    limits = limits or ScanLimits()
    try:
        view = _as_view(data)
        if bytes(view[:4]) in (b"PK\x03\x04", b"PK\x05\x06"):
            return _scan_skops(view, chosen, limits, path)
        compression = detect_compression(view)
        _, payload = decompress(view, limits=limits)
    except MalformedArtifactError as exc:
        fmt = "joblib" if bytes(view[:2]) == b"ZF" else "pickle"
        return _report(
            None, path=path, fmt=fmt, compression=None, problems=[str(exc)], policy=chosen
        )
    except Exception as exc:  # hostile bytes must never escape as an exception
        return _report(
            None,
            path=path,
            fmt="pickle",
            compression=None,
            problems=[f"the file could not be read as a model ({type(exc).__name__}): refused."],
            policy=chosen,
        )
    return scan_payload(payload, policy=chosen, limits=limits, compression=compression, path=path)


def _scan_skops(
    view: memoryview, policy: TypePolicy, limits: ScanLimits, path: str | None
) -> ScanReport:
    """Skops files: zip limits, then every type skops' node tree names (see skopsscan)."""
    from safeload.skopsscan import scan_skops

    report, _ = scan_skops(view, policy, path, limits)
    return report


# Files this large are scanned through a read-only mapping: the scan only touches the pages
# that hold opcodes, never the array payloads it skips.
_MMAP_FROM = 64 * _MIB


def _scan_mapped(
    fd: int, name: str, policy: TypePolicy | None, limits: ScanLimits | None
) -> ScanReport:
    """Scan a large file through a read-only mapping, so array bytes are never read."""
    mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    try:
        with memoryview(mapped) as view:
            return scan_bytes(view, policy=policy, limits=limits, path=name)
    finally:
        try:
            mapped.close()
        except BufferError:  # a view is still referenced somewhere: unmapped when collected
            pass


def scan(
    path: str | os.PathLike[str],
    *,
    policy: TypePolicy | None = None,
    limits: ScanLimits | None = None,
) -> ScanReport:
    """Scan one file (``safeload.scan``): nothing in it is deserialized or imported.

    Raises:
        ArtifactNotFoundError: the path does not exist, is not a regular file, or cannot be
            read. Anything wrong with the content is reported, never raised.
    """
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise ArtifactNotFoundError(
            f"cannot open {name!r} for scanning ({exc.strerror or exc}): check the path."
        ) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactNotFoundError(f"{name!r} is not a regular file: nothing to scan.")
        size = info.st_size
        if size >= _MMAP_FROM:
            return _scan_mapped(fd, name, policy, limits)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ArtifactNotFoundError(
            f"cannot read {name!r} for scanning ({exc.strerror or exc}): check the path."
        ) from exc
    finally:
        os.close(fd)
    return scan_bytes(data, policy=policy, limits=limits, path=name)
