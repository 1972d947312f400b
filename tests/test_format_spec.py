"""An independent verifier, written from docs/format.md with only cryptography and hashlib.

Nothing from safeload's verification code is imported here: if safeload's writer drifts from
the documented format, or the documentation from the writer, these tests fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_public_key

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def pae(payload_type: bytes, body: bytes) -> bytes:
    return b" ".join(
        [b"DSSEv1", str(len(payload_type)).encode(), payload_type, str(len(body)).encode(), body]
    )


def independent_verify(artifact: Path, pub_pem_files: list[Path]) -> dict[str, object]:
    entries = sorted(os.listdir(artifact))
    for name in entries:
        assert NAME.fullmatch(name), name
        assert not (artifact / name).is_symlink() and (artifact / name).is_file()
    assert "model.sig" in entries, "unsigned"
    bundle = json.loads((artifact / "model.sig").read_bytes())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert len(envelope["signatures"]) == 1
    keyring = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in pub_pem_files}
    hint = bundle["verificationMaterial"]["publicKey"]["hint"]
    assert hint in keyring, "untrusted signer"
    public_key = load_pem_public_key(keyring[hint].read_bytes())
    payload = base64.b64decode(envelope["payload"], validate=True)
    signature = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
    public_key.verify(signature, pae(envelope["payloadType"].encode(), payload))  # type: ignore[union-attr,call-arg]
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    resources = statement["predicate"]["resources"]
    names = [r["name"] for r in resources]
    assert names == sorted(set(names)) and "model.sig" not in names
    assert all(NAME.fullmatch(n) for n in names)
    raw = b"".join(bytes.fromhex(r["digest"]) for r in resources)
    assert statement["subject"][0]["digest"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert set(names) == set(entries) - {"model.sig"}, "file set differs"
    for r in resources:
        assert r["algorithm"] == "sha256"
        actual = hashlib.sha256((artifact / r["name"]).read_bytes()).hexdigest()
        assert actual == r["digest"], f"tampered: {r['name']}"
    return statement  # type: ignore[no-any-return]


def test_independent_verifier_accepts_saved_artifact(artifact: Path, keydir: Path) -> None:
    statement = independent_verify(artifact, sorted(keydir.glob("*.pub")))
    assert statement["subject"][0]["name"] == "iris/1.0.0"  # type: ignore[index]


def test_independent_verifier_rejects_tampering(artifact: Path, keydir: Path) -> None:
    meta = artifact / "safeload.json"
    meta.write_bytes(meta.read_bytes().replace(b"iris", b"sirI", 1))
    with pytest.raises(AssertionError, match="tampered"):
        independent_verify(artifact, sorted(keydir.glob("*.pub")))


def test_independent_verifier_rejects_forged_signature(artifact: Path, keydir: Path) -> None:
    sig = artifact / "model.sig"
    bundle = json.loads(sig.read_bytes())
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[0] ^= 1
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    sig.write_text(json.dumps(bundle))
    with pytest.raises(InvalidSignature):
        independent_verify(artifact, sorted(keydir.glob("*.pub")))


def test_pae_example_from_the_spec() -> None:
    assert pae(b"application/vnd.in-toto+json", b"abc") == (
        b"DSSEv1 28 application/vnd.in-toto+json 3 abc"
    )
    spec = (Path(__file__).parent.parent / "docs" / "format.md").read_text()
    assert "DSSEv1 28 application/vnd.in-toto+json 3 abc" in spec
