"""The fast path's entry point for tests: scan the stream, then load it as the gate would."""

from __future__ import annotations

from typing import Any

from safeload import _unpickle, _unpickle_fast
from safeload.buffers import Buffer
from safeload.policy import TypePolicy
from safeload.typegate._stream import scan_planned
from safeload.typegate.limits import Deadline, ScanLimits

PYTHON_PATH = _unpickle.unpickle_verified
#: What each call did: "fast" (the C unpickler served it), "fallback" or "no plan".
ROUTES: list[str] = []


def through_fast_path(
    buffer: Buffer,
    policy: TypePolicy,
    deadline: Deadline | None = None,
    limits: ScanLimits | None = None,
) -> Any:
    """``unpickle_verified``, tried first on the fast path when the scan proves the stream."""
    clock = deadline or Deadline(ScanLimits().max_seconds)
    _, plan = scan_planned(buffer, policy, limits, None, None, clock)
    if plan is None:
        ROUTES.append("no plan")
    else:
        model = _unpickle_fast.load_fast(plan, policy, clock, limits)
        if model is not _unpickle_fast.FALLBACK:
            ROUTES.append("fast")
            return model
        ROUTES.append("fallback")
    return PYTHON_PATH(buffer, policy, clock, limits)


#: Calls the classes below saw: proof of what the C unpickler ran.
CALLS: list[str] = []


class LooksUp:
    """A class whose ``__getattr__`` answers for names it lacks (and has no ``__setstate__``):
    the C unpickler's ``BUILD`` would ask it for ``__setstate__``."""

    def __getattr__(self, name: str) -> Any:
        CALLS.append(f"__getattr__ {name}")
        raise AttributeError(name)


class OwnSetitem(dict):  # type: ignore[type-arg]
    """A dict class with item assignment of its own: ``SETITEMS`` would run it."""

    def __setitem__(self, key: Any, value: Any) -> None:
        CALLS.append(f"__setitem__ {key}")
        super().__setitem__(key, value)


class Foreign:
    """A class no policy names."""


def make_foreign() -> Foreign:
    """A trusted function that returns an instance of a class the policy does not name."""
    return Foreign()
