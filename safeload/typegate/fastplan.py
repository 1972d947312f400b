"""What the scan hands the fast path: where each opcode of this very stream is.

The fast path (:mod:`safeload._unpickle_fast`) lets CPython's C unpickler read the stream and
push plain values, and hands every opcode that calls, builds, fills or hashes to the restricted
unpickler's own handler. To cut those opcodes out it must know where they are; the scanner,
which walks these very bytes with the unframer's exact rules and refuses what it cannot follow,
records it as it goes:

* ``ops``: where each REDUCE, NEWOBJ, BUILD, APPEND(S), SETITEM(S), ADDITEMS, DICT, FROZENSET
  and FRAME starts (and INST, OBJ, NEWOBJ_EX, which keep a stream off the fast path);
* ``gets``: where each memo fetch (GET, DUP) of a numpy dtype ends, so that the dtype is no
  longer fresh for a BUILD (the Python wall marks it on every fetch);
* ``arrays``: where each joblib array's bytes are, to be cut out and handed over as views.

A plan exists only for a stream the scan found safe, at protocol 3 or above throughout (no
Python 2 names to translate), with no object-dtype array (a nested pickle) and nothing after
its STOP. The plan is the only thing the fast path takes from the scan alone: if the scanner
missed an opcode, the C machine would run that one unjudged.
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
