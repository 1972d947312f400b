"""Producing ``model.sig``: an in-toto statement in a DSSE envelope in a Sigstore bundle.

The shape is OpenSSF model-signing's v1.0 format with a public-key verification material, so
that other tools can read it; ``docs/format.md`` specifies every byte that is signed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from safeload.keys import SigningKey
from safeload.layout import SIGNATURE_FILE
from safeload.manifest import ALGORITHM, Resource, subject_digest

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def build_statement(subject_name: str, resources: Sequence[Resource]) -> bytes:
    """The in-toto Statement v1 over the manifest, as canonical-looking JSON bytes."""
    ordered = sorted(resources, key=Resource.sort_key)
    schemes = {(r.hash_type, r.shard_size) for r in ordered}
    if len(schemes) != 1:
        raise ValueError("a manifest is either by files or by shards of one size, one hash")
    ((hash_type, shard_size),) = schemes
    serialization: dict[str, object] = {
        "method": "files" if shard_size is None else "shards",
        "hash_type": hash_type,
        "allow_symlinks": False,
        "ignore_paths": [SIGNATURE_FILE],
    }
    if shard_size is not None:
        serialization["shard_size"] = shard_size
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {ALGORITHM: subject_digest(ordered)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "resources": [r.to_json() for r in ordered],
            "serialization": serialization,
        },
    }
    return json.dumps(statement, indent=2, sort_keys=True).encode()


def sign_statement(key: SigningKey, statement: bytes) -> bytes:
    """Sign the statement's PAE and wrap everything into the bundle JSON."""
    signature = key.sign(pae(PAYLOAD_TYPE, statement))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.hint}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(statement).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }
    return json.dumps(bundle, indent=2).encode() + b"\n"


def append_signature(bundle: dict[str, Any], payload: bytes, key: SigningKey) -> bytes:
    """Add ``key``'s signature over the same payload to a parsed bundle; nothing else changes.

    The new entry names its key in ``keyid`` (the first signature's key is the bundle's
    ``publicKey.hint``); the payload string is kept as it was, byte for byte.
    """
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    entry = {"sig": base64.b64encode(signature).decode(), "keyid": key.hint}
    bundle["dsseEnvelope"]["signatures"].append(entry)
    return json.dumps(bundle, indent=2).encode() + b"\n"
