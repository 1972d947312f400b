"""Batch scoring and model audits on a Dask cluster, with the whole gate on every worker.

:func:`predict` scores a Dask DataFrame with a signed artifact. The client never loads the
model and never ships one: it sends each worker the artifact's path or URL, the caller's trust
(the public keys' PEM bytes, their names and ``trust.toml`` as parsed on the client) and the
resolved :class:`~safeload.LoadOptions`, inside a worker plugin. Each worker then calls
:func:`~safeload.load_checked` itself, once, when the plugin is set up (again after a restart:
the scheduler hands the plugin to every worker that joins), and the partitions are scored by
that :class:`~safeload.LoadedArtifact`'s schema-checked methods. A refusal on a worker is raised
on the client with its own type and message (distributed pickles a task's exception with tblib,
which keeps safeload's error attributes).

:func:`scan` runs the static type scan (:func:`safeload.scan`) over many files on the cluster's
workers, and returns the same reports in input order; a path a worker cannot open is reported,
not raised. Each worker opens its files itself: local paths must exist on the workers.

dask and distributed are imported here and only here (extra ``[dask]``); ``import safeload``
never imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import dask.dataframe as dd
    import distributed
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "safeload.dask needs dask and distributed: pip install 'safeload[dask]'"
    ) from exc

import numpy as np
import pandas as pd

from safeload.errors import KeyFileError, OperationalError, SafeloadError, shown
from safeload.keys import Keyring, _parse_public_key, key_hint, public_pem, resolve_keyring
from safeload.loading import LoadedArtifact, load_checked
from safeload.options import LoadOptions, resolve_options
from safeload.policy import PolicySource, TypePolicy, resolve_policy
from safeload.trust import TrustFile
from safeload.typegate import ScanLimits, ScanReport, scan_bytes, scan_descriptor
from safeload.typegate import scan as scan_file

__all__ = [
    "METHODS",
    "ArtifactPlugin",
    "ScanFailed",
    "TrustSpec",
    "plugin_status",
    "predict",
    "register",
    "scan",
]

#: Methods of :class:`~safeload.LoadedArtifact` :func:`predict` may call (each checks its input).
METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")
_BY_CLASS = ("predict_proba", "predict_log_proba", "decision_function")


# --- trust, as it travels ---------------------------------------------------------------------


@dataclass(frozen=True)
class TrustSpec:
    """The caller's keyring as plain data: each key's hint, name and PEM, and ``trust.toml``.

    A :class:`~safeload.Keyring` holds key objects that do not pickle, and a folder path would
    make each worker trust whatever its own disk holds: the keyring is read once, on the
    client, and its public keys travel as PEM bytes. A worker rebuilds the keyring and refuses
    a key whose PEM does not hash to the hint it came with.
    """

    keys: tuple[tuple[str, str, bytes], ...]
    trust: TrustFile | None = None
    today: datetime.date | None = None

    @classmethod
    def of(cls, keyring: Keyring) -> TrustSpec:
        """The spec of a keyring (its keys sorted by hint, so equal keyrings give equal specs)."""
        keys = tuple(
            (hint, keyring.names.get(hint, hint[:16]), public_pem(key))
            for hint, key in sorted(keyring.keys.items())
        )
        return cls(keys, keyring.trust, keyring.today)

    def keyring(self) -> Keyring:
        """The keyring again, each key parsed from its PEM and checked against its hint."""
        keys: dict[str, Any] = {}
        names: dict[str, str] = {}
        for hint, name, pem in self.keys:
            key = _parse_public_key(pem, Path(f"{name}.pub"))
            if key_hint(key) != hint:
                raise KeyFileError(f"the trusted key {shown(name)} changed on its way to a worker")
            keys[hint] = key
            names[hint] = name
        return Keyring(keys, names, self.trust, self.today)

    def digest(self) -> str:
        """What identifies this trust: the keys, their names, the trust file, the date."""
        h = hashlib.sha256()
        for hint, name, _ in self.keys:
            h.update(f"{hint}\0{name}\0".encode())
        h.update(repr((self.trust, self.today)).encode())
        return h.hexdigest()


def _policy_digest(policy: TypePolicy) -> str:
    h = hashlib.sha256()
    for part in (policy.names, policy.callables, policy.unsafe, policy.safe_to_call):
        h.update(repr(sorted(part)).encode())
    return h.hexdigest()


# --- the worker plugin ------------------------------------------------------------------------


class ArtifactPlugin(WorkerPlugin):
    """Loads one artifact through the whole gate on each worker, once, when set up.

    What pickles (and so travels to the scheduler and the workers) is the path, the
    :class:`TrustSpec`, the resolved options and the signed name and version asked for; the
    loaded model lives only in the worker that loaded it and never leaves it. ``loads`` counts
    the loads this worker process ran; ``refusal`` holds the error of the last one, raised
    again by every task that needs the model.
    """

    idempotent = True

    def __init__(
        self,
        path: str,
        trust: TrustSpec,
        options: LoadOptions,
        name: str | None = None,
        version: str | None = None,
    ) -> None:
        self.path = path
        self.trust = trust
        self.options = options
        self.artifact_name = name
        self.artifact_version = version
        self.name = "safeload-" + self._key()
        self._reset()

    def _reset(self) -> None:
        self.loaded: LoadedArtifact | None = None
        self.refusal: SafeloadError | None = None
        self.loads = 0
        self.pid: int | None = None
        self.lock = threading.Lock()

    def _key(self) -> str:
        """Plugins are keyed by what decides the load: path, trust, policy, limits, identity."""
        opts = self.options
        storage = sorted((k, repr(v)) for k, v in (opts.storage_options or {}).items())
        parts = (
            self.path,
            self.trust.digest(),
            _policy_digest(opts.types),
            repr((opts.read_limits, opts.scan_limits, opts.versions, tuple(opts.safe_to_call))),
            hashlib.sha256(repr(storage).encode()).hexdigest(),
            repr((self.artifact_name, self.artifact_version)),
        )
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]

    def __getstate__(self) -> dict[str, Any]:
        # Never the loaded model, its refusal or the lock: only what a worker needs to load.
        return {
            "path": self.path,
            "trust": self.trust,
            "options": self.options,
            "artifact_name": self.artifact_name,
            "artifact_version": self.artifact_version,
            "name": self.name,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    async def setup(self, worker: Any) -> None:
        """Load through the gate, off the worker's event loop (a large model takes seconds).

        A refusal is kept, never raised here: a worker joining or restarting with a refused
        artifact must still start (a plugin that raises at start-up leaves the cluster without
        workers and the job waiting for ever). Its tasks raise the refusal instead, and
        :func:`register` raises it on the client.
        """
        with contextlib.suppress(SafeloadError):
            await asyncio.get_running_loop().run_in_executor(None, self.load)

    def load(self) -> LoadedArtifact:
        """:func:`~safeload.load_checked` here: keep the model, or keep and raise the refusal."""
        with self.lock:
            self.loads += 1
            self.pid = os.getpid()
            self.loaded = None
            try:
                self.loaded = load_checked(
                    self.path,
                    trusted=self.trust.keyring(),
                    options=self.options,
                    name=self.artifact_name,
                    version=self.artifact_version,
                )
            except SafeloadError as exc:
                self.refusal = exc
                raise
            self.refusal = None
            return self.loaded

    def teardown(self, worker: Any) -> None:
        """Drop the model when the plugin is removed."""
        self.loaded = None

    def artifact(self) -> LoadedArtifact:
        """The model this worker loaded, or the refusal it met, raised again."""
        with self.lock:
            if self.refusal is not None:
                raise self.refusal
            if self.loaded is None:
                raise OperationalError(
                    f"{shown(self.path)} was not loaded on this worker: its plugin was not set up"
                )
            return self.loaded

    def status(self) -> dict[str, Any]:
        """Loads, process id and verdict on this worker (for operators and tests)."""
        return {
            "loads": self.loads,
            "pid": self.pid,
            "loaded": self.loaded is not None,
            "refusal": None if self.refusal is None else type(self.refusal).__name__,
        }


def _plugin_on_this_worker(plugin_name: str, worker: Any = None) -> ArtifactPlugin:
    if worker is None:
        try:
            worker = distributed.get_worker()
        except ValueError as exc:
            raise OperationalError(
                "safeload.dask scores on distributed workers: compute with a "
                "distributed.Client, not the local threaded scheduler"
            ) from exc
    plugin = worker.plugins.get(plugin_name)
    if not isinstance(plugin, ArtifactPlugin):
        raise OperationalError(
            f"the safeload plugin {plugin_name} is not registered on worker {worker.address}: "
            "call safeload.dask.predict again on this cluster"
        )
    return plugin


def plugin_status(client: Any, plugin_name: str) -> dict[str, dict[str, Any]]:
    """Each worker's :meth:`ArtifactPlugin.status` for one plugin, by worker address."""
    return dict(client.run(_status_here, plugin_name))


def _status_here(plugin_name: str, dask_worker: Any = None) -> dict[str, Any]:
    return _plugin_on_this_worker(plugin_name, dask_worker).status()


# --- scoring ----------------------------------------------------------------------------------


def _client(client: Any) -> Any:
    if client is not None:
        return client
    try:
        return distributed.get_client()
    except ValueError as exc:
        raise OperationalError(
            "no Dask client: connect one first (distributed.Client(ADDRESS)) or pass client="
        ) from exc


def _as_output(values: Any, index: pd.Index, columns: Sequence[str], name: str) -> Any:
    """One partition's result: a Series for 1-D output, else a DataFrame, on the input's index."""
    if hasattr(values, "toarray"):  # a sparse transform: dense per partition
        values = values.toarray()
    array = np.asarray(values)
    if array.ndim == 1:
        return pd.Series(array, index=index, name=name)
    width = array.shape[1]
    labels = list(columns) if len(columns) == width else [str(i) for i in range(width)]
    return pd.DataFrame(array, index=index, columns=labels)


def _score(
    part: pd.DataFrame, plugin_name: str, method: str, columns: Sequence[str], name: str
) -> Any:
    loaded = _plugin_on_this_worker(plugin_name).artifact()
    return _as_output(getattr(loaded, method)(part), part.index, columns, name)


def _columns(loaded: LoadedArtifact, method: str) -> list[str]:
    """Column labels of a 2-D output: the classes, or the transformer's output names."""
    model = loaded.model
    if method in _BY_CLASS and hasattr(model, "classes_"):
        return [str(c) for c in np.asarray(model.classes_).ravel()]
    if method == "transform" and hasattr(model, "get_feature_names_out"):
        try:
            return [str(c) for c in model.get_feature_names_out()]
        except (AttributeError, ValueError, TypeError):
            return []
    return []


def _describe(
    plugin_name: str, method: str, name: str, want_meta: bool, dask_worker: Any = None
) -> tuple[Any, list[str]]:
    """On a worker: the output's empty pandas form, from the signed sample's predictions."""
    from safeload.contract import decode_sample

    loaded = _plugin_on_this_worker(plugin_name, dask_worker).artifact()
    columns = _columns(loaded, method)
    if not want_meta:
        return None, columns
    sample = loaded.metadata.get("sample")
    if not isinstance(sample, dict) or not isinstance(sample.get("inputs"), dict):
        raise OperationalError(
            f"{shown(loaded.metadata.get('name'))} was saved without a sample, so the output's "
            "dtype is unknown: pass meta= (an empty pandas Series or DataFrame)"
        )
    inputs = decode_sample(sample["inputs"])
    out = _as_output(getattr(loaded, method)(inputs), inputs.index, columns, name)
    return out.iloc[:0], columns


def _trust_spec(trusted: Keyring | TrustSpec | str | os.PathLike[str]) -> TrustSpec:
    if isinstance(trusted, TrustSpec):
        return trusted
    return TrustSpec.of(resolve_keyring(trusted))


def register(
    path: str | os.PathLike[str],
    *,
    trusted: Keyring | TrustSpec | str | os.PathLike[str],
    options: LoadOptions | None = None,
    policy: PolicySource = None,
    name: str | None = None,
    version: str | None = None,
    client: Any = None,
) -> ArtifactPlugin:
    """Load an artifact through the gate on every worker, now and as workers join.

    Raises the first worker's refusal. :func:`predict` calls this.

    Trust and the type policy are resolved here, on the client (``$SAFELOAD_POLICY`` is the
    client's); a plugin with the same path, trust, options and identity is registered once,
    so a second job reuses the loaded models. A refused registration is removed again, so
    that a fixed artifact can be loaded by the next call.
    """
    client = _client(client)
    opts = resolve_options(options, policy=policy)
    plugin = ArtifactPlugin(os.fspath(path), _trust_spec(trusted), opts, name, version)
    try:
        client.register_plugin(plugin)
        client.run(_raise_refusal_here, plugin.name)  # the worker's own error, on the client
    except BaseException:
        with contextlib.suppress(Exception):  # the refusal matters, not a failed cleanup
            client.unregister_worker_plugin(plugin.name)
        raise
    return plugin


def _raise_refusal_here(plugin_name: str, dask_worker: Any = None) -> None:
    """Raise this worker's refusal, if its plugin met one (distributed carries it back)."""
    plugin = _plugin_on_this_worker(plugin_name, dask_worker)
    with plugin.lock:
        if plugin.refusal is not None:
            raise plugin.refusal


def predict(
    ddf: Any,
    path: str | os.PathLike[str],
    *,
    trusted: Keyring | TrustSpec | str | os.PathLike[str],
    method: str = "predict",
    options: LoadOptions | None = None,
    policy: PolicySource = None,
    name: str | None = None,
    version: str | None = None,
    meta: Any = None,
    client: Any = None,
) -> Any:
    """Score a Dask DataFrame with a signed artifact, loaded through the gate on each worker.

    ``path`` is the artifact's folder or URL (``s3://bucket/models/churn/1.2.0``), as the
    workers see it; ``trusted`` a :class:`~safeload.Keyring` or a folder of ``*.pub`` keys, read
    here on the client and sent to the workers as PEM bytes. ``method`` is one of
    :data:`METHODS`: each partition goes through that schema-checked method of
    :class:`~safeload.LoadedArtifact` (a :class:`~safeload.ContractError` names the column).
    ``options``, ``policy``, ``name`` and ``version`` mean what they mean for
    :func:`~safeload.load_checked`.

    Returns a lazy Dask Series (1-D output, named ``prediction`` for ``predict``, else the
    method) or DataFrame (columns: the classes, or the transform's output names), partition
    for partition on ``ddf``'s index. ``meta`` is the output's empty pandas form; by default a
    worker derives it from the artifact's signed sample (an artifact without one needs it).

    Raises any refusal of the gate (on the client, with the worker's message), at once when
    the workers load, or when the result is computed if a worker joins or restarts later and
    refuses then.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    if not isinstance(ddf, dd.DataFrame):
        raise TypeError("predict scores a dask.dataframe.DataFrame")
    client = _client(client)
    plugin = register(
        path,
        trusted=trusted,
        options=options,
        policy=policy,
        name=name,
        version=version,
        client=client,
    )
    label = "prediction" if method == "predict" else method
    workers = list(client.scheduler_info(n_workers=-1)["workers"])
    if not workers:
        raise OperationalError("the Dask cluster has no workers to load the artifact on")
    one = workers[0]
    described = client.run(_describe, plugin.name, method, label, meta is None, workers=[one])[one]
    empty, columns = described
    return ddf.map_partitions(  # type: ignore[no-untyped-call]
        _score,
        plugin.name,
        method,
        columns,
        label,
        meta=empty if meta is None else meta,
        enforce_metadata=False,
        align_dataframes=False,
    )


# --- auditing many files ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScanFailed:
    """A path a worker could not open or read: not a verdict on the file (exit 2 in the CLI)."""

    path: str
    message: str

    @property
    def safe(self) -> bool:
        """Never: a file that was not scanned is not clean."""
        return False

    def to_dict(self) -> dict[str, str]:
        """The CLI's ``errors`` entry for this path."""
        return {"path": self.path, "message": self.message}


#: One file to scan: the path shown, how to open it (``None``: :func:`safeload.scan`), its argument.
ScanJob = tuple[str, Callable[[Any], int] | None, Any]


def _scan_one(
    job: ScanJob,
    policy: TypePolicy,
    limits: ScanLimits,
    storage_options: Mapping[str, Any] | None,
) -> ScanReport | ScanFailed:
    shown_path, opener, arg = job
    from safeload.remote import is_url, read_object

    try:
        if opener is not None:
            fd = opener(arg)
            try:
                return scan_descriptor(fd, shown_path, policy=policy, limits=limits)
            finally:
                os.close(fd)
        if is_url(arg) and not str(arg).startswith("file://"):
            data = read_object(str(arg), limits.max_decompressed_bytes, storage_options)
            return scan_bytes(data, policy=policy, limits=limits, path=shown_path)
        return scan_file(arg, policy=policy, limits=limits)
    except OperationalError as exc:
        return ScanFailed(shown_path, str(exc))


def _scan_batch(
    jobs: list[ScanJob],
    policy: TypePolicy,
    limits: ScanLimits,
    storage_options: Mapping[str, Any] | None,
) -> list[ScanReport | ScanFailed]:
    return [_scan_one(job, policy, limits, storage_options) for job in jobs]


SCAN_TIMEOUT = 3600.0
"""Seconds a cluster scan may take in all before it is an error (never an endless wait)."""
WORKER_WAIT = 60.0
"""Seconds to wait for a first worker."""


def scan_jobs(
    jobs: Sequence[ScanJob],
    *,
    client: Any = None,
    policy: TypePolicy | None = None,
    limits: ScanLimits | None = None,
    storage_options: Mapping[str, Any] | None = None,
    batch_size: int = 32,
    timeout: float = SCAN_TIMEOUT,
) -> list[ScanReport | ScanFailed]:
    """Scan each job on the cluster, in batches, and return the results in the jobs' order.

    Bounded: a cluster with no worker, or whose workers die and do not come back, is an
    :class:`OperationalError` after ``timeout`` seconds, never a wait without end.
    """
    client = _client(client)
    chosen = resolve_policy(policy)
    bound = limits or ScanLimits()
    try:
        client.wait_for_workers(1, timeout=min(timeout, WORKER_WAIT))
    except (TimeoutError, OSError) as exc:
        raise OperationalError(
            f"the Dask cluster has no worker to scan on (waited {min(timeout, WORKER_WAIT):.0f} s)"
        ) from exc
    batches = [list(jobs[i : i + batch_size]) for i in range(0, len(jobs), batch_size)]
    futures = client.map(
        _scan_batch,
        batches,
        policy=chosen,
        limits=bound,
        storage_options=storage_options,
        pure=False,
    )
    results: list[ScanReport | ScanFailed] = []
    ends = time.monotonic() + timeout
    try:
        for future in futures:  # each future's own client: the CLI's is not the default one
            results.extend(future.result(timeout=max(ends - time.monotonic(), 0.001)))
    except TimeoutError as exc:
        client.cancel(futures)
        raise OperationalError(
            f"the scan on the Dask cluster did not finish within {timeout:.0f} s: check the workers"
        ) from exc
    return results


def scan(
    paths: Iterable[str | os.PathLike[str]],
    *,
    client: Any = None,
    policy: PolicySource = None,
    limits: ScanLimits | None = None,
    storage_options: Mapping[str, Any] | None = None,
    batch_size: int = 32,
) -> list[ScanReport | ScanFailed]:
    """:func:`safeload.scan` of every path or URL, on the cluster's workers, in input order.

    Each result is the :class:`~safeload.ScanReport` the local scan gives, or a
    :class:`ScanFailed` for a path that could not be opened or read (where the local scan
    raises). The workers open the files: local paths must exist on the workers (a shared
    filesystem), URLs are read with ``storage_options``. Nothing is deserialized anywhere.
    """
    chosen = resolve_policy(policy)
    jobs: list[ScanJob] = [(os.fspath(p), None, os.fspath(p)) for p in paths]
    return scan_jobs(
        jobs,
        client=client,
        policy=chosen,
        limits=limits,
        storage_options=storage_options,
        batch_size=batch_size,
    )
