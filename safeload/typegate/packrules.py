"""The call rules only the packs need (:mod:`safeload._packs`), each wall's check side by side.

Two builtins that the packs' estimators pickle, each under one exact form:

* ``builtins.bytearray`` holds XGBoost's serialized Booster. Below protocol 5 pickle writes it
  as ``REDUCE`` of ``bytearray`` on ``(<bytes>,)`` (protocols 3 and 4) or on
  ``(<str>, 'latin-1')`` (protocols 0 to 2: one byte per character, the codec every
  interpreter has loaded); any other form allocates what the file says (``bytearray(10**12)``)
  or looks another codec up (``bytearray(<str>, <encoding>)`` imports ``encodings.*``);
* ``collections.defaultdict`` holds LightGBM's evaluation results, written as ``REDUCE`` of
  ``defaultdict`` on ``(collections.OrderedDict,)``. A defaultdict calls its factory on every
  missing key, so the factory may be that class and nothing else (a reference-only function
  there would be called later, with no arguments, by any lookup).

As in :mod:`safeload.typegate.callrules`, the scanner (``symbolic_*``), the unpickler
(``concrete_*``) and the skops wall (``skops_*``) each have their own function. skops writes
neither call (it stores bytes and dicts with loaders of its own).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from safeload.typegate._symbols import _BYTES, _LONG_STR, _Global

if TYPE_CHECKING:
    from safeload.policy import TypeName
    from safeload.typegate._stream import _Stream
    from safeload.typegate.callrules import ConcreteSite
    from safeload.typegate.skops_schema import SchemaNode

__all__ = [
    "concrete_bytearray",
    "concrete_defaultdict",
    "skops_never",
    "symbolic_bytearray",
    "symbolic_defaultdict",
]

_BYTEARRAY = (
    "with other than (<bytes>,) or (<str>, 'latin-1') (another form allocates or looks a codec up)"
)
_LATIN1 = "latin-1"  # what pickle writes for bytearray below protocol 3, exactly
_DEFAULTDICT = (
    "with a factory other than collections.OrderedDict (a defaultdict calls its factory on "
    "every missing key)"
)


def symbolic_bytearray(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    """``bytearray(<bytes>)`` or ``bytearray(<str>, 'latin-1')``, by REDUCE."""
    if len(items) == 1 and (type(items[0]) is bytes or items[0] is _BYTES):
        return None
    if len(items) == 2 and (type(items[0]) is str or items[0] is _LONG_STR):
        return None if type(items[1]) is str and items[1] == _LATIN1 else _BYTEARRAY
    return _BYTEARRAY


def symbolic_defaultdict(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    """``defaultdict(collections.OrderedDict)``, by REDUCE."""
    first = items[0] if len(items) == 1 else None
    if type(first) is not _Global or (first.module, first.name) != ("collections", "OrderedDict"):
        return _DEFAULTDICT
    return None


def concrete_bytearray(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    """``bytearray(<bytes>)`` or ``bytearray(<str>, 'latin-1')``, by REDUCE, on real values."""
    if len(args) == 1 and type(args[0]) is bytes:
        return None
    if len(args) == 2 and type(args[0]) is str and type(args[1]) is str and args[1] == _LATIN1:
        return None
    return _BYTEARRAY


def concrete_defaultdict(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    """``defaultdict(OrderedDict)``, by REDUCE, the class itself by identity."""
    if len(args) != 1 or args[0] is not OrderedDict:
        return _DEFAULTDICT
    return None


def skops_never(how: str, args: SchemaNode | None) -> str | None:
    """Never a skops call: skops stores bytes and dicts with loaders of its own."""
    return f"by {how}, which skops never writes for it"
