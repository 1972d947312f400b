"""``safeload.signing``: the bundle it writes, checked function by function.

``test_format_spec`` is an independent verifier of whole saved artifacts, written from the page
alone; this module tests ``pae``, ``build_statement`` and ``sign_statement`` themselves, on
resources built here, and verifies their output with nothing but ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import safeload
from safeload.manifest import Resource
from safeload.signing import (
    BUNDLE_MEDIA_TYPE,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    build_statement,
    pae,
    sign_statement,
)

DIGESTS = {name: hashlib.sha256(name.encode()).hexdigest() for name in ("a", "b", "c")}


def files(*names: str) -> list[Resource]:
    return [Resource(n, DIGESTS[n[0]]) for n in names]


def test_constants_are_the_documented_media_types() -> None:
    assert BUNDLE_MEDIA_TYPE == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert PAYLOAD_TYPE == "application/vnd.in-toto+json"
    assert STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert PREDICATE_TYPE == "https://model_signing/signature/v1.0"


@pytest.mark.parametrize(
    ("payload_type", "payload", "expected"),
    [
        ("t", b"", b"DSSEv1 1 t 0 "),
        ("application/x", b"hello", b"DSSEv1 13 application/x 5 hello"),
        ("\u00e9", b" \x00 ", b"DSSEv1 2 \xc3\xa9 3  \x00 "),  # lengths are of the UTF-8 bytes
    ],
)
def test_pae_is_the_dsse_v1_encoding(payload_type: str, payload: bytes, expected: bytes) -> None:
    assert pae(payload_type, payload) == expected


def test_pae_keeps_payloads_apart() -> None:
    # The length prefixes are what stop one (type, payload) pair reading as another.
    assert pae("a b", b"c") != pae("a", b"b c")
    assert pae("a", b"1 b") != pae("a 1", b"b")


def test_statement_lists_resources_sorted_with_the_subject_digest() -> None:
    statement = json.loads(build_statement("iris/1.0.0", files("c", "a", "b")))
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == PREDICATE_TYPE
    resources = statement["predicate"]["resources"]
    assert [r["name"] for r in resources] == ["a", "b", "c"]
    assert all(r["algorithm"] == "sha256" for r in resources)
    assert [r["digest"] for r in resources] == [DIGESTS["a"], DIGESTS["b"], DIGESTS["c"]]
    raw = b"".join(bytes.fromhex(DIGESTS[n]) for n in "abc")
    (subject,) = statement["subject"]
    assert subject == {"name": "iris/1.0.0", "digest": {"sha256": hashlib.sha256(raw).hexdigest()}}
    assert statement["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": ["model.sig"],
    }


def test_statement_bytes_do_not_depend_on_the_order_given() -> None:
    assert build_statement("s", files("a", "b", "c")) == build_statement("s", files("c", "b", "a"))


def test_sharded_statement_names_shards_and_their_size() -> None:
    shards = [
        Resource("b", DIGESTS["b"], 0, 4, shard_size=4),
        Resource("a", DIGESTS["a"], 4, 6, shard_size=4),
        Resource("a", DIGESTS["c"], 0, 4, shard_size=4),
    ]
    statement = json.loads(build_statement("s", shards))
    names = [r["name"] for r in statement["predicate"]["resources"]]
    assert names == ["a:0:4", "a:4:6", "b:0:4"]
    assert {r["algorithm"] for r in statement["predicate"]["resources"]} == {"sha256-sharded-4"}
    assert statement["predicate"]["serialization"]["method"] == "shards"
    assert statement["predicate"]["serialization"]["shard_size"] == 4


def test_a_statement_mixing_files_and_shards_is_refused() -> None:
    mixed = [Resource("a", DIGESTS["a"]), Resource("b", DIGESTS["b"], 0, 4, shard_size=4)]
    with pytest.raises(ValueError, match="one size"):
        build_statement("s", mixed)


def _bundle(key: safeload.SigningKey, statement: bytes) -> dict[str, Any]:
    data = sign_statement(key, statement)
    assert data.endswith(b"\n")
    doc: dict[str, Any] = json.loads(data)
    return doc


def test_bundle_shape() -> None:
    key = safeload.generate_key()
    statement = build_statement("s", files("a"))
    bundle = _bundle(key, statement)
    assert set(bundle) == {"mediaType", "verificationMaterial", "dsseEnvelope"}
    assert bundle["mediaType"] == BUNDLE_MEDIA_TYPE
    assert bundle["verificationMaterial"] == {"publicKey": {"hint": key.hint}, "tlogEntries": []}
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert base64.b64decode(envelope["payload"], validate=True) == statement
    assert len(envelope["signatures"]) == 1
    assert envelope["signatures"][0]["keyid"] == ""


def test_hint_is_sha256_of_the_spki_pem() -> None:
    key = safeload.generate_key()
    pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    hint = _bundle(key, build_statement("s", files("a")))["verificationMaterial"]["publicKey"]
    assert hint["hint"] == hashlib.sha256(pem).hexdigest()


def test_signature_verifies_over_the_pae_with_plain_cryptography() -> None:
    key = safeload.generate_key()
    statement = build_statement("s", files("a", "b"))
    envelope = _bundle(key, statement)["dsseEnvelope"]
    signature = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
    raw = key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    public = Ed25519PublicKey.from_public_bytes(raw)
    message = b"DSSEv1 %d %s %d %s" % (
        len(PAYLOAD_TYPE),
        PAYLOAD_TYPE.encode(),
        len(statement),
        statement,
    )
    public.verify(signature, message)
    with pytest.raises(InvalidSignature):
        public.verify(signature, statement)  # over the PAE, never the bare payload
    with pytest.raises(InvalidSignature):
        public.verify(signature, message.replace(b"in-toto", b"in-totO"))
    other = safeload.generate_key()
    with pytest.raises(InvalidSignature):
        other.public_key.verify(signature, message)
