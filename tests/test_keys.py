"""Keys: generation, storage, permissions, passphrases, keyrings."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

import pytest

import safeload


def test_save_writes_0600_private_and_public_pem(tmp_path: Path) -> None:
    key = safeload.generate_key()
    private = key.save(tmp_path / "keys" / "trainer")
    assert private == tmp_path / "keys" / "trainer.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    pub = tmp_path / "keys" / "trainer.pub"
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert hashlib.sha256(pub.read_bytes()).hexdigest() == key.hint


def test_round_trip_and_same_hint(tmp_path: Path) -> None:
    key = safeload.generate_key()
    key.save(tmp_path / "k")
    again = safeload.load_signing_key(tmp_path / "k.key")
    assert again.hint == key.hint
    assert again.sign(b"m") == key.sign(b"m")  # Ed25519 is deterministic


def test_never_overwrites(tmp_path: Path) -> None:
    first = safeload.generate_key()
    first.save(tmp_path / "k")
    before = (tmp_path / "k.key").read_bytes()
    with pytest.raises(safeload.KeyFileError, match="never overwritten"):
        safeload.generate_key().save(tmp_path / "k")
    assert (tmp_path / "k.key").read_bytes() == before


def test_passphrase(tmp_path: Path) -> None:
    key = safeload.generate_key()
    key.save(tmp_path / "k", passphrase="correct horse")
    assert b"ENCRYPTED" in (tmp_path / "k.key").read_bytes()
    assert safeload.load_signing_key(tmp_path / "k.key", "correct horse").hint == key.hint
    with pytest.raises(safeload.KeyFileError, match="wrong passphrase"):
        safeload.load_signing_key(tmp_path / "k.key", "wrong")
    with pytest.raises(safeload.KeyFileError, match="passphrase is required"):
        safeload.load_signing_key(tmp_path / "k.key")


def test_world_readable_private_key_refused(tmp_path: Path) -> None:
    safeload.generate_key().save(tmp_path / "k")
    os.chmod(tmp_path / "k.key", 0o644)
    with pytest.raises(safeload.KeyFileError, match="chmod 600"):
        safeload.load_signing_key(tmp_path / "k.key")


def test_repr_never_shows_key_material(tmp_path: Path) -> None:
    key = safeload.generate_key()
    key.save(tmp_path / "k")
    secret = (tmp_path / "k.key").read_text().splitlines()[1]
    assert secret not in repr(key) and secret not in str(key)


def test_missing_and_garbage_key_files(tmp_path: Path) -> None:
    with pytest.raises(safeload.KeyFileError, match="does not exist"):
        safeload.load_signing_key(tmp_path / "nope.key")
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    bad.chmod(0o600)
    with pytest.raises(safeload.KeyFileError, match="not a PEM"):
        safeload.load_signing_key(bad)


def test_keyring_from_dir_takes_pub_files_only(tmp_path: Path) -> None:
    a, b = safeload.generate_key(), safeload.generate_key()
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    (tmp_path / "README.md").write_text("hello")
    ring = safeload.Keyring.from_dir(tmp_path)
    assert set(ring) == {a.hint, b.hint}
    assert ring.name_of(a.hint) == "a"


def test_keyring_rejects_garbage_pub(tmp_path: Path) -> None:
    (tmp_path / "x.pub").write_text("garbage")
    with pytest.raises(safeload.KeyFileError):
        safeload.Keyring.from_dir(tmp_path)


def test_keyring_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(safeload.KeyFileError):
        safeload.Keyring.from_dir(tmp_path / "nope")


def test_repo_keys_folder_keeps_private_keys_out_of_git() -> None:
    root = Path(__file__).parent.parent
    assert "*.key" in (root / "keys" / ".gitignore").read_text().split()
    assert not list((root / "keys").glob("*.key"))


# ---- the keyring folder: same rules as an artifact directory ---------------------------------


def _folder(tmp_path: Path) -> tuple[Path, safeload.SigningKey]:
    folder = tmp_path / "keys"
    key = safeload.generate_key()
    key.save(folder / "trainer")
    return folder, key


def _refused(folder: Path, says: str) -> str:
    start = time.perf_counter()
    with pytest.raises(safeload.KeyFileError, match=says) as refused:
        safeload.Keyring.from_dir(folder)
    assert time.perf_counter() - start < 2
    return str(refused.value)


@pytest.mark.parametrize(
    "target", ["other", "/dev/zero", "dangling"], ids=["to-another-key", "to-dev-zero", "dangling"]
)
@pytest.mark.timeout(20, method="signal")
def test_keyring_refuses_a_symlinked_pub(tmp_path: Path, target: str) -> None:
    folder, _ = _folder(tmp_path)
    other = safeload.generate_key()
    other.save(tmp_path / "other")
    pointed = {"other": tmp_path / "other.pub", "dangling": tmp_path / "gone.pub"}
    (folder / "extra.pub").symlink_to(pointed.get(target, Path(target)))
    _refused(folder, "extra.pub.*symlink")


@pytest.mark.timeout(20, method="signal")
def test_keyring_refuses_a_fifo_without_hanging(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path)
    os.mkfifo(folder / "x.pub")
    _refused(folder, "x.pub.*not a regular file")


def test_keyring_refuses_a_folder_named_pub(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path)
    (folder / "x.pub").mkdir()
    _refused(folder, "x.pub.*not a regular file")


def test_keyring_refuses_a_huge_pub(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path)
    with open(folder / "x.pub", "wb") as handle:
        handle.truncate(1 << 30)  # sparse: 1 GiB that costs no disk
    _refused(folder, "x.pub.*too large")


def test_keyring_refuses_an_odd_pub_name(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path)
    safeload.generate_key().save(folder / "bad\nname")
    _refused(folder, "odd")


@pytest.mark.parametrize("kind", ["not-pem", "certificate-pem", "rsa-public"])
def test_keyring_refuses_what_is_not_an_ed25519_public_key(tmp_path: Path, kind: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    folder, _ = _folder(tmp_path)
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    data = {
        "not-pem": b"ssh-ed25519 AAAA trainer@host\n",
        "certificate-pem": b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "rsa-public": rsa_pem,
    }[kind]
    (folder / "x.pub").write_bytes(data)
    _refused(folder, "x.pub")


@pytest.mark.parametrize("passphrase", [None, "secret"], ids=["plain", "encrypted"])
def test_keyring_refuses_a_private_key_named_pub(tmp_path: Path, passphrase: str | None) -> None:
    folder, _ = _folder(tmp_path)
    safeload.generate_key().save(tmp_path / "leak", passphrase=passphrase)
    (folder / "leak.pub").unlink(missing_ok=True)
    (folder / "leak.pub").write_bytes((tmp_path / "leak.key").read_bytes())
    message = _refused(folder, "leak.pub.*PRIVATE key")
    assert "BEGIN" not in message  # never echo key material


def test_keyring_refuses_one_key_under_two_names(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path)
    (folder / "copy.pub").write_bytes((folder / "trainer.pub").read_bytes())
    message = _refused(folder, "same public key")
    assert "copy.pub" in message and "trainer.pub" in message


def test_keyring_refuses_a_symlinked_folder(tmp_path: Path) -> None:
    folder, key = _folder(tmp_path)
    (tmp_path / "link").symlink_to(folder)
    _refused(tmp_path / "link", "symlink")
    with pytest.raises(safeload.KeyFileError, match="symlink"):
        safeload.load(tmp_path / "nowhere", trusted=tmp_path / "link")
    assert key.hint in safeload.Keyring.from_dir(folder)


@pytest.mark.parametrize("suffix", [".key", ".pub"])
def test_save_refuses_a_dangling_symlink_in_place_of_a_key_file(
    tmp_path: Path, suffix: str
) -> None:
    """A symlink planted where a key file goes is never followed to write elsewhere."""
    target = tmp_path / "elsewhere"
    (tmp_path / f"trainer{suffix}").symlink_to(target)
    with pytest.raises(safeload.KeyFileError, match="already exists"):
        safeload.generate_key().save(tmp_path / "trainer")
    assert not target.exists()


def test_bytes_passphrase_round_trip(tmp_path: Path) -> None:
    key = safeload.generate_key()
    path = key.save(tmp_path / "k", passphrase=b"correct horse")
    assert safeload.load_signing_key(path, passphrase=b"correct horse").hint == key.hint


def test_keyring_of_public_and_signing_keys_looks_up_by_hint_only() -> None:
    signer, other, outsider = (safeload.generate_key() for _ in range(3))
    ring = safeload.Keyring.of([signer, other.public_key])
    assert ring.get(signer.hint) is not None
    assert ring.get(other.hint) is not None
    assert ring.get(outsider.hint) is None
    assert signer.hint in ring
    assert other.hint in ring
    assert outsider.hint not in ring
    assert ring.name_of(signer.hint) == signer.hint[:16]
    assert len(ring) == 2
