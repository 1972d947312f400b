"""safeload: sign persisted scikit-learn models in training, verify them before loading.

``joblib.load`` and ``pickle.load`` run whatever code a model file asks for. safeload refuses a
model file unless it is signed by a key you trust, every byte matches the signed manifest, and
every type it names is on an exact allowlist; only then does it deserialize, from the bytes it
verified, through a restricted unpickler.

Training::

    import safeload
    key = safeload.generate_key()
    key.save("keys/trainer")                      # keys/trainer.key (0600) + keys/trainer.pub
    safeload.save(pipeline, "models/churn/1.2.0", key=key, name="churn", version="1.2.0")

Production::

    model = safeload.load("models/churn/1.2.0", trusted="keys/")
    model.predict(X)

Auditing any pickle, signed or not, without running it::

    report = safeload.scan("downloaded.joblib")
    report.safe, report.untrusted
    safeload.inspect("models/churn/1.2.0", trusted="keys/").verdict
"""

from __future__ import annotations

from safeload.convert import convert
from safeload.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    ContractError,
    KeyFileError,
    MalformedArtifactError,
    OperationalError,
    PolicyError,
    PolicyFileError,
    RefusedError,
    SafeloadError,
    SignatureError,
    TamperedArtifactError,
    UnsafePolicyError,
    UnsignedArtifactError,
    UntrustedSignerError,
    UntrustedTypeError,
)
from safeload.inspecting import InspectReport, inspect
from safeload.keys import Keyring, SigningKey, generate_key, load_signing_key
from safeload.layout import ReadLimits
from safeload.loading import (
    LoadedArtifact,
    UnsafeUnsignedLoadWarning,
    VerifiedArtifact,
    VersionMismatchWarning,
    load,
    load_artifact,
    load_file,
    verify_artifact,
)
from safeload.options import LoadOptions
from safeload.policy import TypePolicy, UnsafePolicyWarning
from safeload.saving import save
from safeload.store import Store
from safeload.typegate import ScanLimits, ScanReport, scan, scan_bytes

__version__ = "0.1.0"

__all__ = [
    "ArtifactExistsError",
    "ArtifactNotFoundError",
    "ContractError",
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
    "SafeloadError",
    "ScanLimits",
    "ScanReport",
    "SignatureError",
    "SigningKey",
    "Store",
    "TamperedArtifactError",
    "TypePolicy",
    "UnsafePolicyError",
    "UnsafePolicyWarning",
    "UnsafeUnsignedLoadWarning",
    "UnsignedArtifactError",
    "UntrustedSignerError",
    "UntrustedTypeError",
    "VerifiedArtifact",
    "VersionMismatchWarning",
    "__version__",
    "convert",
    "generate_key",
    "inspect",
    "load",
    "load_artifact",
    "load_file",
    "load_signing_key",
    "save",
    "scan",
    "scan_bytes",
    "verify_artifact",
]
