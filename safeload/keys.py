"""Signing keys and the keyring of trusted public keys.

A private key is written once, owner-only (0600), never over an existing file, and is refused on
load when others can read it. A public key is identified by its *hint*: the hex SHA-256 of its
PEM SubjectPublicKeyInfo, the value that ``model.sig`` carries in
``verificationMaterial.publicKey.hint`` (OpenSSF model_signing computes its hint the same way).

Two algorithms: Ed25519 (the default) and ECDSA on P-256 with SHA-256, the one OpenSSF
model_signing's key verifier also knows. The algorithm is always the trusted key's own, never
something the bundle says: a key verifies only signatures of its own kind.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from safeload.errors import KeyFileError, TrustFileError, shown
from safeload.layout import is_plain_name
from safeload.trust import (
    TRUST_FILE,
    UNKNOWN,
    VALID,
    KeyEntry,
    Rule,
    TrustFile,
    parse_trust_file,
    today_utc,
)

_MAX_KEY_FILE = 64 * 1024

ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256"
ALGORITHMS = (ED25519, ECDSA_P256)
"""Key algorithms safeload signs and verifies with; ``ed25519`` is the default."""

PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey
"""A trusted public key: Ed25519, or ECDSA on P-256 (checked wherever one is read)."""
PrivateKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def algorithm_of(key: PublicKey | PrivateKey) -> str:
    """``ed25519`` or ``ecdsa-p256``; any other key (curve) is refused with a KeyFileError."""
    if isinstance(key, (Ed25519PublicKey, Ed25519PrivateKey)):
        return ED25519
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return ECDSA_P256
    what = f"a {type(key).__name__}"
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        what = f"an ECDSA key on curve {key.curve.name}"
    raise KeyFileError(f"{what} is not supported: safeload keys are Ed25519 or ECDSA P-256")


def public_pem(public_key: PublicKey) -> bytes:
    """The PEM SubjectPublicKeyInfo encoding, the form keys are stored and hinted in."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_identity(public_key: PublicKey) -> bytes:
    """The key's DER SubjectPublicKeyInfo: one key, one value, however many files hold it."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def verify_with(public_key: PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` over ``message`` verifies: the one place a key algorithm is used.

    The algorithm follows the trusted key: Ed25519 (RFC 8032, 64 bytes) or ECDSA P-256 over
    SHA-256 of the message (DER-encoded ``r, s``, as DSSE and model_signing write it).
    """
    try:
        if isinstance(public_key, Ed25519PublicKey):
            public_key.verify(signature, message)
        else:
            algorithm_of(public_key)  # never another curve, whatever reached the keyring
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def key_hint(public_key: PublicKey) -> str:
    """The key's hint: hex SHA-256 of its PEM SubjectPublicKeyInfo."""
    return hashlib.sha256(public_pem(public_key)).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """A private key (Ed25519 or ECDSA P-256) that signs artifacts; ``repr`` shows no secret."""

    private_key: PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        algorithm_of(self.private_key)

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return self.private_key.public_key()

    @property
    def algorithm(self) -> str:
        """``ed25519`` or ``ecdsa-p256``."""
        return algorithm_of(self.private_key)

    @property
    def hint(self) -> str:
        """Hex SHA-256 of the public key's PEM, as recorded in signatures."""
        return key_hint(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """Sign raw bytes (the DSSE pre-authentication encoding, in safeload's use)."""
        if isinstance(self.private_key, Ed25519PrivateKey):
            return self.private_key.sign(message)
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))

    def save(self, stem: str | os.PathLike[str], *, passphrase: bytes | str | None = None) -> Path:
        """Write ``STEM.key`` (PKCS8 PEM, 0600) and ``STEM.pub`` (SPKI PEM); never overwrite.

        Returns the path of the private key.
        """
        stem_path = Path(stem)
        private_path = stem_path.with_name(stem_path.name + ".key")
        public_path = stem_path.with_name(stem_path.name + ".pub")
        for existing in (private_path, public_path):
            if existing.exists() or existing.is_symlink():
                raise KeyFileError(
                    f"{existing} already exists; keys are never overwritten. "
                    "Choose another name or move the old key away first."
                )
        if passphrase is not None:
            secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
            if not secret:
                raise KeyFileError("an empty passphrase protects nothing; give one or none")
            encryption: serialization.KeySerializationEncryption = (
                serialization.BestAvailableEncryption(secret)
            )
        else:
            encryption = serialization.NoEncryption()
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        stem_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: the key file is created by us, 0600 from its first byte, or not at all.
            fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError as exc:
            raise KeyFileError(
                f"{private_path} already exists; keys are never overwritten"
            ) from exc
        except OSError as exc:
            raise KeyFileError(f"cannot create {private_path}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            public_path.write_bytes(public_pem(self.public_key))
        except OSError as exc:
            private_path.unlink(missing_ok=True)
            raise KeyFileError(f"cannot write the key pair at {stem_path}: {exc}") from exc
        return private_path


def generate_key(algorithm: str = ED25519) -> SigningKey:
    """Create a fresh signing key: ``ed25519`` (default) or ``ecdsa-p256``.

    Choose ``ecdsa-p256`` when the artifacts must also verify with OpenSSF model_signing, whose
    key verifier knows elliptic-curve keys only.
    """
    if algorithm == ED25519:
        return SigningKey(Ed25519PrivateKey.generate())
    if algorithm == ECDSA_P256:
        return SigningKey(ec.generate_private_key(ec.SECP256R1()))
    raise ValueError(
        f"unknown key algorithm {shown(algorithm)}: use one of {', '.join(ALGORITHMS)}"
    )


def _read_key_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    if len(data) > _MAX_KEY_FILE:
        raise KeyFileError(f"{path} is too large to be a key file")
    return data


def load_signing_key(
    path: str | os.PathLike[str], passphrase: bytes | str | None = None
) -> SigningKey:
    """Read a private key written by :meth:`SigningKey.save`.

    Refuses a key file that group or others can read: a leaked signing key lets anyone publish
    models your servers trust. Fix it with ``chmod 600 PATH``.
    """
    key_path = Path(path)
    _refuse_public_key(key_path)
    try:
        mode = key_path.stat().st_mode
    except FileNotFoundError as exc:
        raise KeyFileError(f"key file {key_path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {key_path}: {exc.strerror}") from exc
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"private key {key_path} is accessible by other users (mode {stat.S_IMODE(mode):o}); "
            f"run 'chmod 600 {key_path}' and consider the key leaked if others could read it"
        )
    data = _read_key_file(key_path)
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except TypeError as exc:
        if secret is None:
            raise KeyFileError(
                f"{key_path} is encrypted: a passphrase is required", reason="passphrase"
            ) from exc
        raise KeyFileError(f"{key_path} is not encrypted: do not give a passphrase") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        if secret is not None and b"ENCRYPTED" in data:
            raise KeyFileError(f"wrong passphrase for {key_path}") from exc
        raise KeyFileError(f"{key_path} is not a PEM PKCS8 private key") from exc
    if not isinstance(key, (Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        raise KeyFileError(
            f"{key_path} holds a {type(key).__name__}; safeload signs with Ed25519 or ECDSA P-256"
        )
    try:
        return SigningKey(key)
    except KeyFileError as exc:
        raise KeyFileError(f"{key_path}: {exc}") from exc


def _refuse_public_key(path: Path) -> None:
    """A ``.pub`` given where the private key belongs: say so, not "chmod 600"."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError:
        return  # the caller reports a missing or unreadable file
    if head.lstrip().startswith(b"-----BEGIN PUBLIC KEY-----"):
        raise KeyFileError(
            f"{path} is a public key; signing needs the private key (STEM.key, kept secret by "
            "whoever signs). Public keys go in the trusted folder of whoever loads."
        )


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """Read one PEM SubjectPublicKeyInfo public key (Ed25519 or ECDSA P-256)."""
    key_path = Path(path)
    return _parse_public_key(_read_key_file(key_path), key_path)


def _parse_public_key(data: bytes, key_path: Path) -> PublicKey:
    if b"PRIVATE KEY-----" in data:
        raise KeyFileError(
            f"{key_path} holds a PRIVATE key: it must not be among the trusted public keys. "
            "Move it out of the folder, keep it 0600 elsewhere, and consider it exposed if "
            "others could read the folder."
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"{key_path} is not a PEM public key") from exc
    if not isinstance(key, (Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise KeyFileError(
            f"{key_path} holds a {type(key).__name__}; only Ed25519 and ECDSA P-256 are supported"
        )
    try:
        algorithm_of(key)
    except KeyFileError as exc:
        raise KeyFileError(f"{key_path}: {exc}") from exc
    return key


@dataclass(frozen=True)
class Keyring:
    """The public keys whose signatures are trusted, found by their hint.

    ``trust`` is the folder's ``trust.toml`` (None without one: any key here is enough);
    ``today`` fixes the date expiry and retirement are judged at (None: today, in UTC, at each
    check). It is the caller's, never the artifact's.
    """

    keys: dict[str, PublicKey] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    trust: TrustFile | None = None
    today: datetime.date | None = None

    @classmethod
    def of(cls, keys: Iterable[PublicKey | SigningKey]) -> Keyring:
        """A keyring of these keys (a :class:`SigningKey` contributes its public half)."""
        found: dict[str, PublicKey] = {}
        for key in keys:
            public = key.public_key if isinstance(key, SigningKey) else key
            algorithm_of(public)
            found[key_hint(public)] = public
        return cls(found, {h: h[:16] for h in found})

    @classmethod
    def from_dir(
        cls, directory: str | os.PathLike[str], *, today: datetime.date | None = None
    ) -> Keyring:
        """Every ``*.pub`` file in ``directory`` (not recursive), and its ``trust.toml`` if any.

        Read like an artifact directory: the folder and each file opened without following
        symlinks, regular files only, size-limited; one key under two names is refused, since
        trust rules name keys. With a ``trust.toml`` every ``*.pub`` must be declared in it, and
        keys are named by their ``[keys.NAME]``. ``today`` is for tests and audits ("would this
        load on that date"); leave it None in production.
        """
        folder = Path(directory)
        found: dict[str, PublicKey] = {}
        names: dict[str, str] = {}
        files: dict[str, str] = {}
        trust: TrustFile | None = None
        fd = _open_key_folder(folder)
        try:
            pub_files, has_trust_file = _pub_names(fd, folder)
            stems = {name: name[: -len(".pub")] for name in pub_files}
            if has_trust_file:
                trust = parse_trust_file(
                    _read_in_folder(fd, folder, TRUST_FILE), str(folder / TRUST_FILE)
                )
                stems = _declared(trust, pub_files, folder)
            for name, stem in sorted(stems.items()):
                key = _parse_public_key(_read_in_folder(fd, folder, name), folder / name)
                hint = key_hint(key)
                if hint in found:
                    raise KeyFileError(
                        f"{folder} holds the same public key as {files[hint]} and {name}: keep "
                        "one file per key (trust rules refer to keys by name, and one key must "
                        "never count as two signers)"
                    )
                found[hint] = key
                names[hint] = stem
                files[hint] = name
        finally:
            os.close(fd)
        return cls(found, names, trust, today)

    def get(self, hint: str) -> PublicKey | None:
        """The trusted key with this hint, or None."""
        return self.keys.get(hint)

    def name_of(self, hint: str) -> str | None:
        """The key's name in ``trust.toml``, else its file stem (or short hint)."""
        return self.names.get(hint)

    def date(self) -> datetime.date:
        """The date expiry and retirement are judged at."""
        return self.today if self.today is not None else today_utc()

    def entry(self, hint: str) -> KeyEntry | None:
        """The key's ``[keys.NAME]`` entry, when a trust file declares it."""
        name = self.names.get(hint)
        return None if self.trust is None or name is None else self.trust.keys.get(name)

    def status(self, hint: str) -> str:
        """``valid``, ``revoked``, ``expired`` (``trust.toml`` at :meth:`date`), ``unknown``."""
        if hint not in self.keys:
            return UNKNOWN
        entry = self.entry(hint)
        return VALID if entry is None else entry.status(self.date())

    def rule_for(self, model_name: str) -> Rule | None:
        """The first ``[[require]]`` rule matching the signed model name, or None."""
        return None if self.trust is None else self.trust.rule_for(model_name)

    def check_signer(self, key: SigningKey) -> None:
        """Refuse to make new signatures this keyring would not count, or that are retired.

        Called by ``save(..., trusted=...)``, ``cosign`` and ``safeload sign --trusted``: a
        retired key keeps its old signatures valid (until it expires or is revoked) but signs
        nothing new from its ``retired`` date on.
        """
        hint = key.hint
        where = "the trust file" if self.trust is None else self.trust.source
        if hint not in self.keys:
            raise KeyFileError(
                f"the signing key {hint[:16]} is not among the trusted keys: artifacts it signs "
                "would not load there. Add its .pub (and declare it in trust.toml) first.",
                reason="untrusted",
            )
        name = self.names[hint]
        status = self.status(hint)
        if status != VALID:
            raise KeyFileError(
                f"the signing key {name} is {status} in {where}: its signatures do not count; "
                "sign with another key",
                reason=status,
            )
        entry = self.entry(hint)
        if entry is not None and entry.retired_on(self.date()):
            raise KeyFileError(
                f"the signing key {name} is retired since {entry.retired} in {where}: it signs "
                "nothing new (what it signed before stays valid until it expires or is revoked). "
                "Sign with its successor.",
                reason="retired",
            )

    def __contains__(self, hint: object) -> bool:
        return hint in self.keys

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def _declared(trust: TrustFile, pub_files: list[str], folder: Path) -> dict[str, str]:
    """File name -> key name; every ``*.pub`` present must be declared, every declared present.

    An undeclared ``*.pub`` is refused rather than trusted: a key dropped into the folder must
    not quietly become a signer for every model no rule names.
    """
    by_file = {entry.file: name for name, entry in trust.keys.items()}
    undeclared = sorted(set(pub_files) - set(by_file))
    if undeclared:
        raise TrustFileError(
            f"{folder} holds {', '.join(undeclared[:5])}, not declared in {TRUST_FILE}: declare "
            "every key with a [keys.NAME] table (revoked = true to distrust it), or remove it"
        )
    absent = sorted(set(by_file) - set(pub_files))
    if absent:
        raise TrustFileError(
            f"{TRUST_FILE} in {folder} names {', '.join(absent[:5])}, which is not a .pub file "
            "in that folder"
        )
    return by_file


_MAX_FOLDER_ENTRIES = 4096
_OPEN_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_OPEN_FILE = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _open_key_folder(folder: Path) -> int:
    """The folder's descriptor; a symlinked folder is refused like a symlinked artifact."""
    if folder.is_symlink():
        raise KeyFileError(f"keyring folder {folder} is a symlink; give the real folder")
    try:
        return os.open(folder, _OPEN_DIR)
    except OSError as exc:
        raise KeyFileError(
            f"keyring folder {folder} does not exist or is not a folder ({exc.strerror})"
        ) from exc


def _pub_names(fd: int, folder: Path) -> tuple[list[str], bool]:
    """The ``*.pub`` entries, sorted, each a plain name, and whether ``trust.toml`` is there.

    Other entries are not looked at.
    """
    names: list[str] = []
    has_trust_file = False
    with os.scandir(fd) as entries:
        for count, entry in enumerate(entries):
            if count >= _MAX_FOLDER_ENTRIES:
                raise KeyFileError(f"{folder} holds more than {_MAX_FOLDER_ENTRIES} entries")
            has_trust_file = has_trust_file or entry.name == TRUST_FILE
            if not entry.name.endswith(".pub"):
                continue
            if not is_plain_name(entry.name):
                raise KeyFileError(
                    f"odd key file name {shown(entry.name)} in {folder}: use plain names "
                    "(letters, digits, '.', '_', '-')"
                )
            names.append(entry.name)
    return sorted(names), has_trust_file


def _read_in_folder(fd: int, folder: Path, name: str) -> bytes:
    """One key (or trust) file, opened relative to the folder without following a symlink."""
    try:
        file_fd = os.open(name, _OPEN_FILE, dir_fd=fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeyFileError(
                f"{name} in {folder} is a symlink; keyring folders hold regular files only"
            ) from exc
        raise KeyFileError(f"cannot read key file {folder / name}: {exc.strerror}") from exc
    try:
        info = os.fstat(file_fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"{name} in {folder} is not a regular file")
        if info.st_size > _MAX_KEY_FILE:
            raise KeyFileError(f"{name} in {folder} is too large to be a key file")
        with os.fdopen(file_fd, "rb", closefd=False) as handle:
            data = handle.read(_MAX_KEY_FILE + 1)
    finally:
        os.close(file_fd)
    if len(data) > _MAX_KEY_FILE:
        raise KeyFileError(f"{name} in {folder} is too large to be a key file")
    return data


TrustSource = Keyring | str | os.PathLike[str]
"""What ``trusted=`` takes everywhere: a :class:`Keyring`, or a keys folder (with its
``trust.toml``)."""


def resolve_keyring(trusted: TrustSource) -> Keyring:
    """Accept a :class:`Keyring` or the path of a folder of ``*.pub`` files."""
    if isinstance(trusted, Keyring):
        return trusted
    if isinstance(trusted, (str, os.PathLike)):
        return Keyring.from_dir(trusted)
    raise TypeError("trusted must be a safeload.Keyring or the path of a folder of *.pub keys")
