"""Artifacts on object storage, against a real S3 protocol server (moto in server mode).

The server runs in this process on 127.0.0.1 (a free port) and serves real HTTP; s3fs talks
to it through its endpoint like to any S3-compatible store, boto3 creates buckets and tampers.
Every request the server receives is logged, so a test can prove that nothing was read (no GET)
before a refusal, and in which order a save uploaded its objects. ``memory://`` covers the
generic fsspec path quickly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

import safeload
from safeload import remote
from safeload.errors import (
    ArtifactExistsError,
    MalformedArtifactError,
    OperationalError,
    TamperedArtifactError,
    UnsignedArtifactError,
)

boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

Hook = Callable[[str, str], "tuple[int, str] | None"]


@dataclass
class S3:
    """The running server: its endpoint, the log of requests, hooks run before each request."""

    endpoint: str
    log: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    @property
    def options(self) -> dict[str, Any]:
        """storage_options pointing s3fs at this server."""
        return {
            "endpoint_url": self.endpoint,
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"region_name": "us-east-1"},
        }

    def requests(self, method: str, bucket: str) -> list[tuple[str, dict[str, list[str]]]]:
        return [(p, q) for m, p, q in self.log if m == method and p.startswith(f"/{bucket}")]


@pytest.fixture(scope="session")
def s3() -> Iterator[S3]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    state = S3(endpoint=f"http://{host}:{port}")
    app = server._server.app
    lock = threading.Lock()

    def logged(environ: dict[str, Any], start_response: Any) -> Any:
        method, path = environ["REQUEST_METHOD"], unquote(environ["PATH_INFO"])
        with lock:
            state.log.append((method, path, parse_qs(environ.get("QUERY_STRING", ""))))
        for hook in list(state.hooks):
            answer = hook(method, path)
            if answer is not None:
                status, code = answer
                start_response(f"{status} Refused", [("Content-Type", "application/xml")])
                return [f"<Error><Code>{code}</Code><Message>test</Message></Error>".encode()]
        return app(environ, start_response)

    server._server.app = logged
    yield state
    server.stop()


@pytest.fixture
def bucket(s3: S3) -> Iterator[str]:
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    yield name
    s3.hooks.clear()


def _keys(s3: S3, bucket: str, prefix: str = "") -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def _save(s3: S3, pipeline: Pipeline, key: safeload.SigningKey, url: str, **kw: Any) -> str | Path:
    return safeload.save(pipeline, url, key=key, storage_options=s3.options, **kw)


def _opts(s3: S3, **kw: Any) -> safeload.LoadOptions:
    return safeload.LoadOptions(storage_options=s3.options, **kw)


# --- save, load, verify, inspect ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["joblib", "skops"])
def test_save_then_load_checked_from_s3(
    s3: S3,
    bucket: str,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    keydir: Path,
    iris: Any,
    fmt: str,
) -> None:
    X, _ = iris
    url = f"s3://{bucket}/models/iris/1.0.0"
    assert _save(s3, pipeline, key, url, format=fmt, sample=X[:5]) == url
    assert _keys(s3, bucket) == [
        f"models/iris/1.0.0/{n}" for n in sorted([f"model.{fmt}", "model.sig", "safeload.json"])
    ]
    loaded = safeload.load_checked(url, trusted=keydir, options=_opts(s3))
    assert loaded.metadata["name"] == "iris" and loaded.metadata["version"] == "1.0.0"
    np.testing.assert_array_equal(loaded.predict(X[:10]), pipeline.predict(X[:10]))
    bare = safeload.load(url, trusted=keydir, options=_opts(s3))
    np.testing.assert_array_equal(bare.predict(X[:10]), pipeline.predict(X[:10]))
    verified = safeload.verify_artifact(url, trusted=keydir, options=_opts(s3))
    assert verified.path == url and verified.format == fmt
    assert safeload.inspect(url, trusted=keydir, options=_opts(s3)).verdict == "verified"


def test_each_object_is_fetched_once(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    """One listing, then one GET per object (the model's bytes are what gets deserialized)."""
    url = f"s3://{bucket}/models/iris/1.0.0"
    _save(s3, pipeline, key, url)
    s3.log.clear()
    safeload.load_checked(url, trusted=keydir, options=_opts(s3))
    gets = sorted(p.rsplit("/", 1)[1] for p, _ in s3.requests("GET", bucket) if "." in p)
    assert gets == ["model.joblib", "model.sig", "safeload.json"]
    assert [m for m, p, _ in s3.log if p.startswith(f"/{bucket}")].count("HEAD") == 0


def _console(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "safeload"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "safeload"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **CREDENTIALS, **env},
    )


@pytest.mark.parametrize("endpoint_variable", ["AWS_ENDPOINT_URL", "FSSPEC_S3_ENDPOINT_URL"])
def test_cli_verify_inspect_ls_on_urls(
    s3: S3,
    bucket: str,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    keydir: Path,
    tmp_path: Path,
    endpoint_variable: str,
) -> None:
    url = f"s3://{bucket}/models/iris/1.0.0"
    _save(s3, pipeline, key, url)
    env = {endpoint_variable: s3.endpoint}
    done = _console("verify", url, "--trusted", str(keydir), "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verified"] is True
    done = _console("inspect", url, "--trusted", str(keydir), "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdict"] == "verified"
    done = _console("ls", f"s3://{bucket}/models", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["models"] == [
        {"name": "iris", "versions": ["1.0.0"], "latest": "1.0.0"}
    ]
    # A tampered object: refused (exit 1), through the same command.
    client = s3.client()
    model = client.get_object(Bucket=bucket, Key="models/iris/1.0.0/model.joblib")["Body"].read()
    client.put_object(Bucket=bucket, Key="models/iris/1.0.0/model.joblib", Body=model[:-1] + b"\0")
    done = _console("verify", url, "--trusted", str(keydir), "--json", env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["type"] == "TamperedArtifactError"


def test_cli_saves_to_a_url_with_sign_out(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path, tmp_path: Path
) -> None:
    import joblib

    key.save(tmp_path / "trainer")
    joblib.dump(pipeline, tmp_path / "model.joblib")
    url = f"s3://{bucket}/models/iris/2.0.0"
    env = {"AWS_ENDPOINT_URL": s3.endpoint}
    args = (
        "sign",
        str(tmp_path / "model.joblib"),
        "--out",
        url,
        "--key",
        str(tmp_path / "trainer.key"),
    )
    done = _console(*args, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (
        safeload.verify_artifact(url, trusted=keydir, options=_opts(s3)).metadata["version"]
        == "2.0.0"
    )


# --- refusals: each proves its defence (see docs/threat-model.md) ------------------------------


def test_tampered_object_is_refused(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    url = f"s3://{bucket}/models/iris/1.0.0"
    _save(s3, pipeline, key, url)
    client = s3.client()
    name = "models/iris/1.0.0/model.joblib"
    blob = bytearray(client.get_object(Bucket=bucket, Key=name)["Body"].read())
    blob[len(blob) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=name, Body=bytes(blob))
    with pytest.raises(TamperedArtifactError):
        safeload.load_checked(url, trusted=keydir, options=_opts(s3))


def test_an_extra_object_under_the_prefix_is_refused(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    url = f"s3://{bucket}/models/iris/1.0.0"
    _save(s3, pipeline, key, url)
    s3.client().put_object(Bucket=bucket, Key="models/iris/1.0.0/extra.py", Body=b"print(1)")
    with pytest.raises(TamperedArtifactError, match="extra.py"):
        safeload.load_checked(url, trusted=keydir, options=_opts(s3))


@pytest.mark.parametrize("odd", ["../x", "sub/model.joblib", "a/b", ".hidden", "", "x\\y"])
def test_an_odd_or_nested_key_is_refused_from_the_listing(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path, odd: str
) -> None:
    url = f"s3://{bucket}/models/iris/1.0.0"
    _save(s3, pipeline, key, url)
    s3.client().put_object(Bucket=bucket, Key=f"models/iris/1.0.0/{odd}", Body=b"x")
    s3.log.clear()
    with pytest.raises(MalformedArtifactError, match="odd file name"):
        safeload.load_checked(url, trusted=keydir, options=_opts(s3))
    reads = [p for p, q in s3.requests("GET", bucket) if "list-type" not in q]
    assert reads == [], f"objects were fetched before the listing was refused: {reads}"


def test_size_limits_are_checked_from_the_listing_before_any_get(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    url = f"s3://{bucket}/models/iris/1.0.0"
    _save(s3, pipeline, key, url)
    s3.log.clear()
    with pytest.raises(MalformedArtifactError, match="over the 100-byte limit"):
        safeload.load_checked(
            url,
            trusted=keydir,
            options=_opts(s3, read_limits=safeload.ReadLimits(max_model_bytes=100)),
        )
    reads = [p for p, q in s3.requests("GET", bucket) if "list-type" not in q]
    assert reads == [], f"objects were fetched before the size refusal: {reads}"
    assert s3.requests("HEAD", bucket) == []


def test_the_listing_is_bounded(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    """A prefix with many keys is never listed whole: one page of max_files + 1 keys."""
    url = f"s3://{bucket}/models/iris/1.0.0"
    _save(s3, pipeline, key, url)
    client = s3.client()
    for i in range(40):
        client.put_object(Bucket=bucket, Key=f"models/iris/1.0.0/junk{i:03d}", Body=b"")
    s3.log.clear()
    with pytest.raises(MalformedArtifactError, match="more than 16 objects"):
        safeload.load_checked(url, trusted=keydir, options=_opts(s3))
    listings = [q for _, q in s3.requests("GET", bucket) if "list-type" in q]
    assert len(listings) == 1 and listings[0]["max-keys"] == ["17"], listings
    assert [p for p, q in s3.requests("GET", bucket) if "list-type" not in q] == []


def test_an_object_replaced_after_the_listing_is_refused(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    """Reads are pinned to the listed object (If-Match on its ETag), whatever its new size."""
    url = f"s3://{bucket}/models/iris/1.0.0"
    _save(s3, pipeline, key, url)
    name = "models/iris/1.0.0/model.joblib"
    client = s3.client()
    original = client.get_object(Bucket=bucket, Key=name)["Body"].read()
    for replacement in (original[::-1], original + b"more"):
        swapped: list[bool] = []

        def swap(
            method: str, path: str, data: bytes = replacement, swapped: list[bool] = swapped
        ) -> None:
            if method == "GET" and path == f"/{bucket}/{name}" and not swapped:
                swapped.append(True)
                client.put_object(Bucket=bucket, Key=name, Body=data)

        s3.hooks[:] = [swap]
        with pytest.raises(MalformedArtifactError, match="changed since it was listed"):
            safeload.load_checked(url, trusted=keydir, options=_opts(s3))
        assert swapped
        s3.hooks.clear()
        client.put_object(Bucket=bucket, Key=name, Body=original)


def test_overwrite_is_refused(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    url = f"s3://{bucket}/models/iris/1.0.0"
    _save(s3, pipeline, key, url)
    before = {k: s3.client().head_object(Bucket=bucket, Key=k)["ETag"] for k in _keys(s3, bucket)}
    with pytest.raises(ArtifactExistsError):
        _save(s3, pipeline, safeload.generate_key(), url)
    after = {k: s3.client().head_object(Bucket=bucket, Key=k)["ETag"] for k in _keys(s3, bucket)}
    assert after == before
    safeload.load_checked(url, trusted=keydir, options=_opts(s3))


def test_a_concurrent_writer_wins_by_the_conditional_write(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey
) -> None:
    """Another save creates the model object after our check, before our upload: S3 refuses
    our PutObject (If-None-Match: *), their object stays, and ours are cleaned up."""
    url = f"s3://{bucket}/models/iris/1.0.0"
    name = "models/iris/1.0.0/model.joblib"
    client = s3.client()
    raced: list[bool] = []

    def other_writer(method: str, path: str) -> None:
        if method == "PUT" and path == f"/{bucket}/{name}" and not raced:
            raced.append(True)
            client.put_object(Bucket=bucket, Key=name, Body=b"theirs")

    s3.hooks[:] = [other_writer]
    with pytest.raises(ArtifactExistsError, match="written by someone else"):
        _save(s3, pipeline, key, url)
    assert raced
    assert client.get_object(Bucket=bucket, Key=name)["Body"].read() == b"theirs"
    assert _keys(s3, bucket) == [name]


@pytest.mark.parametrize("failing", ["model.joblib", "safeload.json", "model.sig"])
def test_the_signature_is_uploaded_last_and_a_failed_save_leaves_nothing(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, failing: str
) -> None:
    prefix = "models/iris/1.0.0/"
    present_at_failure: list[list[str]] = []

    def fail(method: str, path: str) -> tuple[int, str] | None:
        if method == "PUT" and path == f"/{bucket}/{prefix}{failing}":
            present_at_failure.append(_keys(s3, bucket, prefix))
            return 403, "AccessDenied"
        return None

    s3.hooks[:] = [fail]
    with pytest.raises(OperationalError, match="cannot upload"):
        _save(s3, pipeline, key, f"s3://{bucket}/{prefix}".rstrip("/"))
    assert present_at_failure, "the failing upload was never attempted"
    assert f"{prefix}model.sig" not in present_at_failure[0]
    uploaded_before = {"model.joblib": 0, "safeload.json": 1, "model.sig": 2}[failing]
    assert len(present_at_failure[0]) == uploaded_before  # everything else came first
    assert _keys(s3, bucket) == [], "a failed save left objects behind"


def test_save_puts_the_signature_last(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey
) -> None:
    s3.log.clear()
    _save(s3, pipeline, key, f"s3://{bucket}/models/iris/1.0.0")
    puts = [p.rsplit("/", 1)[1] for p, _ in s3.requests("PUT", bucket) if p.count("/") > 1]
    assert puts[-1] == "model.sig" and puts.count("model.sig") == 1
    assert sorted(puts) == ["model.joblib", "model.sig", "safeload.json"]


# --- a Store on a bucket -----------------------------------------------------------------------


def test_store_on_a_bucket(
    s3: S3,
    bucket: str,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    keydir: Path,
    iris: Any,
    tmp_path: Path,
) -> None:
    X, _ = iris
    unrecorded = safeload.Store(f"s3://{bucket}/registry", options=_opts(s3))
    store = safeload.Store(
        f"s3://{bucket}/registry", options=_opts(s3), state=tmp_path / "state.json"
    )
    for version in ("1.0.0", "1.10.0", "1.9.0"):
        assert (
            store.save(pipeline, "iris", version, key=key)
            == f"s3://{bucket}/registry/iris/{version}"
        )
    store.save(pipeline, "wine", "0.1", key=key)
    # An upload that has not finished (no model.sig) is listed, but is not "latest".
    s3.client().put_object(Bucket=bucket, Key="registry/iris/1.11.0/model.joblib", Body=b"x")
    assert store.names() == ["iris", "wine"]
    assert store.versions("iris") == ["1.0.0", "1.9.0", "1.10.0", "1.11.0"]
    assert store.resolve("iris") == "1.10.0"
    # A bucket cannot hold the serving side's rollback record: a guarded load needs state=.
    with pytest.raises(safeload.StoreStateError, match="state="):
        unrecorded.load_checked("iris", trusted=keydir)
    loaded = store.load_checked("iris", trusted=keydir)
    assert loaded.metadata["version"] == "1.10.0"
    assert store.highest_served("iris") == "1.10.0"
    np.testing.assert_array_equal(loaded.predict(X[:5]), pipeline.predict(X[:5]))
    with pytest.raises(UnsignedArtifactError):
        store.load("iris", "1.11.0", trusted=keydir)
    with pytest.raises(ArtifactExistsError):
        store.save(pipeline, "iris", "1.9.0", key=key)
    # The bucket itself as the root.
    assert safeload.Store(f"s3://{bucket}", options=_opts(s3)).names() == ["registry"]


def test_a_model_folder_given_as_an_artifact_is_a_usage_error(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    _save(s3, pipeline, key, f"s3://{bucket}/models/iris/1.0.0")
    with pytest.raises(safeload.ArtifactNotFoundError, match="Pass one version"):
        safeload.load(f"s3://{bucket}/models/iris", trusted=keydir, options=_opts(s3))
    with pytest.raises(safeload.ArtifactNotFoundError, match="nothing is stored"):
        safeload.load(f"s3://{bucket}/models/none/1.0", trusted=keydir, options=_opts(s3))


# --- memory:// (the generic fsspec path), URLs, imports ----------------------------------------


def _memory_url() -> str:
    return f"memory://safeload-tests/{uuid.uuid4().hex[:8]}/iris/1.0.0"


def test_memory_urls_save_load_store_and_refuse(
    pipeline: Pipeline, key: safeload.SigningKey, keydir: Path, iris: Any
) -> None:
    import fsspec

    X, _ = iris
    url = _memory_url()
    safeload.save(pipeline, url, key=key)
    np.testing.assert_array_equal(
        safeload.load(url, trusted=keydir).predict(X[:5]), pipeline.predict(X[:5])
    )
    store = safeload.Store(url.rsplit("/", 2)[0])
    assert store.names() == ["iris"] and store.resolve("iris") == "1.0.0"
    with pytest.raises(ArtifactExistsError):
        safeload.save(pipeline, url, key=key)
    fs = fsspec.filesystem("memory")
    path = url.removeprefix("memory://")
    fs.pipe_file(f"{path}/extra.txt", b"x")
    with pytest.raises(TamperedArtifactError, match="extra.txt"):
        safeload.load(url, trusted=keydir)
    fs.rm_file(f"{path}/extra.txt")
    fs.pipe_file(f"{path}/sub/model.joblib", b"x")
    with pytest.raises(MalformedArtifactError, match="is a folder"):
        safeload.load(url, trusted=keydir)
    fs.rm(f"{path}/sub", recursive=True)
    blob = bytearray(fs.cat_file(f"{path}/model.joblib"))
    blob[-3] ^= 1
    fs.pipe_file(f"{path}/model.joblib", bytes(blob))
    with pytest.raises(TamperedArtifactError):
        safeload.load(url, trusted=keydir)


def test_memory_size_limit_from_the_listing(
    pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    url = _memory_url()
    safeload.save(pipeline, url, key=key)
    with pytest.raises(MalformedArtifactError, match="over the 64-byte limit"):
        safeload.load(url, trusted=keydir, read_limits=safeload.ReadLimits(max_metadata_bytes=64))


def test_what_is_a_url() -> None:
    assert remote.is_url("s3://b/models/x/1.0")
    assert remote.is_url("gs://b/x")
    assert not remote.is_url("./s3://x")
    assert not remote.is_url(Path("s3://b/x"))
    assert not remote.is_url("models/churn/1.0")
    assert not remote.is_url("C:\\models\\churn")
    assert remote.local_or_url("file:///tmp/models/x") == Path("/tmp/models/x")
    assert remote.Url("s3://b/models") / "churn" / "1.0" == "s3://b/models/churn/1.0"


@pytest.mark.parametrize(
    "url", ["simplecache::s3://b/x/1.0", "s3://b/models/../x/1.0", "s3://b//x/1.0", "s3://"]
)
def test_odd_urls_are_refused(url: str, keydir: Path) -> None:
    with pytest.raises(OperationalError):
        safeload.load(url, trusted=keydir)


def test_loading_a_local_artifact_imports_no_fsspec(artifact: Path, keydir: Path) -> None:
    code = (
        "import sys, safeload\n"
        f"safeload.load_checked({str(artifact)!r}, trusted={str(keydir)!r})\n"
        "safeload.Store(" + repr(str(artifact.parent.parent)) + ").names()\n"
        "heavy = {'fsspec', 's3fs', 'boto3', 'botocore'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_cli_signs_an_unsigned_prefix_in_place(
    s3: S3,
    bucket: str,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    keydir: Path,
    artifact: Path,
    tmp_path: Path,
) -> None:
    client = s3.client()
    for name in ("model.joblib", "safeload.json"):
        client.put_object(
            Bucket=bucket, Key=f"models/iris/1.0.0/{name}", Body=(artifact / name).read_bytes()
        )
    url = f"s3://{bucket}/models/iris/1.0.0"
    key.save(tmp_path / "trainer")
    env = {"AWS_ENDPOINT_URL": s3.endpoint}
    args = ("sign", url, "--key", str(tmp_path / "trainer.key"))
    done = _console(*args, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    safeload.verify_artifact(url, trusted=keydir, options=_opts(s3))
    again = _console(*args, env=env, cwd=tmp_path)
    assert again.returncode == 2 and "already signed" in again.stderr


def test_convert_writes_to_a_url(
    s3: S3,
    bucket: str,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    keydir: Path,
    tmp_path: Path,
    iris: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import joblib

    X, _ = iris
    joblib.dump(pipeline, tmp_path / "model.joblib")
    url = f"s3://{bucket}/models/iris/3.0.0"
    # convert saves through save(): the endpoint comes from the environment here.
    import fsspec.config

    for name, value in {**CREDENTIALS, "FSSPEC_S3_ENDPOINT_URL": s3.endpoint}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(fsspec.config, "conf", {})
    fsspec.config.set_conf_env(fsspec.config.conf)
    assert safeload.convert(tmp_path / "model.joblib", url, key=key, sample=X[:5]) == url
    assert "models/iris/3.0.0/model.skops" in _keys(s3, bucket)
    loaded = safeload.load_checked(url, trusted=keydir, options=_opts(s3))
    np.testing.assert_array_equal(loaded.predict(X[:5]), pipeline.predict(X[:5]))


def test_cli_exit_codes_on_urls(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path, tmp_path: Path
) -> None:
    """Nothing at the URL: exit 2 (fix the setup); an odd key inside: exit 1 (refused)."""
    env = {"AWS_ENDPOINT_URL": s3.endpoint}
    url = f"s3://{bucket}/models/iris/1.0.0"
    done = _console("verify", url, "--trusted", str(keydir), env=env, cwd=tmp_path)
    assert done.returncode == 2 and "nothing is stored" in done.stderr
    _save(s3, pipeline, key, url)
    s3.client().put_object(Bucket=bucket, Key="models/iris/1.0.0/sub/x", Body=b"x")
    done = _console("verify", url, "--trusted", str(keydir), env=env, cwd=tmp_path)
    assert done.returncode == 1 and "odd file name" in done.stderr
    done = _console("inspect", url, "--trusted", str(keydir), "--json", env=env, cwd=tmp_path)
    assert done.returncode == 1 and json.loads(done.stdout)["verdict"] == "refused"


def test_cli_scans_objects_by_url_and_never_loads_them(
    s3: S3, bucket: str, pipeline: Pipeline, tmp_path: Path
) -> None:
    """An object URL is read once, bounded, and scanned: a safe model passes, a pickle that
    names os.system is refused by name (exit 1) and never runs; a missing object is exit 2."""
    import pickle

    import joblib

    client = s3.client()
    local = tmp_path / "model.joblib"
    joblib.dump(pipeline, local)
    client.put_object(Bucket=bucket, Key="drop/model.joblib", Body=local.read_bytes())
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    client.put_object(Bucket=bucket, Key="drop/evil.pkl", Body=pickle.dumps(Evil()))
    env = {"AWS_ENDPOINT_URL": s3.endpoint}
    safe = f"s3://{bucket}/drop/model.joblib"
    done = _console("scan", safe, "--format", "json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(done.stdout)["files"]
    assert report["path"] == safe and report["safe"] is True
    evil = f"s3://{bucket}/drop/evil.pkl"
    done = _console("scan", safe, evil, "--format", "json", env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    refused = json.loads(done.stdout)["files"][1]
    assert refused["safe"] is False and refused["untrusted"] == ["posix.system"]
    assert not marker.exists()
    done = _console("scan", f"s3://{bucket}/drop/absent.pkl", env=env, cwd=tmp_path)
    assert done.returncode == 2 and "not found" in done.stderr


def test_an_object_larger_than_the_scan_bound_is_not_read_whole(
    s3: S3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.client().put_object(Bucket=bucket, Key="drop/big.pkl", Body=b"\x80\x04" + b"N" * 5000)
    with pytest.raises(OperationalError, match="larger than 1000 bytes"):
        remote.read_object(f"s3://{bucket}/drop/big.pkl", 1000, s3.options)
    with pytest.raises(OperationalError, match="chained URLs"):
        remote.read_object(f"simplecache::s3://{bucket}/drop/big.pkl", 1000, s3.options)


def test_many_nested_keys_sorted_before_the_artifact_files_are_still_a_refusal(
    s3: S3, bucket: str, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    """The listing stops at 17 keys, all of them nested: the artifact's own files are asked
    for by name, so this is a refusal (something was added), not a usage error."""
    url = f"s3://{bucket}/models/iris/1.0.0"
    _save(s3, pipeline, key, url)
    client = s3.client()
    for i in range(20):
        client.put_object(Bucket=bucket, Key=f"models/iris/1.0.0/a{i:02d}/x", Body=b"")
    with pytest.raises(MalformedArtifactError, match="more than 16 objects"):
        safeload.load(url, trusted=keydir, options=_opts(s3))


def test_a_store_listing_is_bounded_and_refuses_beyond_its_limit(
    s3: S3, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Folders and loose objects both count: a root with a million objects is not paged."""
    monkeypatch.setattr(remote, "MAX_LISTED", 5)
    client = s3.client()
    for i in range(12):
        client.put_object(Bucket=bucket, Key=f"root/loose{i:02d}", Body=b"")
    client.put_object(Bucket=bucket, Key="root/zmodel/1.0/model.sig", Body=b"")
    s3.log.clear()
    with pytest.raises(OperationalError, match="more than 5 entries"):
        safeload.Store(f"s3://{bucket}/root", options=_opts(s3)).names()
    listings = [q for _, q in s3.requests("GET", bucket) if "list-type" in q]
    assert len(listings) == 1 and listings[0]["max-keys"] == ["6"], listings
    monkeypatch.setattr(remote, "MAX_LISTED", 20)
    assert safeload.Store(f"s3://{bucket}/root", options=_opts(s3)).names() == ["zmodel"]
