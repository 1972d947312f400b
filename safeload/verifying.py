"""Steps 2 and 3 of the gate: the signature over the manifest, then the manifest over the files.

The bundle is parsed strictly and checked field by field before its payload is trusted for
anything; the payload is only interpreted after a trusted key's signature over its PAE verified.
A bundle may hold several signatures over the one payload; ``trust.toml`` (through the keyring)
says how many distinct trusted signers a model needs.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from safeload import strictjson
from safeload.errors import SignatureError, TamperedArtifactError, UntrustedSignerError, shown
from safeload.keys import Keyring, algorithm_of, key_identity, verify_with
from safeload.layout import SIGNATURE_FILE, check_name
from safeload.manifest import (
    ALGORITHM,
    BLAKE3,
    HASH_TYPES,
    Hashing,
    Manifest,
    Resource,
    shard_bounds,
    subject_digest,
)
from safeload.signing import BUNDLE_MEDIA_TYPE, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, pae
from safeload.trust import (
    DUPLICATE,
    INVALID,
    REVOKED,
    UNKNOWN,
    VALID,
    Rule,
    model_name_of,
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_OFFSET = r"(0|[1-9][0-9]{0,17})"
_SHARD_NAME = re.compile(rf"([^:]*):{_OFFSET}:{_OFFSET}")


MAX_SIGNATURES = 16
"""Signatures a bundle may hold; more is refused before any is verified."""


@dataclass(frozen=True)
class SignatureCheck:
    """One signature of the bundle and what became of it.

    ``status``: ``valid`` (counted), ``revoked``, ``expired``, ``unknown`` (key not in the
    keyring), ``duplicate`` (a key that already signed: counted once), ``invalid`` (does not
    verify against the trusted key it names), or ``unchecked`` (no keyring given).
    """

    hint: str
    name: str | None
    status: str
    algorithm: str | None = None
    """The trusted key's algorithm (``ed25519``, ``ecdsa-p256``); None for an unknown key."""

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready: ``hint``, ``name``, ``status``, ``algorithm``."""
        return {
            "hint": self.hint,
            "name": self.name,
            "status": self.status,
            "algorithm": self.algorithm,
        }


@dataclass(frozen=True)
class VerifiedStatement:
    """What the verified signatures vouch for.

    ``signer_hint``/``signer_name`` are the first counted signer; ``signatures`` has them all.
    """

    signer_hint: str
    signer_name: str | None
    subject_name: str
    manifest: Manifest
    signatures: tuple[SignatureCheck, ...] = ()

    @property
    def model_name(self) -> str:
        """The signed model name (the subject without its version): what trust rules match."""
        return model_name_of(self.subject_name)

    def digests(self) -> dict[str, tuple[str, ...]]:
        """Signed digests of each file, by name (one, or one per shard)."""
        return self.manifest.digests()

    @property
    def shard_size(self) -> int | None:
        """The shard size files are hashed with, or None for whole-file digests."""
        return self.manifest.shard_size

    @property
    def hashing(self) -> Hashing:
        """How the files must be hashed to be compared with the signed digests."""
        return self.manifest.hashing


@dataclass(frozen=True)
class UnverifiedSignature:
    """One DSSE signature and the hint of the key it claims; NOT yet checked."""

    hint: str
    signature: bytes


@dataclass(frozen=True)
class UnverifiedBundle:
    """The fields of ``model.sig``, checked for shape but NOT yet for authenticity."""

    hint: str
    payload_type: str
    payload: bytes
    signatures: tuple[UnverifiedSignature, ...]


def _field(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj or not isinstance(obj[key], kind):
        raise SignatureError(
            f"malformed {SIGNATURE_FILE}: {where}.{key} is missing or not a {kind.__name__}"
        )
    return obj[key]


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"malformed {SIGNATURE_FILE}: {where} is not base64") from exc


def _get_unverified_bundle(data: bytes | bytearray | memoryview) -> UnverifiedBundle:
    """Parse the bundle's shape. Nothing returned here is authentic yet."""
    doc = strictjson.loads(data, SIGNATURE_FILE, SignatureError)
    if _field(doc, "mediaType", str, "bundle") != BUNDLE_MEDIA_TYPE:
        raise SignatureError(f"malformed {SIGNATURE_FILE}: unsupported bundle mediaType")
    material = _field(doc, "verificationMaterial", dict, "bundle")
    hint = _field(
        _field(material, "publicKey", dict, "verificationMaterial"), "hint", str, "publicKey"
    )
    if not _HEX64.fullmatch(hint):
        raise SignatureError(f"malformed {SIGNATURE_FILE}: the key hint is not a hex SHA-256")
    envelope = _field(doc, "dsseEnvelope", dict, "bundle")
    payload_type = _field(envelope, "payloadType", str, "dsseEnvelope")
    if payload_type != PAYLOAD_TYPE:
        raise SignatureError(f"malformed {SIGNATURE_FILE}: payloadType must be {PAYLOAD_TYPE}")
    payload = _b64(_field(envelope, "payload", str, "dsseEnvelope"), "payload")
    signatures = _field(envelope, "signatures", list, "dsseEnvelope")
    if not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise SignatureError(
            f"malformed {SIGNATURE_FILE}: expected 1 to {MAX_SIGNATURES} signatures, "
            f"found {len(signatures)}"
        )
    parsed = tuple(_parse_signature(item, index, hint) for index, item in enumerate(signatures))
    return UnverifiedBundle(hint, payload_type, payload, parsed)


def _parse_signature(item: Any, index: int, bundle_hint: str) -> UnverifiedSignature:
    """One signature and its key's hint.

    The first signature is by the bundle's ``publicKey.hint`` (its ``keyid`` empty or that
    hint, as one-signature bundles are written); every further one names its key in ``keyid``.
    """
    where = f"signatures[{index}]"
    signature = _b64(_field(item, "sig", str, where), f"{where}.sig")
    keyid = item.get("keyid", "")
    if not isinstance(keyid, str):
        raise SignatureError(f"malformed {SIGNATURE_FILE}: {where}.keyid is not a string")
    if index == 0:
        if keyid not in ("", bundle_hint):
            raise SignatureError(
                f"malformed {SIGNATURE_FILE}: the first signature's keyid differs from the "
                "bundle's publicKey.hint"
            )
        return UnverifiedSignature(bundle_hint, signature)
    if not _HEX64.fullmatch(keyid):
        raise SignatureError(
            f"malformed {SIGNATURE_FILE}: {where}.keyid must be its key's hint (hex SHA-256)"
        )
    return UnverifiedSignature(keyid, signature)


def _parse_serialization(predicate: Any) -> Hashing:
    """The predicate's serialization: the hash, and the shard size (None for ``files``).

    The hash comes from the signed statement, but only from the allowlist: SHA-256 whole or
    sharded, BLAKE3 whole (as model_signing 1.1 writes it); anything else is refused.
    """
    serialization = _field(predicate, "serialization", dict, "predicate")
    method = _field(serialization, "method", str, "serialization")
    hash_type = _field(serialization, "hash_type", str, "serialization")
    if hash_type not in HASH_TYPES:
        raise SignatureError(
            f"the signed manifest's hash_type {shown(hash_type)} is not supported "
            f"(only {', '.join(HASH_TYPES)})"
        )
    if serialization.get("allow_symlinks") is not False:
        raise SignatureError("the signed manifest must not allow symlinks")
    if method == "files":
        if "shard_size" in serialization:
            raise SignatureError("the signed manifest gives a shard_size for whole files")
        return Hashing(hash_type)
    if method != "shards":
        raise SignatureError(
            f"the signed manifest's serialization {shown(method)} is not supported"
        )
    if hash_type == BLAKE3:
        raise SignatureError("the signed manifest shards BLAKE3, which is hashed by whole files")
    size = _field(serialization, "shard_size", int, "serialization")
    if isinstance(size, bool) or not 1 <= size <= 1 << 62:
        raise SignatureError("the signed manifest's shard_size is not a positive integer")
    return Hashing(hash_type, int(size))


def _parse_resource(item: Any, hashing: Hashing) -> Resource:
    name = _field(item, "name", str, "resource")
    algorithm = _field(item, "algorithm", str, "resource")
    value = _field(item, "digest", str, "resource")
    if algorithm != hashing.resource_algorithm or not _HEX64.fullmatch(value):
        raise SignatureError(f"resource {shown(name)} has an unsupported digest")
    shard_size = hashing.shard_size
    if shard_size is None:
        resource = Resource(name, value, hash_type=hashing.hash_type)
    else:
        match = _SHARD_NAME.fullmatch(name)
        if match is None:
            raise SignatureError(f"the signed manifest names an odd shard {shown(name)}")
        file, start, end = match.group(1), int(match.group(2)), int(match.group(3))
        resource = Resource(file, value, start, end, shard_size, hashing.hash_type)
    try:
        check_name(resource.file)
    except Exception as exc:
        raise SignatureError(
            f"the signed manifest names an odd path {shown(resource.file)}"
        ) from exc
    if resource.file == SIGNATURE_FILE:
        raise SignatureError(f"the signed manifest must not list {SIGNATURE_FILE}")
    return resource


def _parse_statement(payload: bytes) -> tuple[str, Manifest]:
    doc = strictjson.loads(payload, "the signed statement", SignatureError)
    if _field(doc, "_type", str, "statement") != STATEMENT_TYPE:
        raise SignatureError("the signed statement is not an in-toto Statement v1")
    if _field(doc, "predicateType", str, "statement") != PREDICATE_TYPE:
        raise SignatureError(f"the signed statement's predicateType is not {PREDICATE_TYPE}")
    subjects = _field(doc, "subject", list, "statement")
    if len(subjects) != 1:
        raise SignatureError("the signed statement must have exactly one subject")
    subject_name = _field(subjects[0], "name", str, "subject")
    digest = _field(_field(subjects[0], "digest", dict, "subject"), ALGORITHM, str, "digest")
    predicate = _field(doc, "predicate", dict, "statement")
    items = _field(predicate, "resources", list, "predicate")
    hashing = _parse_serialization(predicate)
    shard_size = hashing.shard_size
    resources = [_parse_resource(item, hashing) for item in items]
    keys = [r.sort_key() for r in resources]
    if keys != sorted(set(keys)):
        raise SignatureError("the signed manifest's resources are not sorted and unique")
    manifest = Manifest(tuple(resources), shard_size, hashing.hash_type)
    if shard_size is not None:
        for file, size in manifest.sizes().items():
            bounds = [(r.start, r.end) for r in resources if r.file == file]
            if bounds != shard_bounds(size, shard_size):
                raise SignatureError(f"the signed shards of {shown(file)} do not cover it in order")
    if subject_digest(resources) != digest:
        raise SignatureError("the statement's subject digest does not match its resources")
    return subject_name, manifest


def check_signatures(bundle: UnverifiedBundle, keyring: Keyring) -> tuple[SignatureCheck, ...]:
    """Verify every signature whose key is in the keyring; give each its status.

    Counting is by key (its DER SubjectPublicKeyInfo), never by signature: the same key (or the
    same signature) twice is one signer, the later entries ``duplicate``.
    """
    message = pae(bundle.payload_type, bundle.payload)
    seen: set[bytes] = set()
    checks = []
    for item in bundle.signatures:
        public_key = keyring.get(item.hint)
        name = keyring.name_of(item.hint)
        if public_key is None:
            checks.append(SignatureCheck(item.hint, None, UNKNOWN))
        elif not verify_with(public_key, item.signature, message):
            checks.append(SignatureCheck(item.hint, name, INVALID, algorithm_of(public_key)))
        elif key_identity(public_key) in seen:
            checks.append(SignatureCheck(item.hint, name, DUPLICATE, algorithm_of(public_key)))
        else:
            seen.add(key_identity(public_key))
            status = keyring.status(item.hint)
            checks.append(SignatureCheck(item.hint, name, status, algorithm_of(public_key)))
    return tuple(checks)


def verify_signature(data: bytes | bytearray | memoryview, keyring: Keyring) -> VerifiedStatement:
    """Step 2: verify every signature, then require enough distinct trusted signers.

    A signature that does not verify against a trusted key it names refuses the artifact
    outright (the bundle was altered), and so does a valid signature by a revoked key (nothing
    a compromised key signed loads). Unknown, expired and duplicate signatures do not count.
    The payload is read only once a counted signature vouched for it; the signed model name
    then picks the first matching rule of ``trust.toml`` (none: one signature).
    """
    bundle = _get_unverified_bundle(data)
    checks = check_signatures(bundle, keyring)
    refuse_broken(checks, "the artifact")
    counted = [c for c in checks if c.status == VALID]
    if not counted:
        raise _too_few(checks, keyring, None, [], None)
    subject_name, manifest = _parse_statement(bundle.payload)
    rule = keyring.rule_for(model_name_of(subject_name))
    if rule is not None:
        counted = [c for c in counted if c.name in rule.signers]
        if len(counted) < rule.threshold:
            raise _too_few(checks, keyring, rule, counted, model_name_of(subject_name))
    first = counted[0]
    return VerifiedStatement(first.hint, first.name, subject_name, manifest, checks)


def refuse_broken(checks: tuple[SignatureCheck, ...], what: str) -> None:
    """Refuse a bundle holding a signature that does not verify, or one by a revoked key.

    A trusted key's signature that fails means ``model.sig`` was altered. A revoked key was
    compromised: whoever holds it may have signed this, with or without the other signers'
    knowledge, so nothing it signed loads (and no one may cosign beside it), whatever the date.
    """
    invalid = [c for c in checks if c.status == INVALID]
    if invalid:
        raise SignatureError(
            f"{what}: the signature does not verify (signer {_who(invalid[0])}): model.sig "
            "was altered, or was made for other content. Do not load or vouch for this artifact; "
            "obtain a fresh copy from its publisher."
        )
    revoked = [c for c in checks if c.status == REVOKED]
    if revoked:
        raise UntrustedSignerError(
            f"{what} carries a signature by revoked key {_who(revoked[0])}: nothing a revoked "
            "key signed loads, whatever other keys signed. If the model is still wanted, have "
            "it reviewed again and signed anew without that key (remove model.sig, then "
            "'safeload sign' and 'safeload sign --add' with current keys). Signatures: "
            + ", ".join(f"{_who(c)} ({c.status})" for c in checks),
            signatures=[(c.hint, c.name, c.status) for c in checks],
        )


def _who(check: SignatureCheck) -> str:
    return check.name or f"key {check.hint[:16]}…"


def _too_few(
    checks: tuple[SignatureCheck, ...],
    keyring: Keyring,
    rule: Rule | None,
    counted: list[SignatureCheck],
    model: str | None,
) -> UntrustedSignerError:
    """The refusal that says what was found, what is needed, and why others did not count."""
    unknown = next((c.hint for c in checks if c.status == UNKNOWN), None)
    others = [f"{_who(c)} ({c.status})" for c in checks if c.status not in (VALID, UNKNOWN)]
    unknown_part = (
        f"signed by key {unknown[:16]}…, which is not in the trusted keyring "
        f"({len(keyring)} key(s)). Add the signer's .pub file to your keys/ folder only if you "
        "trust whoever holds its private key."
        if unknown is not None
        else ""
    )
    missing: tuple[str, ...] = ()
    if rule is None:
        needed = 1
        head = "the artifact has no signature by a trusted, current key"
        if unknown is not None and not others:
            head = "the artifact is " + unknown_part
            unknown_part = ""
    else:
        needed = rule.threshold
        have = {c.name for c in counted}
        missing = tuple(s for s in rule.signers if s not in have)
        names = ", ".join(str(c.name) for c in counted) or "none"
        source = keyring.trust.source if keyring.trust else "trust.toml"
        head = (
            f"model {shown(model)} needs {needed} of {', '.join(rule.signers)} (rule "
            f"{rule.index} of {source}, models {', '.join(rule.models)}); found {len(counted)} "
            f"({names}); missing: {', '.join(missing)}"
        )
    parts = [head]
    if others:
        parts.append("not counted: " + ", ".join(others))
    if unknown_part:
        parts.append(unknown_part)
    return UntrustedSignerError(
        "; ".join(parts),
        hint=unknown,
        found=len(counted),
        needed=needed,
        missing=missing,
        signatures=[(c.hint, c.name, c.status) for c in checks],
    )


def check_rule_name(
    statement: VerifiedStatement, metadata: Mapping[str, Any], keyring: Keyring
) -> None:
    """The name trust rules matched (the signed statement's) must be the metadata's name.

    Otherwise one signer could sign ``misc/1`` with ``name: churn`` inside, pass as a model no
    rule covers, and be served as ``churn``, whose rule needs more signers.
    """
    if keyring.trust is None or not keyring.trust.rules:
        return
    if metadata.get("name") != statement.model_name:
        raise SignatureError(
            f"the signed statement names model {shown(statement.model_name)} but "
            f"safeload.json names {shown(metadata.get('name'))}: trust rules are matched on "
            "the signed name, so both must agree. Do not load this artifact."
        )


def check_file_set(statement: VerifiedStatement, present: Mapping[str, int]) -> None:
    """Step 3a, before any file is read: the names on disk are exactly the signed names.

    ``present`` maps each file to its size; shard bounds also sign sizes, checked here too.
    """
    signed = statement.digests()
    sizes = statement.manifest.sizes()
    changed = sorted(n for n, size in sizes.items() if n in present and present[n] != size)
    _report(sorted(set(present) - set(signed)), sorted(set(signed) - set(present)), changed)


def check_manifest(statement: VerifiedStatement, actual: Mapping[str, tuple[str, ...]]) -> None:
    """Step 3b: the files present (name -> digests) must be exactly the signed ones."""
    signed = statement.digests()
    added = sorted(set(actual) - set(signed))
    missing = sorted(set(signed) - set(actual))
    changed = sorted(n for n in set(signed) & set(actual) if signed[n] != actual[n])
    _report(added, missing, changed)


def _report(added: list[str], missing: list[str], changed: list[str]) -> None:
    if added or missing or changed:
        parts = []
        if changed:
            parts.append("changed: " + ", ".join(changed))
        if added:
            parts.append("not in the signed manifest: " + ", ".join(added))
        if missing:
            parts.append("missing: " + ", ".join(missing))
        raise TamperedArtifactError(
            "the artifact does not match its signed manifest (" + "; ".join(parts) + "). "
            "It was modified after signing; do not load it.",
            files=changed + added + missing,
        )


def get_unverified_claims(data: bytes | bytearray | memoryview) -> tuple[str, Manifest]:
    """For display only (``inspect``): the signer hint and manifest the bundle *claims*.

    Nothing returned here is authentic; never base a trust decision on it.
    """
    bundle = _get_unverified_bundle(data)
    _, manifest = _parse_statement(bundle.payload)
    return bundle.hint, manifest


def parse_bundle(data: bytes | bytearray | memoryview) -> tuple[UnverifiedBundle, str, Manifest]:
    """The bundle and the subject name and manifest it claims: NOT authenticated.

    For ``cosign``, which re-derives the statement from the files before signing it again.
    """
    bundle = _get_unverified_bundle(data)
    subject_name, manifest = _parse_statement(bundle.payload)
    return bundle, subject_name, manifest


def describe_signatures(
    data: bytes | bytearray | memoryview, keyring: Keyring | None
) -> tuple[SignatureCheck, ...]:
    """For display (``inspect``): every signature's signer and status.

    Never raises for too few signers; without a keyring every signature is ``unchecked``.
    """
    bundle = _get_unverified_bundle(data)
    if keyring is None:
        return tuple(SignatureCheck(s.hint, None, "unchecked") for s in bundle.signatures)
    return check_signatures(bundle, keyring)
