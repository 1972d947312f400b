"""Sign-and-save: write an artifact directory atomically, signed over every file.

The artifact is built in a temporary sibling directory (same filesystem) and renamed into place
only once every file is written and signed, so a crash leaves no half artifact at the target,
and an existing version is never overwritten. Nothing is fsynced (on ext4 that would flush the
whole model through the journal and double the save time): after a power loss an artifact may
hold unflushed bytes, and then it is refused as tampered; it never loads corrupted. The model
file is hashed from the buffers being written (by a second thread), never read back; joblib's
format is produced by :mod:`safeload.joblibwriter` with array data written from the arrays'
own memory.
"""

from __future__ import annotations

import io
import mmap
import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePath
from types import TracebackType
from typing import Any

import joblib
from packaging.version import InvalidVersion, Version

from safeload import remote, strictjson
from safeload.errors import (
    ArtifactExistsError,
    MalformedArtifactError,
    OperationalError,
    SafeloadError,
    StoreLayoutError,
    UntrustedTypeError,
    untrusted_types_message,
)
from safeload.fitted import check_fitted
from safeload.gcpause import paused_gc
from safeload.joblibwriter import Unsupported, joblib_pieces
from safeload.keys import SigningKey, TrustSource, resolve_keyring
from safeload.layout import (
    METADATA_FILE,
    MODEL_FILES,
    SIGNATURE_FILE,
    ListedArtifact,
    check_name,
    read_model_file,
)
from safeload.lineage import GitProbe, lineage_record
from safeload.manifest import (
    SHA256,
    Hashing,
    file_digests,
    for_writing,
    resources_for,
    split_shards,
    stream_hasher,
)
from safeload.metadata import JSONValue, build_metadata
from safeload.policy import PolicySource, TypePolicy, resolve_policy
from safeload.reading import read_artifact
from safeload.signing import build_statement, sign_statement
from safeload.typegate import TypeChecked, check_types
from safeload.zipalign import align_stored_entries


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes what passes through it (per shard), in a worker thread.

    Immutable chunks (``bytes``, which is what pickle and joblib write) are hashed by one worker
    thread while the caller goes on serializing and writing; mutable ones are hashed at once,
    since their owner may reuse them after ``write`` returns. One worker keeps file order.
    """

    def __init__(self, handle: io.BufferedWriter, scheme: Hashing) -> None:
        super().__init__()
        self._handle = handle
        self._hasher = stream_hasher(scheme)
        self._written = 0
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: Future[None] | None = None

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        # joblib pads arrays to 16-byte alignment only when the file can tell its position;
        # aligned payloads are what let the loader build arrays as views without copying.
        return self._written

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if isinstance(data, bytes) and view.nbytes >= (1 << 16):
            self._pending = self._pool.submit(self._hasher.update, view)
        else:
            if self._pending is not None:
                self._pending.result()
            self._hasher.update(view)
        self._handle.write(view)
        self._written += view.nbytes
        return view.nbytes

    def digests(self) -> tuple[str, ...]:
        """Wait for the hashing thread and return the shard digests of everything written."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        self._pool.shutdown()
        return self._hasher.digests()


class _Staging:
    """A temporary sibling directory that becomes the artifact on :meth:`commit`.

    A save that fails leaves nothing behind: neither the staging directory nor the parent
    folders it had to create (``models/churn`` for ``models/churn/1.0.0``), which would
    otherwise show up in a Store as a model without versions. Only folders this save created,
    and that are still empty, are removed.
    """

    def __init__(self, target: str | os.PathLike[str], scheme: Hashing) -> None:
        self.target = Path(target)
        self.scheme = scheme
        self.committed = False
        self.created: list[Path] = []  # parent folders this save made, deepest first
        if self.target.exists() or self.target.is_symlink():
            raise ArtifactExistsError(
                f"{self.target} already exists; saved versions are never overwritten. "
                "Save under a new version."
            )
        try:
            check_name(self.target.name)
        except MalformedArtifactError as exc:
            raise OperationalError(
                f"cannot save to {self.target}: the last path component must be a plain name "
                "(letters, digits, '.', '_', '-'), such as a version like 1.2.0"
            ) from exc
        folder = self.target.parent
        while not os.path.lexists(folder) and folder != folder.parent:
            self.created.append(folder)
            folder = folder.parent
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.dir = Path(
                tempfile.mkdtemp(
                    prefix=f".{self.target.name}.", suffix=".partial", dir=self.target.parent
                )
            )
            # mkdtemp makes the directory 0700; the artifact gets the usual umask-based mode
            # so that a server running as another user can read it.
            umask = os.umask(0o022)
            os.umask(umask)
            os.chmod(self.dir, 0o777 & ~umask)
        except OSError as exc:
            self._remove_created()
            raise OperationalError(f"cannot create {self.target}: {exc}") from exc
        except BaseException:
            self._remove_created()
            raise
        self.digests: dict[str, tuple[str, ...]] = {}
        self.sizes: dict[str, int] = {}

    def write(self, name: str, data: bytes | bytearray | memoryview) -> None:
        """Write one small file and record its digests."""
        check_name(name)
        with (self.dir / name).open("xb") as out:
            out.write(data)
        self.record(name, file_digests(data, self.scheme), memoryview(data).nbytes)

    def record(self, name: str, digests: tuple[str, ...], size: int) -> None:
        """Record the digests of a file written into the staging directory."""
        self.digests[name], self.sizes[name] = digests, size

    def commit(self, key: SigningKey, subject_name: str) -> Path:
        """Sign the manifest of every file written, then rename the directory into place."""
        resources = resources_for(self.digests, self.sizes, self.scheme)
        bundle = sign_statement(key, build_statement(subject_name, resources))
        with (self.dir / SIGNATURE_FILE).open("xb") as out:
            out.write(bundle)
        try:
            # rename(2) is atomic; it fails if a non-empty directory appeared at the target.
            os.rename(self.dir, self.target)
        except OSError as exc:
            raise ArtifactExistsError(
                f"{self.target} appeared while saving; versions are never overwritten"
            ) from exc
        self.committed = True
        return self.target

    def _remove_created(self) -> None:
        """Remove the parent folders this save created, deepest first, while still empty."""
        for folder in self.created:
            try:
                os.rmdir(folder)  # fails on a folder that is no longer empty: keep it
            except OSError:
                return

    def __enter__(self) -> _Staging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        if not self.committed:
            self._remove_created()


def _write_joblib(
    obj: Any,
    path: Path,
    compress: int | bool | tuple[str, int],
    policy: TypePolicy,
    where: str,
    scheme: Hashing,
) -> tuple[tuple[str, ...], int]:
    """Write ``obj`` in joblib's format to a new file, type-checked; return digests and size.

    Uncompressed models go through :func:`joblib_pieces` (C pickler, arrays written from their
    own memory) and are hashed while being written; compressed ones, and graphs only joblib's
    own pickler handles, stream through ``joblib.dump``. Either way the written file is then
    scanned, so an artifact the gate would refuse is never signed.
    """
    pieces = None
    if not compress:
        try:
            pieces = joblib_pieces(obj)
        except Unsupported:
            pass  # joblib.dump below gives the user joblib's own error for such a graph
    with path.open("xb") as raw:
        if pieces is not None:

            def check() -> None:
                _check_model_file(path, policy, where)

            return _write_pieces(raw, pieces, check, scheme), raw.tell()
        writer = _HashingWriter(raw, scheme)
        try:
            joblib.dump(obj, writer, compress=compress)
        except SafeloadError:
            raise
        except Exception as exc:
            raise OperationalError(f"joblib could not serialize the model: {exc}") from exc
        finally:
            digests = writer.digests()
        raw.flush()
    _check_model_file(path, policy, where)
    return digests, path.stat().st_size


def _write_pieces(
    raw: io.BufferedWriter,
    pieces: list[bytes | memoryview],
    check: Callable[[], None],
    scheme: Hashing,
) -> tuple[str, ...]:
    """Write the buffers, then run ``check`` (the type scan), while shards are hashed.

    This thread writes (``writev``, which releases the GIL) while a worker hashes shards
    (hashlib releases it too); then it scans the written file, and helps with whatever
    shards are left. BLAKE3 hashes the whole file as one "shard", on every core by itself.
    If anything raises, hashing stops and the error propagates (the caller removes the
    partial file).
    """
    shards = split_shards(pieces, scheme.shard_size)
    digests: list[str] = [""] * len(shards)
    todo = deque(range(len(shards)))
    stop = threading.Event()

    def hash_shards() -> None:
        while not stop.is_set():
            try:
                index = todo.popleft()
            except IndexError:
                return
            hasher = scheme.new()
            for part in shards[index]:
                hasher.update(part)
            digests[index] = hasher.hexdigest()

    with ThreadPoolExecutor(max_workers=1) as pool:
        hashing = pool.submit(hash_shards)
        try:
            raw.flush()
            _write_all(raw.fileno(), pieces)
            check()
            hash_shards()
            hashing.result()
        except BaseException:
            stop.set()
            raise
    return tuple(digests)


def _write_all(fd: int, pieces: list[bytes | memoryview]) -> None:
    """Write every buffer in order with few system calls (``writev`` batches)."""
    for first in range(0, len(pieces), _IOV_MAX):
        views = [memoryview(p).cast("B") for p in pieces[first : first + _IOV_MAX]]
        while views:
            written = os.writev(fd, views)
            if written == 0 and any(v.nbytes for v in views):
                raise OSError("writev wrote nothing")
            while views and written >= views[0].nbytes:
                written -= views[0].nbytes
                views.pop(0)
            if views and written:
                views[0] = views[0][written:]


_IOV_MAX = 512
_INLINE_BYTES = 1 << 20


def _check_model_file(path: Path, policy: TypePolicy, where: str) -> None:
    """Scan the file just written: an artifact that the gate would refuse is never produced.

    Refusals name ``where`` (the model and its target), not the staging file's path.
    """
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise OperationalError("joblib wrote an empty model file")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                checked = check_types(view, policy, format="joblib", path=where)
                if isinstance(checked.payload, memoryview):
                    checked.payload.release()  # a raw stream is a view on the mapping
            finally:
                view.release()


class _Captured:
    """The one write ``skops.io.dump`` makes: a view of its zip buffer, kept without a copy."""

    def __init__(self) -> None:
        self.parts: list[memoryview] = []

    def write(self, data: Any) -> int:
        self.parts.append(memoryview(data).cast("B"))
        return self.parts[-1].nbytes

    def view(self) -> memoryview:
        if len(self.parts) == 1:
            return self.parts[0]
        return memoryview(b"".join(self.parts))


def _write_skops(
    obj: Any,
    path: Path,
    compress: int | bool | tuple[str, int],
    policy: TypePolicy,
    where: str,
    scheme: Hashing,
) -> tuple[tuple[str, ...], int]:
    """Serialize with skops, then write, hash and scan the zip at once; return digests, size.

    skops builds the whole zip in memory; its buffer is used as it is (``dumps`` would copy
    it). Writing and hashing release the GIL, so they run in worker threads while this one
    scans the same bytes: what the gate would refuse is never signed (the caller removes the
    staging directory on any error).
    """
    import zipfile

    import skops.io

    if isinstance(compress, tuple):
        raise ValueError("skops takes compress as a zip level (0-9), not a joblib compressor")
    captured = _Captured()
    try:
        if compress:
            skops.io.dump(
                obj, captured, compression=zipfile.ZIP_DEFLATED, compresslevel=int(compress)
            )
        else:
            skops.io.dump(obj, captured)
    except Exception as exc:
        raise OperationalError(f"skops could not serialize the model: {exc}") from exc
    data = captured.view()
    aligned = None if compress else align_stored_entries(data)
    if aligned is not None:  # arrays that load as views: copying 10 MB costs more than this
        data = memoryview(aligned)
    if data.nbytes <= _INLINE_BYTES:  # threads cost more than writing and hashing this
        with path.open("xb") as raw:
            _write_all(raw.fileno(), [data])
        check_types(data, policy, format="skops", path=where)
        return file_digests(data, scheme), data.nbytes
    with path.open("xb") as raw, ThreadPoolExecutor(max_workers=2) as pool:
        writing = pool.submit(_write_all, raw.fileno(), [data])
        hashing = pool.submit(file_digests, data, scheme)
        try:
            check_types(data, policy, format="skops", path=where)
        finally:
            writing.result()
            digests = hashing.result()
    return digests, data.nbytes


def _onnx_bytes(
    obj: Any, sample: Any, metadata: dict[str, JSONValue], where: str, policy: TypePolicy
) -> bytes:
    """Convert with skl2onnx, proven on the sample; record the graph in ``metadata``.

    The graph is checked under ``policy`` (its ``onnx_ops``), as a load with it would.
    """
    from safeload import onnxconvert

    data, spec = onnxconvert.convert_to_onnx(obj, sample, where, policy=policy)
    metadata["onnx"] = spec
    metadata["versions"] = {**metadata["versions"], **onnxconvert.library_versions()}
    predictions = metadata["sample"]["predictions"]  # recorded from the model itself
    metadata["sample"]["predictions"] = {
        **{k: v for k, v in predictions.items() if k in spec["methods"]},
        "rtol": spec["rtol"],
        "atol": spec["atol"],
    }
    return data


def _identity(target: PurePath, name: str | None, version: str | None) -> tuple[str, str]:
    """Name and version default to the parent folder's and the folder's own name.

    When the folder's name is a version (PEP 440), the path is a Store layout
    ``ROOT/NAME/VERSION``, and a given name or version must be the path's: a Store loads that
    path only if the artifact is signed as that name and version, so an artifact saved there
    under another identity would be refused (as a swap) at every load.
    """
    parent = target.parent.name
    if parent and _is_version(target.name):
        if (name is not None and name != parent) or (
            version is not None and version != target.name
        ):
            given_name = parent if name is None else name
            given_version = target.name if version is None else version
            raise StoreLayoutError(
                f"cannot save to {target} as name={given_name[:80]!r}, "
                f"version={given_version[:80]!r}: the path is a Store layout ROOT/NAME/VERSION "
                f"(its last folder is a version), which names the model {parent!r}, version "
                f"{target.name!r}, and a Store would refuse the artifact there at every load, "
                f"as swapped. Save to {target.parent.parent / given_name / given_version}, or "
                f"pass name={parent!r}, version={target.name!r} (or leave them out: they "
                "default to the path's)."
            )
    return (
        name if name is not None else parent or target.name,
        version if version is not None else target.name,
    )


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def save(
    obj: Any,
    path: str | os.PathLike[str],
    *,
    key: SigningKey,
    format: str = "joblib",
    name: str | None = None,
    version: str | None = None,
    compress: int | bool | tuple[str, int] = 0,
    metrics: Mapping[str, JSONValue] | None = None,
    config: Mapping[str, JSONValue] | None = None,
    policy: PolicySource = None,
    sample: Any = None,
    training_data: Any = None,
    trusted: TrustSource | None = None,
    storage_options: remote.StorageOptions | None = None,
    hash: str = SHA256,
    train_data: Any = None,
    data_uri: str | None = None,
    run_id: str | None = None,
    source: str | os.PathLike[str] | None = None,
) -> Path | remote.Url:
    """Save a fitted model (the whole Pipeline) as a signed artifact directory at ``path``.

    ``path`` may be a URL (``s3://bucket/models/churn/1.2.0``, see
    :mod:`safeload.remote`): the artifact is built and signed locally, then uploaded with
    ``model.sig`` last, refusing to replace any object; ``storage_options`` configure its
    fsspec filesystem (endpoint, credentials). The URL is returned.

    ``name`` and ``version`` default to the parent folder's and the folder's own name
    (``models/churn/1.2.0``). When the folder's name is a version (PEP 440), the path is read
    as a :class:`~safeload.Store` layout ``ROOT/NAME/VERSION`` and a ``name`` or ``version``
    given must be the path's (:class:`~safeload.errors.StoreLayoutError` otherwise): a Store
    would refuse, as swapped, an artifact signed under another identity than its path.

    A model that is not fitted (nor any step of a Pipeline) is refused first
    (:class:`~safeload.UnfittedModelError`), before ``sample`` is used. The model's types are
    scanned against ``policy`` before the artifact is signed, so an artifact that ``load``
    would refuse is never written. ``sample`` (a few input rows) is stored with the
    predictions the model gives on it, and re-checked at load; ``train_data`` (also spelled
    ``training_data``, its earlier name) gives the schema's dtypes, its lineage (a
    ``safeload-table-v1`` digest, row and column counts, ``data_uri`` when given) and
    per-feature statistics that
    :meth:`~safeload.LoadedArtifact.check_drift` compares new data with; never the data.
    The code is recorded too: the git commit of the work tree at ``source`` (default: the
    current directory) and whether it had uncommitted changes, when git can tell (a save never
    fails for want of git); ``run_id`` names the training run (MLflow's, for example).
    A failed save leaves nothing behind, not even the parent folders it created.
    ``trusted`` (a keyring or keys folder with its ``trust.toml``) refuses a key that is
    retired, revoked, expired or not trusted there, before anything is written.
    ``hash`` is the manifest's file hash: ``"sha256"`` (the default, in 16 MiB shards) or
    ``"blake3"`` (whole files, multi-threaded; the ``[blake3]`` extra), named as OpenSSF
    model_signing 1.1 names them (docs/format.md).

    ``format`` is ``"joblib"`` (the default), ``"skops"`` or ``"onnx"`` (the ``[onnx]``
    extra): the model is converted by skl2onnx, and the graph must pass the load gate and
    predict ``sample`` (required) as the model does, labels equal and floats within 1e-4, or
    :class:`~safeload.ConversionError` (``ConversionMismatchError``) says why and nothing is
    written (docs/guides/choosing-a-format.md).
    """
    if not isinstance(key, SigningKey):
        raise TypeError("key must be a safeload.SigningKey (see safeload.generate_key)")
    if train_data is not None:
        if training_data is not None:
            raise TypeError("give train_data or training_data (the same thing), not both")
        training_data = train_data
    scheme = for_writing(hash)
    if trusted is not None:
        resolve_keyring(trusted).check_signer(key)
    if format not in MODEL_FILES:
        raise ValueError(f"unknown format {format!r}; supported: 'joblib', 'skops', 'onnx'")
    check_fitted(obj)
    where_to = remote.local_or_url(path)
    target = where_to if isinstance(where_to, Path) else remote.staged_identity(where_to)
    name, version = _identity(target, name, version)
    trusted_types = resolve_policy(policy)
    # git runs while the model is written; its answer joins the metadata
    with GitProbe(source) as git:
        try:
            metadata = build_metadata(
                obj,
                format=format,
                name=name,
                version=version,
                metrics=metrics,
                config=config,
                sample=sample,
                training_data=training_data,
                lineage=lineage_record(
                    training_data, data_uri=data_uri, run_id=run_id, source=source, code={}
                ),
            )
        except ValueError as exc:
            raise OperationalError(f"cannot record metadata: {exc}") from exc
        model_name = MODEL_FILES[format]
        where = f"The model being saved to {where_to}"
        onnx_bytes = (
            _onnx_bytes(obj, sample, metadata, where, trusted_types) if format == "onnx" else None
        )

        def write(local: Path) -> Path:
            with paused_gc(), _Staging(local, scheme) as staging:
                if onnx_bytes is not None:
                    staging.write(model_name, onnx_bytes)
                else:
                    model_path = staging.dir / model_name
                    write_model = _write_skops if format == "skops" else _write_joblib
                    written = write_model(obj, model_path, compress, trusted_types, where, scheme)
                    staging.record(model_name, *written)
                metadata["lineage"]["code"] = git.result()
                staging.write(METADATA_FILE, strictjson.dumps(metadata))
                return staging.commit(key, subject_name=f"{name}/{version}")

        try:
            if isinstance(where_to, remote.Url):
                # Built and signed locally, then uploaded with model.sig last (safeload.remote).
                return remote.publish(where_to, write, storage_options)
            return write(where_to)
        except UntrustedTypeError as exc:
            # The scan's refusal speaks of loading a file; here nothing is loaded, and the advice
            # is what to pass to save.
            raise UntrustedTypeError(
                untrusted_types_message(exc.types, where, saving=True),
                types=exc.types,
                where=where,
                saving=True,
            ) from None


def write_signed_artifact(
    path: str | os.PathLike[str],
    files: Mapping[str, bytes | bytearray | memoryview],
    *,
    key: SigningKey,
    subject_name: str | None = None,
    storage_options: remote.StorageOptions | None = None,
    hash: str = SHA256,
) -> Path | remote.Url:
    """Sign arbitrary files as an artifact, atomically; no type scan.

    This is the low-level primitive behind ``save`` and ``safeload sign``: it vouches for bytes,
    not for their safety, which ``load`` still checks independently. ``path`` may be a URL
    (uploaded as ``save`` does, ``model.sig`` last). ``hash`` as for ``save``.
    """
    where_to = remote.local_or_url(path)
    scheme = for_writing(hash)

    def write(target: Path) -> Path:
        with _Staging(target, scheme) as staging:
            for file_name, data in sorted(files.items()):
                if file_name == SIGNATURE_FILE:
                    raise ValueError(f"{SIGNATURE_FILE} is written by signing, not given")
                staging.write(file_name, data)
            return staging.commit(key, subject_name=subject_name or where_to.name)

    if isinstance(where_to, remote.Url):
        return remote.publish(where_to, write, storage_options)
    return write(where_to)


def pack_model_file(
    source: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    key: SigningKey,
    name: str | None = None,
    version: str | None = None,
    policy: PolicySource = None,
    hash: str = SHA256,
) -> Path | remote.Url:
    """Turn a file written by ``joblib.dump`` elsewhere into a signed artifact (or a URL).

    Signing vouches for the file, so it goes through the gate a load would: a file naming
    untrusted types is refused rather than signed, and only then is it deserialized (restricted
    unpickler, structural validation) to refuse an unfitted model, as ``save`` does.
    """
    src = Path(source)
    if src.suffix.lower() == ".onnx":
        raise OperationalError(
            f"{src} is an ONNX file: an ONNX artifact records how the model's columns map to "
            "the graph's inputs, which a bare file does not say. Save the scikit-learn model "
            'with format="onnx" (or convert its joblib file with --to onnx) instead.'
        )
    where_to = remote.local_or_url(path)
    target = where_to if isinstance(where_to, Path) else remote.staged_identity(where_to)
    name, version = _identity(target, name, version)
    data = read_model_file(src)
    trusted_types = resolve_policy(policy)
    checked = check_types(data, trusted_types, format="joblib", path=str(src))
    _refuse_unfitted_file(checked, trusted_types, str(src))
    del checked
    metadata = build_metadata(None, format="joblib", name=name, version=version)
    return write_signed_artifact(
        path,
        {MODEL_FILES["joblib"]: data, METADATA_FILE: strictjson.dumps(metadata)},
        key=key,
        subject_name=f"{name}/{version}",
        hash=hash,
    )


def _refuse_unfitted_file(checked: TypeChecked, policy: TypePolicy, source: str) -> None:
    """Deserialize a file that passed the type scan, as a load would, and refuse it if unfitted.

    Only the restricted unpickler builds the object, and it is validated before anything looks
    at it; the object is dropped afterwards (what is signed is the file's bytes).
    """
    from safeload import _unpickle
    from safeload.validation import validate_model

    if checked.format == "onnx":
        return  # a graph has no unfitted state; the ONNX gate (step 4) has checked it
    model = _unpickle.deserialize_checked(checked, policy)
    validate_model(model, deadline=checked.deadline)
    check_fitted(model, source=source)


def sign_directory(
    path: str | os.PathLike[str],
    *,
    key: SigningKey,
    policy: PolicySource = None,
    storage_options: remote.StorageOptions | None = None,
    hash: str = SHA256,
) -> Path | remote.Url:
    """Sign an unsigned artifact directory (or version prefix, by URL) in place.

    The model file goes through the gate a load would: a file naming untrusted types is
    refused, not signed; then it is deserialized (restricted unpickler, validation) to refuse
    an unfitted model.
    ``model.sig`` is created exclusively, so an existing signature is never replaced.
    """
    target = remote.local_or_url(path)
    scheme = for_writing(hash)

    def unsigned_only(artifact: ListedArtifact) -> Hashing:
        if SIGNATURE_FILE in artifact.sizes:
            raise ArtifactExistsError(f"{target} is already signed; signatures are never replaced")
        if METADATA_FILE not in artifact.sizes:
            raise OperationalError(f"{target} has no {METADATA_FILE}; pack a model file instead")
        return scheme

    files = read_artifact(target, unsigned_only, storage_options=storage_options)
    metadata = files.metadata(OperationalError)
    trusted_types = resolve_policy(policy)
    model_path = str(target / str(files.model_name))
    checked = check_types(files.model, trusted_types, format=files.format, path=model_path)
    _refuse_unfitted_file(checked, trusted_types, model_path)
    del checked
    sizes = {name: data.nbytes for name, data in files.buffers.items()}
    resources = resources_for(files.digests, sizes, scheme)
    bundle = sign_statement(
        key, build_statement(f"{metadata['name']}/{metadata['version']}", resources)
    )
    if isinstance(target, remote.Url):
        remote.put_new(target, SIGNATURE_FILE, bundle, storage_options)
        return target
    try:
        fd = os.open(target / SIGNATURE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError as exc:
        raise ArtifactExistsError(f"{target} was signed concurrently") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(bundle)
    return target
