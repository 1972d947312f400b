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
