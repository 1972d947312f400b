"""Loading a model directory signed by OpenSSF model_signing (its key signer), not by safeload.

Such a directory holds one model file and no ``safeload.json``: the signature vouches for the
bytes, nothing more. It goes through the same gate as safeload's own artifacts, minus what it
does not carry: layout (one flat directory, plain names, regular files, limits), the bundle
parsed strictly and verified against the caller's keyring (``trust.toml`` rules included,
matched on the signed subject name, which model_signing takes from the folder's name), the
exact file set (every file present is signed, every signed file present), every file read and
hashed once, then the type scan, the restricted unpickler and structural validation of those
same bytes. There is no schema, no saved sample predictions and no name or version to check:
safeload does not invent them; predictions are not checked against anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safeload import _unpickle_fast
from safeload.errors import (
    MalformedArtifactError,
    OperationalError,
    UnsignedArtifactError,
    shown,
)
from safeload.gcpause import paused_gc
from safeload.keys import TrustSource, resolve_keyring
from safeload.layout import SIGNATURE_FILE, ArtifactDir, Progress, ReadLimits, read_fd
from safeload.options import LoadOptions, resolve_options
from safeload.policy import PolicySource
from safeload.remote import is_url
from safeload.typegate import ScanLimits, ScanReport, TypeChecked, check_types
from safeload.verifying import VerifiedStatement, check_file_set, check_manifest, verify_signature

MODEL_SUFFIXES = {".joblib": "joblib", ".pkl": "joblib", ".pickle": "joblib", ".skops": "skops"}
"""The model file's format, from its name: joblib (or plain pickle) or skops."""


@dataclass
class VerifiedModelSigning:
    """A model_signing-signed directory that passed layout, signature, hashes and type scan.

    ``subject`` is the signed subject name (model_signing writes the signed folder's name);
    there is no metadata: no version, schema, sample predictions or library versions.
    """

    path: str
    signature_path: str
    model_file: str
    format: str
    statement: VerifiedStatement
    checked: TypeChecked = field(repr=False)

    @property
    def subject(self) -> str:
        """The signed subject name (informative; trust rules match on it)."""
        return self.statement.subject_name

    @property
    def scan(self) -> ScanReport:
        """The type scan's report (every global named, all trusted)."""
        return self.checked.report


def _signature_place(directory: Path, signature: str | os.PathLike[str] | None) -> Path | None:
    """None when the bundle is ``DIR/model.sig``, else the path of a bundle outside DIR.

    A bundle inside DIR under another name is refused: it would be a file the signature does
    not cover, and safeload artifacts keep theirs as ``model.sig``.
    """
    if signature is None:
        return None
    place = Path(signature)
    try:
        inside = os.path.samefile(place.absolute().parent, directory)
    except OSError:
        inside = False
    if not inside:
        return place
    if place.name != SIGNATURE_FILE:
        raise MalformedArtifactError(
            f"the signature {shown(place.name)} is inside {directory}, where it would be a file "
            f"the signature does not cover: name it {SIGNATURE_FILE} or keep it outside the folder"
        )
    return None


def _read_outside_signature(place: Path, limits: ReadLimits) -> memoryview:
    """A bundle kept beside the model folder: a regular file, size-limited, read once."""
    try:
        fd = os.open(place, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise UnsignedArtifactError(
            f"cannot read the signature {place}: {exc.strerror}. Give the model_signing bundle "
            "made for this folder."
        ) from exc
    try:
        return read_fd(fd, str(place), limits.max_signature_bytes, hashing=False)[0]
    finally:
        os.close(fd)


def verify_model_signing(
    path: str | os.PathLike[str],
    *,
    trusted: TrustSource,
    signature: str | os.PathLike[str] | None = None,
    options: LoadOptions | None = None,
    policy: PolicySource = None,
    read_limits: ReadLimits | None = None,
    scan_limits: ScanLimits | None = None,
    progress: Progress | None = None,
) -> VerifiedModelSigning:
    """Gate steps 1 to 4 for a directory signed by OpenSSF model_signing; deserializes nothing.

    ``signature`` is the model_signing bundle: ``PATH/model.sig`` by default, or a file
    outside ``PATH`` (model_signing's CLI writes ``model.sig`` in the working directory). The
    directory must hold exactly the signed files, and exactly one of them: the model file
    (``*.joblib``, ``*.pkl``, ``*.pickle`` or ``*.skops``). A safeload artifact (with
    ``safeload.json``) is refused here: load it with :func:`safeload.load`.
    """
    if is_url(path) or is_url(signature):
        raise OperationalError(
            "load_model_signing reads a local folder: copy a model_signing folder (and its "
            "bundle) from object storage first"
        )
    opts = resolve_options(options, policy=policy, read_limits=read_limits, scan_limits=scan_limits)
    keyring = resolve_keyring(trusted)
    directory = Path(path)
    with ArtifactDir(directory, opts.read_limits, progress) as artifact:
        outside = _signature_place(directory, signature)
        if outside is None:
            if SIGNATURE_FILE not in artifact.sizes:
                raise UnsignedArtifactError(
                    f"{directory} holds no {SIGNATURE_FILE}: give the model_signing bundle's "
                    "path (signature=..., or --signature on the command line)"
                )
            bundle = artifact.read(SIGNATURE_FILE)
            signature_path = directory / SIGNATURE_FILE
        else:
            bundle = _read_outside_signature(outside, opts.read_limits)
            signature_path = outside
        statement = verify_signature(bundle, keyring)
        present = {n: s for n, s in artifact.sizes.items() if n != SIGNATURE_FILE}
        if outside is not None and SIGNATURE_FILE in artifact.sizes:
            present[SIGNATURE_FILE] = artifact.sizes[SIGNATURE_FILE]
        # Names first: nothing unsigned is read; then every file once, hashed while read.
        check_file_set(statement, present)
        model_file, fmt = _model_file(directory, sorted(present))
        buffers: dict[str, memoryview] = {}
        digests: dict[str, tuple[str, ...]] = {}
        for name in sorted(present):
            buffers[name], digest = artifact.read_hashed(name, scheme=statement.hashing)
            digests[name] = digest or ()
    check_manifest(statement, digests)
    checked = check_types(
        buffers[model_file],
        opts.types,
        format=fmt,
        limits=opts.scan_limits,
        path=str(directory / model_file),
    )
    return VerifiedModelSigning(
        str(directory), str(signature_path), model_file, checked.format, statement, checked
    )


def _model_file(directory: Path, names: list[str]) -> tuple[str, str]:
    """The one signed file, and its format from its suffix; anything else is refused."""
    if len(names) != 1:
        safeload_artifact = " (a safeload artifact: use safeload.load)" * ("safeload.json" in names)
        raise MalformedArtifactError(
            f"{directory} holds {len(names)} signed files ({', '.join(names[:5]) or 'none'})"
            f"{safeload_artifact}; a model_signing directory safeload loads holds exactly one "
            "model file"
        )
    (name,) = names
    fmt = MODEL_SUFFIXES.get(Path(name).suffix.lower())
    if fmt is None:
        raise MalformedArtifactError(
            f"{shown(name)} in {directory} is not a model file safeload knows: name it "
            f"*{', *'.join(MODEL_SUFFIXES)}"
        )
    return name, fmt


def load_model_signing(
    path: str | os.PathLike[str],
    *,
    trusted: TrustSource,
    signature: str | os.PathLike[str] | None = None,
    options: LoadOptions | None = None,
    policy: PolicySource = None,
    read_limits: ReadLimits | None = None,
    scan_limits: ScanLimits | None = None,
) -> Any:
    """Load the model of a directory signed by OpenSSF model_signing, through safeload's gate.

    The signature (ECDSA P-256 from model_signing's key signer, or any key in ``trusted``)
    must verify, the files must be exactly the signed ones, and the model file passes the type
    scan, the restricted unpickler and structural validation, as with :func:`safeload.load`.
    What such a directory does not carry is not checked: there is no schema (predictions do
    not check their input), no saved sample predictions, no name or version and no library
    versions. Returns the bare estimator. See :func:`verify_model_signing` for ``signature``.
    """
    opts = resolve_options(options, policy=policy, read_limits=read_limits, scan_limits=scan_limits)
    with paused_gc():
        verified = verify_model_signing(path, trusted=trusted, signature=signature, options=opts)
        return _unpickle_fast.deserialize_validated(
            verified.checked,
            opts.types,
            limits=opts.scan_limits,
            safe_to_call=tuple(opts.safe_to_call),
        )
