"""``safeload inspect``: everything about an artifact, without deserializing anything.

Unlike :func:`safeload.load`, inspection does not stop at the first refusal: it reports every
check (signer, each file's digest, metadata, the types the model names) and a verdict, so that a
person or a CI job sees the whole picture. Claims read from an unverified bundle are marked so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from safeload import metaschema, strictjson
from safeload.errors import RefusedError, SafeloadError
from safeload.keys import TrustSource, resolve_keyring
from safeload.layout import METADATA_FILE, SIGNATURE_FILE, ListedArtifact, Progress, ReadLimits
from safeload.manifest import ALGORITHM, Hashing
from safeload.options import LoadOptions, resolve_options
from safeload.policy import PolicySource
from safeload.reading import ArtifactFiles, read_artifact
from safeload.typegate import ScanLimits, scan_bytes
from safeload.verifying import (
    SignatureCheck,
    VerifiedStatement,
    check_rule_name,
    describe_signatures,
    get_unverified_claims,
    verify_signature,
)


@dataclass
class FileEntry:
    """One file of the artifact as found on disk, against the signed manifest."""

    name: str
    size: int
    digests: tuple[str, ...]
    signed_digests: tuple[str, ...] | None
    algorithm: str = ALGORITHM

    @property
    def matches(self) -> bool:
        """Whether the file's digests (SHA-256 or BLAKE3) equal the ones in the manifest."""
        return self.signed_digests is not None and self.digests == self.signed_digests

    @property
    def digest(self) -> str | None:
        """The whole file's digest (its ``algorithm``), when one digest covers the whole file."""
        return self.digests[0] if len(self.digests) == 1 else None

    @property
    def signed_digest(self) -> str | None:
        """The signed whole-file digest, when one signed digest covers the whole file."""
        signed = self.signed_digests
        return signed[0] if signed is not None and len(signed) == 1 else None


@dataclass
class InspectReport:
    """The result of :func:`inspect`; ``verdict`` is ``verified``, ``refused`` or ``error``."""

    path: str
    verdict: str = "refused"
    reasons: list[str] = field(default_factory=list)
    signer_hint: str | None = None
    signer_name: str | None = None
    signer_trusted: bool | None = None
    signature_valid: bool | None = None
    files: list[FileEntry] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    metadata_verified: bool = False
    scan: dict[str, Any] | None = None
    signatures: list[SignatureCheck] = field(default_factory=list)
    """Every signature of the bundle with its signer name and status (see ``SignatureCheck``)."""
    error_type: str | None = field(default=None, repr=False)
    """With verdict ``error``: the class name of the :class:`~safeload.OperationalError`."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, stable keys (the ``--json`` output of ``safeload inspect``)."""
        return {
            "path": self.path,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "signer": {
                "hint": self.signer_hint,
                "name": self.signer_name,
                "trusted": self.signer_trusted,
                "signature_valid": self.signature_valid,
            },
            "signatures": [s.to_dict() for s in self.signatures],
            "files": [
                {
                    "name": f.name,
                    "size": f.size,
                    # kept for readers of SHA-256 manifests; a BLAKE3 digest is in "digests"
                    "sha256": f.digest if f.algorithm.startswith("sha256") else None,
                    "signed_sha256": f.signed_digest if f.algorithm.startswith("sha256") else None,
                    "algorithm": f.algorithm,
                    "digests": list(f.digests),
                    "signed_digests": None if f.signed_digests is None else list(f.signed_digests),
                    "matches": f.matches,
                }
                for f in self.files
            ],
            "missing_files": list(self.missing_files),
            "metadata": self.metadata,
            "metadata_verified": self.metadata_verified,
            "types": self.scan,
        }


def inspect(
    path: str | os.PathLike[str],
    *,
    trusted: TrustSource | None = None,
    options: LoadOptions | None = None,
    policy: PolicySource = None,
    read_limits: ReadLimits | None = None,
    scan_limits: ScanLimits | None = None,
    progress: Progress | None = None,
) -> InspectReport:
    """Examine an artifact directory; never deserializes, never raises on a bad artifact.

    Without ``trusted`` the signature cannot be checked and the verdict is at best ``refused``
    (unknown signer); the file and type checks still run. ``options`` (and the keywords that
    override it) bound reading and scanning exactly as for a load.
    """
    report = InspectReport(os.fspath(path))
    opts = resolve_options(options, policy=policy, read_limits=read_limits, scan_limits=scan_limits)
    signed: dict[str, tuple[str, ...]] = {}
    verified: list[VerifiedStatement] = []

    def read_claims(artifact: ListedArtifact) -> Hashing:
        """Check what can be checked of the signature; return the claimed hashing."""
        if SIGNATURE_FILE not in artifact.sizes:
            report.reasons.append("unsigned: no model.sig")
            return Hashing()
        sig = artifact.read(SIGNATURE_FILE)
        scheme = Hashing()
        try:
            report.signer_hint, claimed = get_unverified_claims(sig)
            signed.update(claimed.digests())
            scheme = claimed.hashing
            report.signatures = list(describe_signatures(sig, keyring))
        except RefusedError as exc:
            report.reasons.append(str(exc))
        if report.signer_hint and keyring is not None:
            report.signer_trusted = report.signer_hint in keyring
            report.signer_name = keyring.name_of(report.signer_hint)
            try:
                statement = verify_signature(sig, keyring)
                report.signer_hint = statement.signer_hint
                report.signer_name = statement.signer_name
                report.signer_trusted = True
                report.signature_valid = True
                verified.append(statement)
            except RefusedError as exc:
                report.signature_valid = False if report.signer_trusted else None
                report.reasons.append(str(exc))
        elif report.signer_hint:
            report.reasons.append("no trusted keys given: the signer cannot be checked")
        return scheme

    try:
        keyring = resolve_keyring(trusted) if trusted is not None else None
        files = read_artifact(
            path,
            read_claims,
            limits=opts.read_limits,
            progress=progress,
            tolerate_no_model=True,
            storage_options=opts.storage_options,
        )
        _compare_files(report, files, signed)
        if verified and keyring is not None and report.metadata is not None:
            try:
                check_rule_name(verified[0], report.metadata, keyring)
            except RefusedError as exc:
                report.reasons.append(str(exc))
        if files.model_name is None:
            report.reasons.append(str(files.model_problem))
        else:
            result = scan_bytes(
                files.model,
                policy=opts.types,
                limits=opts.scan_limits,
                path=files.model_name,
                format=files.format,
            )
            report.scan = result.to_dict()
            if not result.safe:
                report.reasons.extend(
                    [f"untrusted type {t}" for t in result.untrusted] + list(result.problems)
                )
    except RefusedError as exc:
        report.reasons.append(str(exc))
    except SafeloadError as exc:
        report.verdict = "error"
        report.error_type = type(exc).__name__
        report.reasons.append(str(exc))
        return report
    report.metadata_verified = bool(
        report.signature_valid and any(f.name == METADATA_FILE and f.matches for f in report.files)
    )
    if not report.reasons and report.signature_valid:
        report.verdict = "verified"
    return report


def _compare_files(
    report: InspectReport, files: ArtifactFiles, signed: dict[str, tuple[str, ...]]
) -> None:
    """Each file's digests against the (claimed) manifest, and the metadata as found."""
    algorithm = files.scheme.resource_algorithm
    for name, data in files.buffers.items():
        report.files.append(
            FileEntry(name, len(data), files.digests[name], signed.get(name), algorithm)
        )
    report.missing_files = sorted(set(signed) - set(files.buffers))
    for entry in report.files:
        if entry.signed_digests is None and signed:
            report.reasons.append(f"{entry.name} is not in the signed manifest")
        elif signed and not entry.matches:
            report.reasons.append(f"{entry.name} does not match its signed digest")
    for name in report.missing_files:
        report.reasons.append(f"{name} is in the signed manifest but missing")
    if METADATA_FILE in files.buffers:
        try:
            metadata = strictjson.loads(files.buffers[METADATA_FILE], METADATA_FILE)
            metaschema.check_bounds(metadata)  # it is printed: bounded nesting and sizes first
            report.metadata = metadata
        except RefusedError as exc:
            report.reasons.append(str(exc))
