"""What every structural check shares: the refusal it raises, the walk context, the readers.

Checks read fitted values from ``__dict__`` (never a property, never model code) and raise
:class:`Invalid` naming the value; the walk turns that into a located
:class:`~safeload.errors.MalformedArtifactError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from safeload.typegate.limits import Deadline, ScanLimits


class Invalid(Exception):
    """A problem found inside one structure (turned into MalformedArtifactError with a path).

    ``where`` locates it below the object being visited (``"estimators_[3].tree_"``).
    """

    def __init__(self, message: str, where: str = "", advice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.advice = advice  # what the user can do, when it is not "re-create the artifact"

    def within(self, where: str) -> Invalid:
        """The same problem, located one step further up."""
        inner = self.where
        joined = where + (inner if not inner or inner.startswith("[") else "." + inner)
        return Invalid(self.message, joined, self.advice)


class Context:
    """What a check may use of the walk: the caller's limits, and a memo (check shared once)."""

    def __init__(
        self, limits: ScanLimits, deadline: Deadline, safe_to_call: tuple[str, ...] = ()
    ) -> None:
        self.limits = limits
        self.deadline = deadline
        # Exact names the caller vouches are safe to call on its data (never the artifact's).
        self.safe_to_call = safe_to_call
        self.memo: dict[tuple[str, int], Any] = {}


#: A check: called with the walk context and one object of the classes it is registered for.
Check = Callable[[Context, Any], None]
#: A family's checks, each keyed by the exact (module, class name) pairs it applies to.
Checks = list[tuple[tuple[tuple[str, str], ...], Check]]


def attr(obj: Any, name: str) -> Any:
    """A fitted attribute read from ``__dict__`` (no properties, no computation)."""
    attrs = getattr(obj, "__dict__", None)
    return attrs.get(name) if isinstance(attrs, dict) else None


def integer(value: Any, what: str) -> int:
    """A true integer (numpy's included, bool not): counts and sizes are never floats."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise Invalid(f"{what} is {type(value).__name__}, not an integer")
    return int(value)


def array(value: Any, what: str, *, ndim: int | None = None) -> np.ndarray:
    """A real ndarray, of ``ndim`` dimensions when given."""
    if not isinstance(value, np.ndarray):
        raise Invalid(f"{what} is {type(value).__name__}, not an array")
    if ndim is not None and value.ndim != ndim:
        raise Invalid(f"{what} has {value.ndim} dimension(s), expected {ndim}")
    return value


def is_text(value: Any, *texts: str) -> bool:
    """``value`` is a str among ``texts`` (never ``==`` on a file's object: arrays broadcast)."""
    return isinstance(value, str) and value in texts
