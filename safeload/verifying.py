"""Steps 2 and 3 of the gate: the signature over the manifest, then the manifest over the files.

The bundle is parsed strictly and checked field by field before its payload is trusted for
anything; the payload is only interpreted after the Ed25519 signature over its PAE verified.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature

from safeload import strictjson
from safeload.errors import SignatureError, TamperedArtifactError, UntrustedSignerError, shown
from safeload.keys import Keyring
from safeload.layout import SIGNATURE_FILE, check_name
from safeload.manifest import (
    ALGORITHM,
    Manifest,
    Resource,
    resource_algorithm,
    shard_bounds,
    subject_digest,
)
from safeload.signing import BUNDLE_MEDIA_TYPE, PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, pae

_HEX64 = re.compile(r"[0-9a-f]{64}")
_OFFSET = r"(0|[1-9][0-9]{0,17})"
_SHARD_NAME = re.compile(rf"([^:]*):{_OFFSET}:{_OFFSET}")


@dataclass(frozen=True)
class VerifiedStatement:
    """What a verified signature vouches for."""

    signer_hint: str
    signer_name: str | None
    subject_name: str
    manifest: Manifest

    def digests(self) -> dict[str, tuple[str, ...]]:
        """Signed digests of each file, by name (one, or one per shard)."""
        return self.manifest.digests()

    @property
    def shard_size(self) -> int | None:
        """The shard size files are hashed with, or None for whole-file digests."""
        return self.manifest.shard_size


@dataclass(frozen=True)
class UnverifiedBundle:
    """The fields of ``model.sig``, checked for shape but NOT yet for authenticity."""

    hint: str
    payload_type: str
    payload: bytes
    signature: bytes


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
    if len(signatures) != 1:
        raise SignatureError(f"malformed {SIGNATURE_FILE}: expected exactly one signature")
    signature = _b64(_field(signatures[0], "sig", str, "signatures[0]"), "signature")
    return UnverifiedBundle(hint, payload_type, payload, signature)


def _parse_serialization(predicate: Any) -> int | None:
    """The predicate's serialization: None for ``files``, the shard size for ``shards``."""
    serialization = _field(predicate, "serialization", dict, "predicate")
    method = _field(serialization, "method", str, "serialization")
    if _field(serialization, "hash_type", str, "serialization") != ALGORITHM:
        raise SignatureError(f"the signed manifest's hash_type is not {ALGORITHM}")
    if serialization.get("allow_symlinks") is not False:
        raise SignatureError("the signed manifest must not allow symlinks")
    if method == "files":
        if "shard_size" in serialization:
            raise SignatureError("the signed manifest gives a shard_size for whole files")
        return None
    if method != "shards":
        raise SignatureError(
            f"the signed manifest's serialization {shown(method)} is not supported"
        )
    size = _field(serialization, "shard_size", int, "serialization")
    if isinstance(size, bool) or not 1 <= size <= 1 << 62:
        raise SignatureError("the signed manifest's shard_size is not a positive integer")
    return int(size)


def _parse_resource(item: Any, shard_size: int | None) -> Resource:
    name = _field(item, "name", str, "resource")
    algorithm = _field(item, "algorithm", str, "resource")
    value = _field(item, "digest", str, "resource")
    if algorithm != resource_algorithm(shard_size) or not _HEX64.fullmatch(value):
        raise SignatureError(f"resource {shown(name)} has an unsupported digest")
    if shard_size is None:
        resource = Resource(name, value)
    else:
        match = _SHARD_NAME.fullmatch(name)
        if match is None:
            raise SignatureError(f"the signed manifest names an odd shard {shown(name)}")
        file, start, end = match.group(1), int(match.group(2)), int(match.group(3))
        resource = Resource(file, value, start, end, shard_size)
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
    shard_size = _parse_serialization(predicate)
    resources = [_parse_resource(item, shard_size) for item in items]
    keys = [r.sort_key() for r in resources]
    if keys != sorted(set(keys)):
        raise SignatureError("the signed manifest's resources are not sorted and unique")
    manifest = Manifest(tuple(resources), shard_size)
    if shard_size is not None:
        for file, size in manifest.sizes().items():
            bounds = [(r.start, r.end) for r in resources if r.file == file]
            if bounds != shard_bounds(size, shard_size):
                raise SignatureError(f"the signed shards of {shown(file)} do not cover it in order")
    if subject_digest(resources) != digest:
        raise SignatureError("the statement's subject digest does not match its resources")
    return subject_name, manifest


def verify_signature(data: bytes | bytearray | memoryview, keyring: Keyring) -> VerifiedStatement:
    """Step 2: find the signer in the keyring and verify the signature over the PAE."""
    bundle = _get_unverified_bundle(data)
    public_key = keyring.get(bundle.hint)
    if public_key is None:
        raise UntrustedSignerError(
            f"the artifact is signed by key {bundle.hint[:16]}…, which is not in the trusted "
            f"keyring ({len(keyring)} key(s)). Add the signer's .pub file to your keys/ folder "
            "only if you trust whoever holds its private key.",
            hint=bundle.hint,
        )
    try:
        public_key.verify(bundle.signature, pae(bundle.payload_type, bundle.payload))
    except InvalidSignature as exc:
        raise SignatureError(
            "the signature does not verify: model.sig was altered, or was made for other "
            "content. Do not load this artifact; obtain a fresh copy from its publisher."
        ) from exc
    subject_name, manifest = _parse_statement(bundle.payload)
    return VerifiedStatement(bundle.hint, keyring.name_of(bundle.hint), subject_name, manifest)


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
