"""safeload.dask on a real LocalCluster with worker processes: scoring and scanning.

The cluster (two worker processes, one thread each, on 127.0.0.1) is started once for the
module. Each test signs its own artifact in its own folder, so that its worker plugin (keyed by
path, trust and policy) is its own.
"""

from __future__ import annotations

import copyreg
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import safeload

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
sdask = pytest.importorskip("safeload.dask")

ROOT = Path(__file__).resolve().parents[1]
FEATURES = [f"f{i}" for i in range(6)]
pytestmark = pytest.mark.timeout(300)


def _cluster(workers: int) -> Any:
    """A real cluster of worker processes on loopback, quiet, without a dashboard."""
    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = _cluster(2)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, len(FEATURES))), columns=FEATURES)
    y = np.where(X["f0"] + X["f1"] > 0, "churn", "stay")
    return X, y


@pytest.fixture(scope="module")
def model(data: tuple[pd.DataFrame, np.ndarray]) -> Pipeline:
    X, y = data
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)


@pytest.fixture
def signed(
    tmp_path: Path, model: Pipeline, data: tuple[pd.DataFrame, np.ndarray]
) -> tuple[Path, Path]:
    """A signed artifact (with a sample) and the folder of the key that signed it."""
    key = safeload.generate_key()
    keys = tmp_path / "keys"
    key.save(keys / "trainer")
    path = safeload.save(
        model, tmp_path / "churn" / "1.2.0", key=key, sample=data[0].head(5), name="churn"
    )
    return Path(path), keys


def _ddf(X: pd.DataFrame, partitions: int = 4) -> Any:
    return dd.from_pandas(X, npartitions=partitions)


def _tamper(artifact: Path) -> None:
    """One byte of the signed model file changed, in place (the signature stays)."""
    target = artifact / "model.joblib"
    data = bytearray(target.read_bytes())
    data[-20] ^= 0x01
    target.write_bytes(bytes(data))


# --- scoring ----------------------------------------------------------------------------------


def test_predictions_equal_a_local_load(
    client: Any, signed: tuple[Path, Path], data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    path, keys = signed
    X = data[0]
    local = safeload.load_checked(path, trusted=keys)
    got = sdask.predict(_ddf(X), path, trusted=keys, name="churn", version="1.2.0")
    assert isinstance(got, dd.Series)
    result = got.compute()
    assert result.name == "prediction"
    assert result.index.equals(X.index)
    assert list(result) == list(local.predict(X))

    proba = sdask.predict(_ddf(X), path, trusted=keys, method="predict_proba").compute()
    assert list(proba.columns) == ["churn", "stay"]
    np.testing.assert_array_equal(proba.to_numpy(), local.predict_proba(X))


def test_each_worker_loads_the_artifact_once(
    client: Any, signed: tuple[Path, Path], data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    path, keys = signed
    for _ in range(2):  # two jobs, eight partitions each
        sdask.predict(_ddf(data[0], 8), path, trusted=keys).compute()
    plugin = sdask.register(path, trusted=keys, client=client)
    status = sdask.plugin_status(client, plugin.name)
    assert len(status) == 2
    assert [s["loads"] for s in status.values()] == [1, 1]
    assert all(s["loaded"] and s["pid"] != os.getpid() for s in status.values())


def _refuse_to_pickle(obj: object) -> Any:
    raise AssertionError(f"a {type(obj).__name__} was pickled on the client")


def test_the_model_is_never_pickled_by_the_client(
    client: Any, signed: tuple[Path, Path], data: tuple[pd.DataFrame, np.ndarray], model: Pipeline
) -> None:
    path, keys = signed
    X = data[0]
    classes = (Pipeline, StandardScaler, LogisticRegression)
    for cls in classes:  # pickle and cloudpickle both consult copyreg's dispatch table
        copyreg.pickle(cls, _refuse_to_pickle)
    try:
        # The check works: a task that carries the model cannot leave this process.
        with pytest.raises(TypeError, match="Could not serialize") as shipped_model:
            client.submit(model.predict, X, pure=False).result()
        assert "pickled on the client" in str(shipped_model.value.__cause__)
        got = sdask.predict(_ddf(X), path, trusted=keys).compute()
        plugin = sdask.register(path, trusted=keys, client=client)
        shipped = pickle.dumps(plugin)
    finally:
        for cls in classes:
            copyreg.dispatch_table.pop(cls, None)
    assert list(got) == list(model.predict(X))
    # What travels: path, keys' PEMs, options; never a model (the plugin's state says so).
    assert set(plugin.__getstate__()) == {
        "path",
        "trust",
        "options",
        "artifact_name",
        "artifact_version",
        "name",
    }
    assert pickle.loads(shipped).loaded is None


def test_a_tampered_artifact_fails_the_job_on_the_client(
    client: Any, signed: tuple[Path, Path], data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    path, keys = signed
    _tamper(path)
    with pytest.raises(safeload.TamperedArtifactError) as local:
        safeload.load_checked(path, trusted=keys)
    with pytest.raises(safeload.TamperedArtifactError) as remote:
        sdask.predict(_ddf(data[0]), path, trusted=keys).compute()
    assert str(remote.value) == str(local.value)
    assert remote.value.files == local.value.files == ("model.joblib",)


def test_an_untrusted_signer_fails_the_job(
    client: Any, signed: tuple[Path, Path], data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    path, _ = signed
    other = safeload.Keyring.of([safeload.generate_key()])
    with pytest.raises(safeload.UntrustedSignerError, match="signed by"):
        sdask.predict(_ddf(data[0]), path, trusted=other).compute()


def test_a_contract_error_names_the_column(
    client: Any, signed: tuple[Path, Path], data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    path, keys = signed
    drifted = data[0].rename(columns={"f3": "f3_renamed"})
    with pytest.raises(safeload.ContractError, match="f3"):
        sdask.predict(_ddf(drifted), path, trusted=keys).compute()


def test_without_a_signed_sample_the_output_needs_meta(
    client: Any, tmp_path: Path, model: Pipeline, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    key = safeload.generate_key()
    key.save(tmp_path / "keys" / "trainer")
    path = safeload.save(model, tmp_path / "nosample" / "1.0.0", key=key)
    X = data[0]
    with pytest.raises(safeload.OperationalError, match="meta="):
        sdask.predict(_ddf(X), path, trusted=tmp_path / "keys")
    meta = pd.Series([], dtype=object, name="prediction")
    got = sdask.predict(_ddf(X), path, trusted=tmp_path / "keys", meta=meta).compute()
    assert list(got) == list(model.predict(X))


def test_the_benchmark_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_dask.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len([line for line in done.stdout.splitlines() if "| safeload.dask" in line]) == 2


def test_a_keyring_travels_as_pem_and_is_checked_again(signed: tuple[Path, Path]) -> None:
    _, keys = signed
    spec = sdask.TrustSpec.of(safeload.Keyring.from_dir(keys))
    rebuilt = pickle.loads(pickle.dumps(spec)).keyring()
    assert set(rebuilt.keys) == set(safeload.Keyring.from_dir(keys).keys)
    hint, name, _pem = spec.keys[0]
    stranger = safeload.keys.public_pem(safeload.generate_key().public_key)
    swapped = sdask.TrustSpec(((hint, name, stranger),))
    with pytest.raises(safeload.KeyFileError, match="changed on its way"):
        swapped.keyring()


@pytest.fixture
def own_client() -> Iterator[tuple[Any, Any]]:
    """A cluster of one worker for a test that starts more: the shared one stays as it is."""
    cluster = _cluster(1)
    client = distributed.Client(cluster)
    try:
        yield client, cluster
    finally:
        client.close()
        cluster.close()


def test_a_new_worker_process_loads_through_the_gate(
    own_client: tuple[Any, Any], signed: tuple[Path, Path], model: Pipeline, data: Any
) -> None:
    """A worker that joins (a restart is a new process too) runs the whole gate itself."""
    client, cluster = own_client
    path, keys = signed
    plugin = sdask.register(path, trusted=keys, client=client)
    before = sdask.plugin_status(client, plugin.name)
    cluster.scale(2)
    client.wait_for_workers(2, timeout=120)
    after = sdask.plugin_status(client, plugin.name)
    assert len(after) == 2 and all(s["loads"] == 1 and s["loaded"] for s in after.values())
    new = [s for address, s in after.items() if address not in before]
    assert len(new) == 1 and new[0]["pid"] not in {s["pid"] for s in before.values()}
    X, _ = data
    frame = dd.from_pandas(X, npartitions=4)
    result = sdask.predict(frame, path, trusted=keys, client=client).compute()
    assert list(result) == list(model.predict(X))


def test_a_worker_started_after_tampering_refuses_and_the_client_hears_it(
    own_client: tuple[Any, Any], signed: tuple[Path, Path]
) -> None:
    client, cluster = own_client
    path, keys = signed
    plugin = sdask.register(path, trusted=keys, client=client)
    before = sdask.plugin_status(client, plugin.name)
    _tamper(path)
    cluster.scale(2)
    client.wait_for_workers(2, timeout=120)
    after = sdask.plugin_status(client, plugin.name)
    new = [s for address, s in after.items() if address not in before]
    assert [s["refusal"] for s in new] == ["TamperedArtifactError"]
    assert all(s["loaded"] is False for s in new)
    with pytest.raises(safeload.TamperedArtifactError, match="model.joblib"):
        sdask.register(path, trusted=keys, client=client)


def test_a_worker_killed_mid_job_comes_back_through_the_gate(
    signed: tuple[Path, Path], model: Pipeline, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    """A worker process killed while the job runs: its nanny starts a new process, which
    verifies and loads the artifact itself before it scores the partitions it is given."""
    path, keys = signed
    X, _ = data
    cluster = _cluster(2)
    client = distributed.Client(cluster)
    try:
        plugin = sdask.register(path, trusted=keys, client=client)
        before = sdask.plugin_status(client, plugin.name)
        assert len(before) == 2

        def slow(part: pd.DataFrame) -> pd.DataFrame:
            time.sleep(0.4)
            return part

        frame = dd.from_pandas(X, npartitions=20).map_partitions(slow, meta=X.head(0))
        job = client.compute(sdask.predict(frame, path, trusted=keys, client=client))
        deadline = time.monotonic() + 60
        while not any(client.processing().values()):
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        victim = min(before.values(), key=lambda s: s["pid"])
        os.kill(victim["pid"], signal.SIGKILL)
        assert not job.done(), "the job ended before the worker was killed: make it longer"

        result = job.result(timeout=180)
        assert list(result) == list(model.predict(X))
        client.wait_for_workers(2, timeout=120)
        after = sdask.plugin_status(client, plugin.name)
    finally:
        client.close()
        cluster.close()
    old_pids = {s["pid"] for s in before.values()}
    reborn = [s for s in after.values() if s["pid"] not in old_pids]
    assert len(reborn) == 1, after
    assert reborn[0]["loads"] == 1 and reborn[0]["loaded"] and reborn[0]["refusal"] is None
    assert victim["pid"] not in {s["pid"] for s in after.values()}


# --- scanning ---------------------------------------------------------------------------------


def _unsafe_pickle() -> bytes:
    # A pickle naming os.system: only ever scanned, never loaded.
    return pickle.dumps(os.system, protocol=4)


@pytest.fixture
def tree(tmp_path: Path, model: Pipeline) -> Path:
    import joblib

    root = tmp_path / "audit"
    for i in range(40):
        folder = root / f"team{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(model if i % 3 else model[-1], folder / f"model{i:02}.joblib")
    (root / "team2" / "exploit.pkl").write_bytes(_unsafe_pickle())
    return root


def test_scan_on_the_cluster_equals_the_local_scan(client: Any, tree: Path) -> None:
    paths = sorted(str(p) for p in tree.rglob("*") if p.is_file())
    missing = str(tree / "gone.pkl")
    results = sdask.scan([*paths, missing], client=client, batch_size=8)
    assert [r.to_dict() for r in results[:-1]] == [safeload.scan(p).to_dict() for p in paths]
    unsafe = [r for r in results if not r.safe]
    assert [r.path for r in unsafe] == [str(tree / "team2" / "exploit.pkl"), missing]
    assert isinstance(results[-1], sdask.ScanFailed)
    assert "gone.pkl" in results[-1].message


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    script = Path(sys.executable).with_name("safeload")
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=240, env=env
    )


def test_cli_scan_with_a_scheduler_equals_the_local_scan(client: Any, tree: Path) -> None:
    address = client.scheduler.address
    local = _cli("scan", str(tree), "--json")
    remote = _cli("scan", str(tree), "--json", "--scheduler", address)
    assert remote.returncode == local.returncode == 1, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    assert any(not f["safe"] for f in json.loads(remote.stdout)["files"])


def test_cli_scan_cannot_reach_a_scheduler_is_exit_2(tree: Path) -> None:
    done = _cli("scan", str(tree), "--scheduler", "tcp://127.0.0.1:9", "--json")
    assert done.returncode == 2
    assert "cannot reach the Dask scheduler" in json.loads(done.stdout)["message"]


# --- object storage: the workers read the URL themselves ----------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """A real S3 protocol server (moto) on loopback; the storage_options that reach it."""
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {
        "endpoint_url": f"http://{host}:{port}",
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
    }
    import boto3

    boto3.client(
        "s3",
        endpoint_url=options["endpoint_url"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="models")
    yield options
    server.stop()


def test_workers_load_and_scan_from_a_url(
    client: Any, s3: dict[str, Any], model: Pipeline, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    import s3fs

    key = safeload.generate_key()
    keyring = safeload.Keyring.of([key])
    X = data[0]
    url = "s3://models/churn/2.0.0"
    safeload.save(model, url, key=key, sample=X.head(5), storage_options=s3)
    opts = safeload.LoadOptions(storage_options=s3)
    got = sdask.predict(_ddf(X), url, trusted=keyring, options=opts).compute()
    assert list(got) == list(model.predict(X))

    tampered = "s3://models/churn/2.0.1"
    safeload.save(model, tampered, key=key, sample=X.head(5), storage_options=s3)
    fs = s3fs.S3FileSystem(**s3)
    body = bytearray(fs.cat_file(f"{tampered[5:]}/model.joblib"))
    body[-20] ^= 0x01
    fs.pipe_file(f"{tampered[5:]}/model.joblib", bytes(body))
    with pytest.raises(safeload.TamperedArtifactError, match="model.joblib"):
        sdask.predict(_ddf(X), tampered, trusted=keyring, options=opts).compute()

    fs.pipe_file("models/loose/exploit.pkl", _unsafe_pickle())
    urls = [f"{url}/model.joblib", "s3://models/loose/exploit.pkl"]
    reports = sdask.scan(urls, client=client, storage_options=s3)
    assert [r.safe for r in reports] == [True, False]
    assert reports[1].to_dict()["untrusted"] == ["posix.system"]


def test_a_cluster_scan_that_cannot_finish_is_an_error_not_a_hang(tree: Path) -> None:
    """A scheduler with no worker: the scan gives up after its bound (exit 2 on the CLI)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None, silence_logs=50
        ) as lc,
        Client(lc) as empty,
    ):
        started = time.monotonic()
        with pytest.raises(safeload.OperationalError, match="no worker"):
            sdask.scan_jobs([(str(tree), None, str(tree))], client=empty, timeout=3)
        assert time.monotonic() - started < 60
