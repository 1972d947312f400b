"""The load-time knobs in one object, so every entry point takes the same ones.

``load``, ``load_artifact``, ``verify_artifact``, :class:`~safeload.Store` and ``inspect`` accept
``options=LoadOptions(...)`` (like python-tuf's ``UpdaterConfig``), and still take each knob as a
keyword argument; a keyword given explicitly wins over the same field of ``options``. Trust (the
keyring) and identity (name, version) are not options: they are what the caller asks for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from safeload.layout import ReadLimits
from safeload.policy import TypePolicy, parse_type_name, resolve_policy
from safeload.typegate import ScanLimits

VERSION_POLICIES = ("warn", "strict", "ignore")


@dataclass(frozen=True)
class LoadOptions:
    """How much a load may read and scan, which types it trusts, how it treats versions.

    Attributes:
        policy: the trusted-type policy (default :meth:`TypePolicy.default`), or extra exact
            names on top of the default.
        read_limits: file count and sizes, checked from the directory listing before reading.
        scan_limits: bounds on the static type scan and decompression, for every format, and
            the predict-time budgets structural validation holds fitted values to.
        versions: ``"warn"`` (default), ``"strict"`` (a different scikit-learn version is a
            :class:`~safeload.ContractError`) or ``"ignore"``.
        safe_to_call: exact ``module:qualname`` names of functions you vouch scikit-learn may
            call on your data with the model's arguments (a custom ``FunctionTransformer``
            func, a callable ``metric``), on top of :data:`safeload.callsafe.SAFE_TO_CALL`.
            Their names must also be in ``policy`` (as references) for the file to hold them.
        storage_options: for a URL path (``s3://...``): keyword arguments of its fsspec
            filesystem (``{"endpoint_url": ...}``, credentials); never read from an artifact.
    """

    policy: TypePolicy | Iterable[str] | None = None
    read_limits: ReadLimits = field(default_factory=ReadLimits)
    scan_limits: ScanLimits = field(default_factory=ScanLimits)
    versions: str = "warn"
    safe_to_call: Iterable[str] = ()
    # Not in repr: it may hold credentials.
    storage_options: Mapping[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.versions not in VERSION_POLICIES:
            raise ValueError(f"versions must be one of {', '.join(map(repr, VERSION_POLICIES))}")
        object.__setattr__(self, "policy", resolve_policy(self.policy))
        if isinstance(self.safe_to_call, str):
            raise TypeError("safe_to_call must be a list of 'module:qualname' names")
        exact = tuple(":".join(parse_type_name(n)) for n in self.safe_to_call)
        object.__setattr__(self, "safe_to_call", exact)

    @property
    def types(self) -> TypePolicy:
        """The resolved type policy."""
        return resolve_policy(self.policy)  # already resolved in __post_init__: no copy

    def with_overrides(
        self,
        *,
        policy: TypePolicy | Iterable[str] | None = None,
        read_limits: ReadLimits | None = None,
        scan_limits: ScanLimits | None = None,
        versions: str | None = None,
    ) -> LoadOptions:
        """These options with every knob that is not ``None`` replaced."""
        if policy is None and read_limits is None and scan_limits is None and versions is None:
            return self
        return replace(
            self,
            policy=self.policy if policy is None else policy,
            read_limits=read_limits or self.read_limits,
            scan_limits=scan_limits or self.scan_limits,
            versions=versions or self.versions,
        )


def resolve_options(
    options: LoadOptions | None,
    *,
    policy: TypePolicy | Iterable[str] | None = None,
    read_limits: ReadLimits | None = None,
    scan_limits: ScanLimits | None = None,
    versions: str | None = None,
) -> LoadOptions:
    """``options`` (or the defaults) with the keyword arguments a caller gave on top."""
    return (options or LoadOptions()).with_overrides(
        policy=policy, read_limits=read_limits, scan_limits=scan_limits, versions=versions
    )
