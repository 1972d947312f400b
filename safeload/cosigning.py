"""``cosign``: add a signature to an already signed artifact, changing no other byte.

Several people vouch for one artifact by signing the same payload: the training pipeline
signs when it saves, a reviewer cosigns after looking at it, and ``trust.toml`` says how many
of whom a model needs. A cosigner signs the statement that is already there, never a new one:
it is rebuilt from the files on disk first and must come out byte-identical, so a file changed
since the first signature is refused rather than signed. ``model.sig`` is replaced atomically
(a temporary file renamed over it), under a lock, so two cosigners never lose a signature and a
crash never leaves half a bundle.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from safeload import strictjson
from safeload.errors import (
    ArtifactExistsError,
    OperationalError,
    SignatureError,
    TamperedArtifactError,
)
from safeload.keys import Keyring, SigningKey, TrustSource, resolve_keyring
from safeload.layout import SIGNATURE_FILE, ListedArtifact
from safeload.manifest import Hashing, resources_for
from safeload.policy import PolicySource, resolve_policy
from safeload.reading import read_artifact
from safeload.signing import append_signature, build_statement
from safeload.typegate import check_types
from safeload.verifying import (
    MAX_SIGNATURES,
    UnverifiedBundle,
    check_signatures,
    parse_bundle,
    refuse_broken,
)

if os.name == "posix":
    import fcntl

_OPEN_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in is not waited on


def cosign(
    path: str | os.PathLike[str],
    key: SigningKey,
    *,
    trusted: TrustSource | None = None,
    policy: PolicySource = None,
) -> Path:
    """Add ``key``'s signature to the signed artifact at ``path``; no other file changes.

    Refused when the files no longer match the signed statement (the payload would change:
    :class:`TamperedArtifactError`), when ``key`` already signed it (:class:`ArtifactExistsError`),
    or when the model names types outside ``policy``. With ``trusted`` (a keyring or a keys
    folder), a key that is retired, revoked, expired or not trusted there is refused, and so is
    a bundle holding a signature that does not verify against a key trusted there.
    """
    keyring = cosigner_keyring(key, trusted)
    target = Path(path)
    seen: list[bytes] = []

    def signed_only(artifact: ListedArtifact) -> Hashing:
        if SIGNATURE_FILE not in artifact.sizes:
            raise OperationalError(f"{target} is not signed yet: sign it first, then cosign")
        artifact.model_file()
        data = bytes(artifact.read(SIGNATURE_FILE))
        bundle, _, manifest = parse_bundle(data)
        check_bundle(bundle, key, keyring, str(target))
        present = {n for n in artifact.sizes if n != SIGNATURE_FILE}
        if present != set(manifest.digests()):
            raise changed(target)
        seen.append(data)
        return manifest.hashing

    files = read_artifact(target, signed_only)
    data = seen[0]
    bundle, subject_name, manifest = parse_bundle(data)
    sizes = {name: buffer.nbytes for name, buffer in files.buffers.items()}
    try:
        rebuilt = build_statement(
            subject_name, resources_for(files.digests, sizes, manifest.hashing)
        )
    except ValueError as exc:
        raise changed(target) from exc
    if rebuilt != bundle.payload:
        raise changed(target)
    check_types(
        files.model,
        resolve_policy(policy),
        format=files.format,
        path=str(target / str(files.model_name)),
    )
    new = append_signature(strictjson.loads(data, SIGNATURE_FILE, SignatureError), rebuilt, key)
    if parse_bundle(new)[0].payload != bundle.payload:  # the invariant cosign exists to keep
        raise AssertionError("cosign would change the signed payload")
    replace_signature(target, data, new)
    return target


def cosigner_keyring(key: SigningKey, trusted: TrustSource | None) -> Keyring | None:
    """The caller's keyring (if any), after refusing a key it does not trust to sign now."""
    if not isinstance(key, SigningKey):
        raise TypeError("key must be a safeload.SigningKey (see safeload.load_signing_key)")
    keyring = resolve_keyring(trusted) if trusted is not None else None
    if keyring is not None:
        keyring.check_signer(key)
    return keyring


def check_bundle(
    bundle: UnverifiedBundle, key: SigningKey, keyring: Keyring | None, where: str
) -> None:
    """Refuse to add ``key`` to a bundle it signed, a full one, or (given a keyring) a broken one.

    Broken: a signature that does not verify against a key trusted there, or a revoked key's.
    """
    if any(s.hint == key.hint for s in bundle.signatures):
        raise ArtifactExistsError(
            f"{where} is already signed by this key ({key.hint[:16]}); a key signs once"
        )
    if len(bundle.signatures) >= MAX_SIGNATURES:
        raise OperationalError(f"{where} already holds {MAX_SIGNATURES} signatures")
    if keyring is not None:
        refuse_broken(check_signatures(bundle, keyring), where)


def changed(target: Path) -> TamperedArtifactError:
    """The refusal of a cosign whose statement, rebuilt from the files, is not the signed one."""
    return TamperedArtifactError(
        f"{target} no longer matches the statement its signers signed (files changed, added or "
        "removed, or a statement safeload does not write): cosigning would sign another "
        "payload. Do not vouch for it; re-sign the artifact from scratch if the change is "
        "wanted."
    )


def replace_signature(target: Path, old: bytes, new: bytes, name: str = SIGNATURE_FILE) -> None:
    """Rename a complete new bundle (``model.sig``) over the old one, if that is unchanged."""
    dir_fd = os.open(target, _OPEN_DIR)
    try:
        if os.name == "posix":
            fcntl.flock(dir_fd, fcntl.LOCK_EX)  # released when dir_fd is closed
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            current = handle.read(len(old) + 1) if stat.S_ISREG(info.st_mode) else b""
        if current != old:
            raise OperationalError(f"{target / name} changed while cosigning; run again")
        temp = f".{name}.{secrets.token_hex(8)}.tmp"
        out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=dir_fd)
        try:
            with os.fdopen(out, "wb") as handle:
                handle.write(new)
                os.fchmod(handle.fileno(), stat.S_IMODE(info.st_mode))
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=dir_fd)
            raise
    finally:
        os.close(dir_fd)
