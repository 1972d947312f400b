"""safeload.mlflow against real MLflow: a tracking server (sqlite backend, local artifact root)
on loopback, models logged and registered through it, loaded by every URI form, served by
``mlflow models serve``; tampering in the artifact store, edited MLmodel files and missing
trust refused."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")
pd = pytest.importorskip("pandas")
yaml = pytest.importorskip("yaml")

from sklearn.linear_model import LogisticRegression  # noqa: E402

import safeload  # noqa: E402
import safeload.mlflow as slm  # noqa: E402
from safeload.errors import (  # noqa: E402
    ContractError,
    MalformedArtifactError,
    SafeloadError,
    TamperedArtifactError,
    UnsignedArtifactError,
    UntrustedSignerError,
)
from tests.test_format_spec import independent_verify, pae, strict_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(600)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child: this tree first on the path, no telemetry."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra)
    return env


def _wait_ok(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> bool:
    """Poll ``url`` until it answers 200; False if the process exited first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
                if answer.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"{url} did not come up in {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real MLflow tracking server on loopback; yields its artifact root (to tamper with)."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    artifacts = folder / "artifacts"
    artifacts.mkdir()
    port = _free_port()
    log = folder / "server.log"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env())
    uri = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_DISABLE_TELEMETRY")}
    try:
        assert _wait_ok(f"{uri}/health", proc, log, 180), log.read_text()[-3000:]
        os.environ["MLFLOW_TRACKING_URI"] = uri
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        mlflow.set_tracking_uri(uri)
        yield artifacts
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _stop(proc)


@pytest.fixture(scope="session")
def frame() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.normal(40, 10, 60), "visits": rng.normal(5, 2, 60)})
    y = (X["age"] + 3 * X["visits"] > 55).astype(int)
    return X, y


@pytest.fixture(scope="session")
def churn(frame: tuple[Any, Any]) -> LogisticRegression:
    X, y = frame
    return LogisticRegression().fit(X, y)


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> tuple[safeload.SigningKey, Path]:
    folder = tmp_path_factory.mktemp("trusted")
    key = safeload.generate_key()
    key.save(folder / "keys" / "trainer")
    (folder / "keys" / "trainer.key").unlink()  # a deployment holds public keys only
    return key, folder / "keys"


@pytest.fixture
def trusted_env(monkeypatch: pytest.MonkeyPatch, signer: tuple[Any, Path]) -> Path:
    monkeypatch.setenv(slm.KEYS_ENV, str(signer[1]))
    return signer[1]


class Logged:
    """A model logged and registered through the server, and its folder in the store."""

    def __init__(self, info: Any, store: Path, name: str) -> None:
        self.info = info
        self.store = store
        self.name = name
        self.uri = f"models:/{name}/{info.registered_model_version}"


def _log(tracking: Path, signer: tuple[Any, Path], model: Any, name: str, **kw: Any) -> Logged:
    with mlflow.start_run():
        info = slm.log_model(model, name, key=signer[0], registered_model_name=name, **kw)
    (store,) = tracking.glob(f"*/models/{info.model_id}/artifacts")
    return Logged(info, store, name)


@pytest.fixture(scope="session")
def logged(tracking: Path, signer: tuple[Any, Path], churn: Any, frame: tuple[Any, Any]) -> Logged:
    return _log(tracking, signer, churn, "churn", sample=frame[0][:5])


# --- logging, registering, loading ---------------------------------------------------------


def test_logged_model_loads_by_every_uri_form(
    logged: Logged, signer: tuple[Any, Path], churn: Any, frame: tuple[Any, Any]
) -> None:
    X = frame[0]
    mlflow.MlflowClient().set_registered_model_alias("churn", "champion", "1")
    run_id = logged.info.run_id
    for uri in (
        logged.uri,
        "models:/churn@champion",
        f"models:/{logged.info.model_id}",
        f"runs:/{run_id}/churn",
    ):
        loaded = slm.load_model(uri, trusted=signer[1], name="churn")
        np.testing.assert_array_equal(loaded.predict(X), churn.predict(X))
        assert loaded.metadata["version"] == logged.info.model_id  # signed: the logged model
    with pytest.raises(ContractError, match="version"):
        slm.load_model(logged.uri, trusted=signer[1], version="0.9")


def test_mlmodel_declares_the_safeload_loader_and_the_saved_signature(logged: Logged) -> None:
    mlmodel = yaml.safe_load((logged.store / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "safeload.mlflow"
    assert mlmodel["flavors"]["python_function"]["data"] == "data"
    assert set(mlmodel["flavors"]) == {"python_function", "safeload"}
    inputs = json.loads(mlmodel["signature"]["inputs"])
    assert [(c["name"], c["type"]) for c in inputs] == [("age", "double"), ("visits", "double")]
    files = sorted(p.name for p in logged.store.iterdir())
    assert files == sorted(
        ["MLmodel", "conda.yaml", "data", "python_env.yaml", "requirements.txt",
         "safeload-mlflow.sig"]
    )  # fmt: skip


def test_mlflow_pyfunc_load_model_runs_the_gate(
    logged: Logged, trusted_env: Path, churn: Any, frame: tuple[Any, Any]
) -> None:
    X = frame[0]
    model = mlflow.pyfunc.load_model(logged.uri)
    np.testing.assert_array_equal(model.predict(X), churn.predict(X))
    assert model.metadata.get_input_schema().input_names() == ["age", "visits"]
    assert isinstance(model.get_raw_model(), safeload.LoadedArtifact)


# --- trust from the deployment only ---------------------------------------------------------


def test_no_trusted_keys_configured_is_refused(
    logged: Logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(slm.KEYS_ENV, raising=False)
    with pytest.raises(SafeloadError, match=slm.KEYS_ENV):
        mlflow.pyfunc.load_model(logged.uri)
    monkeypatch.setenv(slm.KEYS_ENV, "")
    with pytest.raises(SafeloadError, match=slm.KEYS_ENV):
        mlflow.pyfunc.load_model(logged.uri)


def test_the_type_policy_comes_from_safeload_policy_when_mlflow_loads(
    tmp_path: Path, signer: tuple[Any, Path], churn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = slm.save_model(churn, tmp_path / "m", key=signer[0], name="churn", version="1")
    monkeypatch.setenv(slm.KEYS_ENV, str(signer[1]))
    monkeypatch.setenv("SAFELOAD_POLICY", str(tmp_path / "missing-policy.toml"))
    with pytest.raises(SafeloadError, match="missing-policy.toml"):
        slm._load_pyfunc(str(model_dir / "data"))
    monkeypatch.delenv("SAFELOAD_POLICY")
    assert slm._load_pyfunc(str(model_dir / "data")).get_raw_model().metadata["name"] == "churn"


def test_a_key_the_deployment_does_not_trust_is_refused(
    logged: Logged, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = safeload.generate_key()
    other.save(tmp_path / "keys" / "someone")
    (tmp_path / "keys" / "someone.key").unlink()
    monkeypatch.setenv(slm.KEYS_ENV, str(tmp_path / "keys"))
    with pytest.raises(UntrustedSignerError):
        mlflow.pyfunc.load_model(logged.uri)
    with pytest.raises(UntrustedSignerError):
        slm.load_model(logged.uri, trusted=tmp_path / "keys")


# --- tampering in the artifact store ----------------------------------------------------------


def _both_refuse(uri: str, keys: Path, error: type[Exception], match: str = "") -> None:
    with pytest.raises(error, match=match):
        slm.load_model(uri, trusted=keys)
    with pytest.raises(error, match=match):
        mlflow.pyfunc.load_model(uri)


def test_a_model_file_tampered_in_the_store_is_refused(
    tracking: Path, signer: tuple[Any, Path], churn: Any, trusted_env: Path
) -> None:
    target = _log(tracking, signer, churn, "tampered-file")
    path = target.store / "data" / "model.joblib"
    data = bytearray(path.read_bytes())
    data[-20] ^= 1
    path.write_bytes(bytes(data))
    _both_refuse(target.uri, signer[1], TamperedArtifactError, "model.joblib")


def _edit_mlmodel(store: Path, edit: Any) -> None:
    doc = yaml.safe_load((store / "MLmodel").read_text())
    edit(doc)
    (store / "MLmodel").write_text(yaml.safe_dump(doc))


def _pickle_flavor(doc: dict[str, Any]) -> None:
    doc["flavors"]["python_function"]["loader_module"] = "mlflow.sklearn"
    doc["flavors"]["python_function"]["model_path"] = "data/model.joblib"
    doc["flavors"]["sklearn"] = {
        "pickled_model": "data/model.joblib",
        "serialization_format": "cloudpickle",
        "sklearn_version": "1.9.1",
    }


def _extra_flavor(doc: dict[str, Any]) -> None:
    doc["flavors"]["sklearn"] = {"pickled_model": "data/model.joblib"}


def _environment(doc: dict[str, Any]) -> None:
    doc["flavors"]["python_function"]["env"]["virtualenv"] = "requirements.txt"


def test_mlmodel_switched_to_a_pickle_loader_is_refused(
    tracking: Path, signer: tuple[Any, Path], churn: Any
) -> None:
    # mlflow.pyfunc.load_model obeys the MLmodel it reads before any loader runs; what refuses
    # such a model is loading it with safeload.mlflow (docs/guides/mlflow.md).
    target = _log(tracking, signer, churn, "pickle-loader")
    _edit_mlmodel(target.store, _pickle_flavor)
    with pytest.raises(TamperedArtifactError, match="changed: MLmodel"):
        slm.load_model(target.uri, trusted=signer[1])


@pytest.mark.parametrize("edit", [_extra_flavor, _environment], ids=["flavor", "environment"])
def test_an_edited_mlmodel_is_refused_by_both_loaders(
    tracking: Path, signer: tuple[Any, Path], churn: Any, trusted_env: Path, edit: Any
) -> None:
    target = _log(tracking, signer, churn, f"edited-{edit.__name__.strip('_')}")
    _edit_mlmodel(target.store, edit)
    _both_refuse(target.uri, signer[1], TamperedArtifactError, "changed: MLmodel")


def test_data_pointed_elsewhere_is_refused(
    tracking: Path, signer: tuple[Any, Path], churn: Any, trusted_env: Path
) -> None:
    target = _log(tracking, signer, churn, "data-elsewhere")
    shutil.copytree(target.store / "data", target.store / "data2")
    _edit_mlmodel(target.store, lambda d: d["flavors"]["python_function"].update(data="data2"))
    _both_refuse(target.uri, signer[1], MalformedArtifactError, "data2")


def test_files_added_to_or_removed_from_the_model_folder_are_refused(
    tracking: Path, signer: tuple[Any, Path], churn: Any, trusted_env: Path
) -> None:
    added = _log(tracking, signer, churn, "file-added")
    (added.store / "input_example.json").write_text('{"age": 1}')
    _both_refuse(added.uri, signer[1], TamperedArtifactError, "input_example.json")
    removed = _log(tracking, signer, churn, "file-removed")
    (removed.store / "requirements.txt").unlink()
    _both_refuse(removed.uri, signer[1], TamperedArtifactError, "missing: requirements.txt")


def test_data_of_another_signed_model_is_refused(
    tracking: Path, signer: tuple[Any, Path], churn: Any, frame: tuple[Any, Any], trusted_env: Path
) -> None:
    # Both halves are signed by the trusted key; only the binding of data/ refuses the mix.
    X, y = frame
    target = _log(tracking, signer, churn, "mixed")
    other = _log(tracking, signer, LogisticRegression(C=0.01).fit(X, 1 - y), "mixed-donor")
    shutil.rmtree(target.store / "data")
    shutil.copytree(other.store / "data", target.store / "data")
    _both_refuse(target.uri, signer[1], TamperedArtifactError, "changed: data")


# --- local folders: no server needed --------------------------------------------------------


def test_data_swapped_while_loading_is_refused(
    tmp_path: Path,
    signer: tuple[Any, Path],
    churn: Any,
    frame: tuple[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = frame
    key = signer[0]
    model_dir = slm.save_model(churn, tmp_path / "m", key=key, name="churn", version="1")
    donor = slm.save_model(
        LogisticRegression(C=0.01).fit(X, 1 - y), tmp_path / "d", key=key, name="churn", version="1"
    )
    real = slm.verify_model_dir

    def then_swap(path: Any, **kw: Any) -> Any:
        verified = real(path, **kw)  # the MLflow signature checked, data/ bound ...
        shutil.rmtree(model_dir / "data")  # ... then data/ replaced before it is loaded
        shutil.copytree(donor / "data", model_dir / "data")
        return verified

    monkeypatch.setattr(slm, "verify_model_dir", then_swap)
    with pytest.raises(TamperedArtifactError, match="changed while it was loaded"):
        slm.load_model_dir(model_dir, trusted=signer[1])


def test_a_signed_mlmodel_must_still_name_the_safeload_loader(
    tmp_path: Path, signer: tuple[Any, Path], churn: Any
) -> None:
    # Signed by the trusted key itself: the signature holds, the MLmodel it vouches for is not
    # one safeload writes (another loader, an extra flavor), so nothing in it is used.
    for name, edit in (("pickle", _pickle_flavor), ("flavor", _extra_flavor)):
        model_dir = slm.save_model(churn, tmp_path / name, key=signer[0], name="c", version="1")
        _edit_mlmodel(model_dir, edit)
        (model_dir / slm.MLFLOW_SIGNATURE_FILE).unlink()
        slm.sign_model_dir(model_dir, key=signer[0], subject_name="c/1")
        with pytest.raises(MalformedArtifactError, match="signed MLmodel"):
            slm.load_model_dir(model_dir, trusted=signer[1])


def test_an_mlflow_model_without_the_safeload_signature_is_refused(
    tmp_path: Path, signer: tuple[Any, Path], churn: Any
) -> None:
    plain = tmp_path / "plain"
    mlflow.sklearn.save_model(churn, plain, pip_requirements=[], serialization_format="pickle")
    with pytest.raises(UnsignedArtifactError, match="safeload-mlflow.sig"):
        slm.load_model(str(plain), trusted=signer[1])


def test_mlflows_own_registry_note_is_tolerated_unsigned_and_bounded(
    tmp_path: Path, signer: tuple[Any, Path], churn: Any
) -> None:
    # MLflow writes registered_model_meta into every registered model it downloads, after
    # signing: a small regular file is ignored, never read; a large one is refused unread.
    model_dir = slm.save_model(churn, tmp_path / "m", key=signer[0], name="churn", version="1")
    note = model_dir / slm.REGISTRY_NOTE
    note.write_text("model_name: churn\nmodel_version: '1'\n")
    assert slm.load_model_dir(model_dir, trusted=signer[1]).metadata["name"] == "churn"
    note.write_bytes(b"x" * 5000)
    with pytest.raises(MalformedArtifactError, match="registered_model_meta"):
        slm.load_model_dir(model_dir, trusted=signer[1])


def test_a_model_larger_than_the_limits_is_refused_before_it_is_downloaded(
    tracking: Path, signer: tuple[Any, Path], churn: Any, frame: tuple[Any, Any]
) -> None:
    """The store's listing is checked first: a huge or odd model never reaches the disk."""
    logged = _log(tracking, signer, churn, "bounded", sample=frame[0][:5])
    data = logged.store / "data"
    small = safeload.LoadOptions(read_limits=safeload.ReadLimits(max_model_bytes=1 << 20))
    assert slm.load_model(logged.uri, trusted=signer[1], options=small).metadata["name"]
    with (data / "padding.bin").open("wb") as sparse:
        sparse.truncate(8 << 20)  # listed as 8 MiB, no disk used
    with pytest.raises(MalformedArtifactError, match=r"before downloading.*over 1048576"):
        slm.load_model(logged.uri, trusted=signer[1], options=small)
    (data / "padding.bin").unlink()
    for extra in range(safeload.ReadLimits().max_files):
        (data / f"extra{extra}").write_bytes(b"")
    with pytest.raises(MalformedArtifactError, match="before downloading.* entries, over 16"):
        slm.load_model(logged.uri, trusted=signer[1])
    for extra in range(safeload.ReadLimits().max_files):
        (data / f"extra{extra}").unlink()
    (logged.store / "code").mkdir()
    (logged.store / "code" / "evil.py").write_text("raise SystemExit('ran')\n")
    with pytest.raises(MalformedArtifactError, match=r"before downloading.*folder 'code'"):
        slm.load_model(logged.uri, trusted=signer[1])


TWO_SIGNERS = """
[keys.trainer]
file = "trainer.pub"

[keys.reviewer]
file = "reviewer.pub"

[[require]]
models = ["*"]
signers = ["trainer", "reviewer"]
threshold = 2
"""


def _two_signers(tmp_path: Path, churn: Any) -> tuple[Any, Any, Path, Path]:
    """A trainer and a reviewer, a keys folder whose rule needs both, a model the trainer saved."""
    trainer, reviewer = safeload.generate_key(), safeload.generate_key()
    keys = tmp_path / "keys"
    trainer.save(keys / "trainer")
    reviewer.save(keys / "reviewer")
    (keys / "trust.toml").write_text(TWO_SIGNERS)
    model_dir = slm.save_model(churn, tmp_path / "m", key=trainer, name="churn", version="1")
    return trainer, reviewer, keys, model_dir


def test_a_cosigned_model_meets_a_two_signer_rule_and_a_changed_one_is_not_cosigned(
    tmp_path: Path, churn: Any, frame: tuple[Any, Any]
) -> None:
    trainer, reviewer, keys, model_dir = _two_signers(tmp_path, churn)
    with pytest.raises(safeload.UntrustedSignerError, match="reviewer"):
        slm.load_model_dir(model_dir, trusted=keys)
    before = {p.name: p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}

    slm.cosign_model_dir(model_dir, reviewer, trusted=keys)
    after = {p.name: p.read_bytes() for p in model_dir.rglob("*") if p.is_file()}
    assert {n for n in before if before[n] != after[n]} == {slm.MLFLOW_SIGNATURE_FILE, "model.sig"}
    loaded = slm.load_model_dir(model_dir, trusted=keys)
    np.testing.assert_array_equal(loaded.predict(frame[0]), churn.predict(frame[0]))
    with pytest.raises(safeload.ArtifactExistsError, match="already signed"):
        slm.cosign_model_dir(model_dir, reviewer)

    edited = slm.save_model(churn, tmp_path / "e", key=trainer, name="churn", version="1")
    (edited / "requirements.txt").write_text("evil-package\n")
    signed_before = (edited / slm.MLFLOW_SIGNATURE_FILE).read_bytes()
    with pytest.raises(safeload.TamperedArtifactError, match="no longer matches"):
        slm.cosign_model_dir(edited, reviewer)
    assert (edited / slm.MLFLOW_SIGNATURE_FILE).read_bytes() == signed_before
    bundle = json.loads((edited / "data" / "model.sig").read_bytes())
    assert len(bundle["dsseEnvelope"]["signatures"]) == 1  # data/ was not cosigned either


def test_cli_sign_add_cosigns_an_mlflow_model(tmp_path: Path, churn: Any) -> None:
    _, _, keys, model_dir = _two_signers(tmp_path, churn)
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "safeload",
            "sign",
            str(model_dir),
            "--add",
            "--key",
            str(keys / "reviewer.key"),
            "--trusted",
            str(keys),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    assert slm.load_model_dir(model_dir, trusted=keys).metadata["name"] == "churn"


def test_a_symlink_in_the_model_folder_is_refused(
    tmp_path: Path, signer: tuple[Any, Path], churn: Any
) -> None:
    model_dir = slm.save_model(churn, tmp_path / "m", key=signer[0], name="churn", version="1")
    (model_dir / "conda.yaml").unlink()
    (model_dir / "conda.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    (tmp_path / "elsewhere.yaml").write_text("name: x\n")
    with pytest.raises(MalformedArtifactError, match="conda.yaml"):
        slm.load_model_dir(model_dir, trusted=signer[1])


def independent_verify_mlflow(model_dir: Path, pub_pem_files: list[Path]) -> dict[str, Any]:
    """docs/format.md section 7, with only hashlib and cryptography (beside section 5's)."""
    import base64
    import hashlib
    import stat

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    unsigned = {"safeload-mlflow.sig", "registered_model_meta"}
    entries = sorted(os.listdir(model_dir))  # step 1
    assert not model_dir.is_symlink() and len(entries) <= 16
    for name in entries:
        info = os.lstat(model_dir / name)
        if name == "data":
            assert stat.S_ISDIR(info.st_mode)
        else:
            assert stat.S_ISREG(info.st_mode) and info.st_size <= 16 << 20, name
    bundle = strict_json((model_dir / "safeload-mlflow.sig").read_bytes(), "bundle")  # step 2
    envelope = bundle["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"], validate=True)
    keyring = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in pub_pem_files}
    key = load_pem_public_key(
        keyring[bundle["verificationMaterial"]["publicKey"]["hint"]].read_bytes()
    )
    signature = base64.b64decode(envelope["signatures"][0]["sig"], validate=True)
    assert isinstance(key, Ed25519PublicKey)
    key.verify(signature, pae(envelope["payloadType"].encode(), payload))
    statement = strict_json(payload, "statement")
    assert statement["predicate"]["serialization"]["method"] == "files"
    resources = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    raw = b"".join(bytes.fromhex(d) for _, d in sorted(resources.items()))
    assert statement["subject"][0]["digest"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert set(resources) == set(entries) - unsigned, "file set differs"  # step 3
    inner = strict_json((model_dir / "data" / "model.sig").read_bytes(), "data bundle")
    inner_payload = base64.b64decode(inner["dsseEnvelope"]["payload"], validate=True)
    assert resources.pop("data") == hashlib.sha256(inner_payload).hexdigest(), "data differs"
    for name, digest in resources.items():
        assert hashlib.sha256((model_dir / name).read_bytes()).hexdigest() == digest, name
    flavors = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]  # step 4
    assert set(flavors) == {"python_function", "safeload"}
    assert flavors["python_function"]["loader_module"] == "safeload.mlflow"
    assert flavors["python_function"]["data"] == "data"
    inner_statement = independent_verify(model_dir / "data", pub_pem_files)  # step 5
    assert strict_json(inner_payload, "data statement") == inner_statement
    assert inner_statement["subject"][0]["name"] == statement["subject"][0]["name"]
    return statement


def test_format_section_7_verifies_what_save_model_writes(
    tmp_path: Path, signer: tuple[Any, Path], churn: Any
) -> None:
    model_dir = slm.save_model(churn, tmp_path / "m", key=signer[0], name="churn", version="2")
    keys = sorted(signer[1].glob("*.pub"))
    assert independent_verify_mlflow(model_dir, keys)["subject"][0]["name"] == "churn/2"
    (model_dir / "requirements.txt").write_text("scikit-learn\nevil-package\n")
    with pytest.raises(AssertionError, match="requirements.txt"):
        independent_verify_mlflow(model_dir, keys)


# --- the schema at predict ----------------------------------------------------------------------


def test_input_that_breaks_the_saved_schema_is_refused_at_predict(
    logged: Logged,
    signer: tuple[Any, Path],
    churn: Any,
    frame: tuple[Any, Any],
    trusted_env: Path,
    tmp_path: Path,
) -> None:
    X = frame[0]
    loaded = slm.load_model(logged.uri, trusted=signer[1])
    with pytest.raises(ContractError, match="visits"):
        loaded.predict(X[["age"]].assign(clicks=1.0))
    # What MLflow calls: its own signature check runs first in mlflow.pyfunc (and reorders or
    # drops columns); the loader's model checks the schema safeload saved behind it.
    local = mlflow.artifacts.download_artifacts(logged.uri, dst_path=str(tmp_path))
    served = slm._load_pyfunc(str(Path(local) / "data"))
    np.testing.assert_array_equal(served.predict(X), churn.predict(X))
    with pytest.raises(mlflow.exceptions.MlflowException, match="safeload refused the input"):
        served.predict(X[["age"]].assign(clicks=1.0))


# --- mlflow models serve ------------------------------------------------------------------------


def _serve(uri: str, keys: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = _env(**{slm.KEYS_ENV: str(keys)})
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    return proc, f"http://127.0.0.1:{port}"


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 (loopback)
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_mlflow_models_serve_scores_a_verified_model_and_refuses_a_tampered_one(
    tracking: Path,
    logged: Logged,
    signer: tuple[Any, Path],
    churn: Any,
    frame: tuple[Any, Any],
    tmp_path: Path,
) -> None:
    X = frame[0][:4]
    proc, url = _serve(logged.uri, signer[1], tmp_path / "serve.log")
    try:
        assert _wait_ok(f"{url}/ping", proc, tmp_path / "serve.log", 180)
        status, answer = _post(f"{url}/invocations", {"dataframe_split": X.to_dict("split")})
        assert status == 200, answer
        np.testing.assert_array_equal(answer["predictions"], churn.predict(X))
        bad = {"dataframe_split": {"columns": ["age"], "data": [[1.0]]}}
        status, answer = _post(f"{url}/invocations", bad)
        assert status == 400 and "visits" in answer["message"], answer
    finally:
        _stop(proc)

    tampered = _log(tracking, signer, churn, "served-tampered")
    path = tampered.store / "data" / "model.joblib"
    data = bytearray(path.read_bytes())
    data[-20] ^= 1
    path.write_bytes(bytes(data))
    log = tmp_path / "tampered.log"
    proc, url = _serve(tampered.uri, signer[1], log)
    try:
        up = _wait_ok(f"{url}/ping", proc, log, 180)
        assert not up, "a tampered model was served"
        assert proc.wait(timeout=60) != 0
        assert "TamperedArtifactError" in log.read_text()
    finally:
        _stop(proc)
