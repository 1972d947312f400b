"""Every verb through the real console script, in a subprocess: exit codes and --json shape."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.pipeline import Pipeline

SCRIPT = Path(sys.executable).parent / "safeload"


def run(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "safeload"]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        input=stdin,
    )


def run_json(*args: str, cwd: Path, code: int) -> Any:
    result = run(*args, "--json", cwd=cwd)
    assert result.returncode == code, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == 1
    return doc


@pytest.fixture
def workspace(tmp_path: Path, pipeline: Pipeline) -> Path:
    assert run("keygen", "keys/trainer", cwd=tmp_path).returncode == 0
    joblib.dump(pipeline, tmp_path / "model.joblib")
    return tmp_path


def test_help_and_usage_errors(tmp_path: Path) -> None:
    assert run("--help", cwd=tmp_path).returncode == 0
    assert run(cwd=tmp_path).returncode == 2
    assert run("frobnicate", cwd=tmp_path).returncode == 2
    assert run("verify", "x", cwd=tmp_path).returncode == 2  # --trusted missing


def test_keygen(tmp_path: Path) -> None:
    doc = run_json("keygen", "keys/a", cwd=tmp_path, code=0)
    assert set(doc) == {"schema", "private_key", "public_key", "hint", "algorithm"}
    assert doc["algorithm"] == "ed25519"
    assert (tmp_path / "keys" / "a.key").stat().st_mode & 0o077 == 0
    secret = (tmp_path / "keys" / "a.key").read_text().splitlines()[1]
    again = run("keygen", "keys/a", cwd=tmp_path)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert secret not in again.stdout + again.stderr


def test_keygen_passphrase_from_env_never_argv(tmp_path: Path) -> None:
    result = run("keygen", "k", "--passphrase-env", "PW", cwd=tmp_path, env={"PW": "s3cret"})
    assert result.returncode == 0
    assert b"ENCRYPTED" in (tmp_path / "k.key").read_bytes()
    assert "s3cret" not in result.stdout + result.stderr
    assert run("keygen", "k2", "--passphrase-env", "UNSET_VAR_X", cwd=tmp_path).returncode == 2
    help_text = run("keygen", "--help", cwd=tmp_path).stdout
    assert "--passphrase " not in help_text


def test_sign_verify_inspect_ls(workspace: Path) -> None:
    doc = run_json(
        "sign",
        "model.joblib",
        "--key",
        "keys/trainer.key",
        "--out",
        "models/iris/1.0.0",
        cwd=workspace,
        code=0,
    )
    assert doc["artifact"].endswith("1.0.0")
    doc = run_json("verify", "models/iris/1.0.0", "--trusted", "keys", cwd=workspace, code=0)
    assert doc["verified"] is True and doc["name"] == "iris" and doc["version"] == "1.0.0"
    assert "sklearn.pipeline.Pipeline" in doc["types"]
    human = run("verify", "models/iris/1.0.0", "--trusted", "keys", cwd=workspace)
    assert human.returncode == 0 and "OK" in human.stdout
    doc = run_json("inspect", "models/iris/1.0.0", "--trusted", "keys", cwd=workspace, code=0)
    assert doc["verdict"] == "verified"
    assert doc["signer"] == {
        "hint": doc["signer"]["hint"],
        "name": "trainer",
        "trusted": True,
        "signature_valid": True,
    }
    assert [f["name"] for f in doc["files"]] == ["model.joblib", "safeload.json"]
    assert all(f["matches"] for f in doc["files"])
    assert doc["metadata"]["name"] == "iris" and doc["metadata_verified"] is True
    assert doc["types"]["safe"] is True
    human = run("inspect", "models/iris/1.0.0", "--trusted", "keys", cwd=workspace)
    assert human.returncode == 0 and "VERIFIED" in human.stdout and "model.joblib" in human.stdout
    doc = run_json("ls", "models", cwd=workspace, code=0)
    assert doc["models"] == [
        {"name": "iris", "versions": ["1.0.0"], "latest": "1.0.0", "data_sha256": {"1.0.0": None}}
    ]  # signed by `sign` from a joblib file: no training data recorded


def test_verify_and_inspect_refusals(workspace: Path) -> None:
    assert (
        run(
            "sign", "model.joblib", "--key", "keys/trainer.key", "--out", "a", cwd=workspace
        ).returncode
        == 0
    )
    data = bytearray((workspace / "a" / "model.joblib").read_bytes())
    data[100] ^= 1
    (workspace / "a" / "model.joblib").write_bytes(bytes(data))
    doc = run_json("verify", "a", "--trusted", "keys", cwd=workspace, code=1)
    assert doc["error"] == "refused" and doc["type"] == "TamperedArtifactError"
    assert doc["files"] == ["model.joblib"]
    doc = run_json("inspect", "a", "--trusted", "keys", cwd=workspace, code=1)
    assert doc["verdict"] == "refused"
    assert [f["matches"] for f in doc["files"]] == [False, True]
    other = workspace / "other"
    assert run("keygen", "other/x", cwd=workspace).returncode == 0
    (other / "x.key").unlink()
    doc = run_json("verify", "a", "--trusted", "other", cwd=workspace, code=1)
    assert doc["type"] == "UntrustedSignerError"
    doc = run_json("verify", "missing", "--trusted", "keys", cwd=workspace, code=2)
    assert doc["error"] == "error"
    assert run("verify", "a", "--trusted", "no-such-dir", cwd=workspace).returncode == 2


def test_sign_refuses_untrusted_types(workspace: Path) -> None:
    joblib.dump({"f": os.system}, workspace / "evil.joblib")
    doc = run_json(
        "sign", "evil.joblib", "--key", "keys/trainer.key", "--out", "e", cwd=workspace, code=1
    )
    assert doc["type"] == "UntrustedTypeError" and doc["types"] == ["posix.system"]
    assert not (workspace / "e").exists()


def test_sign_directory_in_place(workspace: Path, pipeline: Pipeline) -> None:
    folder = workspace / "dir"
    folder.mkdir()
    shutil.copy(workspace / "model.joblib", folder / "model.joblib")
    (folder / "safeload.json").write_text(
        json.dumps({"safeload_format_version": 1, "format": "joblib", "name": "d", "version": "1"})
    )
    assert run("sign", "dir", "--key", "keys/trainer.key", cwd=workspace).returncode == 0
    assert run("verify", "dir", "--trusted", "keys", cwd=workspace).returncode == 0
    assert run("sign", "dir", "--key", "keys/trainer.key", cwd=workspace).returncode == 2


def test_unreadable_key_is_exit_2(workspace: Path) -> None:
    os.chmod(workspace / "keys" / "trainer.key", 0o644)
    result = run("sign", "model.joblib", "--key", "keys/trainer.key", "--out", "x", cwd=workspace)
    assert result.returncode == 2 and "chmod 600" in result.stderr
    assert (
        run("sign", "model.joblib", "--key", "nope.key", "--out", "x", cwd=workspace).returncode
        == 2
    )


def test_scan_many_files(workspace: Path) -> None:
    joblib.dump({"f": os.system}, workspace / "evil.pkl")
    doc = run_json("scan", "model.joblib", cwd=workspace, code=0)
    assert doc["safe"] is True and doc["files"][0]["format"] == "joblib"
    doc = run_json("scan", "model.joblib", "evil.pkl", cwd=workspace, code=1)
    assert [f["safe"] for f in doc["files"]] == [True, False]
    assert doc["files"][1]["untrusted"] == ["posix.system"]
    assert set(doc["files"][0]) == {
        "path",
        "format",
        "compression",
        "safe",
        "globals",
        "untrusted",
        "problems",
    }
    doc = run_json("scan", "nope.pkl", cwd=workspace, code=2)
    assert doc["errors"][0]["path"] == "nope.pkl"
    human = run("scan", "model.joblib", "evil.pkl", cwd=workspace)
    assert human.returncode == 1 and "UNSAFE" in human.stdout and "posix.system" in human.stdout


def test_convert(workspace: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    doc = run_json(
        "convert",
        "model.joblib",
        "sk",
        "--to",
        "skops",
        "--key",
        "keys/trainer.key",
        cwd=workspace,
        code=0,
    )
    assert doc["format"] == "skops"
    assert (workspace / "sk" / "model.skops").exists()
    assert run("verify", "sk", "--trusted", "keys", cwd=workspace).returncode == 0


def test_piped_output_has_no_progress_bar(workspace: Path) -> None:
    assert (
        run(
            "sign", "model.joblib", "--key", "keys/trainer.key", "--out", "a", cwd=workspace
        ).returncode
        == 0
    )
    result = run("verify", "a", "--trusted", "keys", cwd=workspace)
    assert "hashing" not in result.stderr and "\x1b[" not in result.stdout


def test_demo_runs(tmp_path: Path) -> None:
    result = run("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "payload ran: False" in result.stdout
    assert result.stdout.count("refused (") == 3
