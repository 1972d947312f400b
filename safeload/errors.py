"""Every error safeload raises, in one flat module.

There are two branches under :class:`SafeloadError`, so that callers (and the CLI's exit
codes) can tell "this artifact is not trustworthy" from "something around it is broken":

* :class:`RefusedError`: the artifact (or file) was looked at and refused. Exit status 1.
* :class:`OperationalError`: safeload could not do its job (missing path, unreadable key,
  wrong passphrase, target already exists). Exit status 2.

Details ride on attributes (``.path``, ``.types``, ``.files``) rather than on a zoo of classes.
"""

from __future__ import annotations

from collections.abc import Iterable


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
    """The signature was made by a key that is not in the trusted keyring."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


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
    """The model names types (globals) outside the trusted-type policy."""

    def __init__(self, message: str, *, types: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.types: tuple[str, ...] = tuple(types)


class ContractError(RefusedError):
    """The loaded model does not keep the promises recorded when it was saved."""


# --- operational errors ---------------------------------------------------------------------


class ArtifactNotFoundError(OperationalError):
    """The path given does not exist or cannot be read."""


class ArtifactExistsError(OperationalError):
    """``save`` refuses to overwrite: versions are immutable."""


class KeyFileError(OperationalError):
    """A key file is missing, unreadable, malformed, unsafe, or the passphrase is wrong."""


def untrusted_types_message(types: Iterable[str], where: str) -> str:
    """Build the one message used for untrusted types, wherever they are found."""
    names = sorted(set(types))
    shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    return (
        f"{where} names {len(names)} type(s) outside the trusted-type policy: {shown}. "
        "Nothing was deserialized. If you trust these exact names, add them to the policy "
        "(safeload.TypePolicy.default().extend([...])); otherwise do not load this file."
    )
