"""Keys: generation, storage, permissions, passphrases, keyrings."""

from __future__ import annotations

import hashlib
import os
import stat
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


def test_keyring_from_dir_skips_a_non_file_pub_and_keeps_reading(tmp_path: Path) -> None:
    (tmp_path / "a.pub").mkdir()  # sorts first
    key = safeload.generate_key()
    key.save(tmp_path / "b")
    ring = safeload.Keyring.from_dir(tmp_path)
    assert set(ring) == {key.hint}
