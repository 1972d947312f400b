"""safeload: sign persisted scikit-learn models in training, verify them before loading.

``joblib.load`` and ``pickle.load`` run whatever code a model file asks for. safeload refuses a
model file unless it is signed by a key you trust, every byte matches the signed manifest, and
every type it names is on an exact allowlist; only then does it deserialize, from the bytes it
verified, through a restricted unpickler.

Training::

    import safeload
    key = safeload.generate_key()
    key.save("secrets/trainer")   # secrets/trainer.key (0600); publish secrets/trainer.pub
    safeload.save(pipeline, "models/churn/1.2.0", key=key, name="churn", version="1.2.0")

Production (``load_checked``: its predictions first check input against the saved schema)::

    model = safeload.load_checked("models/churn/1.2.0", trusted="keys/")
    model.predict(X)

``safeload.load`` returns the bare estimator instead (a drop-in for ``joblib.load``).

Auditing any pickle, signed or not, without running it::

    report = safeload.scan("downloaded.joblib")
    report.safe, report.untrusted
    safeload.inspect("models/churn/1.2.0", trusted="keys/").verdict

Only the errors are imported with the package; everything else on first use (PEP 562), so
that ``import safeload`` and the CLI's ``--version`` cost no numpy or scikit-learn import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from safeload.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    ContractError,
    ConversionError,
    ConversionMismatchError,
    KeyFileError,
    MalformedArtifactError,
    OperationalError,
    PolicyError,
    PolicyFileError,
    RefusedError,
    RollbackError,
    SafeloadError,
    SignatureError,
    StoreLayoutError,
    StoreStateError,
    TamperedArtifactError,
    TrustFileError,
    UnfittedModelError,
    UnsafePolicyError,
    UnsignedArtifactError,
    UntrustedSignerError,
    UntrustedTypeError,
)

if TYPE_CHECKING:
    from safeload.convert import convert
    from safeload.cosigning import cosign
    from safeload.inspecting import (
        InspectReport,
        inspect,
    )
    from safeload.interop import (
        VerifiedModelSigning,
        load_model_signing,
        verify_model_signing,
    )
    from safeload.keys import (
        Keyring,
        SigningKey,
        generate_key,
        load_signing_key,
    )
    from safeload.layout import ReadLimits
    from safeload.loading import (
        LoadedArtifact,
        UnsafeUnsignedLoadWarning,
        VerifiedArtifact,
        VersionMismatchWarning,
        load,
        load_artifact,
        load_checked,
        load_file,
        verify_artifact,
    )
    from safeload.options import LoadOptions
    from safeload.policy import TypePolicy, UnsafePolicyWarning
    from safeload.saving import save
    from safeload.store import Store
    from safeload.typegate import (
        ScanLimits,
        ScanReport,
        scan,
        scan_bytes,
    )

__version__ = "0.1.0"

# Where each public name lives; imported on first access (PEP 562).
_LAZY = {
    "convert": "safeload.convert",
    "cosign": "safeload.cosigning",
    "InspectReport": "safeload.inspecting",
    "inspect": "safeload.inspecting",
    "VerifiedModelSigning": "safeload.interop",
    "load_model_signing": "safeload.interop",
    "verify_model_signing": "safeload.interop",
    "Keyring": "safeload.keys",
    "SigningKey": "safeload.keys",
    "generate_key": "safeload.keys",
    "load_signing_key": "safeload.keys",
    "ReadLimits": "safeload.layout",
    "LoadedArtifact": "safeload.loading",
    "UnsafeUnsignedLoadWarning": "safeload.loading",
    "VerifiedArtifact": "safeload.loading",
    "VersionMismatchWarning": "safeload.loading",
    "load": "safeload.loading",
    "load_artifact": "safeload.loading",
    "load_checked": "safeload.loading",
    "load_file": "safeload.loading",
    "verify_artifact": "safeload.loading",
    "LoadOptions": "safeload.options",
    "TypePolicy": "safeload.policy",
    "UnsafePolicyWarning": "safeload.policy",
    "save": "safeload.saving",
    "Store": "safeload.store",
    "ScanLimits": "safeload.typegate",
    "ScanReport": "safeload.typegate",
    "scan": "safeload.typegate",
    "scan_bytes": "safeload.typegate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'safeload' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArtifactExistsError",
    "ArtifactNotFoundError",
    "ContractError",
    "ConversionError",
    "ConversionMismatchError",
    "InspectReport",
    "KeyFileError",
    "Keyring",
    "LoadOptions",
    "LoadedArtifact",
    "MalformedArtifactError",
    "OperationalError",
    "PolicyError",
    "PolicyFileError",
    "ReadLimits",
    "RefusedError",
    "RollbackError",
    "SafeloadError",
    "ScanLimits",
    "ScanReport",
    "SignatureError",
    "SigningKey",
    "Store",
    "StoreLayoutError",
    "StoreStateError",
    "TamperedArtifactError",
    "TrustFileError",
    "TypePolicy",
    "UnfittedModelError",
    "UnsafePolicyError",
    "UnsafePolicyWarning",
    "UnsafeUnsignedLoadWarning",
    "UnsignedArtifactError",
    "UntrustedSignerError",
    "UntrustedTypeError",
    "VerifiedArtifact",
    "VerifiedModelSigning",
    "VersionMismatchWarning",
    "__version__",
    "convert",
    "cosign",
    "generate_key",
    "inspect",
    "load",
    "load_artifact",
    "load_checked",
    "load_file",
    "load_model_signing",
    "load_signing_key",
    "save",
    "scan",
    "scan_bytes",
    "verify_artifact",
    "verify_model_signing",
]
