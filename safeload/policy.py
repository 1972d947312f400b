"""The trusted-type policy: which globals a model file may name.

Trust is by exact ``(module, qualname)`` pair, never by module prefix: allowlisted modules
re-export dangerous names (``numpy.testing`` exposes ``os``, ``sklearn.utils`` modules import
``getattr``-like helpers), so ``numpy.*`` would trust ``numpy.os.system`` too. A name is spelled
``module:qualname`` when it must be unambiguous, and ``module.qualname`` for display; the short
form is split at its last dot, so a nested qualname (``Outer.Inner``) needs the colon form.

The policy is always chosen by the person loading, never read from the artifact.

A trusted name is either a *reference* or a *callable*. A stream may store any trusted name as a
value (a ufunc or metric kept as a parameter, ``dtype=numpy.float64``, the class joblib records
as an array's ``subclass``), but it may only CALL the callables (``REDUCE``, ``NEWOBJ``,
``NEWOBJ_EX``, ``OBJ`` and ``INST``; a ``BUILD`` then runs the ``__setstate__`` of what the call
made): calling a harmless-looking name with arguments of the stream's choice is how a 100-byte
file allocates terabytes (``numpy.ndarray((10**12,))``). The default policy marks exactly the
names legitimate pickles call (measured over every estimator, see ``_default_types``), and
:data:`CALL_RULES` fixes the only arguments several of them are ever called with; both walls
(the scanner and the restricted unpickler) enforce both. Names a user adds with :meth:`extend`
or :meth:`of` are callable by default (a user's own estimator class is constructed by
``NEWOBJ``); pass ``callable=False`` for names that only need to be stored, such as a function
kept as a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from safeload._default_types import CALL_RULES, DEFAULT_CALLS, DEFAULT_TYPES

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
    """An immutable set of exactly-named globals that a model file may reference.

    Attributes:
        names: every trusted ``(module, qualname)`` pair; a stream may store any of them.
        callables: the subset a stream may also call (construct); the rest are references
            only. Defaults to none: a policy built directly from pairs trusts no call.
    """

    names: frozenset[TypeName]
    callables: frozenset[TypeName] = frozenset()

    def __post_init__(self) -> None:
        if not self.callables <= self.names:
            extra = sorted(format_type_name(n) for n in self.callables - self.names)
            raise ValueError(f"callables must also be trusted names: {extra}")

    @classmethod
    def default(cls) -> TypePolicy:
        """The default policy: fitted scikit-learn models and the internals they need."""
        return _DEFAULT

    @classmethod
    def of(cls, names: Iterable[str], *, callable: bool = True) -> TypePolicy:
        """Build a policy from ``module:qualname`` strings (and nothing else).

        With ``callable=False`` the names are trusted as stored references only.
        """
        parsed = frozenset(parse_type_name(n) for n in names)
        return cls(parsed, parsed if callable else frozenset())

    def extend(self, names: Iterable[str], *, callable: bool = True) -> TypePolicy:
        """Return a new policy that also trusts these exact names.

        By default the stream may also call them (what a user's own class needs: pickles
        construct it). Pass ``callable=False`` to trust a name only as a stored value, e.g. a
        function kept as a parameter that the file must never be able to call at load time.
        An extension never takes away a permission the policy already grants.
        """
        added = frozenset(parse_type_name(n) for n in names)
        callables = self.callables | added if callable else self.callables
        return TypePolicy(self.names | added, callables)

    def allows(self, module: str, qualname: str) -> bool:
        """Whether this exact global is trusted (as a reference at least)."""
        return (module, qualname) in self.names

    def may_call(self, module: str, qualname: str) -> bool:
        """Whether a stream may call (construct) this exact global."""
        return (module, qualname) in self.callables

    def call_rule(self, module: str, qualname: str) -> str | None:
        """How a stream may call this global: ``None`` if it may not, else a rule name.

        The rule is ``"any"`` (any arguments) unless :data:`CALL_RULES` knows the function and
        fixes the only form its pickles ever take (e.g. ``"new"``: ``cls.__new__(cls)`` by
        ``NEWOBJ`` only). Rules describe what the functions do, so they hold in every policy.
        """
        key = (module, qualname)
        if key not in self.callables:
            return None
        return _RULES.get(key, "any")

    def untrusted(self, names: Iterable[TypeName]) -> list[str]:
        """The names (as ``module.qualname``, sorted, unique) that this policy refuses."""
        return sorted({format_type_name(n) for n in names if n not in self.names})

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(f"{m}:{q}" for m, q in self.names))

    def __len__(self) -> int:
        return len(self.names)


_RULES: dict[TypeName, str] = {parse_type_name(n): rule for n, rule in CALL_RULES.items()}
_DEFAULT = TypePolicy.of(DEFAULT_TYPES, callable=False).extend(DEFAULT_CALLS)


def resolve_policy(policy: TypePolicy | Iterable[str] | None) -> TypePolicy:
    """Accept a policy, a list of extra names on top of the default, or None for the default."""
    if policy is None:
        return _DEFAULT
    if isinstance(policy, TypePolicy):
        return policy
    if isinstance(policy, str):
        raise TypeError("policy must be a TypePolicy or a list of names, not a single string")
    return _DEFAULT.extend(policy)
