"""MLflow models whose data is a signed safeload artifact, and their verified load.

An MLflow model written here is one directory::

    MLmodel  conda.yaml  python_env.yaml  requirements.txt  safeload-mlflow.sig
    data/    model.joblib (or model.skops)  safeload.json  model.sig

``data/`` is a safeload artifact as :func:`safeload.save` writes it. ``safeload-mlflow.sig`` is
a second bundle in ``model.sig``'s exact format (``docs/format.md``), signed by the same key: its
manifest lists every other file at the top of the directory by digest, and ``data`` by the
SHA-256 of the statement ``data/model.sig`` signs, so an edited ``MLmodel`` (a pickle flavor,
``data`` pointed elsewhere, a ``code`` folder) or an added, missing or swapped file is refused
before anything in the directory is trusted. The same ``verify_signature``, ``check_file_set`` and
``check_manifest`` that check an artifact check it.

Trust never comes from the model (MLflow's sklearn flavor once read its skops trusted types
from ``MLmodel``: GHSA-w582-9x45-8mpx): :func:`load_model` takes the keyring from its caller,
and :func:`_load_pyfunc`, which MLflow calls, from ``$SAFELOAD_TRUSTED_KEYS`` (and the type
policy from ``$SAFELOAD_POLICY``); without the first it refuses. mlflow is imported only
inside functions: ``import safeload`` never imports it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import stat
import tempfile
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safeload import strictjson
from safeload.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    ContractError,
    MalformedArtifactError,
    OperationalError,
    SafeloadError,
    TamperedArtifactError,
    UnsignedArtifactError,
    shown,
)
from safeload.keys import SigningKey, TrustSource, resolve_keyring
from safeload.layout import SIGNATURE_FILE, ReadLimits, is_plain_name, read_fd
from safeload.loading import LoadedArtifact, load_checked
from safeload.manifest import Hashing, Manifest, resources_for, sha256_hex
from safeload.metadata import JSONValue
from safeload.options import LoadOptions
from safeload.policy import PolicySource
from safeload.signing import build_statement, sign_statement
from safeload.verifying import (
    VerifiedStatement,
    check_file_set,
    check_manifest,
    parse_bundle,
    verify_signature,
)

KEYS_ENV = "SAFELOAD_TRUSTED_KEYS"
"""The environment variable naming the trusted keys folder when MLflow calls the loader."""

MLFLOW_SIGNATURE_FILE = "safeload-mlflow.sig"
"""The bundle at the top of an MLflow model directory that signs MLflow's own files."""

DATA_DIR = "data"
LOADER_MODULE = "safeload.mlflow"
FLAVOR_NAME = "safeload"

# MLflow writes this file itself into every registered model it downloads (``models:/`` URIs),
# after the model was signed: it is tolerated unsigned, small, and never read by safeload.
REGISTRY_NOTE = "registered_model_meta"
_MAX_REGISTRY_NOTE = 4096
_MAX_ENTRIES = 16
_MAX_SIGNATURE_BYTES = 1 << 20
_MAX_MLFLOW_FILE_BYTES = 16 << 20
# The flavors a signed MLmodel may declare: anything else is a loader safeload did not write.
_FLAVORS = frozenset({"python_function", FLAVOR_NAME})

_OPEN_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_OPEN_FILE = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    key: SigningKey,
    name: str,
    version: str | None = None,
    format: str = "joblib",
    sample: Any = None,
    training_data: Any = None,
    metrics: Mapping[str, JSONValue] | None = None,
    config: Mapping[str, JSONValue] | None = None,
    policy: PolicySource = None,
    trusted: TrustSource | None = None,
    mlflow_model: Any = None,
    data_uri: str | None = None,
    run_id: str | None = None,
) -> Path:
    """Write an MLflow model directory at ``path`` whose data is a signed safeload artifact.

    ``data/`` is what :func:`safeload.save` writes (same ``format``, ``sample``,
    ``training_data``, ``metrics``, ``config``, ``policy``, ``trusted`` checks), signed as
    ``name`` / ``version``; ``version`` defaults to the MLflow logged model's id when logging.
    The MLflow signature is derived from ``sample`` (or the schema of ``training_data``), and
    every MLflow file is signed by ``key`` in ``safeload-mlflow.sig``. A failed save leaves
    nothing at ``path``. ``run_id`` (recorded in the signed lineage) defaults to the MLflow run
    being logged to, or the active run; ``data_uri`` names the training data.
    """
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME

    target = Path(path)
    if target.exists() or target.is_symlink():
        raise ArtifactExistsError(f"{target} already exists; MLflow models are never overwritten")
    if version is None:
        version = getattr(mlflow_model, "model_id", None)
        if not version:
            raise ValueError("give version=...: it is signed with the model (name/version)")
    import safeload

    target.mkdir(parents=True)
    try:
        safeload.save(
            model,
            target / DATA_DIR,
            key=key,
            format=format,
            name=name,
            version=version,
            sample=sample,
            training_data=training_data,
            metrics=metrics,
            config=config,
            policy=policy,
            trusted=trusted,
            data_uri=data_uri,
            run_id=run_id if run_id is not None else mlflow_run_id(mlflow_model),
        )
        meta = mlflow_model if mlflow_model is not None else Model()
        signature = _mlflow_signature(model, sample, training_data)
        if signature is not None:
            meta.signature = signature
        _add_flavors(meta, format)
        meta.save(str(target / MLMODEL_FILE_NAME))
        _write_environment(target, format)
        sign_model_dir(target, key=key, subject_name=f"{name}/{version}")
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def mlflow_run_id(mlflow_model: Any = None) -> str | None:
    """The MLflow run a model is logged to: the logged model's own, else the active run's."""
    run_id = getattr(mlflow_model, "run_id", None)
    if isinstance(run_id, str) and run_id:
        return run_id
    import mlflow

    active = mlflow.active_run()
    return str(active.info.run_id) if active is not None else None


def log_model(
    model: Any,
    name: str,
    *,
    key: SigningKey,
    version: str | None = None,
    sample: Any = None,
    registered_model_name: str | None = None,
    **save_options: Any,
) -> Any:
    """Log a signed model to the active MLflow run (and register it); returns MLflow's ModelInfo.

    ``name`` is both the MLflow model's name and the signed model name; ``version`` defaults to
    the logged model's id (``m-…``). ``save_options`` go to :func:`save_model` (``format``,
    ``training_data``, ``data_uri``, ``metrics``, ``config``, ``policy``, ``trusted``); the
    run's id is recorded in the signed lineage.
    """
    from mlflow.models import Model

    # Before MLflow records a logged model that could never be signed.
    if not isinstance(key, SigningKey):
        raise TypeError("key must be a safeload.SigningKey (see safeload.load_signing_key)")
    if save_options.get("trusted") is not None:
        resolve_keyring(save_options["trusted"]).check_signer(key)

    def save(path: str, mlflow_model: Any, **_: Any) -> None:
        save_model(
            model,
            path,
            key=key,
            name=name,
            version=version,
            sample=sample,
            mlflow_model=mlflow_model,
            **save_options,
        )

    # Model.log calls flavor.save_model(path=..., mlflow_model=...) with the logged model's id.
    flavor = types.SimpleNamespace(__name__=LOADER_MODULE, save_model=save)
    return Model.log(
        artifact_path=None,
        name=name,
        flavor=flavor,
        registered_model_name=registered_model_name,
    )


def _add_flavors(meta: Any, format: str) -> None:
    """``python_function`` pointing at this module and ``data/``, and a descriptive flavor.

    Nothing in the flavors is read at load (trust comes from the deployment), except the
    check that the signed MLmodel names this loader and ``data``.
    """
    from mlflow import pyfunc
    from mlflow.utils.environment import _CONDA_ENV_FILE_NAME, _PYTHON_ENV_FILE_NAME

    pyfunc.add_to_model(
        meta,
        loader_module=LOADER_MODULE,
        data=DATA_DIR,
        conda_env=_CONDA_ENV_FILE_NAME,
        python_env=_PYTHON_ENV_FILE_NAME,
    )
    meta.add_flavor(
        FLAVOR_NAME,
        data=DATA_DIR,
        format=format,
        safeload_version=importlib.metadata.version("safeload"),
    )


def _write_environment(target: Path, format: str) -> None:
    """conda.yaml, python_env.yaml, requirements.txt, as MLflow's own flavors write them."""
    import sklearn
    import yaml
    from mlflow.utils.environment import (
        _CONDA_ENV_FILE_NAME,
        _PYTHON_ENV_FILE_NAME,
        _REQUIREMENTS_FILE_NAME,
        _process_pip_requirements,
        _PythonEnv,
    )

    requirements = [
        f"safeload=={importlib.metadata.version('safeload')}",
        f"scikit-learn=={sklearn.__version__}",
    ]
    if format == "skops":
        requirements.append(f"skops=={importlib.metadata.version('skops')}")
    conda_env, pip_requirements, _ = _process_pip_requirements(requirements)
    with (target / _CONDA_ENV_FILE_NAME).open("x") as out:
        yaml.safe_dump(conda_env, stream=out, default_flow_style=False)
    (target / _REQUIREMENTS_FILE_NAME).write_text("\n".join(pip_requirements))
    _PythonEnv.current().to_yaml(str(target / _PYTHON_ENV_FILE_NAME))


def _mlflow_signature(model: Any, sample: Any, training_data: Any) -> Any:
    """The MLflow ModelSignature shown by the UI and enforced by serving, from the saved input.

    From ``sample`` and the model's predictions on it (what ``safeload.json`` records), else
    from the columns and dtypes of ``training_data`` (the schema saved), else none.
    """
    from mlflow.models import infer_signature

    if sample is not None:
        predict = getattr(model, "predict", None)
        return infer_signature(sample, predict(sample) if callable(predict) else None)
    if training_data is not None:
        return infer_signature(training_data[:5])
    return None


def sign_model_dir(path: str | os.PathLike[str], *, key: SigningKey, subject_name: str) -> Path:
    """Write ``safeload-mlflow.sig`` over an MLflow model directory holding a signed ``data/``.

    Every top-level file is listed by digest, ``data`` by the SHA-256 of the statement its
    ``model.sig`` signs (which lists every file of ``data/``). Anything else (a symlink,
    another folder, an odd name) is refused rather than left unsigned.
    """
    root = Path(path)
    digests: dict[str, tuple[str, ...]] = {}
    for entry in sorted(os.listdir(root)):
        item = root / entry
        if entry == MLFLOW_SIGNATURE_FILE:
            raise ArtifactExistsError(f"{root} is already signed; signatures are never replaced")
        if not is_plain_name(entry) or entry == REGISTRY_NOTE or item.is_symlink():
            raise OperationalError(f"cannot sign {item}: not a plain file safeload signs")
        if entry == DATA_DIR and item.is_dir():
            continue
        if not item.is_file():
            raise OperationalError(f"cannot sign {item}: only files and data/ are signed")
        digests[entry] = (sha256_hex(item.read_bytes()),)
    data_sig = root / DATA_DIR / SIGNATURE_FILE
    if not data_sig.is_file():
        raise OperationalError(f"{root} has no signed data/ artifact ({data_sig})")
    bundle, _, _ = parse_bundle(data_sig.read_bytes())
    digests[DATA_DIR] = (sha256_hex(bundle.payload),)
    resources = resources_for(digests, {}, Hashing())
    signed = sign_statement(key, build_statement(subject_name, resources))
    with (root / MLFLOW_SIGNATURE_FILE).open("xb") as out:
        out.write(signed)
    return root


def cosign_model_dir(
    path: str | os.PathLike[str],
    key: SigningKey,
    *,
    trusted: TrustSource | None = None,
    policy: PolicySource = None,
) -> Path:
    """Add ``key``'s signature to both bundles of an MLflow model directory; no other byte.

    ``data/model.sig`` is cosigned by :func:`safeload.cosign` (with its checks), and
    ``safeload-mlflow.sig`` gets the same key's signature over its unchanged statement, rebuilt
    from the directory first: a file changed since signing is refused, never vouched for. So a
    ``trust.toml`` rule that needs two signers holds for the MLflow files as for the model.
    """
    from safeload.cosigning import (
        changed,
        check_bundle,
        cosign,
        cosigner_keyring,
        replace_signature,
    )
    from safeload.signing import append_signature

    keyring = cosigner_keyring(key, trusted)
    root = Path(path)
    where = f"the MLflow model at {root}"
    with _open_dir(root, where) as fd:
        sizes = _list_model_dir(fd, where)
        if MLFLOW_SIGNATURE_FILE not in sizes:
            raise OperationalError(f"{where} is not signed yet: save it with safeload.mlflow")
        signature = bytes(_read(fd, MLFLOW_SIGNATURE_FILE, _MAX_SIGNATURE_BYTES, where)[0])
        with _naming(MLFLOW_SIGNATURE_FILE, where):
            bundle, subject, _ = parse_bundle(signature)
        digests = {
            name: _read(fd, name, _limit_for(name), where)[1]
            for name in sorted(sizes)
            if name not in _UNSIGNED and name != DATA_DIR
        }
        digests[DATA_DIR] = (_data_statement(fd, where)[2],)
    try:
        rebuilt = build_statement(subject, resources_for(digests, {}, Hashing()))
    except ValueError as exc:
        raise changed(root) from exc
    if rebuilt != bundle.payload:
        raise changed(root)
    check_bundle(bundle, key, keyring, str(root))
    try:
        cosign(root / DATA_DIR, key, trusted=keyring, policy=policy)
    except ArtifactExistsError:
        pass  # an earlier run signed data/ and stopped before the MLflow bundle: finish it
    new = append_signature(strictjson.loads(signature, MLFLOW_SIGNATURE_FILE), rebuilt, key)
    replace_signature(root, signature, new, name=MLFLOW_SIGNATURE_FILE)
    return root


@dataclass(frozen=True)
class VerifiedModelDir:
    """An MLflow model directory whose top-level files and ``data/`` binding verified.

    ``data_subject`` and ``data_manifest`` are what ``data/model.sig`` must still sign when
    ``data/`` is loaded (they were bound here by digest, not yet authenticated by themselves).
    """

    path: Path
    statement: VerifiedStatement
    data_subject: str
    data_manifest: Manifest
    mlmodel: dict[str, Any]


def verify_model_dir(path: str | os.PathLike[str], *, trusted: TrustSource) -> VerifiedModelDir:
    """Verify ``safeload-mlflow.sig`` over an MLflow model directory; deserializes nothing.

    The listing first (plain names, regular files, one real ``data`` folder, sizes within
    limits), then the signature by the trusted keyring, then exactly the signed files (nothing
    added or missing), each read once by descriptor and hashed, ``data`` by its statement, and
    last the signed ``MLmodel``, which must name this loader and ``data`` and no other flavor.
    """
    keyring = resolve_keyring(trusted)
    root = Path(path)
    where = f"the MLflow model at {root}"
    with _open_dir(root, where) as fd:
        sizes = _list_model_dir(fd, where)
        if MLFLOW_SIGNATURE_FILE not in sizes:
            raise UnsignedArtifactError(
                f"{where} carries no {MLFLOW_SIGNATURE_FILE}: its MLmodel and environment files "
                "are not signed. Log it with safeload.mlflow.log_model or save_model."
            )
        for required in ("MLmodel", DATA_DIR):
            if required not in sizes:
                raise MalformedArtifactError(f"{where} has no {required}")
        signature = _read(fd, MLFLOW_SIGNATURE_FILE, _MAX_SIGNATURE_BYTES, where)[0]
        with _naming(MLFLOW_SIGNATURE_FILE, where):
            statement = verify_signature(signature, keyring)
            if statement.hashing != Hashing():
                raise MalformedArtifactError(
                    f"{where}: {MLFLOW_SIGNATURE_FILE} must sign whole files with SHA-256"
                )
            signed_names = {n: s for n, s in sizes.items() if n not in _UNSIGNED}
            check_file_set(statement, signed_names)
            buffers: dict[str, memoryview] = {}
            digests: dict[str, tuple[str, ...]] = {}
            for name in sorted(signed_names):
                if name != DATA_DIR:
                    buffers[name], digests[name] = _read(fd, name, _MAX_MLFLOW_FILE_BYTES, where)
            subject, manifest, payload_digest = _data_statement(fd, where)
            digests[DATA_DIR] = (payload_digest,)
            check_manifest(statement, digests)
    mlmodel = _check_mlmodel(buffers["MLmodel"], where)
    return VerifiedModelDir(root, statement, subject, manifest, mlmodel)


_UNSIGNED = frozenset({MLFLOW_SIGNATURE_FILE, REGISTRY_NOTE})


@contextmanager
def _open_dir(path: Path, where: str, dir_fd: int | None = None) -> Iterator[int]:
    try:
        fd = os.open(path, _OPEN_DIR, dir_fd=dir_fd)
    except FileNotFoundError as exc:
        raise ArtifactNotFoundError(f"no MLflow model at {path}") from exc
    except OSError as exc:
        raise MalformedArtifactError(
            f"cannot open {where} safely ({exc.strerror}); symlinks are refused"
        ) from exc
    try:
        yield fd
    finally:
        os.close(fd)


def _list_model_dir(fd: int, where: str) -> dict[str, int]:
    """Names and sizes at the top of the directory, checked before any byte is read."""
    sizes: dict[str, int] = {}
    with os.scandir(fd) as entries:
        for entry in entries:
            if len(sizes) >= _MAX_ENTRIES:
                raise MalformedArtifactError(f"{where} holds more than {_MAX_ENTRIES} entries")
            if not is_plain_name(entry.name):
                raise MalformedArtifactError(f"{where} holds an odd name {shown(entry.name)}")
            info = entry.stat(follow_symlinks=False)
            if entry.name == DATA_DIR and stat.S_ISDIR(info.st_mode):
                sizes[entry.name] = 0
                continue
            if not stat.S_ISREG(info.st_mode):
                raise MalformedArtifactError(
                    f"{entry.name} in {where} is not a regular file (a symlink, a folder other "
                    f"than {DATA_DIR}/, or a special file)"
                )
            limit = _limit_for(entry.name)
            if info.st_size > limit:
                raise MalformedArtifactError(
                    f"{entry.name} in {where} is {info.st_size} bytes, over its {limit}-byte limit"
                )
            sizes[entry.name] = info.st_size
    return sizes


def _limit_for(name: str) -> int:
    if name == REGISTRY_NOTE:
        return _MAX_REGISTRY_NOTE
    if name == MLFLOW_SIGNATURE_FILE:
        return _MAX_SIGNATURE_BYTES
    return _MAX_MLFLOW_FILE_BYTES


def _read(fd: int, name: str, limit: int, where: str) -> tuple[memoryview, tuple[str, ...]]:
    """One file under the directory descriptor, read once (bounded) and hashed whole."""
    try:
        file_fd = os.open(name, _OPEN_FILE, dir_fd=fd)
    except OSError as exc:
        raise MalformedArtifactError(
            f"cannot open {name} in {where} safely ({exc.strerror})"
        ) from exc
    try:
        data, digests = read_fd(file_fd, f"{name} in {where}", limit)
    finally:
        os.close(file_fd)
    return data, digests or ()


def _data_statement(fd: int, where: str) -> tuple[str, Manifest, str]:
    """``data/model.sig``'s claimed subject and manifest, and the SHA-256 of its statement.

    Not authentic by itself: the digest is checked against the signed MLflow manifest here,
    and the load of ``data/`` authenticates the statement and must find the same one.
    """
    with _open_dir(Path(DATA_DIR), f"{DATA_DIR}/ of {where}", dir_fd=fd) as data_fd:
        try:
            os.stat(SIGNATURE_FILE, dir_fd=data_fd, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise UnsignedArtifactError(f"{DATA_DIR}/ of {where} is not signed") from exc
        raw = _read(data_fd, SIGNATURE_FILE, _MAX_SIGNATURE_BYTES, f"{DATA_DIR}/ of {where}")[0]
    bundle, subject, manifest = parse_bundle(raw)
    return subject, manifest, hashlib.sha256(bundle.payload).hexdigest()


def _check_mlmodel(data: memoryview, where: str) -> dict[str, Any]:
    """The signed MLmodel must name this loader, ``data``, no code and no other flavor."""
    import yaml

    try:
        doc = yaml.safe_load(bytes(data))
    except yaml.YAMLError as exc:
        raise MalformedArtifactError(f"the signed MLmodel of {where} is not YAML") from exc
    flavors = doc.get("flavors") if isinstance(doc, dict) else None
    if not isinstance(flavors, dict) or not set(flavors) <= _FLAVORS:
        found = sorted(map(str, flavors)) if isinstance(flavors, dict) else []
        raise MalformedArtifactError(
            f"the signed MLmodel of {where} declares flavors {shown(found)}; safeload models "
            f"declare only {sorted(_FLAVORS)}"
        )
    pyfunc = flavors.get("python_function")
    if (
        not isinstance(pyfunc, dict)
        or pyfunc.get("loader_module") != LOADER_MODULE
        or pyfunc.get("data") != DATA_DIR
        or pyfunc.get("code")
        or pyfunc.get("model_config")
    ):
        raise MalformedArtifactError(
            f"the signed MLmodel of {where} does not load {DATA_DIR}/ with {LOADER_MODULE} "
            "(or adds code or model_config)"
        )
    return dict(doc)


@contextmanager
def _naming(file: str, where: str) -> Iterator[None]:
    """Say which signature a refusal is about: the messages of the shared checks say model.sig."""
    try:
        yield
    except SafeloadError as exc:
        if exc.args and isinstance(exc.args[0], str):
            exc.args = (f"{where}, {file}: {exc.args[0]}", *exc.args[1:])
        raise


def load_model_dir(
    path: str | os.PathLike[str],
    *,
    trusted: TrustSource,
    options: LoadOptions | None = None,
    policy: PolicySource = None,
    name: str | None = None,
    version: str | None = None,
) -> LoadedArtifact:
    """The whole gate over a local MLflow model directory: its signature, then ``data/``.

    ``data/`` is loaded by :func:`safeload.load_checked` with the same keyring, and must be
    signed with the very statement the MLflow signature bound (checked again after the load,
    so a ``data/`` swapped while loading is refused).
    """
    keyring = resolve_keyring(trusted)
    verified = verify_model_dir(path, trusted=keyring)
    loaded = load_checked(
        verified.path / DATA_DIR,
        trusted=keyring,
        options=options,
        policy=policy,
        name=name,
        version=version,
    )
    statement = loaded.statement
    if (
        statement is None
        or statement.subject_name != verified.data_subject
        or statement.manifest != verified.data_manifest
    ):
        raise TamperedArtifactError(
            f"{DATA_DIR}/ of the MLflow model at {verified.path} changed while it was loaded; "
            "do not load it",
            files=[DATA_DIR],
        )
    return loaded


def load_model(
    model_uri: str,
    *,
    trusted: TrustSource,
    options: LoadOptions | None = None,
    policy: PolicySource = None,
    name: str | None = None,
    version: str | None = None,
    tracking_uri: str | None = None,
) -> LoadedArtifact:
    """Download any MLflow model URI into a fresh private folder and load it through the gate.

    ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
    ``models:/<model_id>``, a local path: whatever ``mlflow.artifacts.download_artifacts``
    takes. Returns the schema-checked :class:`~safeload.LoadedArtifact`; ``name``/``version``,
    when given, must be the signed ones.
    """
    import mlflow.artifacts

    keyring = resolve_keyring(trusted)  # before anything is downloaded
    limits = (options or LoadOptions()).read_limits
    _check_listing(model_uri, tracking_uri, limits)
    with tempfile.TemporaryDirectory(prefix="safeload-mlflow-") as folder:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=model_uri, dst_path=folder, tracking_uri=tracking_uri
            )
        )
        inside = Path(folder).resolve()
        if local.is_symlink() or inside not in (local.resolve(), local.resolve().parent):
            raise MalformedArtifactError(
                f"{shown(model_uri)} did not download into a model folder of its own"
            )
        return load_model_dir(
            local, trusted=keyring, options=options, policy=policy, name=name, version=version
        )


def _check_listing(model_uri: str, tracking_uri: str | None, limits: ReadLimits) -> None:
    """Refuse, before a byte is downloaded, a model whose listing is not one safeload writes.

    The store's own listing (names, kinds, sizes) must be a model folder's: at most
    ``_MAX_ENTRIES`` entries at the top, each file within its limit, one folder (``data``) of
    at most ``limits.max_files`` files within ``read_limits``. Otherwise a model URI could fill
    the disk of the process that downloads it. A store that lies about sizes is still caught
    after the download, unread (``_list_model_dir``, ``read_fd``), but not before.
    """
    from mlflow.artifacts import _get_root_uri_and_artifact_path
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    where = f"{shown(model_uri)} (as listed by MLflow, before downloading)"
    root, path = _get_root_uri_and_artifact_path(model_uri)
    repo = get_artifact_repository(artifact_uri=root, tracking_uri=tracking_uri)
    top = _bounded(repo.list_artifacts(path), _MAX_ENTRIES, where)
    if not top:
        raise ArtifactNotFoundError(f"no MLflow model at {shown(model_uri)}")
    for entry in top:
        name = entry.path.rsplit("/", 1)[-1]
        if entry.is_dir:
            if name != DATA_DIR:
                raise MalformedArtifactError(
                    f"{where} holds a folder {shown(name)}: only {DATA_DIR}/ is a model's"
                )
            _check_data_listing(repo.list_artifacts(entry.path), limits, where)
        else:
            _check_size(name, entry.file_size, _limit_for(name), where)


def _check_data_listing(entries: Any, limits: ReadLimits, where: str) -> None:
    files = _bounded(entries, limits.max_files, f"{DATA_DIR}/ of {where}")
    total = 0
    budget = limits.max_model_bytes + limits.max_metadata_bytes + limits.max_signature_bytes
    for entry in files:
        name = entry.path.rsplit("/", 1)[-1]
        if entry.is_dir:
            raise MalformedArtifactError(f"{DATA_DIR}/ of {where} holds a folder {shown(name)}")
        _check_size(f"{DATA_DIR}/{name}", entry.file_size, limits.max_model_bytes, where)
        total += entry.file_size
    if total > budget:
        raise MalformedArtifactError(
            f"{DATA_DIR}/ of {where} is {total} bytes, over the {budget}-byte limit of read_limits"
        )


def _bounded(entries: Any, limit: int, where: str) -> list[Any]:
    listed = list(entries or [])
    if len(listed) > limit:
        raise MalformedArtifactError(f"{where} holds {len(listed)} entries, over {limit}")
    return listed


def _check_size(name: str, size: int | None, limit: int, where: str) -> None:
    if not isinstance(size, int) or size < 0:
        raise MalformedArtifactError(f"{where} gives no size for {shown(name)}")
    if size > limit:
        raise MalformedArtifactError(f"{shown(name)} in {where} is {size} bytes, over {limit}")


class PyFuncModel:
    """What MLflow serves: ``predict`` checks the input against the saved schema first.

    A :class:`~safeload.ContractError` becomes an ``MlflowException`` (``INVALID_PARAMETER_VALUE``,
    HTTP 400 from ``mlflow models serve``) carrying its message.
    """

    def __init__(self, loaded: LoadedArtifact) -> None:
        self.loaded = loaded

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        """``loaded.predict``: the saved schema is checked first."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        if params:
            raise MlflowException(
                "safeload models take no inference params", error_code=INVALID_PARAMETER_VALUE
            )
        try:
            return self.loaded.predict(model_input)
        except ContractError as exc:
            raise MlflowException(
                f"safeload refused the input: {exc}", error_code=INVALID_PARAMETER_VALUE
            ) from exc

    def get_raw_model(self) -> LoadedArtifact:
        """The schema-checked artifact (MLflow's ``PyFuncModel.get_raw_model()``)."""
        return self.loaded


def _load_pyfunc(data_path: str, model_config: Any = None) -> PyFuncModel:
    """MLflow's entry point (``mlflow.pyfunc.load_model``, ``mlflow models serve``).

    Keys come from ``$SAFELOAD_TRUSTED_KEYS`` and the type policy from ``$SAFELOAD_POLICY``,
    never from the model; the whole model directory (``data_path``'s parent) is verified
    before ``data/`` is loaded.
    """
    keys = os.environ.get(KEYS_ENV, "")
    if not keys:
        raise UnsignedArtifactError(
            f"refusing to load {shown(data_path)}: no trusted keys configured. Set {KEYS_ENV} "
            "to the folder of trusted *.pub keys (and trust.toml) in the environment that "
            "loads or serves the model; safeload never takes trust from the model itself."
        )
    if model_config:
        raise MalformedArtifactError("safeload models take no model_config")
    data = Path(data_path)
    if data.name != DATA_DIR:
        raise MalformedArtifactError(
            f"MLflow gave {shown(data_path)} as the model data; safeload models keep it in "
            f"{DATA_DIR}/ (was MLmodel edited?)"
        )
    return PyFuncModel(load_model_dir(data.parent, trusted=keys))
