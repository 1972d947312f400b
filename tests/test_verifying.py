"""Step 2 of the gate: a signature that does not verify over the PAE is refused, everywhere.

Every test here must fail if ``verify_signature`` stops calling ``public_key.verify``: each
forged bundle below is otherwise well formed and names the trusted key, and the statement it
carries matches the files on disk, so only the Ed25519 check stands between it and the unpickler.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

import safeload
from safeload.manifest import file_digests, resources_for
from safeload.signing import PAYLOAD_TYPE, build_statement, pae
from safeload.verifying import verify_signature
from tests.helpers import forbid_deserializing, joblib_bytes
from tests.test_cli import run

DOES_NOT_VERIFY = "the signature does not verify"


def read_bundle(artifact: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((artifact / "model.sig").read_bytes())
    return doc


def write_bundle(artifact: Path, doc: dict[str, Any]) -> None:
    (artifact / "model.sig").write_text(json.dumps(doc, indent=2) + "\n")


def payload_of(doc: dict[str, Any]) -> bytes:
    return base64.b64decode(doc["dsseEnvelope"]["payload"])


def signature_of(doc: dict[str, Any]) -> bytes:
    return base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"])


def with_signature(doc: dict[str, Any], signature: bytes) -> dict[str, Any]:
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(signature).decode()
    return doc


def flip_bit(byte: int, bit: int) -> Callable[[bytes], bytes]:
    def forge(signature: bytes) -> bytes:
        altered = bytearray(signature)
        altered[byte] ^= 1 << bit
        return bytes(altered)

    return forge


# Each turns the genuine 64-byte signature into one that must not verify.
ALTERED_SIGNATURES: dict[str, Callable[[bytes], bytes]] = {
    "first-bit-of-R-flipped": flip_bit(0, 0),
    "last-bit-of-R-flipped": flip_bit(31, 7),
    "first-bit-of-S-flipped": flip_bit(32, 0),
    "last-byte-of-S-flipped": flip_bit(63, 3),
    "truncated-to-63-bytes": lambda sig: sig[:63],
    "truncated-to-R-only": lambda sig: sig[:32],
    "one-byte-appended": lambda sig: sig + b"\x00",
    "empty": lambda sig: b"",
    "all-zero": lambda sig: bytes(64),
}


def alter_signature(artifact: Path, how: str) -> None:
    """Alter only the signature bytes: the statement and the files stay intact."""
    doc = read_bundle(artifact)
    write_bundle(artifact, with_signature(doc, ALTERED_SIGNATURES[how](signature_of(doc))))


def sign_with_another_key(artifact: Path) -> None:
    """The same statement signed by a stranger's key, presented under the trusted key's hint."""
    doc = read_bundle(artifact)
    stranger = safeload.generate_key()
    write_bundle(artifact, with_signature(doc, stranger.sign(pae(PAYLOAD_TYPE, payload_of(doc)))))


def swap_payload(artifact: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    """Another model on disk and a statement that truthfully lists it, under the old signature.

    The statement passes every structural check and matches the files, so only the signature
    over the PAE tells that nobody trusted signed it.
    """
    X, y = iris
    (artifact / "model.joblib").write_bytes(
        joblib_bytes(DecisionTreeClassifier(max_depth=1).fit(X, y))
    )
    doc = read_bundle(artifact)
    shard_size = json.loads(payload_of(doc))["predicate"]["serialization"].get("shard_size")
    files = {n: (artifact / n).read_bytes() for n in ("model.joblib", "safeload.json")}
    resources = resources_for(
        {n: file_digests(data, shard_size) for n, data in files.items()},
        {n: len(data) for n, data in files.items()},
        shard_size,
    )
    statement = build_statement("iris/1.0.0", resources)
    assert statement != payload_of(doc)
    doc["dsseEnvelope"]["payload"] = base64.b64encode(statement).decode()
    write_bundle(artifact, doc)


FORGERIES = [*(f"signature-{how}" for how in ALTERED_SIGNATURES), "another-key", "swapped-payload"]


@pytest.fixture(params=FORGERIES)
def forged(
    request: pytest.FixtureRequest,
    artifact: Path,
    iris: tuple[np.ndarray, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The trusted artifact with a bundle that must not verify; deserializing fails the test."""
    kind: str = request.param
    if kind == "another-key":
        sign_with_another_key(artifact)
    elif kind == "swapped-payload":
        swap_payload(artifact, iris)
    else:
        alter_signature(artifact, kind.removeprefix("signature-"))
    forbid_deserializing(monkeypatch)
    return artifact


def test_genuine_bundle_verifies_and_names_its_signer(
    artifact: Path, key: safeload.SigningKey
) -> None:
    keyring = safeload.Keyring.of([key])
    statement = verify_signature((artifact / "model.sig").read_bytes(), keyring)
    assert statement.signer_hint == key.hint
    assert statement.manifest.files() == ["model.joblib", "safeload.json"]


def test_forged_bundle_refused_by_verify_signature(forged: Path, key: safeload.SigningKey) -> None:
    with pytest.raises(safeload.SignatureError, match=DOES_NOT_VERIFY):
        verify_signature((forged / "model.sig").read_bytes(), safeload.Keyring.of([key]))


def test_forged_bundle_refused_by_load(forged: Path, keydir: Path) -> None:
    with pytest.raises(safeload.SignatureError, match=DOES_NOT_VERIFY):
        safeload.load(forged, trusted=keydir)


def test_forged_bundle_refused_by_verify_artifact(forged: Path, keydir: Path) -> None:
    with pytest.raises(safeload.SignatureError, match=DOES_NOT_VERIFY):
        safeload.verify_artifact(forged, trusted=keydir)


def test_forged_bundle_refused_by_load_artifact_and_inspect(forged: Path, keydir: Path) -> None:
    with pytest.raises(safeload.SignatureError, match=DOES_NOT_VERIFY):
        safeload.load_artifact(forged, trusted=keydir)
    report = safeload.inspect(forged, trusted=keydir)
    assert report.verdict == "refused"


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "human"])
def test_altered_signature_refused_by_cli_verify(
    artifact: Path, keydir: Path, as_json: bool
) -> None:
    alter_signature(artifact, "first-bit-of-R-flipped")
    extra = ["--json"] if as_json else []
    result = run("verify", str(artifact), "--trusted", str(keydir), *extra, cwd=artifact.parent)
    assert result.returncode == 1, result.stdout + result.stderr
    if as_json:
        out = json.loads(result.stdout)
        assert out["error"] == "refused" and out["type"] == "SignatureError"
        assert DOES_NOT_VERIFY in out["message"]
    else:
        assert "does not verify" in " ".join((result.stdout + result.stderr).split())
