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

Names a caller adds are also held to :mod:`safeload.unsafenames`: the doors from a file to code
or the OS (``os.system``, ``builtins.eval``, ``pickle.loads``...) are refused with
:class:`~safeload.errors.UnsafePolicyError` unless the caller insists with ``unsafe=True``, and
a policy that trusts one warns (:class:`UnsafePolicyWarning`) every time it is built or
resolved. Where the policy comes from when a caller passes none: :func:`resolve_policy`.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from safeload._default_types import CALL_RULES, DEFAULT_CALLS, DEFAULT_TYPES
from safeload._onnx_ops import ONNX_DOMAINS, ONNX_OPS
from safeload._packs import PACK_CALL_RULES, PACKS
from safeload.errors import PolicyError, UnsafePolicyError
from safeload.policyfile import PolicyEntries, read_policy_file
from safeload.typenames import TypeName as TypeName
from safeload.typenames import format_type_name as format_type_name
from safeload.typenames import parse_type_name as parse_type_name
from safeload.unsafenames import unsafe_message, unsafe_reason

#: The environment variable naming a policy file used when a caller passes no policy.
POLICY_ENV = "SAFELOAD_POLICY"


class UnsafePolicyWarning(UserWarning):
    """A policy trusts names that let a file run code or reach the OS (``unsafe=True``)."""


@dataclass(frozen=True)
class TypePolicy:
    """An immutable set of exactly-named globals that a model file may reference.

    Attributes:
        names: every trusted ``(module, qualname)`` pair; a stream may store any of them.
        callables: the subset a stream may also call (construct); the rest are references
            only. Defaults to none: a policy built directly from pairs trusts no call.
        unsafe: the names among ``names`` that :func:`safeload.unsafenames.unsafe_reason`
            refuses and the caller accepted anyway (``unsafe=True``). A policy that trusts
            such a name without listing it here cannot be built.
        safe_to_call: functions the policy's author vouches scikit-learn may call on data
            (see :attr:`safeload.LoadOptions.safe_to_call`); each is also a trusted name.
        onnx_ops: the ONNX operators (``"ai.onnx:Add"``, ``"ai.onnx.ml:TreeEnsembleClassifier"``)
            a graph may use; defaults to those skl2onnx writes (:mod:`safeload._onnx_ops`).
    """

    names: frozenset[TypeName]
    callables: frozenset[TypeName] = frozenset()
    unsafe: frozenset[TypeName] = frozenset()
    safe_to_call: frozenset[TypeName] = frozenset()
    onnx_ops: frozenset[str] = ONNX_OPS

    def __post_init__(self) -> None:
        if not self.callables <= self.names:
            extra = sorted(format_type_name(n) for n in self.callables - self.names)
            raise ValueError(f"callables must also be trusted names: {extra}")
        if not self.safe_to_call <= self.names:
            extra = sorted(format_type_name(n) for n in self.safe_to_call - self.names)
            raise ValueError(f"safe_to_call names must also be trusted names: {extra}")
        for name in sorted(self.names - self.unsafe):
            why = unsafe_reason(*name)
            if why is not None:
                raise UnsafePolicyError(unsafe_message(name, why), types=[_colon(name)])
        if not self.unsafe <= self.names:
            raise ValueError("unsafe names must also be trusted names")
        # Only what the rule refuses is recorded: equal policies stay equal.
        object.__setattr__(
            self, "unsafe", frozenset(n for n in self.unsafe if unsafe_reason(*n) is not None)
        )

    @classmethod
    def default(cls) -> TypePolicy:
        """The default policy: fitted scikit-learn models and the internals they need."""
        return _DEFAULT

    @classmethod
    def of(cls, names: Iterable[str], *, callable: bool = True, unsafe: bool = False) -> TypePolicy:
        """Build a policy from ``module:qualname`` strings (and nothing else).

        With ``callable=False`` the names are trusted as stored references only. Names that
        let a file run code or reach the OS are refused unless ``unsafe=True`` (see
        :meth:`extend`).
        """
        return cls(frozenset()).extend(names, callable=callable, unsafe=unsafe)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TypePolicy:
        """The default policy plus the names of a policy file (TOML, see ``docs/policy.md``).

        Raises :class:`~safeload.errors.PolicyFileError` naming the file, the line or key
        and the problem; :class:`~safeload.errors.UnsafePolicyError` for a door that the file
        does not mark ``unsafe = true``.
        """
        policy = _from_entries(read_policy_file(path))
        warn_if_unsafe(policy, os.fspath(path))
        return policy

    def extend(
        self,
        names: Iterable[str],
        *,
        callable: bool = True,
        unsafe: bool = False,
        safe_to_call: bool = False,
    ) -> TypePolicy:
        """Return a new policy that also trusts these exact names.

        By default the stream may also call them (what a user's own class needs: pickles
        construct it). Pass ``callable=False`` to trust a name only as a stored value, e.g. a
        function kept as a parameter that the file must never be able to call at load time.
        An extension never takes away a permission the policy already grants.

        A name that lets a file run code or reach the OS (``os:system``, ``builtins:eval``,
        ``pickle:loads``, anything in ``subprocess``; see :mod:`safeload.unsafenames`) raises
        :class:`~safeload.errors.UnsafePolicyError`, unless ``unsafe=True``: then it is
        trusted and :class:`UnsafePolicyWarning` is emitted now and each time the policy is
        resolved for a load. ``safe_to_call=True`` also vouches that scikit-learn may call
        the names on your data (:attr:`safeload.LoadOptions.safe_to_call`).
        """
        if isinstance(names, str):
            raise TypeError("names must be a list of 'module:qualname' strings, not one string")
        added = frozenset(parse_type_name(n) for n in names)
        refused = {n: why for n in sorted(added) if (why := unsafe_reason(*n)) is not None}
        if refused and not unsafe:
            name, why = next(iter(refused.items()))
            raise UnsafePolicyError(unsafe_message(name, why), types=map(_colon, refused))
        policy = TypePolicy(
            self.names | added,
            self.callables | added if callable else self.callables,
            self.unsafe | frozenset(refused),
            self.safe_to_call | added if safe_to_call else self.safe_to_call,
            self.onnx_ops,
        )
        if refused:
            warn_if_unsafe(policy, "TypePolicy.extend(..., unsafe=True)", stacklevel=2)
        return policy

    @staticmethod
    def packs() -> tuple[str, ...]:
        """The names of the opt-in packs :meth:`with_packs` knows (``docs/policy.md``)."""
        return tuple(PACKS)

    def with_packs(self, *names: str) -> TypePolicy:
        """Return a new policy that also trusts these packs' exact names (``"lightgbm"``, ...).

        A pack is one library's scikit-learn estimators (LightGBM, XGBoost, CatBoost): their
        names, each callable only in the form its pickles take, and their boosters' model
        blobs checked before native code parses them. An unknown pack name raises
        :class:`~safeload.errors.PolicyError` listing the known ones.
        """
        unknown = [n for n in names if n not in PACKS]
        if unknown or any(not isinstance(n, str) for n in names):
            raise PolicyError(
                f"unknown pack(s) {sorted(map(str, unknown))}; the packs are {sorted(PACKS)}"
            )
        added = frozenset(parse_type_name(n) for pack in names for n in PACKS[pack])
        return replace(self, names=self.names | added, callables=self.callables | added)

    def with_onnx_ops(self, *names: str) -> TypePolicy:
        """Return a new policy whose ONNX gate also admits these exact operators.

        Each is ``"ai.onnx:OpType"`` or ``"ai.onnx.ml:OpType"``, spelled as ONNX does. The
        default admits only what skl2onnx writes for scikit-learn models; add an operator only
        for graphs you sign from another converter, knowing what its kernel may allocate (a
        string operator's output escapes onnxruntime's arena: ``docs/threat-model.md``).
        Raises :class:`~safeload.errors.PolicyError` for a name of another form or domain.
        """
        for name in names:
            domain, _, op = name.partition(":") if isinstance(name, str) else ("", "", "")
            if domain not in ONNX_DOMAINS or not op.isidentifier():
                raise PolicyError(
                    f"ONNX operator {name!r} is not 'ai.onnx:OpType' or 'ai.onnx.ml:OpType'"
                    if isinstance(name, str) and len(name) <= 200
                    else "an ONNX operator must be a 'domain:OpType' string"
                )
        return replace(self, onnx_ops=self.onnx_ops | frozenset(names))

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


def _colon(name: TypeName) -> str:
    return f"{name[0]}:{name[1]}"


def warn_if_unsafe(policy: TypePolicy, where: str, *, stacklevel: int = 2) -> None:
    """Warn that ``policy`` trusts doors to code or the OS, if it does (``where``: its source)."""
    if policy.unsafe:
        listed = ", ".join(_colon(n) for n in sorted(policy.unsafe)[:10])
        more = f" and {len(policy.unsafe) - 10} more" if len(policy.unsafe) > 10 else ""
        warnings.warn(
            f"the type policy from {where} trusts {listed}{more}, which can let a model file "
            "run code or reach the OS: for these names, only the signature stands between a "
            "file and this process",
            UnsafePolicyWarning,
            stacklevel=stacklevel + 1,
        )


_RULES: dict[TypeName, str] = {
    parse_type_name(n): rule for n, rule in {**CALL_RULES, **PACK_CALL_RULES}.items()
}
_DEFAULT = TypePolicy(
    frozenset(parse_type_name(n) for n in DEFAULT_TYPES),
    frozenset(parse_type_name(n) for n in DEFAULT_CALLS),
)

#: What every entry point's ``policy=`` accepts (see :func:`resolve_policy`).
PolicySource = TypePolicy | Iterable[str] | str | os.PathLike[str] | None


def resolve_policy(policy: PolicySource, *, warn: bool = True) -> TypePolicy:
    """The policy a caller means, from what every entry point's ``policy=`` accepts.

    * a :class:`TypePolicy`: itself;
    * a list (any iterable) of ``module:qualname`` strings: the default policy plus those
      names (callable), through :meth:`TypePolicy.extend`, so doors are refused;
    * a ``str`` or ``os.PathLike``: a policy file (:meth:`TypePolicy.from_file`). A single
      name is not a list: ``policy="a.b:C"`` is read as a file path, and refused as one;
    * ``None``: the file named by ``$SAFELOAD_POLICY`` if that variable is set and not empty,
      else :meth:`TypePolicy.default`. An explicit argument always wins over the variable
      (a list extends the default, not the variable's file); a variable naming a missing or
      broken file is an error, never a silent fall-back to the default.

    A policy read from a file (or the variable) that trusts a door warns each time it is
    resolved, unless ``warn=False`` (a caller that warns once per operation itself).
    """
    if isinstance(policy, TypePolicy):
        return policy
    if policy is None:
        env = os.environ.get(POLICY_ENV, "")
        if not env:
            return _DEFAULT
        chosen = _from_entries(read_policy_file(env, source=f"${POLICY_ENV}"))
        where = f"${POLICY_ENV}={env}"
    elif isinstance(policy, (str, os.PathLike)):
        chosen = _from_entries(read_policy_file(policy))
        where = os.fspath(policy)
    else:
        return _DEFAULT.extend(policy)
    if warn:
        warn_if_unsafe(chosen, where)
    return chosen


@functools.lru_cache(maxsize=16)
def _from_entries(entries: PolicyEntries) -> TypePolicy:
    """The default policy plus a policy file's entries (the same object while they are)."""
    return TypePolicy(
        _DEFAULT.names | entries.names,
        _DEFAULT.callables | entries.callables,
        entries.unsafe,
        entries.safe_to_call,
    ).with_packs(*entries.packs)


def cli_policy(
    allow: Iterable[str] | None = None,
    unsafe_allow: Iterable[str] | None = None,
    policy_file: str | os.PathLike[str] | None = None,
    packs: Iterable[str] | None = None,
) -> TypePolicy | None:
    """The policy a CLI verb's ``--policy``, ``--allow``, ``--unsafe-allow``, ``--pack`` ask for.

    ``None`` when none is given, so that the entry point falls back to ``$SAFELOAD_POLICY``
    (or the default). Otherwise the base is the file (or the default policy: an explicit
    option wins over the variable), extended with ``--allow`` names (callable; doors refused
    with :class:`~safeload.errors.UnsafePolicyError`) and ``--unsafe-allow`` names (doors
    accepted, with an :class:`UnsafePolicyWarning`). Bad names raise ``ValueError``; file
    problems :class:`~safeload.errors.PolicyFileError`.
    """
    allowed, insisted, chosen = list(allow or ()), list(unsafe_allow or ()), list(packs or ())
    if policy_file is None and not allowed and not insisted and not chosen:
        return None
    policy = _DEFAULT if policy_file is None else TypePolicy.from_file(policy_file)
    policy = policy.with_packs(*chosen)
    if allowed:
        policy = policy.extend(allowed)
    if insisted:
        policy = policy.extend(insisted, unsafe=True)
    return policy
