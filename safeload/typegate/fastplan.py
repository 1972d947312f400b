"""The scanner's proof that one stream may run on CPython's C unpickler (the fast path).

The C unpickler (``_pickle.Unpickler``) is five times faster than the pure-Python restricted
unpickler, but it cannot make most of the second wall's checks (:mod:`safeload._unpickle`): it
looks ``__setstate__`` up on the instance, calls ``extend``/``append``/``add``/``__setitem__``
of whatever it fills, hashes keys without a budget and needs real types for ``NEWOBJ``. So it
only ever runs on a stream whose scan (the first wall, on these very bytes) proved each of
those properties statically, and found no problem at all. The scanner proves, for the fast
path (each is a problem of the scan, refused, or a reason to stay on the Python path):

* every global an exact policy name, never translated (protocol 3 or above throughout, no
  INST/OBJ/NEWOBJ_EX, nothing after STOP);
* every call in the form its rule allows, read from values the scanner tracked (``callrules``
  symbolic checks); a reference-only name never called, a ``NEW`` class only by ``NEWOBJ``
  without arguments (the C unpickler gets the real class for those: nothing else guards them);
* ``BUILD`` at most once per object, with dict states of plain str keys that shadow nothing
  the machine calls; a dtype ``BUILD`` only right after its conforming ``numpy.dtype`` call,
  with a state that rebuilds the same dtype (``dtypes.rebuild_dtype``);
* ``APPEND(S)`` only on lists, ``SETITEM(S)`` only on dicts or dict classes whose item
  assignment is dict's own;
* every dict key and set member a value the scanner rebuilds exactly (str, bytes, int, float,
  bool, None, or tuples of them), so that hashing and comparing them was charged exactly;
  a numpy scalar or frozenset key (whose collisions only the Python unpickler counts) keeps the
  stream on the Python path;
* every joblib array where the scanner found it (``arrays``), none of object dtype.

The C unpickler keeps defences of its own that do not depend on this proof
(:mod:`safeload._unpickle_fast`): exact-name ``find_class``, guarded callables that check a
call rule's arguments on the real values, class checks, and a walk of the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from safeload.policy import TypePolicy


class ArrayPlace(NamedTuple):
    """One joblib array: opcodes stop at ``region``, its bytes start at ``data``."""

    region: int
    data: int
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    order: str


@dataclass(frozen=True)
class FastPlan:
    """A scanned stream the fast path may load, and where the scanner found what in it."""

    buffer: memoryview = field(repr=False)
    policy: TypePolicy
    arrays: tuple[ArrayPlace, ...]
    #: Each opcode that calls, builds, fills or hashes, or frames or is refused (INST, OBJ,
    #: NEWOBJ_EX): where it starts.
    ops: list[int] = field(repr=False)
    #: Where each memo fetch (GET, DUP) of a numpy.dtype ends.
    gets: list[int] = field(repr=False)
    #: The stream's protocol, as the loader's find_class would know it.
    proto: int
