"""ECDSA P-256 keys, and OpenSSF model_signing interop checked against model_signing itself.

Both directions use the real ``model-signing`` package (the ``test`` extra): its key verifier
on artifacts safeload wrote, and its key signer on a plain model folder safeload then loads
through the whole gate.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import joblib
import model_signing
import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sklearn.pipeline import Pipeline

import safeload
from safeload.keys import public_pem
from safeload.signing import PAYLOAD_TYPE, append_signature, pae
from tests.malicious import malicious_joblib
from tests.test_cli import run, run_json

ROW = [[5.1, 3.5, 1.4, 0.2]]


def p256(folder: Path, stem: str, passphrase: str | None = None) -> safeload.SigningKey:
    """A fresh P-256 key saved as ``folder/stem.key`` and ``folder/stem.pub``."""
    key = safeload.generate_key("ecdsa-p256")
    key.save(folder / stem, passphrase=passphrase)
    return key


def ms_verify(artifact: Path, public: Path, signature: Path | None = None) -> None:
    """model_signing's own key verifier: raises ValueError when it refuses."""
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
        artifact, signature or artifact / "model.sig"
    )


def ms_sign(folder: Path, private: Path, signature: Path) -> None:
    """model_signing's own key signer, ignoring the signature file as its CLI does."""
    hashing = model_signing.hashing.Config().set_ignored_paths(paths=[signature.name])
    model_signing.signing.Config().use_elliptic_key_signer(private_key=private).set_hashing_config(
        hashing
    ).sign(folder, signature)


# -- P-256 keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("passphrase", [None, "s3cret"], ids=["plain", "encrypted"])
def test_p256_key_saves_and_loads_like_ed25519(tmp_path: Path, passphrase: str | None) -> None:
    key = p256(tmp_path, "signer", passphrase)
    assert key.algorithm == "ecdsa-p256" and safeload.generate_key().algorithm == "ed25519"
    private = tmp_path / "signer.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    head = private.read_bytes().splitlines()[0]
    assert head == (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----" if passphrase else b"-----BEGIN PRIVATE KEY-----"
    )
    public = serialization.load_pem_public_key((tmp_path / "signer.pub").read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    again = safeload.load_signing_key(private, passphrase=passphrase)
    assert again.hint == key.hint and again.algorithm == "ecdsa-p256"
    message = pae(PAYLOAD_TYPE, b"{}")
    public.verify(again.sign(message), message, ec.ECDSA(hashes.SHA256()))
    if passphrase:
        with pytest.raises(safeload.KeyFileError, match="wrong passphrase"):
            safeload.load_signing_key(private, passphrase="nope")


def test_an_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="ed25519, ecdsa-p256"):
        safeload.generate_key("rsa")


def test_other_curves_are_refused_as_trusted_and_as_signing_keys(tmp_path: Path) -> None:
    """An allowlist of (algorithm, curve), not "any EC key cryptography can parse"."""
    other = ec.generate_private_key(ec.SECP384R1())
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "p384.pub").write_bytes(
        other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(safeload.KeyFileError, match="secp384r1.*Ed25519 or ECDSA P-256"):
        safeload.Keyring.from_dir(folder)
    private = tmp_path / "p384.key"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            other.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with pytest.raises(safeload.KeyFileError, match="secp384r1"):
        safeload.load_signing_key(private)


def test_a_p256_artifact_loads_and_a_forged_signature_is_refused(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    key = p256(tmp_path, "signer")
    artifact = safeload.save(pipeline, tmp_path / "models" / "iris" / "1.0.0", key=key)
    doc = json.loads((artifact / "model.sig").read_bytes())
    assert doc["verificationMaterial"]["publicKey"] == {"hint": key.hint}
    assert safeload.load(artifact, trusted=safeload.Keyring.of([key])).predict(ROW)[0] == 0
    # Another P-256 key signs the same payload under the trusted key's hint.
    impostor = safeload.generate_key("ecdsa-p256")
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"])
    forged = base64.b64encode(impostor.sign(pae(PAYLOAD_TYPE, payload))).decode()
    doc["dsseEnvelope"]["signatures"][0]["sig"] = forged
    (artifact / "model.sig").write_text(json.dumps(doc))
    with pytest.raises(safeload.SignatureError, match="does not verify"):
        safeload.load(artifact, trusted=safeload.Keyring.of([key]))


@pytest.mark.parametrize("change", ["empty", "truncated", "trailing-byte", "ed25519-sig"])
def test_a_malformed_ecdsa_signature_is_a_refusal(
    tmp_path: Path, pipeline: Pipeline, change: str
) -> None:
    key = p256(tmp_path, "signer")
    artifact = safeload.save(pipeline, tmp_path / "models" / "iris" / "1.0.0", key=key)
    doc = json.loads((artifact / "model.sig").read_bytes())
    sig = base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"])
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"])
    sig = {
        "empty": b"",
        "truncated": sig[:-1],
        "trailing-byte": sig + b"\x00",
        "ed25519-sig": safeload.generate_key().sign(pae(PAYLOAD_TYPE, payload)),
    }[change]
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    (artifact / "model.sig").write_text(json.dumps(doc))
    with pytest.raises(safeload.SignatureError, match="does not verify"):
        safeload.verify_artifact(artifact, trusted=safeload.Keyring.of([key]))


# -- trust.toml with one Ed25519 and one P-256 signer ----------------------------------------

TRUST = """
[keys.trainer]
file = "trainer.pub"

[keys.reviewer]
file = "reviewer.pub"

[[require]]
models = ["churn"]
signers = ["trainer", "reviewer"]
threshold = 2
"""


def mixed_team(tmp_path: Path) -> tuple[safeload.SigningKey, safeload.SigningKey, Path]:
    folder = tmp_path / "keys"
    folder.mkdir()
    trainer, reviewer = safeload.generate_key(), safeload.generate_key("ecdsa-p256")
    (folder / "trainer.pub").write_bytes(public_pem(trainer.public_key))
    (folder / "reviewer.pub").write_bytes(public_pem(reviewer.public_key))
    (folder / "trust.toml").write_text(TRUST)
    return trainer, reviewer, folder


def test_threshold_of_an_ed25519_and_a_p256_signer(tmp_path: Path, pipeline: Pipeline) -> None:
    trainer, reviewer, keys = mixed_team(tmp_path)
    artifact = safeload.save(pipeline, tmp_path / "models" / "churn" / "1.0.0", key=trainer)
    with pytest.raises(safeload.UntrustedSignerError) as refused:
        safeload.load(artifact, trusted=keys)
    assert (refused.value.found, refused.value.needed, refused.value.missing) == (
        1,
        2,
        ("reviewer",),
    )
    safeload.cosign(artifact, reviewer, trusted=keys)
    verified = safeload.verify_artifact(artifact, trusted=keys)
    assert [(c.name, c.status) for c in verified.statement.signatures] == [
        ("trainer", "valid"),
        ("reviewer", "valid"),
    ]
    assert safeload.load(artifact, trusted=keys).predict(ROW)[0] == 0


def test_one_p256_key_signing_twice_counts_once(tmp_path: Path, pipeline: Pipeline) -> None:
    """ECDSA signatures are randomized: two by one key differ, and still count as one signer."""
    _, reviewer, keys = mixed_team(tmp_path)
    artifact = safeload.save(pipeline, tmp_path / "models" / "churn" / "1.0.0", key=reviewer)
    doc = json.loads((artifact / "model.sig").read_bytes())
    payload = base64.b64decode(doc["dsseEnvelope"]["payload"])
    (artifact / "model.sig").write_bytes(append_signature(doc, payload, reviewer))
    sigs = json.loads((artifact / "model.sig").read_bytes())["dsseEnvelope"]["signatures"]
    assert sigs[0]["sig"] != sigs[1]["sig"]
    with pytest.raises(safeload.UntrustedSignerError) as refused:
        safeload.verify_artifact(artifact, trusted=keys)
    assert refused.value.found == 1
    assert [s for _, _, s in refused.value.signatures] == ["valid", "duplicate"]


# -- safeload -> model_signing ------------------------------------------------------------------


def test_model_signing_verifies_a_p256_artifact_and_refuses_it_tampered(
    tmp_path: Path, pipeline: Pipeline, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    key = p256(tmp_path, "signer")
    public = tmp_path / "signer.pub"
    artifact = safeload.save(
        pipeline, tmp_path / "models" / "iris" / "1.0.0", key=key, sample=iris[0][:3]
    )
    ms_verify(artifact, public)  # model.sig inside: the statement's ignore_paths lists it
    # A second (Ed25519) signature does not disturb it: model_signing checks the first.
    safeload.cosign(artifact, safeload.generate_key())
    ms_verify(artifact, public)

    tampered = tmp_path / "tampered"
    shutil.copytree(artifact, tampered)
    data = bytearray((tampered / "model.joblib").read_bytes())
    data[len(data) // 2] ^= 1
    (tampered / "model.joblib").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="Hash mismatch for .*model.joblib:0:"):
        ms_verify(tampered, public)
    extra = tmp_path / "extra"
    shutil.copytree(artifact, extra)
    (extra / "README.md").write_text("added after signing\n")
    with pytest.raises(ValueError, match="Extra files .*README.md"):
        ms_verify(extra, public)
    other = tmp_path / "other"
    other.mkdir()
    p256(other, "k")
    with pytest.raises(ValueError, match="Key mismatch"):
        ms_verify(artifact, other / "k.pub")


def test_model_signing_cli_hashes_whole_files_so_use_its_api_for_shards(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    """As docs/format.md says: ``model_signing verify key`` (1.1) ignores the signed
    serialization and hashes whole files, so it cannot match 16 MiB shards; its Python API can.
    If this starts passing, model_signing learnt shards: update the docs."""
    key = p256(tmp_path, "signer")
    artifact = safeload.save(pipeline, tmp_path / "models" / "iris" / "1.0.0", key=key)
    key_path = tmp_path / "signer.pub"
    ms_verify(artifact, key_path)
    command = ["verify", "key", str(artifact), "--signature", str(artifact / "model.sig")]
    done = subprocess.run(
        [sys.executable, "-m", "model_signing", *command, "--public_key", str(key_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Missing files" in done.stderr, done.stdout + done.stderr


def test_model_signing_cannot_verify_an_ed25519_artifact(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey
) -> None:
    """As docs/format.md says: model_signing 1.1's key verifier knows elliptic curves only."""
    key.save(tmp_path / "ed")
    artifact = safeload.save(pipeline, tmp_path / "models" / "iris" / "1.0.0", key=key)
    with pytest.raises(AttributeError, match="curve"):
        ms_verify(artifact, tmp_path / "ed.pub")


# -- model_signing -> safeload ------------------------------------------------------------------


@pytest.fixture
def ms_folder(tmp_path: Path, pipeline: Pipeline) -> tuple[Path, Path]:
    """A folder holding model.joblib, signed in place (model.sig) by model_signing; keys/."""
    keys = tmp_path / "keys"
    keys.mkdir()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    p256(secrets, "publisher")
    shutil.copy(secrets / "publisher.pub", keys)
    folder = tmp_path / "iris-model"
    folder.mkdir()
    joblib.dump(pipeline, folder / "model.joblib")
    ms_sign(folder, secrets / "publisher.key", folder / "model.sig")
    ms_verify(folder, keys / "publisher.pub")
    return folder, keys


def test_a_model_signing_folder_verifies_and_loads_through_the_gate(
    ms_folder: tuple[Path, Path], pipeline: Pipeline, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    folder, keys = ms_folder
    verified = safeload.verify_model_signing(folder, trusted=keys)
    assert (verified.model_file, verified.format, verified.subject) == (
        "model.joblib",
        "joblib",
        "iris-model",
    )
    assert verified.statement.signer_name == "publisher"
    model = safeload.load_model_signing(folder, trusted=keys)
    assert np.array_equal(model.predict(iris[0]), pipeline.predict(iris[0]))
    # A model_signing folder is not a safeload artifact: load() says what is missing.
    with pytest.raises(safeload.MalformedArtifactError, match="no safeload.json.*load_model_sig"):
        safeload.load(folder, trusted=keys)


def test_a_model_signing_signature_kept_outside_the_folder(
    tmp_path: Path, ms_folder: tuple[Path, Path]
) -> None:
    folder, keys = ms_folder
    outside = tmp_path / "iris-model.sig"
    (folder / "model.sig").rename(outside)
    with pytest.raises(safeload.UnsignedArtifactError, match="signature="):
        safeload.verify_model_signing(folder, trusted=keys)
    assert safeload.load_model_signing(folder, trusted=keys, signature=outside).predict(ROW)[0] == 0
    # Inside the folder under another name it would be an unsigned file: refused.
    (folder / "bundle.json").write_bytes(outside.read_bytes())
    with pytest.raises(safeload.MalformedArtifactError, match="name it model.sig"):
        safeload.verify_model_signing(folder, trusted=keys, signature=folder / "bundle.json")


def test_a_model_signing_folder_with_a_swapped_model_is_refused(
    tmp_path: Path, ms_folder: tuple[Path, Path], iris: tuple[np.ndarray, np.ndarray]
) -> None:
    """Another valid model in its place: only the signed digest stands between it and a load."""
    from sklearn.tree import DecisionTreeClassifier

    folder, keys = ms_folder
    joblib.dump(DecisionTreeClassifier().fit(*iris), folder / "model.joblib")
    with pytest.raises(safeload.TamperedArtifactError, match="changed: model.joblib"):
        safeload.load_model_signing(folder, trusted=keys)


def test_a_file_added_to_a_model_signing_folder_is_refused(ms_folder: tuple[Path, Path]) -> None:
    folder, keys = ms_folder
    (folder / "notes.txt").write_text("not signed\n")
    with pytest.raises(safeload.TamperedArtifactError, match="not in the signed manifest: notes"):
        safeload.load_model_signing(folder, trusted=keys)


def test_a_model_signing_folder_signed_by_an_untrusted_key_is_refused(
    tmp_path: Path, ms_folder: tuple[Path, Path]
) -> None:
    folder, _ = ms_folder
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    p256(stranger, "k")
    (stranger / "k.key").unlink()
    with pytest.raises(safeload.UntrustedSignerError, match="not in the trusted keyring"):
        safeload.load_model_signing(folder, trusted=stranger)


def test_a_malicious_pickle_signed_by_a_trusted_model_signing_key_runs_nothing(
    tmp_path: Path, ms_folder: tuple[Path, Path], marker: Path
) -> None:
    """A signature says who published the bytes, not that they are safe: the type gate decides."""
    folder, keys = ms_folder
    (folder / "model.sig").unlink()
    (folder / "model.joblib").write_bytes(malicious_joblib(marker))
    ms_sign(folder, tmp_path / "secrets" / "publisher.key", folder / "model.sig")
    ms_verify(folder, keys / "publisher.pub")  # model_signing vouches for these bytes
    with pytest.raises(safeload.UntrustedTypeError, match="policy: io.open"):
        safeload.load_model_signing(folder, trusted=keys)
    assert not marker.exists()


def test_a_model_signing_bundle_is_parsed_as_strictly_as_safeload_s(
    ms_folder: tuple[Path, Path],
) -> None:
    folder, keys = ms_folder
    text = (folder / "model.sig").read_text()
    doc = json.loads(text)
    (folder / "model.sig").write_text(text[:-1] + ', "mediaType": "x"}')  # a duplicate key
    with pytest.raises(safeload.SignatureError, match="duplicate"):
        safeload.verify_model_signing(folder, trusted=keys)
    doc["dsseEnvelope"]["payloadType"] = "text/plain"
    (folder / "model.sig").write_text(json.dumps(doc))
    with pytest.raises(safeload.SignatureError, match="payloadType"):
        safeload.verify_model_signing(folder, trusted=keys)


def test_model_signing_sharded_bundles_are_refused_for_their_float_shard_size(
    tmp_path: Path, ms_folder: tuple[Path, Path]
) -> None:
    """model_signing 1.1 writes ``shard_size`` through a protobuf Struct, as ``1000.0``; its own
    verifier then fails on it, and safeload refuses the non-integer rather than guess."""
    folder, keys = ms_folder
    (folder / "model.sig").unlink()
    hashing = (
        model_signing.hashing.Config()
        .use_shard_serialization(shard_size=1000)
        .set_ignored_paths(paths=["model.sig"])
    )
    model_signing.signing.Config().use_elliptic_key_signer(
        private_key=tmp_path / "secrets" / "publisher.key"
    ).set_hashing_config(hashing).sign(folder, folder / "model.sig")
    with pytest.raises(safeload.SignatureError, match="shard_size"):
        safeload.verify_model_signing(folder, trusted=keys)


def test_a_url_is_refused_as_a_model_signing_folder(keydir: Path) -> None:
    with pytest.raises(safeload.OperationalError, match="local folder"):
        safeload.load_model_signing("s3://bucket/iris-model", trusted=keydir)


def test_a_safeload_artifact_is_not_taken_for_a_model_signing_folder(
    artifact: Path, keydir: Path
) -> None:
    with pytest.raises(safeload.MalformedArtifactError, match="use safeload.load"):
        safeload.verify_model_signing(artifact, trusted=keydir)


# -- CLI ----------------------------------------------------------------------------------------


def test_keygen_algorithm_and_verify_model_signing_on_the_command_line(
    tmp_path: Path, ms_folder: tuple[Path, Path]
) -> None:
    doc = run_json("keygen", "made/p", "--algorithm", "ecdsa-p256", cwd=tmp_path, code=0)
    assert doc["algorithm"] == "ecdsa-p256"
    assert safeload.load_signing_key(tmp_path / "made" / "p.key").algorithm == "ecdsa-p256"
    folder, keys = ms_folder
    result = run("verify", str(folder), "--trusted", str(keys), "--model-signing", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "by model_signing, no metadata" in result.stdout
    doc = run_json(
        "verify", str(folder), "--trusted", str(keys), "--model-signing", cwd=tmp_path, code=0
    )
    assert (doc["name"], doc["files"], doc["signed_by"]) == (
        "iris-model",
        ["model.joblib"],
        "model_signing",
    )
    (folder / "model.sig").rename(tmp_path / "b.sig")
    args = ("verify", str(folder), "--trusted", str(keys), "--signature", str(tmp_path / "b.sig"))
    assert run(*args, cwd=tmp_path).returncode == 2  # --signature needs --model-signing
    assert run(*args, "--model-signing", cwd=tmp_path).returncode == 0
    (folder / "extra.txt").write_text("x")
    doc = run_json(*args, "--model-signing", cwd=tmp_path, code=1)
    assert doc["type"] == "TamperedArtifactError"


def test_an_outside_signature_is_read_within_the_limits(
    tmp_path: Path, ms_folder: tuple[Path, Path]
) -> None:
    folder, keys = ms_folder
    outside = tmp_path / "iris-model.sig"
    (folder / "model.sig").rename(outside)
    small = safeload.ReadLimits(max_signature_bytes=64)
    with pytest.raises(safeload.MalformedArtifactError, match="over the 64-byte limit"):
        safeload.verify_model_signing(folder, trusted=keys, signature=outside, read_limits=small)


def test_an_outside_signature_that_is_a_fifo_is_refused_without_waiting(
    tmp_path: Path, ms_folder: tuple[Path, Path]
) -> None:
    """A FIFO in place of the bundle would block a plain open() forever; it is refused at once."""
    folder, keys = ms_folder
    fifo = tmp_path / "bundle.sig"
    os.mkfifo(fifo)
    code = (
        "import safeload\n"
        "try:\n"
        f"    safeload.verify_model_signing({str(folder)!r}, trusted={str(keys)!r},"
        f" signature={str(fifo)!r})\n"
        "except safeload.MalformedArtifactError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "refused:" in done.stdout and "not a regular file" in done.stdout, done.stderr


# -- BLAKE3 manifests, both ways -----------------------------------------------------------------


def test_a_p256_blake3_artifact_verifies_with_model_signing(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    """safeload names BLAKE3 as model_signing 1.1 does, so model_signing's verifier rehashes
    the files with BLAKE3 (from the signed hash_type) and accepts; a changed byte it refuses."""
    p256(tmp_path, "signer")
    key = safeload.load_signing_key(tmp_path / "signer.key")
    artifact = safeload.save(
        pipeline, tmp_path / "models" / "iris" / "1.0.0", key=key, hash="blake3"
    )
    ms_verify(artifact, tmp_path / "signer.pub")
    model = artifact / "model.joblib"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1
    model.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        ms_verify(artifact, tmp_path / "signer.pub")


def test_a_model_signing_blake3_folder_loads_through_the_gate(
    tmp_path: Path, ms_folder: tuple[Path, Path]
) -> None:
    folder, keys = ms_folder
    (folder / "model.sig").unlink()
    hashing = (
        model_signing.hashing.Config()
        .use_file_serialization(hashing_algorithm="blake3")
        .set_ignored_paths(paths=["model.sig"])
    )
    model_signing.signing.Config().use_elliptic_key_signer(
        private_key=tmp_path / "secrets" / "publisher.key"
    ).set_hashing_config(hashing).sign(folder, folder / "model.sig")
    verified = safeload.verify_model_signing(folder, trusted=keys)
    assert verified.statement.manifest.hash_type == "blake3"
    assert safeload.load_model_signing(folder, trusted=keys).predict(ROW)[0] == 0
    data = bytearray((folder / "model.joblib").read_bytes())
    data[-3] ^= 1
    (folder / "model.joblib").write_bytes(bytes(data))
    with pytest.raises(safeload.TamperedArtifactError):
        safeload.verify_model_signing(folder, trusted=keys)
