"""The second wall's budget for hashing and comparing dict keys and set members, and its clock.

Hashing recurses in C without a guard, and equality of memo-shared frozenset DAGs takes
``2**depth`` steps: :mod:`safeload._unpickle` charges each key to :class:`_Budget` before the
interpreter hashes or compares it, with the costs computed here in linear time.
"""

from __future__ import annotations

from typing import Any

from safeload.errors import MalformedArtifactError
from safeload.typegate.limits import Deadline

# Safety nets of their own (the scanner's ScanLimits bound the same things first, by default to
# the same values): no legitimate model comes near them.
_MAX_DEPTH = 1000
_MAX_HASH_WORK = 50_000_000

_WHERE = "The model stream (at load time)"


def _refuse(message: str) -> MalformedArtifactError:
    return MalformedArtifactError(f"{_WHERE}: {message}; nothing more was deserialized.")


class _Budget:
    """Hashing work and time left for one load (nested object-array pickles share it)."""

    __slots__ = ("deadline", "left", "ticks")

    def __init__(self, deadline: Deadline) -> None:
        self.left = _MAX_HASH_WORK
        self.deadline = deadline
        self.ticks = 0

    def tick(self) -> None:
        """One costly step (a call, a BUILD, a batch of keys): ask the clock every 256."""
        self.ticks += 1
        if self.ticks & 255 == 1:  # the first step too: no load starts late
            self.deadline.check("deserializing the model")

    def spend(self, work: int) -> None:
        self.left -= work
        if self.left < 0:
            raise _refuse(
                f"its dict keys and set members take more than {_MAX_HASH_WORK} steps to hash "
                "(a hashing bomb, e.g. a tuple shared through the memo)"
            )

    def spend_comparing(self, work: int) -> None:
        self.left -= work
        if self.left < 0:
            raise self.over_comparing()

    @staticmethod
    def over_comparing() -> MalformedArtifactError:
        return _refuse(
            f"its dict keys and set members collide: comparing them takes more than "
            f"{_MAX_HASH_WORK} steps (an equality bomb: equal frozenset DAGs, or keys that "
            "hash alike)"
        )


def _eq_width(root: object, limit: int) -> int:
    """Values comparing ``root`` with an equal value may visit, in linear time.

    Tuples and frozensets fully expanded (memo-shared parts once per use); raises past ``limit``.
    """
    if not isinstance(root, (tuple, frozenset)):
        return 1
    sizes: dict[int, int] = {}  # id -> expanded size, for containers shared through the memo
    frames: list[list[Any]] = [[root, iter(root), 1]]
    while frames:
        frame = frames[-1]
        for child in frame[1]:
            if isinstance(child, (tuple, frozenset)):
                known = sizes.get(id(child))
                if known is None:
                    if len(frames) >= _MAX_DEPTH:
                        raise _refuse(f"a key it compares nests more than {_MAX_DEPTH} deep")
                    frames.append([child, iter(child), 1])
                    break
                frame[2] += known
            else:
                frame[2] += 1
            if frame[2] > limit:
                raise _Budget.over_comparing()
        else:
            frames.pop()
            sizes[id(frame[0])] = frame[2]
            if frames:
                frames[-1][2] += frame[2]
                if frames[-1][2] > limit:
                    raise _Budget.over_comparing()
    return sizes[id(root)]


def _tuple_hash_cost(root: tuple[Any, ...], limit: int) -> int:
    """Steps ``hash(root)`` takes (each item of each nested tuple, expanded), in linear time.

    Raises past ``limit`` steps or ``_MAX_DEPTH`` levels; iterative, so it cannot overflow.
    """
    sizes: dict[int, int] = {}  # id -> expanded size, for tuples shared through the memo
    frames: list[list[Any]] = [[root, 0, 1]]  # [tuple, next index, size so far]
    while frames:
        frame = frames[-1]
        node, index, size = frame
        descended = False
        while index < len(node):
            child = node[index]
            index += 1
            if isinstance(child, tuple):
                known = sizes.get(id(child))
                if known is None:
                    if len(frames) >= _MAX_DEPTH:
                        raise _refuse(f"a tuple it hashes nests more than {_MAX_DEPTH} deep")
                    frame[1], frame[2] = index, size
                    frames.append([child, 0, 1])
                    descended = True
                    break
                size += known
            elif isinstance(child, frozenset):
                size += 1 + len(child)
            else:
                size += 1
            if size > limit:
                raise _refuse(f"a value it hashes takes more than {_MAX_HASH_WORK} steps")
        if descended:
            continue
        frames.pop()
        sizes[id(node)] = size
        if frames:
            frames[-1][2] += size
    return sizes[id(root)]
