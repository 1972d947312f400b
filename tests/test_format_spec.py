"""An independent verifier, written from docs/format.md with only cryptography, hashlib, blake3.

Nothing from safeload's verification code is imported here: if safeload's writer drifts from
the documented format, or the documentation from the writer, these tests fail. Statements that
the tests forge are also built from the page alone (the ``pae`` below, the documented JSON
shapes) and signed with a real key, so that safeload's reader is held to the page as well.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3
import numpy as np
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

import safeload
from safeload.saving import write_signed_artifact

# Section 1: the name rule.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Section 3: FILE:START:END, decimal without leading zeros, FILE obeying the name rule.
SHARD_NAME = re.compile(rf"({NAME.pattern}):(0|[1-9][0-9]*):(0|[1-9][0-9]*)")
HEX_SHA256 = re.compile(r"[0-9a-f]{64}")

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
SIGNATURE_FILE = "model.sig"
METADATA_FILE = "safeload.json"
MODEL_FILES = ("model.joblib", "model.skops")
SAFELOAD_SHARD_SIZE = 16777216  # what safeload.save writes (section 3)
MIB = 1 << 20


def pae(payload_type: bytes, body: bytes) -> bytes:
    return b" ".join(
        [b"DSSEv1", str(len(payload_type)).encode(), payload_type, str(len(body)).encode(), body]
    )


def strict_json(data: bytes, what: str) -> Any:
    """UTF-8 JSON where duplicate keys and NaN/Infinity are invalid (section 2)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        assert len(keys) == len(set(keys)), f"{what}: duplicate JSON key"
        return dict(items)

    def constant(name: str) -> Any:
        raise AssertionError(f"{what}: invalid JSON constant {name}")

    return json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)


def canonical_shards(size: int, shard_size: int) -> list[tuple[int, int]]:
    """Section 3: [0, N), [N, 2N), ... ending at the size; an empty file is [0, 0)."""
    if size == 0:
        return [(0, 0)]
    return [(start, min(start + shard_size, size)) for start in range(0, size, shard_size)]


def independent_verify(artifact: Path, pub_pem_files: list[Path]) -> dict[str, Any]:
    # Step 1: the directory rules of section 1.
    assert not artifact.is_symlink() and artifact.is_dir(), "not an artifact directory"
    entries = sorted(os.listdir(artifact))
    assert len(entries) <= 16, "too many entries"
    sizes: dict[str, int] = {}
    for name in entries:
        assert NAME.fullmatch(name), name
        info = os.lstat(artifact / name)
        assert stat.S_ISREG(info.st_mode), f"not a regular file: {name}"
        sizes[name] = info.st_size
    assert SIGNATURE_FILE in entries, "unsigned"
    assert sizes[SIGNATURE_FILE] <= MIB, "model.sig too large"
    assert sizes.get(METADATA_FILE, 0) <= 16 * MIB, "safeload.json too large"
    assert sum(m in entries for m in MODEL_FILES) == 1, "not exactly one model file"
    assert METADATA_FILE in entries, "no safeload.json"

    # Step 2: model.sig, strictly.
    bundle = strict_json((artifact / SIGNATURE_FILE).read_bytes(), "model.sig")
    assert bundle["mediaType"] == BUNDLE_MEDIA_TYPE
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == PAYLOAD_TYPE
    assert 1 <= len(envelope["signatures"]) <= 16, "1 to 16 signatures"

    # Step 3: each signature's key: the first is publicKey.hint (keyid "" or that hint), every
    # further one names its key in keyid; looked up in the verifier's own keyring (hex SHA-256
    # of each PEM). Signatures by keys outside the keyring are skipped; at least one must be in.
    keyring = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in pub_pem_files}
    hint = bundle["verificationMaterial"]["publicKey"]["hint"]
    signers = []
    for index, entry in enumerate(envelope["signatures"]):
        keyid = entry.get("keyid", "")
        if index == 0:
            assert keyid in ("", hint), "first keyid differs from publicKey.hint"
            signers.append((hint, entry["sig"]))
        else:
            assert HEX_SHA256.fullmatch(keyid), "a further signature must name its key"
            signers.append((keyid, entry["sig"]))
    trusted = [(h, sig) for h, sig in signers if h in keyring]
    assert trusted, "untrusted signer"

    # Step 4: over PAE(payloadType, payload), for every signature by a key we hold: Ed25519, or
    # ECDSA P-256 with SHA-256 (DER signature), as the key in our keyring is.
    payload = base64.b64decode(envelope["payload"], validate=True)
    for signer, encoded in trusted:
        public_key = load_pem_public_key(keyring[signer].read_bytes())
        signature = base64.b64decode(encoded, validate=True)
        message = pae(envelope["payloadType"].encode(), payload)
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            assert public_key.curve.name == "secp256r1", "not a P-256 key"
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            continue
        assert isinstance(public_key, Ed25519PublicKey)
        assert len(signature) == 64, "not an Ed25519 signature"
        public_key.verify(signature, message)

    # Step 5: the statement (section 3).
    statement = strict_json(payload, "statement")
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == PREDICATE_TYPE
    assert len(statement["subject"]) == 1, "not a single subject"
    predicate = statement["predicate"]
    serialization = predicate["serialization"]
    method = serialization["method"]
    assert method in ("shards", "files"), f"unsupported serialization {method!r}"
    hash_type = serialization["hash_type"]
    # Section 3 "BLAKE3": sha256 (files or shards) or blake3 (files only), nothing else.
    assert hash_type in ("sha256", "blake3"), "unsupported hash_type"
    assert hash_type == "sha256" or method == "files", "BLAKE3 is by whole files only"
    assert serialization.get("allow_symlinks") is False, "allow_symlinks is not false"
    shard_size: int | None = None
    algorithm = hash_type
    if method == "shards":
        shard_size = serialization.get("shard_size")
        assert type(shard_size) is int and shard_size > 0, "shard_size not a positive integer"
        algorithm = f"sha256-sharded-{shard_size}"

    resources = predicate["resources"]
    parsed: list[tuple[str, int, int | None, str]] = []  # file, start, end, digest
    for r in resources:
        assert r["algorithm"] == algorithm, f"unexpected algorithm {r['algorithm']!r}"
        assert HEX_SHA256.fullmatch(r["digest"]), "digest is not lowercase hex SHA-256"
        if shard_size is None:
            assert NAME.fullmatch(r["name"]), f"odd resource name {r['name']!r}"
            parsed.append((r["name"], 0, None, r["digest"]))
        else:
            match = SHARD_NAME.fullmatch(r["name"])
            assert match, f"odd resource name {r['name']!r}"
            parsed.append((match[1], int(match[2]), int(match[3]), r["digest"]))
    assert all(file != SIGNATURE_FILE for file, *_ in parsed), "model.sig listed"
    keys = [(file.encode(), start) for file, start, *_ in parsed]
    assert all(a < b for a, b in itertools.pairwise(keys)), "resources not sorted and unique"

    raw = b"".join(bytes.fromhex(digest) for *_, digest in parsed)
    subject_digest = statement["subject"][0]["digest"]["sha256"]
    assert subject_digest == hashlib.sha256(raw).hexdigest(), "subject digest differs"

    shards: dict[str, list[tuple[int, int, str]]] = {}
    for file, start, end, digest in parsed:
        shards.setdefault(file, []).append((start, end or 0, digest))
    if shard_size is not None:
        for file, bounds in shards.items():
            signed_size = bounds[-1][1]
            count = max(1, -(-signed_size // shard_size))  # no list of absurd length is built
            assert len(bounds) == count, f"shards of {file} are not the canonical partition"
            expected = canonical_shards(signed_size, shard_size)
            assert [(a, b) for a, b, _ in bounds] == expected, (
                f"shards of {file} are not the canonical partition"
            )

    # Step 6: the files against the manifest.
    assert set(shards) == set(entries) - {SIGNATURE_FILE}, "file set differs"
    for file, bounds in shards.items():
        if shard_size is not None:
            assert sizes[file] == bounds[-1][1], f"tampered: {file} size"
        data = (artifact / file).read_bytes()
        for start, end, digest in bounds:
            chunk = data if shard_size is None else data[start:end]
            where = file if shard_size is None else f"{file}:{start}:{end}"
            if hash_type == "blake3":
                assert blake3.blake3(chunk).hexdigest() == digest, f"tampered: {where}"
            else:
                assert hashlib.sha256(chunk).hexdigest() == digest, f"tampered: {where}"

    # Section 4, on the verified bytes: the metadata fields a reader relies on.
    metadata = strict_json((artifact / METADATA_FILE).read_bytes(), "safeload.json")
    assert isinstance(metadata, dict), "metadata: not a JSON object"
    version = metadata.get("safeload_format_version")
    assert type(version) is int and version == 1, f"metadata: unknown format version {version!r}"
    assert metadata.get("format") in ("joblib", "skops"), "metadata: unknown format"
    assert f"model.{metadata['format']}" in entries, "metadata: format differs from model file"
    assert isinstance(metadata.get("name"), str) and isinstance(metadata.get("version"), str), (
        "metadata: no name or version"
    )
    return statement


# -- forging statements from the page alone, signed with a real key ------------------------------


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_files(artifact: Path) -> dict[str, bytes]:
    return {
        name: (artifact / name).read_bytes()
        for name in sorted(os.listdir(artifact), key=str.encode)
        if name != SIGNATURE_FILE
    }


def shard_resources(artifact: Path, shard_size: int) -> list[dict[str, str]]:
    return [
        {
            "name": f"{name}:{start}:{end}",
            "algorithm": f"sha256-sharded-{shard_size}",
            "digest": sha256_hex(data[start:end]),
        }
        for name, data in signed_files(artifact).items()
        for start, end in canonical_shards(len(data), shard_size)
    ]


def file_resources(artifact: Path) -> list[dict[str, str]]:
    return [
        {"name": name, "algorithm": "sha256", "digest": sha256_hex(data)}
        for name, data in signed_files(artifact).items()
    ]


def serialization(method: str, shard_size: object = None) -> dict[str, object]:
    out: dict[str, object] = {
        "method": method,
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": [SIGNATURE_FILE],
    }
    if shard_size is not None:
        out["shard_size"] = shard_size
    return out


def resign(
    artifact: Path,
    key: safeload.SigningKey,
    resources: list[dict[str, str]],
    how: dict[str, object],
    subject: str | None = None,
) -> None:
    """Replace model.sig with a bundle over a statement of these resources, built per the doc."""
    if subject is None:
        subject = sha256_hex(b"".join(bytes.fromhex(r["digest"]) for r in resources))
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "forged/1", "digest": {"sha256": subject}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"resources": resources, "serialization": how},
    }
    payload = json.dumps(statement).encode()
    signature = key.sign(pae(PAYLOAD_TYPE.encode(), payload))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.hint}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }
    (artifact / SIGNATURE_FILE).write_text(json.dumps(bundle))


def keys_of(keydir: Path) -> list[Path]:
    return sorted(keydir.glob("*.pub"))


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def big_artifact(tmp_path: Path, key: safeload.SigningKey) -> Path:
    """A real saved artifact whose model file (~20 MB) spans two 16 MiB shards."""
    weights = np.arange(2_500_000, dtype=np.float64)
    return safeload.save(
        {"weights": weights},
        tmp_path / "models" / "big" / "1.0.0",
        key=key,
        name="big",
        version="1.0.0",
    )


# -- what safeload writes -----------------------------------------------------------------------


def test_independent_verifier_accepts_saved_artifact(artifact: Path, keydir: Path) -> None:
    statement = independent_verify(artifact, keys_of(keydir))
    assert statement["subject"][0]["name"] == "iris/1.0.0"


def test_independent_verifier_accepts_a_p256_artifact_cosigned_with_ed25519(
    tmp_path: Path, pipeline: Any
) -> None:
    first, second = safeload.generate_key("ecdsa-p256"), safeload.generate_key()
    first.save(tmp_path / "keys" / "p256")
    second.save(tmp_path / "keys" / "ed")
    saved = safeload.save(pipeline, tmp_path / "models" / "iris" / "1.0.0", key=first)
    safeload.cosign(saved, second)
    statement = independent_verify(saved, keys_of(tmp_path / "keys"))
    assert statement["subject"][0]["name"] == "iris/1.0.0"
    bundle = json.loads((saved / SIGNATURE_FILE).read_bytes())
    # The hint is the same SHA-256 of the PEM whatever the algorithm, as model_signing's.
    pem = (tmp_path / "keys" / "p256.pub").read_bytes()
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == hashlib.sha256(pem).hexdigest()


def test_saved_artifact_uses_16_mib_shards(artifact: Path, keydir: Path) -> None:
    statement = independent_verify(artifact, keys_of(keydir))
    predicate = statement["predicate"]
    assert predicate["serialization"] == serialization("shards", SAFELOAD_SHARD_SIZE)
    sizes = {n: (artifact / n).stat().st_size for n in signed_files(artifact)}
    assert [r["name"] for r in predicate["resources"]] == [
        f"{name}:0:{size}" for name, size in sorted(sizes.items())
    ]
    assert {r["algorithm"] for r in predicate["resources"]} == {"sha256-sharded-16777216"}


def test_large_model_file_is_sharded_and_verifies(big_artifact: Path, keydir: Path) -> None:
    statement = independent_verify(big_artifact, keys_of(keydir))
    size = (big_artifact / "model.joblib").stat().st_size
    assert size > SAFELOAD_SHARD_SIZE
    model_shards = [
        r["name"]
        for r in statement["predicate"]["resources"]
        if r["name"].startswith("model.joblib:")
    ]
    assert len(model_shards) >= 2
    assert model_shards == [
        f"model.joblib:{a}:{b}" for a, b in canonical_shards(size, SAFELOAD_SHARD_SIZE)
    ]
    loaded = safeload.load(big_artifact, trusted=keydir)
    np.testing.assert_array_equal(loaded["weights"], np.arange(2_500_000, dtype=np.float64))


def test_byte_flipped_in_second_shard_refused_by_both(big_artifact: Path, keydir: Path) -> None:
    model = big_artifact / "model.joblib"
    size = model.stat().st_size
    flip_byte(model, SAFELOAD_SHARD_SIZE + (size - SAFELOAD_SHARD_SIZE) // 2)
    with pytest.raises(AssertionError, match=r"tampered: model\.joblib:16777216:"):
        independent_verify(big_artifact, keys_of(keydir))
    with pytest.raises(safeload.TamperedArtifactError):
        safeload.load(big_artifact, trusted=keydir)


def test_empty_file_is_a_single_zero_length_shard(
    artifact: Path, tmp_path: Path, key: safeload.SigningKey, keydir: Path
) -> None:
    metadata = (artifact / METADATA_FILE).read_bytes()
    written = write_signed_artifact(
        tmp_path / "a", {"model.joblib": b"", "safeload.json": metadata}, key=key
    )
    statement = independent_verify(written, keys_of(keydir))
    resources = statement["predicate"]["resources"]
    assert resources[0] == {
        "name": "model.joblib:0:0",
        "algorithm": "sha256-sharded-16777216",
        "digest": sha256_hex(b""),
    }
    (written / "model.joblib").write_bytes(b"x")
    with pytest.raises(AssertionError, match="tampered: model.joblib size"):
        independent_verify(written, keys_of(keydir))


# -- tampering --------------------------------------------------------------------------------


def test_independent_verifier_rejects_tampering(artifact: Path, keydir: Path) -> None:
    meta = artifact / "safeload.json"
    meta.write_bytes(meta.read_bytes().replace(b"iris", b"sirI", 1))
    with pytest.raises(AssertionError, match="tampered"):
        independent_verify(artifact, keys_of(keydir))


def test_independent_verifier_rejects_forged_signature(artifact: Path, keydir: Path) -> None:
    sig = artifact / "model.sig"
    bundle = json.loads(sig.read_bytes())
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[0] ^= 1
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    sig.write_text(json.dumps(bundle))
    with pytest.raises(InvalidSignature):
        independent_verify(artifact, keys_of(keydir))


def test_independent_verifier_checks_every_signature_of_a_cosigned_bundle(
    artifact: Path, keydir: Path, tmp_path: Path
) -> None:
    reviewer = safeload.generate_key()
    reviewer.save(tmp_path / "reviewer")
    safeload.cosign(artifact, reviewer)
    both = [*keys_of(keydir), tmp_path / "reviewer.pub"]
    independent_verify(artifact, both)
    independent_verify(artifact, [tmp_path / "reviewer.pub"])  # found by its keyid alone
    sig = artifact / "model.sig"
    bundle = json.loads(sig.read_bytes())
    assert bundle["dsseEnvelope"]["signatures"][1]["keyid"] == reviewer.hint
    raw = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][1]["sig"]))
    raw[-1] ^= 1
    bundle["dsseEnvelope"]["signatures"][1]["sig"] = base64.b64encode(bytes(raw)).decode()
    sig.write_text(json.dumps(bundle))
    with pytest.raises(InvalidSignature):
        independent_verify(artifact, both)
    with pytest.raises(safeload.SignatureError):
        safeload.load(artifact, trusted=safeload.Keyring.of([reviewer]))


RESIZE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda data: data[:-1],
    "appended": lambda data: data + b"\x00",
    "emptied": lambda data: b"",
}


@pytest.mark.parametrize("change", sorted(RESIZE))
@pytest.mark.parametrize("file", ["model.joblib", "safeload.json"])
def test_resized_file_refused_by_both(artifact: Path, keydir: Path, file: str, change: str) -> None:
    path = artifact / file
    path.write_bytes(RESIZE[change](path.read_bytes()))
    with pytest.raises(AssertionError, match=f"tampered: {re.escape(file)} size"):
        independent_verify(artifact, keys_of(keydir))
    with pytest.raises(safeload.TamperedArtifactError):
        safeload.load(artifact, trusted=keydir)


@pytest.mark.parametrize("change", ["truncated", "appended"])
def test_resized_large_model_refused_by_both(big_artifact: Path, keydir: Path, change: str) -> None:
    path = big_artifact / "model.joblib"
    path.write_bytes(RESIZE[change](path.read_bytes()))
    with pytest.raises(AssertionError, match="tampered: model.joblib size"):
        independent_verify(big_artifact, keys_of(keydir))
    with pytest.raises(safeload.TamperedArtifactError):
        safeload.load(big_artifact, trusted=keydir)


# -- the files serialization and other shard sizes ---------------------------------------------


@pytest.mark.parametrize("which", ["artifact", "big_artifact"])
def test_files_serialization_accepted_by_both(
    request: pytest.FixtureRequest, which: str, key: safeload.SigningKey, keydir: Path
) -> None:
    path: Path = request.getfixturevalue(which)
    resign(path, key, file_resources(path), serialization("files"))
    statement = independent_verify(path, keys_of(keydir))
    assert [r["name"] for r in statement["predicate"]["resources"]] == [
        "model.joblib",
        "safeload.json",
    ]
    assert safeload.load(path, trusted=keydir) is not None


@pytest.mark.parametrize("change", ["flipped", "truncated", "appended"])
@pytest.mark.parametrize("file", ["model.joblib", "safeload.json"])
def test_files_serialization_tampering_refused_by_both(
    artifact: Path, key: safeload.SigningKey, keydir: Path, file: str, change: str
) -> None:
    resign(artifact, key, file_resources(artifact), serialization("files"))
    path = artifact / file
    if change == "flipped":
        flip_byte(path, path.stat().st_size // 2)
    else:
        path.write_bytes(RESIZE[change](path.read_bytes()))
    with pytest.raises(AssertionError, match=f"tampered: {re.escape(file)}"):
        independent_verify(artifact, keys_of(keydir))
    with pytest.raises(safeload.TamperedArtifactError):
        safeload.load(artifact, trusted=keydir)


@pytest.mark.parametrize("shard_size", [1, 7, 64, 1 << 40])
def test_any_shard_size_accepted_by_both(
    artifact: Path, key: safeload.SigningKey, keydir: Path, shard_size: int
) -> None:
    resign(
        artifact, key, shard_resources(artifact, shard_size), serialization("shards", shard_size)
    )
    independent_verify(artifact, keys_of(keydir))
    safeload.load(artifact, trusted=keydir)


# -- correctly signed statements that break the rules of section 3 ------------------------------

SMALL = 32  # the shard size of the statements forged below


def _shards_of(resources: list[dict[str, str]], file: str) -> list[int]:
    return [i for i, r in enumerate(resources) if r["name"].startswith(file + ":")]


def _shard(data: bytes, file: str, start: int, end: int) -> dict[str, str]:
    return {
        "name": f"{file}:{start}:{end}",
        "algorithm": f"sha256-sharded-{SMALL}",
        "digest": sha256_hex(data[start:end]),
    }


def _gap(resources: list[dict[str, str]], data: bytes) -> None:
    del resources[_shards_of(resources, METADATA_FILE)[1]]


def _overlong(resources: list[dict[str, str]], data: bytes) -> None:
    first, second = _shards_of(resources, METADATA_FILE)[:2]
    resources[first] = _shard(data, METADATA_FILE, 0, 2 * SMALL)
    del resources[second]


def _short(resources: list[dict[str, str]], data: bytes) -> None:
    first = _shards_of(resources, METADATA_FILE)[0]
    resources[first : first + 1] = [
        _shard(data, METADATA_FILE, 0, SMALL // 2),
        _shard(data, METADATA_FILE, SMALL // 2, SMALL),
    ]


def _overlap(resources: list[dict[str, str]], data: bytes) -> None:
    second = _shards_of(resources, METADATA_FILE)[1]
    resources[second] = _shard(data, METADATA_FILE, SMALL // 2, 2 * SMALL)


def _unsorted_shards(resources: list[dict[str, str]], data: bytes) -> None:
    first, second = _shards_of(resources, METADATA_FILE)[:2]
    resources[first], resources[second] = resources[second], resources[first]


def _unsorted_files(resources: list[dict[str, str]], data: bytes) -> None:
    resources.sort(key=lambda r: not r["name"].startswith(METADATA_FILE))


def _numeric_order(resources: list[dict[str, str]], data: bytes) -> None:
    # Sorted as text ("safeload.json:1024:..." before "safeload.json:128:..."), not by START.
    indexes = _shards_of(resources, METADATA_FILE)
    shards = sorted((resources[i] for i in indexes), key=lambda r: r["name"])
    assert shards != [resources[i] for i in indexes]
    for i, r in zip(indexes, shards, strict=True):
        resources[i] = r


def _duplicate(resources: list[dict[str, str]], data: bytes) -> None:
    first = _shards_of(resources, METADATA_FILE)[0]
    resources.insert(first, dict(resources[first]))


def _trailing_empty(resources: list[dict[str, str]], data: bytes) -> None:
    last = _shards_of(resources, METADATA_FILE)[-1]
    resources.insert(last + 1, _shard(data, METADATA_FILE, len(data), len(data)))


def _leading_zero(resources: list[dict[str, str]], data: bytes) -> None:
    second = _shards_of(resources, METADATA_FILE)[1]
    resources[second] = dict(resources[second], name=f"{METADATA_FILE}:0{SMALL}:{2 * SMALL}")


def _other_algorithm(resources: list[dict[str, str]], data: bytes) -> None:
    resources[0] = dict(resources[0], algorithm="sha256-sharded-16777216")


def _whole_file_algorithm(resources: list[dict[str, str]], data: bytes) -> None:
    resources[0] = dict(resources[0], algorithm="sha256")


def _signature_listed(resources: list[dict[str, str]], data: bytes) -> None:
    after_model = _shards_of(resources, "model.joblib")[-1] + 1  # in sorted position
    resources.insert(
        after_model,
        {"name": "model.sig:0:1", "algorithm": f"sha256-sharded-{SMALL}", "digest": "0" * 64},
    )


def _uppercase_digest(resources: list[dict[str, str]], data: bytes) -> None:
    resources[0] = dict(resources[0], digest=resources[0]["digest"].upper())


BREAKS: dict[str, tuple[Callable[[list[dict[str, str]], bytes], None], str]] = {
    "gap": (_gap, "canonical partition"),
    "overlong shard": (_overlong, "canonical partition"),
    "short shard": (_short, "canonical partition"),
    "overlapping shards": (_overlap, "canonical partition"),
    "trailing empty shard": (_trailing_empty, "canonical partition"),
    "shards unsorted": (_unsorted_shards, "not sorted"),
    "files unsorted": (_unsorted_files, "not sorted"),
    "START sorted as text": (_numeric_order, "not sorted"),
    "duplicate shard": (_duplicate, "not sorted and unique"),
    "leading zero": (_leading_zero, "odd resource name"),
    "algorithm of another shard size": (_other_algorithm, "unexpected algorithm"),
    "whole-file algorithm": (_whole_file_algorithm, "unexpected algorithm"),
    "model.sig listed": (_signature_listed, "model.sig listed"),
    "uppercase digest": (_uppercase_digest, "lowercase hex"),
}


def refused_by_both(artifact: Path, keydir: Path, message: str) -> None:
    """The independent verifier and safeload both refuse a signed but invalid statement."""
    with pytest.raises(AssertionError, match=message):
        independent_verify(artifact, keys_of(keydir))
    with pytest.raises(safeload.SignatureError):
        safeload.load(artifact, trusted=keydir)


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_noncanonical_statement_refused_by_both(
    artifact: Path, key: safeload.SigningKey, keydir: Path, case: str
) -> None:
    data = (artifact / METADATA_FILE).read_bytes()
    assert len(data) > 4 * SMALL  # enough shards for every case
    resources = shard_resources(artifact, SMALL)
    breaking, message = BREAKS[case]
    breaking(resources, data)
    resign(artifact, key, resources, serialization("shards", SMALL))  # subject digest matches
    refused_by_both(artifact, keydir, message)


def test_shard_longer_than_shard_size_refused_by_both(
    big_artifact: Path, key: safeload.SigningKey, keydir: Path
) -> None:
    """The whole 20 MB model file as one shard of a 16 MiB manifest: every byte still signed."""
    resources = shard_resources(big_artifact, SAFELOAD_SHARD_SIZE)
    size = (big_artifact / "model.joblib").stat().st_size
    model = [i for i, r in enumerate(resources) if r["name"].startswith("model.joblib:")]
    assert len(model) == 2
    resources[model[0] : model[-1] + 1] = [
        {
            "name": f"model.joblib:0:{size}",
            "algorithm": f"sha256-sharded-{SAFELOAD_SHARD_SIZE}",
            "digest": sha256_hex((big_artifact / "model.joblib").read_bytes()),
        }
    ]
    resign(big_artifact, key, resources, serialization("shards", SAFELOAD_SHARD_SIZE))
    refused_by_both(big_artifact, keydir, "canonical partition")


def _without(how: dict[str, object], field: str) -> dict[str, object]:
    return {k: v for k, v in how.items() if k != field}


@pytest.mark.parametrize(
    ("how", "message"),
    [
        (dict(serialization("shards", SMALL), method="shard"), "unsupported serialization"),
        (dict(serialization("files"), method="file"), "unsupported serialization"),
        (dict(serialization("shards", SMALL), hash_type="sha512"), "hash_type"),
        (dict(serialization("shards", SMALL), allow_symlinks=True), "allow_symlinks"),
        (_without(serialization("files"), "allow_symlinks"), "allow_symlinks"),
        (serialization("shards", 0), "positive integer"),
        (serialization("shards", -SMALL), "positive integer"),
        (serialization("shards", str(SMALL)), "positive integer"),
        (serialization("shards", float(SMALL)), "positive integer"),
        (serialization("shards", True), "positive integer"),
        (serialization("shards"), "positive integer"),
    ],
    ids=[
        "method shard",
        "method file",
        "hash_type",
        "allow_symlinks true",
        "allow_symlinks missing",
        "shard_size zero",
        "shard_size negative",
        "shard_size string",
        "shard_size float",
        "shard_size bool",
        "shard_size missing",
    ],
)
def test_bad_serialization_refused_by_both(
    artifact: Path, key: safeload.SigningKey, keydir: Path, how: dict[str, object], message: str
) -> None:
    # Resources as a lax reader would expect them (True as 1, "64" as 64), correctly signed.
    raw = how.get("shard_size", SMALL)
    size = int(raw) if isinstance(raw, int | float | str) and int(raw) > 0 else SMALL
    if str(how["method"]).startswith("file"):
        resources = file_resources(artifact)
    else:
        resources = shard_resources(artifact, size)
    resign(artifact, key, resources, how)
    refused_by_both(artifact, keydir, message)


def test_wrong_subject_digest_refused_by_both(
    artifact: Path, key: safeload.SigningKey, keydir: Path
) -> None:
    resources = shard_resources(artifact, SAFELOAD_SHARD_SIZE)
    # The digest of the resources in another order: a subject over the right digests, wrongly.
    wrong = sha256_hex(b"".join(bytes.fromhex(r["digest"]) for r in reversed(resources)))
    resign(artifact, key, resources, serialization("shards", SAFELOAD_SHARD_SIZE), subject=wrong)
    refused_by_both(artifact, keydir, "subject digest differs")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "skops"}, "format differs from model file"),
        ({"format": "pickle"}, "unknown format"),
        ({"safeload_format_version": 2}, "unknown format version"),
        ({"safeload_format_version": True}, "unknown format version"),
        ({"name": None}, "no name or version"),
    ],
    ids=["other format", "unknown format", "newer version", "bool version", "no name"],
)
def test_signed_metadata_checked_by_both(
    artifact: Path, key: safeload.SigningKey, keydir: Path, change: dict[str, object], message: str
) -> None:
    """Section 4 on correctly signed metadata: fields a reader relies on are still checked."""
    meta = artifact / METADATA_FILE
    meta.write_text(json.dumps({**json.loads(meta.read_bytes()), **change}, sort_keys=True))
    resign(
        artifact,
        key,
        shard_resources(artifact, SAFELOAD_SHARD_SIZE),
        serialization("shards", SAFELOAD_SHARD_SIZE),
    )
    with pytest.raises(AssertionError, match=message):
        independent_verify(artifact, keys_of(keydir))
    with pytest.raises(safeload.MalformedArtifactError):
        safeload.load(artifact, trusted=keydir)


def test_pae_example_from_the_spec() -> None:
    assert pae(b"application/vnd.in-toto+json", b"abc") == (
        b"DSSEv1 28 application/vnd.in-toto+json 3 abc"
    )
    spec = (Path(__file__).parent.parent / "docs" / "format.md").read_text()
    assert "DSSEv1 28 application/vnd.in-toto+json 3 abc" in spec


# -- BLAKE3 (section 3 "BLAKE3"): as model_signing 1.1 writes it --------------------------------


def blake3_resources(artifact: Path) -> list[dict[str, str]]:
    return [
        {"name": name, "algorithm": "blake3", "digest": blake3.blake3(data).hexdigest()}
        for name, data in signed_files(artifact).items()
    ]


@pytest.fixture
def blake3_artifact(tmp_path: Path, key: safeload.SigningKey, pipeline: Any) -> Path:
    """A real ``save(..., hash="blake3")`` artifact, with a ~20 MB model file."""
    return safeload.save(
        {"pipeline": pipeline, "weights": np.arange(2_500_000, dtype=np.float64)},
        tmp_path / "models" / "big" / "1.0.0",
        key=key,
        hash="blake3",
    )


def test_blake3_artifact_verified_from_the_page(blake3_artifact: Path, keydir: Path) -> None:
    statement = independent_verify(blake3_artifact, keys_of(keydir))
    predicate = statement["predicate"]
    assert predicate["serialization"] == {
        "method": "files",
        "hash_type": "blake3",
        "allow_symlinks": False,
        "ignore_paths": [SIGNATURE_FILE],
    }
    assert predicate["resources"] == blake3_resources(blake3_artifact)
    loaded = safeload.load(blake3_artifact, trusted=keydir)
    np.testing.assert_array_equal(loaded["weights"], np.arange(2_500_000, dtype=np.float64))


def test_blake3_statement_built_from_the_page_accepted_by_both(
    artifact: Path, key: safeload.SigningKey, keydir: Path
) -> None:
    resign(
        artifact, key, blake3_resources(artifact), dict(serialization("files"), hash_type="blake3")
    )
    independent_verify(artifact, keys_of(keydir))
    assert safeload.load(artifact, trusted=keydir) is not None


@pytest.mark.parametrize("change", ["flipped", "truncated", "appended"])
@pytest.mark.parametrize("file", ["model.joblib", "safeload.json"])
def test_blake3_tampering_refused_by_both(
    blake3_artifact: Path, keydir: Path, file: str, change: str
) -> None:
    path = blake3_artifact / file
    if change == "flipped":
        flip_byte(path, path.stat().st_size // 2)
    else:
        path.write_bytes(RESIZE[change](path.read_bytes()))
    with pytest.raises(AssertionError, match=f"tampered: {re.escape(file)}"):
        independent_verify(blake3_artifact, keys_of(keydir))
    with pytest.raises(safeload.TamperedArtifactError):
        safeload.load(blake3_artifact, trusted=keydir)


def _blake3_shards(artifact: Path) -> list[dict[str, str]]:
    return [
        {
            "name": f"{name}:{start}:{end}",
            "algorithm": f"blake3-sharded-{SMALL}",
            "digest": blake3.blake3(data[start:end]).hexdigest(),
        }
        for name, data in signed_files(artifact).items()
        for start, end in canonical_shards(len(data), SMALL)
    ]


@pytest.mark.parametrize(
    "case",
    ["blake3 shards", "blake2", "sha256 digests named blake3", "blake3 digests named sha256"],
)
def test_hash_outside_the_allowlist_or_mislabelled_refused_by_both(
    artifact: Path, key: safeload.SigningKey, keydir: Path, case: str
) -> None:
    """The hash comes from the signed statement, from the allowlist only, and is really used."""
    if case == "blake3 shards":
        how = dict(serialization("shards", SMALL), hash_type="blake3")
        resign(artifact, key, _blake3_shards(artifact), how)
        refused_by_both(artifact, keydir, "whole files only")
        return
    if case == "blake2":  # model_signing 1.1 also writes "blake2": not in safeload's allowlist
        resources = [
            dict(r, algorithm="blake2", digest=hashlib.blake2b(data, digest_size=32).hexdigest())
            for r, data in zip(
                file_resources(artifact), signed_files(artifact).values(), strict=True
            )
        ]
        resign(artifact, key, resources, dict(serialization("files"), hash_type="blake2"))
        refused_by_both(artifact, keydir, "unsupported hash_type")
        return
    if case == "sha256 digests named blake3":
        resources = [dict(r, algorithm="blake3") for r in file_resources(artifact)]
        resign(artifact, key, resources, dict(serialization("files"), hash_type="blake3"))
    else:
        resources = [dict(r, algorithm="sha256") for r in blake3_resources(artifact)]
        resign(artifact, key, resources, serialization("files"))
    with pytest.raises(AssertionError, match="tampered"):
        independent_verify(artifact, keys_of(keydir))
    with pytest.raises(safeload.TamperedArtifactError):
        safeload.load(artifact, trusted=keydir)
