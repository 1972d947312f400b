"""The load-time knobs in one object, so every entry point takes the same ones.

``load``, ``load_artifact``, ``verify_artifact``, :class:`~safeload.Store` and ``inspect`` accept
``options=LoadOptions(...)`` (like python-tuf's ``UpdaterConfig``), and still take each knob as a
keyword argument; a keyword given explicitly wins over the same field of ``options``. Trust (the
keyring) and identity (name, version) are not options: they are what the caller asks for.

``policy=None`` stays None in a ``LoadOptions`` and is resolved once per operation by
:func:`resolve_options` (``$SAFELOAD_POLICY`` or the default): a :class:`~safeload.Store`
built at start-up follows the variable's file as it changes, and one load never scans with one
policy and unpickles with another.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from safeload.layout import ReadLimits
from safeload.policy import (
    PolicySource,
    TypePolicy,
    parse_type_name,
    resolve_policy,
    warn_if_unsafe,
)
from safeload.typegate import ScanLimits

VERSION_POLICIES = ("warn", "strict", "ignore")


@dataclass(frozen=True)
class LoadOptions:
    """How much a load may read and scan, which types it trusts, how it treats versions.

    Attributes:
        policy: the trusted-type policy: a :class:`TypePolicy`, extra exact names on top of
            the default, or the path of a policy file (``docs/policy.md``); ``None`` (the
            default) means ``$SAFELOAD_POLICY``'s file if set, else :meth:`TypePolicy.default`.
        read_limits: file count and sizes, checked from the directory listing before reading.
        scan_limits: bounds on the static type scan and decompression, for every format, and
            the predict-time budgets structural validation holds fitted values to.
        versions: ``"warn"`` (default), ``"strict"`` (a different scikit-learn version is a
            :class:`~safeload.ContractError`) or ``"ignore"``.
        safe_to_call: exact ``module:qualname`` names of functions you vouch scikit-learn may
            call on your data with the model's arguments (a custom ``FunctionTransformer``
            func, a callable ``metric``), on top of :data:`safeload.callsafe.SAFE_TO_CALL`.
            Their names must also be in ``policy`` (as references) for the file to hold them.
            A policy file's ``[safe_to_call]`` names are added here.
        storage_options: for a URL path (``s3://...``): keyword arguments of its fsspec
            filesystem (``{"endpoint_url": ...}``, credentials); never read from an artifact.
    """

    policy: PolicySource = None
    read_limits: ReadLimits = field(default_factory=ReadLimits)
    scan_limits: ScanLimits = field(default_factory=ScanLimits)
    versions: str = "warn"
    safe_to_call: Iterable[str] = ()
    # Not in repr: it may hold credentials.
    storage_options: Mapping[str, Any] | None = field(default=None, repr=False)
    # Set by resolve_options on the copy it makes for one operation (never by a caller).
    _resolved: bool = field(default=False, init=False, repr=False, compare=False)
    # The caller's own safe_to_call, before the policy's are added (kept across replace()).
    _own_calls: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.versions not in VERSION_POLICIES:
            raise ValueError(f"versions must be one of {', '.join(map(repr, VERSION_POLICIES))}")
        if self.policy is not None:  # a list or a file: parsed now, so errors show here
            object.__setattr__(self, "policy", resolve_policy(self.policy, warn=False))
        if isinstance(self.safe_to_call, str):
            raise TypeError("safe_to_call must be a list of 'module:qualname' names")
        own = tuple(":".join(parse_type_name(n)) for n in self.safe_to_call)
        object.__setattr__(self, "_own_calls", own)
        vouched = self.policy.safe_to_call if isinstance(self.policy, TypePolicy) else ()
        merged = (*own, *sorted(f"{m}:{q}" for m, q in vouched))
        object.__setattr__(self, "safe_to_call", tuple(dict.fromkeys(merged)))

    def _replace(self, **changes: object) -> LoadOptions:
        """``dataclasses.replace`` that re-derives the policy's ``safe_to_call`` names."""
        return replace(self, **{"safe_to_call": self._own_calls, **changes})  # type: ignore[arg-type]

    @property
    def types(self) -> TypePolicy:
        """The type policy (``policy=None``: the variable's file or the default, read now)."""
        if isinstance(self.policy, TypePolicy):
            return self.policy
        return resolve_policy(None, warn=False)

    def with_overrides(
        self,
        *,
        policy: PolicySource = None,
        read_limits: ReadLimits | None = None,
        scan_limits: ScanLimits | None = None,
        versions: str | None = None,
    ) -> LoadOptions:
        """These options with every knob that is not ``None`` replaced."""
        if policy is None and read_limits is None and scan_limits is None and versions is None:
            return self
        return self._replace(
            policy=self.policy if policy is None else policy,
            read_limits=read_limits or self.read_limits,
            scan_limits=scan_limits or self.scan_limits,
            versions=versions or self.versions,
        )


def resolve_options(
    options: LoadOptions | None,
    *,
    policy: PolicySource = None,
    read_limits: ReadLimits | None = None,
    scan_limits: ScanLimits | None = None,
    versions: str | None = None,
) -> LoadOptions:
    """``options`` (or the defaults) with the keyword arguments a caller gave on top.

    The result holds the one :class:`TypePolicy` this operation uses (``$SAFELOAD_POLICY`` is
    read here, once), and a policy that trusts doors to code or the OS warns here, once per
    operation: options this function already resolved pass through unchanged and silent.
    """
    nothing = policy is None and read_limits is None and scan_limits is None and versions is None
    if options is not None and options._resolved and nothing:
        return options
    opts = (options or LoadOptions()).with_overrides(
        policy=policy, read_limits=read_limits, scan_limits=scan_limits, versions=versions
    )
    if isinstance(opts.policy, TypePolicy):
        chosen = opts.policy
        warn_if_unsafe(chosen, "the caller", stacklevel=3)
    else:
        chosen = resolve_policy(None)  # the variable's file (warns itself) or the default
    resolved = opts._replace(policy=chosen)
    object.__setattr__(resolved, "_resolved", True)
    return resolved
