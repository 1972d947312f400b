"""numpy dtypes in exactly the forms numpy pickles them: shared by both walls.

``dtype.__setstate__`` copies flags, sizes and offsets without checking them (a float64 can be
told it holds objects, which turns raw bytes into object pointers). So a dtype's arguments and
state are never trusted: :func:`rebuild_dtype` builds a candidate from safe parts with numpy's
public constructors and requires numpy's own ``__reduce__`` of it to give back exactly what the
file holds. The scanner calls it on the values it tracked, the restricted unpickler
(:mod:`safeload._unpickle`) on the real ones, before numpy ever sees the state.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from safeload.errors import shown

PLAIN_DTYPE = re.compile(r"[<>=|]?[A-Za-z?][0-9]{0,9}")
_DATETIME_UNITS = frozenset(
    ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as", "generic"]
)
#: numpy's concrete numeric scalar classes (and ``bool``), by name in the ``numpy`` module: plain
#: data classes that both the skops wall and the stored-dtype rule name.
NUMERIC_SCALARS = (
    "bool",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)
#: Records nested in records, as deep as one dtype may go.
MAX_DTYPE_DEPTH = 16
# A dtype's picture nests containers inside each record level: its state tuple, the fields
# dict, each field's (dtype, offset) tuple. Depth is counted in those levels, so the bound is
# MAX_DTYPE_DEPTH records, not MAX_DTYPE_DEPTH containers (a record four deep is a real model).
MAX_PICTURE_DEPTH = 4 * MAX_DTYPE_DEPTH
# Values looked at to picture one dtype's arguments and state. A real dtype needs a few per
# field; a memo-shared tuple graph in a state is tiny in the file and exponential when walked.
MAX_DTYPE_PARTS = 100_000


class DtypeFormError(ValueError):
    """A numpy dtype described in a form numpy never writes, or one that cannot be checked."""


_Unsure = DtypeFormError


class Parts:
    """The parts one dtype's picture may still look at (see ``MAX_DTYPE_PARTS``)."""

    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_DTYPE_PARTS

    def take(self) -> None:
        """Count one more value looked at; refuse past the bound, before any more work."""
        self.left -= 1
        if self.left < 0:
            raise _Unsure(
                f"more than {MAX_DTYPE_PARTS} values to compare (a value shared through the "
                "memo expands when walked)"
            )


def _real_key(value: object, depth: int = 0, parts: Parts | None = None) -> tuple[Any, ...]:
    """A type-tagged, hashable picture of a value numpy puts in a dtype's ``__reduce__``."""
    if depth > MAX_PICTURE_DEPTH:
        raise _Unsure("too deeply nested")
    parts = parts or Parts()
    parts.take()
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
        return ("t", *(_real_key(v, depth + 1, parts) for v in value))  # type: ignore[attr-defined]
    if kind is dict:
        pairs = [
            (_real_key(k, depth + 1, parts), _real_key(v, depth + 1, parts))
            for k, v in value.items()  # type: ignore[attr-defined]
        ]
        return ("d", *sorted(pairs, key=repr))
    if isinstance(value, np.dtype):
        reduced = value.__reduce__()
        if not isinstance(reduced, tuple) or reduced[0] is not np.dtype or len(reduced) != 3:
            raise _Unsure(f"numpy reduces {shown(value)} in an unexpected way")
        return (
            "D",
            _real_key(reduced[1], depth + 1, parts),
            _real_key(reduced[2], depth + 1, parts),
        )
    raise _Unsure(f"unexpected {kind.__name__} in a dtype state")


def plain_code(code: object) -> str:
    """``code`` if it is a plain numpy type code such as ``"<f8"``, else :class:`DtypeFormError`."""
    if type(code) is not str or not PLAIN_DTYPE.fullmatch(code):
        raise _Unsure(f"dtype code {shown(code)} is not a plain numpy type code")
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
    code = plain_code(args[0])
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


def dtype_call_problem(items: tuple[Any, ...]) -> str | None:
    """Why ``numpy.dtype(*items)`` is not a call numpy pickles, or ``None`` (both walls)."""
    if not 1 <= len(items) <= 3:
        return "with other than (code[, align[, copy]])"
    if type(items[0]) is not str or not PLAIN_DTYPE.fullmatch(items[0]):
        return "with something other than a plain numpy type code"
    if not all(type(a) is bool for a in items[1:]):
        return "with flags that are not booleans"
    return None
