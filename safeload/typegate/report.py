"""What a type scan found, and the refusal it stands for."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from safeload.errors import MalformedArtifactError, UntrustedTypeError, untrusted_types_message
from safeload.policy import TypeName, TypePolicy, format_type_name


@dataclass(frozen=True)
class ScanReport:
    """What a scan found. ``safe`` only if every global is trusted and nothing else is wrong.

    Attributes:
        path: the file scanned, if any.
        format: ``"pickle"``, ``"joblib"``, ``"skops"`` or ``"onnx"``.
        compression: the joblib compressor found by magic bytes, or ``None``.
        globals: every global the file names, as ``module.qualname``, sorted, unique.
        untrusted: those of ``globals`` outside the policy, sorted, unique.
        problems: other reasons to refuse, each a sentence a user can act on.
        graph: for an ONNX file that passed, its opsets, inputs and outputs (else ``None``).
    """

    path: str | None
    format: str
    compression: str | None
    globals: tuple[str, ...]
    untrusted: tuple[str, ...]
    problems: tuple[str, ...]
    graph: dict[str, object] | None = None

    @property
    def safe(self) -> bool:
        """Whether the file passed the type gate."""
        return not self.untrusted and not self.problems

    def raise_if_unsafe(self) -> None:
        """Raise the refusal this report stands for; do nothing if it is safe.

        Raises:
            UntrustedTypeError: the file names globals outside the policy.
            MalformedArtifactError: the file has other problems (malformed, limits, evasion).
        """
        where = f"{self.path}" if self.path else "The model stream"
        if self.untrusted:
            message = untrusted_types_message(self.untrusted, where)
            if self.problems:
                message += " Other problems: " + " ".join(self.problems)
            raise UntrustedTypeError(message, types=self.untrusted, where=where)
        if self.problems:
            raise MalformedArtifactError(
                f"{where} was refused by the static scan; nothing was deserialized. "
                + " ".join(self.problems)
            )

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view with stable keys (the ``--json`` output of ``safeload scan``)."""
        return {
            "path": self.path,
            "format": self.format,
            "compression": self.compression,
            "safe": self.safe,
            "globals": list(self.globals),
            "untrusted": list(self.untrusted),
            "problems": list(self.problems),
            **({} if self.graph is None else {"graph": self.graph}),
        }


def _is_python_name(name: TypeName) -> bool:
    return all(part.isidentifier() for text in name for part in text.split("."))


def make_report(
    *,
    path: str | None,
    fmt: str,
    compression: str | None,
    policy: TypePolicy,
    names: Iterable[TypeName] = (),
    problems: Iterable[str] = (),
) -> ScanReport:
    """The report for ``names`` found under ``policy``, with ``problems`` in the order found.

    A "name" that is not dotted Python identifiers can never be imported; it is the file's own
    bytes (a script read as an old pickle, a crafted stream), so it is counted, never echoed.
    """
    found = set(names)
    odd = {n for n in found if not _is_python_name(n)}
    if odd:
        found -= odd
        problems = [
            *problems,
            f"{len(odd)} global name(s) that are not Python names (dotted identifiers): refused.",
        ]
    return ScanReport(
        path=path,
        format=fmt,
        compression=compression,
        globals=tuple(sorted({format_type_name(n) for n in found})),
        untrusted=tuple(policy.untrusted(found)),
        problems=tuple(problems),
    )
