"""Every error safeload raises, in one flat module.

There are two branches under :class:`SafeloadError`, so that callers (and the CLI's exit
codes) can tell "this artifact is not trustworthy" from "something around it is broken":

* :class:`RefusedError`: the artifact (or file) was looked at and refused. Exit status 1.
* :class:`OperationalError`: safeload could not do its job (missing path, unreadable key,
  wrong passphrase, target already exists). Exit status 2.

Details ride on attributes (``.path``, ``.types``, ``.files``) rather than on a zoo of classes.
"""

from __future__ import annotations

import itertools
import reprlib
import sys
from collections.abc import Iterable
from typing import Any


class SafeloadError(Exception):
    """Base class of every error safeload raises."""


class RefusedError(SafeloadError):
    """The input was examined and is not trustworthy: nothing from it was deserialized."""


class OperationalError(SafeloadError):
    """safeload could not do what was asked (I/O, keys, usage); no verdict on the artifact."""


# --- refusals -------------------------------------------------------------------------------


class UnsignedArtifactError(RefusedError):
    """The artifact carries no signature (``model.sig`` is missing)."""


class UntrustedSignerError(RefusedError):
    """Not enough trusted signatures: an unknown signer, or fewer than a trust rule requires.

    ``found`` and ``needed`` count distinct trusted keys; ``missing`` names the signers a rule
    of ``trust.toml`` still needs; ``signatures`` holds ``(hint, name, status)`` for every
    signature of the bundle (status ``valid``, ``revoked``, ``expired``, ``unknown`` or
    ``duplicate``); ``hint`` is the first unknown signer's key hint. A rule is only looked up
    once a trusted signature vouches for the signed model name: with none, ``needed`` is 1.
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        found: int = 0,
        needed: int = 1,
        missing: Iterable[str] = (),
        signatures: Iterable[tuple[str, str | None, str]] = (),
    ) -> None:
        super().__init__(message)
        self.hint = hint
        self.found = found
        self.needed = needed
        self.missing: tuple[str, ...] = tuple(missing)
        self.signatures: tuple[tuple[str, str | None, str], ...] = tuple(signatures)


class SignatureError(RefusedError):
    """The signature bundle is malformed, or does not verify against the named key."""


class TamperedArtifactError(RefusedError):
    """The files on disk differ from the signed manifest (changed, added, removed, renamed)."""

    def __init__(self, message: str, *, files: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.files: tuple[str, ...] = tuple(files)


class MalformedArtifactError(RefusedError):
    """The input is not what it claims to be: odd layout, unparsable stream, limits exceeded."""


class UntrustedTypeError(RefusedError):
    """The model names types (globals) outside the trusted-type policy.

    ``types``, ``where`` and ``saving`` are what :func:`untrusted_types_message` was given, so
    that a front end (the CLI) can re-render the same refusal with its own advice.
    """

    def __init__(
        self,
        message: str,
        *,
        types: Iterable[str] = (),
        where: str = "the model",
        saving: bool = False,
    ) -> None:
        super().__init__(message)
        self.types: tuple[str, ...] = tuple(types)
        self.where = where
        self.saving = saving


class ContractError(RefusedError):
    """The loaded model does not keep the promises recorded when it was saved."""


class RollbackError(ContractError):
    """A :class:`~safeload.Store` would serve, as "latest", a version lower than one it served.

    ``name`` is the model, ``served`` the highest version verified before, ``found`` the
    highest version present now. Pinning a version explicitly is the deliberate way back.
    """

    def __init__(self, message: str, *, name: str, served: str, found: str) -> None:
        super().__init__(message)
        self.name = name
        self.served = served
        self.found = found


class DriftError(RefusedError):
    """A batch no longer looks like the training data (``check_drift(raise_on_shift=True)``).

    ``.report`` is the :class:`~safeload.DriftReport` whose verdict was ``shifted``.
    """

    def __init__(self, message: str, *, report: Any) -> None:
        super().__init__(message)
        self.report = report


# --- operational errors ---------------------------------------------------------------------


class ArtifactNotFoundError(OperationalError):
    """The path given does not exist or cannot be read."""


class ArtifactExistsError(OperationalError):
    """``save`` refuses to overwrite: versions are immutable."""


class KeyFileError(OperationalError):
    """A key file is missing, unreadable, malformed, unsafe, or the passphrase is wrong.

    ``reason`` is ``"passphrase"`` when an encrypted key was given no passphrase, so that a
    front end can say how to give one.
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class TrustFileError(KeyFileError):
    """``trust.toml`` is malformed or inconsistent with the key files beside it."""


class UnfittedModelError(OperationalError):
    """``save`` (or signing, converting) was given a model that was never fitted.

    Signing it would only move the failure to production, as a ``NotFittedError`` at the
    first ``predict``. ``type_name`` is the unfitted estimator's class, ``steps`` the names of
    the Pipeline steps leading to it, outermost first (empty when it is the model itself).
    """

    def __init__(self, message: str, *, type_name: str, steps: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.steps: tuple[str, ...] = tuple(steps)


class ConversionError(OperationalError):
    """``save(..., format="onnx")`` or ``convert --to onnx`` could not turn the model into ONNX.

    ``estimator`` names the class skl2onnx could not convert (or the whole model's), so that
    the user knows which step to replace or to save as joblib or skops instead. Nothing was
    written.
    """

    def __init__(self, message: str, *, estimator: str) -> None:
        super().__init__(message)
        self.estimator = estimator


class ConversionMismatchError(ConversionError):
    """The converted graph predicts differently from the model beyond the stated tolerance.

    ``max_difference`` is the largest absolute difference found (``inf`` when labels differ).
    """

    def __init__(self, message: str, *, estimator: str, max_difference: float) -> None:
        super().__init__(message, estimator=estimator)
        self.max_difference = max_difference


class StoreLayoutError(OperationalError):
    """``save`` was given a name or version that contradicts its ``ROOT/NAME/VERSION`` path.

    A :class:`~safeload.Store` loads ``ROOT/NAME/VERSION`` only if the artifact is signed as
    that name and version, so such an artifact would be refused (as a swap) at every load.
    """


class PolicyError(OperationalError):
    """The caller's trusted-type policy cannot be used as given (nothing was loaded)."""

    def __init__(self, message: str, *, types: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.types: tuple[str, ...] = tuple(types)


class PolicyFileError(PolicyError):
    """A policy file (``policy=`` path, ``$SAFELOAD_POLICY``) is missing, too big or invalid."""


class UnsafePolicyError(PolicyError):
    """A name that lets a file run code or reach the OS was trusted without ``unsafe=True``."""


class StoreStateError(OperationalError):
    """A :class:`~safeload.Store`'s rollback record cannot be read, locked or written.

    Never treated as an empty record: that would switch rollback protection off. ``path`` is
    the record file.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


_MAX_LISTED = 20


def _listed(names: list[str]) -> str:
    listed = ", ".join(n if len(n) <= 200 else shown(n) for n in names[:_MAX_LISTED])
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return listed + more


def _extend_call(names: list[str]) -> str:
    quoted = ", ".join(repr(n) if len(n) <= 200 else shown(n) for n in names[:_MAX_LISTED])
    more = ", ..." if len(names) > _MAX_LISTED else ""
    return f"safeload.TypePolicy.default().extend([{quoted}{more}])"


def _pack_advice(names: list[str]) -> str:
    """When the names are exactly an opt-in pack's, which one (advice, never trust)."""
    from safeload._packs import pack_for

    pack = pack_for(names)
    if pack is None:
        return ""
    return (
        f" They are all names of the opt-in {pack!r} pack: if you trust this signer's {pack} "
        f"models, use policy=TypePolicy.default().with_packs({pack!r}) (CLI: --pack {pack})."
    )


def untrusted_types_message(
    types: Iterable[str],
    where: str,
    *,
    saving: bool = False,
    how_to_trust: str | None = None,
) -> str:
    """Build the one message used for untrusted types, wherever they are found.

    ``where`` names what holds the types: a file at load time, "the model being saved to
    DIR" at save time (never the staging directory: the user never sees it). ``saving``
    switches the wording from "do not load this file" to what to pass to ``save``.
    ``how_to_trust`` completes "If you trust these exact names, ..." and replaces the
    library's advice, so that the CLI can say ``--allow`` instead of ``TypePolicy``.
    """
    names = sorted(set(types))
    head = f"{where} names {len(names)} type(s) outside the trusted-type policy: {_listed(names)}."
    head += _pack_advice(names)
    if saving:
        advice = how_to_trust or (
            f"pass policy={_extend_call(names)} to save, and the same policy when loading"
        )
        message = f"{head} Nothing was saved. If you trust these exact names, {advice}."
        local = [n for n in names if "<lambda>" in n or "<locals>" in n]
        if local:
            message += (
                f" {_listed(local)} cannot be imported by name (a lambda, or a function defined "
                "inside another), so no policy makes it loadable: define it at module level "
                "in an importable module."
            )
        return message
    advice = how_to_trust or (
        "add them to the policy (safeload.TypePolicy.default().extend([...]))"
    )
    return (
        f"{head} Nothing was deserialized. If you trust these exact names, {advice}; "
        "otherwise do not load this file."
    )


# --- showing attacker data in messages ------------------------------------------------------

_SHOWN_TYPES = (str, bytes, bool, int, float, type(None), tuple, list, dict, set, frozenset)
_MAX_INT_BITS = 128


class _Bounded(reprlib.Repr):
    """``reprlib`` with small limits, that never calls a file-chosen ``__repr__`` or sorts."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxset = self.maxfrozenset = self.maxdict = 6
        self.maxstring = 80
        self.maxlong = 40
        self.maxother = 40

    def repr1(self, x: object, level: int) -> str:
        # numpy is looked up, not imported: without it loaded, no value can be one of its own.
        np: Any = sys.modules.get("numpy")
        if np is not None and isinstance(x, np.ndarray):
            return _shown_array(x)
        if np is not None and isinstance(x, np.generic) and x.dtype.kind in "biufcUS":
            return self.repr1(x.item(), level)
        if type(x) not in _SHOWN_TYPES:  # exact types: a subclass may repr itself at length
            return f"<{type(x).__name__[:60]}>"
        return super().repr1(x, level)

    def repr_bytes(self, x: bytes, level: int) -> str:
        # reprlib has no bytes case: it would repr the whole value, then cut it.
        if len(x) <= self.maxstring:
            return repr(x)
        half = (self.maxstring - 3) // 2
        return f"{repr(x[:half])[:-1]}...{repr(x[-half:])[2:]}"

    def repr_int(self, x: int, level: int) -> str:
        # repr of a huge int is slow (quadratic) or raises ValueError (int_max_str_digits).
        if x.bit_length() > _MAX_INT_BITS:
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_dict(self, x: dict[object, object], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = [
            f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}"
            for k, v in itertools.islice(x.items(), self.maxdict)
        ]
        return "{" + ", ".join(items) + (", ...}" if len(x) > self.maxdict else "}")

    def repr_set(self, x: set[object], level: int) -> str:
        return self._unsorted(x, level, "{", "}")

    def repr_frozenset(self, x: frozenset[object], level: int) -> str:
        return self._unsorted(x, level, "frozenset({", "})")

    def _unsorted(
        self, x: set[object] | frozenset[object], level: int, left: str, right: str
    ) -> str:
        # reprlib sorts sets and dicts first: a cost chosen by the file (comparisons, size).
        shown_items = [self.repr1(v, level - 1) for v in itertools.islice(x, self.maxset)]
        more = ", ..." if len(x) > self.maxset else ""
        return left + ", ".join(shown_items) + more + right


def _shown_array(array: Any) -> str:
    head = [_BOUNDED.repr1(v, 1) for v in itertools.islice(array.flat, 6)]
    more = ", ..." if array.size > 6 else ""
    return f"<ndarray {array.dtype.str} shape {array.shape[:8]}: [{', '.join(head)}{more}]>"


_BOUNDED = _Bounded()


def shown(value: object) -> str:
    """A short, fast rendering of a value that may come from a file, for error messages.

    Builtin values are shown with small limits (``reprlib``), anything else by its type name:
    a message about a hostile file must not cost what the file chose (a 100 MB string, a huge
    int, a deep tuple, a custom ``__repr__``).
    """
    try:
        return _BOUNDED.repr(value)
    except Exception:  # a message must never fail: fall back to the type name
        return f"<{type(value).__name__[:60]}>"
