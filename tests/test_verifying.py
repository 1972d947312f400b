"""Steps 2 and 3 at unit level: ``verify_signature``, ``check_file_set`` and ``check_manifest``.

Bundles are built here from the documented shape and signed with a real key, so each test
changes exactly one thing and names the decision it holds in place.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

import safeload
from safeload.manifest import Manifest, Resource, subject_digest
from safeload.signing import (
    BUNDLE_MEDIA_TYPE,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    pae,
)
from safeload.verifying import VerifiedStatement, check_manifest, verify_signature

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
