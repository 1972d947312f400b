"""Step 2 of the gate: a signature that does not verify over the PAE is refused, everywhere.

Every test here must fail if ``verify_signature`` stops calling ``public_key.verify``: each
forged bundle below is otherwise well formed and names the trusted key, and the statement it
carries matches the files on disk, so only the Ed25519 check stands between it and the unpickler.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

import safeload
from safeload.manifest import (
    Hashing,
    Manifest,
    Resource,
    file_digests,
    resources_for,
    subject_digest,
)
from safeload.signing import (
    BUNDLE_MEDIA_TYPE,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    build_statement,
    pae,
)
from safeload.verifying import VerifiedStatement, check_manifest, verify_signature
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
        {n: file_digests(data, Hashing(shard_size=shard_size)) for n, data in files.items()},
        {n: len(data) for n, data in files.items()},
        Hashing(shard_size=shard_size),
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


# --- decisions that mutation testing found unpinned (mutmut, see docs/architecture.md) ---
FILES = {"model.joblib": b"model bytes", "safeload.json": b"{}"}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _statement(files: dict[str, bytes] = FILES) -> dict[str, Any]:
    """A whole-file (``files`` serialization) statement over ``files``."""
    resources = [
        {"name": name, "algorithm": "sha256", "digest": _sha(data)}
        for name, data in sorted(files.items())
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": "iris",
                "digest": {
                    "sha256": subject_digest(Resource(r["name"], r["digest"]) for r in resources)
                },
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "resources": resources,
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": ["model.sig"],
            },
        },
    }


def _sharded(shard_size: int, files: dict[str, bytes] = FILES) -> dict[str, Any]:
    """A ``shards`` statement; every file here is smaller than ``shard_size``: one shard each."""
    statement = _statement(files)
    for resource in statement["predicate"]["resources"]:
        size = len(files[resource["name"]])
        resource["name"] = f"{resource['name']}:0:{size}"
        resource["algorithm"] = f"sha256-sharded-{shard_size}"
    statement["predicate"]["serialization"].update(method="shards", shard_size=shard_size)
    return statement


def _bundle(key: safeload.SigningKey, statement: dict[str, Any] | bytes) -> dict[str, Any]:
    payload = statement if isinstance(statement, bytes) else json.dumps(statement).encode()
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.hint}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [
                {"sig": base64.b64encode(key.sign(pae(PAYLOAD_TYPE, payload))).decode()}
            ],
        },
    }


def _verify(key: safeload.SigningKey, bundle: dict[str, Any]) -> VerifiedStatement:
    return verify_signature(json.dumps(bundle).encode(), safeload.Keyring.of([key]))


def _whole(files: dict[str, bytes] = FILES) -> VerifiedStatement:
    resources = tuple(Resource(name, _sha(data)) for name, data in sorted(files.items()))
    return VerifiedStatement("0" * 64, None, "iris", Manifest(resources, None))


# -- step 3b: check_manifest -------------------------------------------------------------------


@pytest.mark.parametrize("extra", ["added", "missing"])
def test_check_manifest_refuses_a_file_set_change_as_tampering_not_a_crash(extra: str) -> None:
    """Called on its own, an added or missing file is a TamperedArtifactError naming it."""
    actual = {name: (_sha(data),) for name, data in FILES.items()}
    if extra == "added":
        actual["extra.txt"] = (_sha(b"x"),)
        named = "extra.txt"
    else:
        del actual["safeload.json"]
        named = "safeload.json"
    with pytest.raises(safeload.TamperedArtifactError) as err:
        check_manifest(_whole(), actual)
    assert err.value.files == (named,)


def test_check_manifest_accepts_exactly_the_signed_digests() -> None:
    check_manifest(_whole(), {name: (_sha(data),) for name, data in FILES.items()})


# -- step 2: the signed serialization ----------------------------------------------------------


def test_largest_shard_size_is_two_to_the_62() -> None:
    """``shard_size`` is bounded: 2**62 is the largest accepted, one more is refused."""
    key = safeload.generate_key()
    assert _verify(key, _bundle(key, _sharded(1 << 62))).shard_size == 1 << 62
    with pytest.raises(safeload.SignatureError, match="shard_size is not a positive integer"):
        _verify(key, _bundle(key, _sharded((1 << 62) + 1)))


@pytest.mark.parametrize(
    "payload", [b"not json", b'{"_type": 1, "_type": 2}', b"[NaN]"], ids=["text", "dup", "nan"]
)
def test_signed_payload_that_is_not_strict_json_is_a_signature_error(payload: bytes) -> None:
    """A correctly signed payload that is not strict JSON is refused as a bad bundle."""
    key = safeload.generate_key()
    with pytest.raises(safeload.SignatureError, match="the signed statement"):
        _verify(key, _bundle(key, payload))


def test_a_verified_statement_reports_what_was_signed() -> None:
    key = safeload.generate_key()
    verified = _verify(key, _bundle(key, _statement()))
    assert verified.subject_name == "iris"
    assert verified.signer_hint == key.hint
    assert verified.signer_name == key.hint[:16]  # the name Keyring.of gives a key
    assert verified.shard_size is None
    assert verified.digests() == {name: (_sha(data),) for name, data in FILES.items()}


def _no_subject_name(s: dict[str, Any]) -> None:
    del s["subject"][0]["name"]


def _subject_name_not_text(s: dict[str, Any]) -> None:
    s["subject"][0]["name"] = 1


def _two_subjects(s: dict[str, Any]) -> None:
    s["subject"].append(dict(s["subject"][0]))


def _no_subjects(s: dict[str, Any]) -> None:
    s["subject"].clear()


def _subject_digest_not_sha256(s: dict[str, Any]) -> None:
    s["subject"][0]["digest"] = {"sha512": s["subject"][0]["digest"]["sha256"]}


def _resources_not_a_list(s: dict[str, Any]) -> None:
    s["predicate"]["resources"] = {}


def _other_statement_type(s: dict[str, Any]) -> None:
    s["_type"] = "https://in-toto.io/Statement/v0.1"


def _other_predicate_type(s: dict[str, Any]) -> None:
    s["predicateType"] = "https://example.com/anything"


def _no_allow_symlinks(s: dict[str, Any]) -> None:
    del s["predicate"]["serialization"]["allow_symlinks"]


def _statement_not_an_object(s: dict[str, Any]) -> None:
    s.clear()


MALFORMED = {
    f.__name__.lstrip("_"): f
    for f in [
        _no_subject_name,
        _subject_name_not_text,
        _two_subjects,
        _no_subjects,
        _subject_digest_not_sha256,
        _resources_not_a_list,
        _other_statement_type,
        _other_predicate_type,
        _no_allow_symlinks,
        _statement_not_an_object,
    ]
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_correctly_signed_but_malformed_statement_is_a_signature_error(case: str) -> None:
    key = safeload.generate_key()
    statement = _statement()
    MALFORMED[case](statement)
    with pytest.raises(safeload.SignatureError):
        _verify(key, _bundle(key, statement))


def _two_signatures(b: dict[str, Any]) -> None:
    sigs = b["dsseEnvelope"]["signatures"]
    sigs.append(dict(sigs[0]))


def _no_signatures(b: dict[str, Any]) -> None:
    b["dsseEnvelope"]["signatures"].clear()


def _payload_not_base64(b: dict[str, Any]) -> None:
    b["dsseEnvelope"]["payload"] += "!"


def _sig_not_base64(b: dict[str, Any]) -> None:
    b["dsseEnvelope"]["signatures"][0]["sig"] = "#" + b["dsseEnvelope"]["signatures"][0]["sig"]


def _other_payload_type(b: dict[str, Any]) -> None:
    b["dsseEnvelope"]["payloadType"] = "application/json"


def _other_media_type(b: dict[str, Any]) -> None:
    b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"


def _uppercase_hint(b: dict[str, Any]) -> None:
    b["verificationMaterial"]["publicKey"]["hint"] = b["verificationMaterial"]["publicKey"][
        "hint"
    ].upper()


def _short_hint(b: dict[str, Any]) -> None:
    b["verificationMaterial"]["publicKey"]["hint"] = b["verificationMaterial"]["publicKey"]["hint"][
        :-1
    ]


def _no_public_key(b: dict[str, Any]) -> None:
    del b["verificationMaterial"]["publicKey"]


def _envelope_not_an_object(b: dict[str, Any]) -> None:
    b["dsseEnvelope"] = [b["dsseEnvelope"]]


BAD_BUNDLES = {
    f.__name__.lstrip("_"): f
    for f in [
        _two_signatures,
        _no_signatures,
        _payload_not_base64,
        _sig_not_base64,
        _other_payload_type,
        _other_media_type,
        _uppercase_hint,
        _short_hint,
        _no_public_key,
        _envelope_not_an_object,
    ]
}


@pytest.mark.parametrize("case", sorted(BAD_BUNDLES))
def test_malformed_bundle_is_a_signature_error(case: str) -> None:
    """Each shape rule of the bundle refuses with SignatureError (not a crash, not another
    refusal), though the signature over the statement itself is valid."""
    key = safeload.generate_key()
    bundle = _bundle(key, _statement())
    BAD_BUNDLES[case](bundle)
    with pytest.raises(safeload.SignatureError, match="malformed model.sig"):
        _verify(key, bundle)


def test_a_signature_over_other_content_is_a_signature_error() -> None:
    key = safeload.generate_key()
    bundle = _bundle(key, _statement())
    bundle["dsseEnvelope"]["signatures"] = _bundle(key, b"{}")["dsseEnvelope"]["signatures"]
    with pytest.raises(safeload.SignatureError, match="does not verify"):
        _verify(key, bundle)


def test_signer_outside_the_keyring_is_untrusted_even_with_a_valid_signature() -> None:
    key, other = safeload.generate_key(), safeload.generate_key()
    with pytest.raises(safeload.UntrustedSignerError) as err:
        verify_signature(
            json.dumps(_bundle(key, _statement())).encode(), safeload.Keyring.of([other])
        )
    assert err.value.hint == key.hint
