"""The call rules only the packs need (:mod:`safeload._packs`), each wall's check side by side.

Two builtins that the packs' estimators pickle, each under one exact form:

* ``builtins.bytearray`` holds XGBoost's serialized Booster. At protocols below 5 pickle writes
  it as ``REDUCE`` of ``bytearray`` on ``(<bytes>,)``; any other form allocates what the file
  says (``bytearray(10**12)``) or looks a codec up (``bytearray(<str>, <encoding>)``);
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

from safeload.typegate._symbols import _BYTES, _Global

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

_BYTEARRAY = "with other than one bytes value (another form allocates or looks a codec up)"
_DEFAULTDICT = (
    "with a factory other than collections.OrderedDict (a defaultdict calls its factory on "
    "every missing key)"
)


def symbolic_bytearray(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    """``bytearray(<bytes>)``, by REDUCE."""
    if len(items) != 1 or (type(items[0]) is not bytes and items[0] is not _BYTES):
        return _BYTEARRAY
    return None


def symbolic_defaultdict(s: _Stream, func: _Global, items: tuple[Any, ...]) -> str | None:
    """``defaultdict(collections.OrderedDict)``, by REDUCE."""
    first = items[0] if len(items) == 1 else None
    if type(first) is not _Global or (first.module, first.name) != ("collections", "OrderedDict"):
        return _DEFAULTDICT
    return None


def concrete_bytearray(
    site: ConcreteSite, func: object, names: set[TypeName], args: tuple[Any, ...]
) -> str | None:
    """``bytearray(<bytes>)``, by REDUCE, on a real ``bytes``."""
    if len(args) != 1 or type(args[0]) is not bytes:
        return _BYTEARRAY
    return None


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
