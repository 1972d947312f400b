"""The trusted-type policy: which globals a model file may name.

Trust is by exact ``(module, qualname)`` pair, never by module prefix: allowlisted modules
re-export dangerous names (``numpy.testing`` exposes ``os``, ``sklearn.utils`` modules import
``getattr``-like helpers), so ``numpy.*`` would trust ``numpy.os.system`` too. A name is spelled
``module:qualname`` when it must be unambiguous, and ``module.qualname`` for display; the short
form is split at its last dot, so a nested qualname (``Outer.Inner``) needs the colon form.

The policy is always chosen by the person loading, never read from the artifact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from safeload._default_types import DEFAULT_TYPES

TypeName = tuple[str, str]


def parse_type_name(text: str) -> TypeName:
    """Split ``module:qualname`` (or ``module.qualname``) into its exact pair."""
    text = text.strip()
    if ":" in text:
        module, _, qualname = text.partition(":")
    else:
        module, _, qualname = text.rpartition(".")
    if not module or not qualname or ":" in qualname:
        raise ValueError(f"not a type name: {text!r} (expected 'module:qualname')")
    return module, qualname


def format_type_name(name: TypeName) -> str:
    """Render a pair the way users read it: ``module.qualname``."""
    return f"{name[0]}.{name[1]}"


@dataclass(frozen=True)
class TypePolicy:
    """An immutable set of exactly-named globals that a model file may reference."""

    names: frozenset[TypeName]

    @classmethod
    def default(cls) -> TypePolicy:
        """The default policy: fitted scikit-learn models and the internals they need."""
        return _DEFAULT

    @classmethod
    def of(cls, names: Iterable[str]) -> TypePolicy:
        """Build a policy from ``module:qualname`` strings (and nothing else)."""
        return cls(frozenset(parse_type_name(n) for n in names))

    def extend(self, names: Iterable[str]) -> TypePolicy:
        """Return a new policy that also trusts these exact names."""
        return TypePolicy(self.names | {parse_type_name(n) for n in names})

    def allows(self, module: str, qualname: str) -> bool:
        """Whether this exact global is trusted."""
        return (module, qualname) in self.names

    def untrusted(self, names: Iterable[TypeName]) -> list[str]:
        """The names (as ``module.qualname``, sorted, unique) that this policy refuses."""
        return sorted({format_type_name(n) for n in names if n not in self.names})

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(f"{m}:{q}" for m, q in self.names))

    def __len__(self) -> int:
        return len(self.names)


_DEFAULT = TypePolicy.of(DEFAULT_TYPES)


def resolve_policy(policy: TypePolicy | Iterable[str] | None) -> TypePolicy:
    """Accept a policy, a list of extra names on top of the default, or None for the default."""
    if policy is None:
        return _DEFAULT
    if isinstance(policy, TypePolicy):
        return policy
    if isinstance(policy, str):
        raise TypeError("policy must be a TypePolicy or a list of names, not a single string")
    return _DEFAULT.extend(policy)
