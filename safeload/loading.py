"""Verified load: the gate of the design brief, in order, failing closed at each step.

1. layout: one flat directory, plain names, regular files, limits (:mod:`safeload.layout`);
2. signature: strict bundle, signer in the caller's keyring, Ed25519 or ECDSA P-256 over the PAE;
3. manifest: the files present are exactly the signed ones, each read once and hashed;
4. types: a static scan of the verified bytes against the caller's policy;
5. deserialize those same bytes through the restricted unpickler, then validate structure;
6. contract: signed name and version as asked, library versions, saved sample predictions.

Trust (keys and types) always comes from the caller, never from the artifact.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safeload import _unpickle_fast, contract
from safeload.drift import DriftReport, check_drift
from safeload.errors import (
    ContractError,
    MalformedArtifactError,
    UnsignedArtifactError,
    shown,
)
from safeload.gcpause import paused_gc
from safeload.keys import TrustSource, resolve_keyring
from safeload.layout import SIGNATURE_FILE, ListedArtifact, Progress, ReadLimits, read_model_file
from safeload.manifest import Hashing
from safeload.metadata import JSONValue, running_sklearn_version
from safeload.onnxmodel import load_onnx_verified
from safeload.options import LoadOptions, resolve_options
from safeload.policy import PolicySource, resolve_policy
from safeload.reading import read_artifact
from safeload.typegate import ScanLimits, ScanReport, TypeChecked, check_types
from safeload.verifying import (
    VerifiedStatement,
    check_file_set,
    check_manifest,
    check_rule_name,
    verify_signature,
)


@dataclass
class VerifiedArtifact:
    """An artifact that passed steps 1 to 4: its bytes are authentic and name trusted types."""

    path: str
    format: str
    statement: VerifiedStatement
    metadata: dict[str, JSONValue]
    checked: TypeChecked = field(repr=False)

    @property
    def scan(self) -> ScanReport:
        """The type scan's report (every global named, all trusted)."""
        return self.checked.report


def verify_artifact(
    path: str | os.PathLike[str],
    *,
    trusted: TrustSource,
    options: LoadOptions | None = None,
    policy: PolicySource = None,
    read_limits: ReadLimits | None = None,
    scan_limits: ScanLimits | None = None,
    progress: Progress | None = None,
) -> VerifiedArtifact:
    """Run gate steps 1 to 4 and return the verified, scanned bytes; deserializes nothing.

    ``options`` carries the load-time knobs (:class:`LoadOptions`); ``policy``, ``read_limits``
    and ``scan_limits``, when given, override the same fields of it.
    """
    opts = resolve_options(options, policy=policy, read_limits=read_limits, scan_limits=scan_limits)
    keyring = resolve_keyring(trusted)
    signed: list[VerifiedStatement] = []

    def signed_files_only(artifact: ListedArtifact) -> Hashing:
        # Step 1 (layout) ran when the directory was opened; the model file must be unambiguous.
        artifact.require_signature()
        artifact.model_file()
        # Step 2: signature.
        statement = verify_signature(artifact.read(SIGNATURE_FILE), keyring)
        # Step 3, names first: the files present are exactly the signed ones, before any is read.
        check_file_set(statement, {n: s for n, s in artifact.sizes.items() if n != SIGNATURE_FILE})
        signed.append(statement)
        return statement.hashing

    files = read_artifact(
        path,
        signed_files_only,
        limits=opts.read_limits,
        progress=progress,
        storage_options=opts.storage_options,
    )
    statement = signed[0]
    # Step 3: every byte of every file, hashed once while it was read.
    check_manifest(statement, files.digests)
    metadata = files.metadata()
    check_rule_name(statement, metadata, keyring)
    # Step 4: types, on the verified bytes.
    checked = check_types(
        files.model, opts.types, format=files.format, limits=opts.scan_limits, path=files.path
    )
    return VerifiedArtifact(files.path, checked.format, statement, metadata, checked)


def _check_identity(
    metadata: dict[str, JSONValue], name: str | None, version: str | None, where: str
) -> None:
    """Refuse a signed artifact served under another name or version (rollback, swap)."""
    for field_name, wanted in (("name", name), ("version", version)):
        if wanted is not None and metadata.get(field_name) != wanted:
            raise ContractError(
                f"{where} is signed as {shown(metadata.get('name'))} version "
                f"{shown(metadata.get('version'))}, but {field_name} {shown(wanted)} was asked "
                "for: an older or a different artifact was put in its place. Do not load it."
            )


def _check_versions(metadata: dict[str, JSONValue], policy: str) -> None:
    saved = (metadata.get("versions") or {}).get("scikit-learn")
    running = running_sklearn_version()
    if policy == "ignore" or saved is None or saved == running:
        return
    message = (
        f"the model was saved with scikit-learn {saved} and is loaded with {running}. "
        "Re-validate it on held-out data (its saved sample predictions, if any, were "
        "re-checked) or retrain it with the running version."
    )
    if policy == "strict":
        raise ContractError(message)
    warnings.warn(message, VersionMismatchWarning, stacklevel=4)


class VersionMismatchWarning(UserWarning):
    """The model was saved with another scikit-learn version than the one running."""


@dataclass
class LoadedArtifact:
    """A verified model with its metadata; its prediction methods check input first.

    What :func:`load_checked` returns: serve this, not ``.model``, so that a batch whose
    columns, order or types differ from the schema saved with the model is refused with a
    :class:`ContractError` naming the column, instead of being predicted on silently.
    """

    model: Any
    metadata: dict[str, JSONValue]
    signer: str
    # What the signature vouched for (integrations bind other signed files to it).
    statement: VerifiedStatement | None = field(default=None, repr=False)

    @property
    def schema(self) -> dict[str, JSONValue]:
        """The input schema recorded at save time."""
        return dict(self.metadata.get("schema") or {})

    def check_input(self, data: Any) -> None:
        """Raise :class:`ContractError` saying exactly how ``data`` differs from the schema."""
        contract.check_input(self.schema, data)

    def predict(self, data: Any) -> Any:
        """``model.predict`` after checking the input against the schema."""
        self.check_input(data)
        return self.model.predict(data)

    def predict_proba(self, data: Any) -> Any:
        """``model.predict_proba`` after checking the input against the schema."""
        self.check_input(data)
        return self.model.predict_proba(data)

    def predict_log_proba(self, data: Any) -> Any:
        """``model.predict_log_proba`` after checking the input against the schema."""
        self.check_input(data)
        return self.model.predict_log_proba(data)

    def decision_function(self, data: Any) -> Any:
        """``model.decision_function`` after checking the input against the schema."""
        self.check_input(data)
        return self.model.decision_function(data)

    def transform(self, data: Any) -> Any:
        """``model.transform`` after checking the input against the schema."""
        self.check_input(data)
        return self.model.transform(data)

    def check_drift(self, data: Any, *, raise_on_shift: bool = False) -> DriftReport:
        """Compare a batch with the training data's signed statistics; never predicts.

        Returns a :class:`~safeload.DriftReport`: per feature the share out of the training
        range, the rise in missing values, unseen categories and the PSI over the recorded
        bins, and a verdict ``stable``, ``watch`` or ``shifted`` (docs/format.md gives the
        thresholds). It never blocks anything unless ``raise_on_shift``: then a ``shifted``
        verdict raises :class:`~safeload.DriftError`. An artifact saved without
        ``training_data`` records no statistics (:class:`~safeload.OperationalError`).
        """
        return check_drift(self.metadata, data, raise_on_shift=raise_on_shift)


def load_checked(
    path: str | os.PathLike[str],
    *,
    trusted: TrustSource,
    options: LoadOptions | None = None,
    policy: PolicySource = None,
    name: str | None = None,
    version: str | None = None,
    versions: str | None = None,
    read_limits: ReadLimits | None = None,
    scan_limits: ScanLimits | None = None,
) -> LoadedArtifact:
    """Load for production: the whole gate, then a model whose predictions check their input.

    Runs every gate step (1 to 6) and returns a :class:`LoadedArtifact`: its ``predict``,
    ``predict_proba``, ``predict_log_proba``, ``decision_function`` and ``transform`` first
    check each input against the schema saved with the model (columns, order, types, feature
    count) and raise :class:`ContractError` on a mismatch; ``.model`` is the bare estimator,
    ``.metadata`` the signed record. ``load_artifact`` is the same function.

    ``name``/``version``, when given, must equal the signed ones. ``options``
    (:class:`LoadOptions`) carries the type policy, the read and scan limits (lower them for
    untrusted uploads) and the library version policy ``versions``: ``"warn"`` (default),
    ``"strict"`` (a different scikit-learn version is a :class:`ContractError`) or
    ``"ignore"``. Each of those may also be given as a keyword, which wins over ``options``.
    """
    opts = resolve_options(
        options,
        policy=policy,
        read_limits=read_limits,
        scan_limits=scan_limits,
        versions=versions,
    )
    with paused_gc():
        verified = verify_artifact(path, trusted=trusted, options=opts)
        _check_identity(verified.metadata, name, version, verified.path)
        # Step 5: the very bytes that were hashed and scanned, never the path again.
        if verified.format == "onnx":
            # The graph was checked by the ONNX gate (step 4); onnxruntime gets its bytes.
            model = load_onnx_verified(
                verified.checked.payload,
                verified.metadata,
                verified.checked.deadline,
                opts.scan_limits,  # the arena cap, when this load is the process's first
            )
        else:
            model = _unpickle_fast.deserialize_validated(
                verified.checked,
                opts.types,
                limits=opts.scan_limits,
                safe_to_call=tuple(opts.safe_to_call),
            )
    # Step 6: the contract recorded at save time.
    _check_versions(verified.metadata, opts.versions)
    sample = verified.metadata.get("sample")
    if isinstance(sample, dict):
        try:
            contract.check_predictions(model, sample["inputs"], sample["predictions"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedArtifactError(
                f"the saved sample cannot be read: {shown(str(exc))}"
            ) from exc
    return LoadedArtifact(
        model, verified.metadata, verified.statement.signer_hint, verified.statement
    )


def load(
    path: str | os.PathLike[str],
    *,
    trusted: TrustSource,
    options: LoadOptions | None = None,
    policy: PolicySource = None,
    name: str | None = None,
    version: str | None = None,
    versions: str | None = None,
    read_limits: ReadLimits | None = None,
    scan_limits: ScanLimits | None = None,
) -> Any:
    """Verify an artifact and return the bare model it holds: a drop-in for ``joblib.load``.

    The gate is the same as :func:`load_checked`'s, but the estimator returned does NOT check
    its input against the schema saved with it: a DataFrame with a text column where a number
    was saved is predicted on without complaint. To serve predictions, use
    :func:`load_checked`, whose methods refuse such input. Refuses with a SafeloadError.

    ``trusted`` is a :class:`Keyring` or a folder of ``*.pub`` keys; ``policy`` is the
    trusted-type policy (default: :meth:`TypePolicy.default`), or extra exact names on top of it.
    See :func:`load_checked` for ``options``, ``name``, ``version`` and ``versions``.
    """
    return load_checked(
        path,
        trusted=trusted,
        options=options,
        policy=policy,
        name=name,
        version=version,
        versions=versions,
        read_limits=read_limits,
        scan_limits=scan_limits,
    ).model


load_artifact = load_checked
"""The name :func:`load_checked` had first; the same function."""


class UnsafeUnsignedLoadWarning(UserWarning):
    """A model file was loaded without any signature check, on the caller's explicit request."""


# Every unsigned load is worth a line, not only the first one from each call site.
warnings.simplefilter("always", UnsafeUnsignedLoadWarning)


def load_file(
    path: str | os.PathLike[str],
    *,
    unsafe_allow_unsigned: bool = False,
    policy: PolicySource = None,
    scan_limits: ScanLimits | None = None,
    safe_to_call: Iterable[str] = (),
) -> Any:
    """Load a bare ``.skops`` or joblib file that carries no signature. Dangerous by name.

    Nothing vouches for who made the file or that it is intact; only the type gate (zip limits,
    static scan, exact-name policy), the restricted unpickler and structural validation stand
    between the file and your process. Refused unless ``unsafe_allow_unsigned=True``, and every
    use warns, once, with :class:`UnsafeUnsignedLoadWarning` (shown each time, not once per
    call site; ``logging.captureWarnings(True)`` sends it to your logs). Prefer signed artifacts.
    """
    source = Path(path)
    if not unsafe_allow_unsigned:
        raise UnsignedArtifactError(
            f"{source} is a bare model file with no signature. Load signed artifacts with "
            "safeload.load, or pass unsafe_allow_unsigned=True if you accept the risk."
        )
    message = (
        f"loading {source} WITHOUT any signature check (unsafe_allow_unsigned=True): only the "
        "type gate protects this process"
    )
    warnings.warn(message, UnsafeUnsignedLoadWarning, stacklevel=2)
    types = resolve_policy(policy)
    checked = check_types(read_model_file(source), types, limits=scan_limits, path=str(source))
    vouched = (*safe_to_call, *(f"{m}:{q}" for m, q in sorted(types.safe_to_call)))
    return _unpickle_fast.deserialize_validated(
        checked, types, limits=scan_limits, safe_to_call=vouched
    )
