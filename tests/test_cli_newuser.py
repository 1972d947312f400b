"""What a new user trips over (issue 13), through the real console script in a subprocess.

Each test checks the exit status, stdout and stderr of one slip: the wrong folder, the wrong
key, a file that is not a model at all, a missing name, output read through a pipe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

import safeload
from tests.helpers import frame_pipeline
from tests.test_cli import run


@pytest.fixture
def store(tmp_path: Path, pipeline: Pipeline) -> Path:
    """models/churn/{1.0.0,1.3.0} and models/fraud/2.0.0, signed; keys/ trusts the signer."""
    key = safeload.generate_key()
    key.save(tmp_path / "secrets" / "trainer")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "trainer.pub").write_bytes(
        (tmp_path / "secrets" / "trainer.pub").read_bytes()
    )
    for name, version in (("churn", "1.0.0"), ("churn", "1.3.0"), ("fraud", "2.0.0")):
        safeload.save(
            pipeline, tmp_path / "models" / name / version, key=key, name=name, version=version
        )
    return tmp_path


# --- the wrong folder is a usage error, not a refusal ---------------------------------------


def test_verify_of_a_model_folder_lists_its_versions(store: Path) -> None:
    result = run("verify", "models/churn", "--trusted", "keys", cwd=store)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "is a model folder, not an artifact" in result.stderr
    assert "1.0.0, 1.3.0" in result.stderr
    assert os.path.join("models", "churn", "1.3.0") in result.stderr
    assert "regular file" not in result.stderr


def test_verify_of_a_store_root_says_which_path_to_give(store: Path) -> None:
    result = run("verify", "models", "--trusted", "keys", cwd=store)
    assert result.returncode == 2, result.stderr
    assert "is a folder of models (churn, fraud)" in result.stderr
    assert "safeload ls models" in result.stderr
    doc = json.loads(run("verify", "models", "--trusted", "keys", "--json", cwd=store).stdout)
    assert doc["error"] == "error" and doc["type"] == "ArtifactNotFoundError"


def test_load_of_a_model_folder_is_the_same_usage_error(store: Path) -> None:
    with pytest.raises(safeload.ArtifactNotFoundError, match=r"versions 1\.0\.0, 1\.3\.0"):
        safeload.load(store / "models" / "churn", trusted=store / "keys")


def test_a_folder_added_inside_an_artifact_is_still_a_refusal(store: Path) -> None:
    """Only a folder holding none of an artifact's files is a usage error: tampering is not."""
    (store / "models" / "churn" / "1.3.0" / "extra").mkdir()
    result = run("verify", "models/churn/1.3.0", "--trusted", "keys", cwd=store)
    assert result.returncode == 1, result.stderr
    assert "extra in" in result.stderr and "not a regular file" in result.stderr


# --- keys -----------------------------------------------------------------------------------


def test_a_public_key_given_as_key_says_so(store: Path) -> None:
    joblib.dump(safeload.load(store / "models/churn/1.0.0", trusted=store / "keys"), store / "m.j")
    os.chmod(store / "keys" / "trainer.pub", 0o644)
    result = run("sign", "m.j", "--key", "keys/trainer.pub", "--out", "out/1.0.0", cwd=store)
    assert result.returncode == 2, result.stderr
    assert "is a public key" in result.stderr and "chmod" not in result.stderr
    assert not (store / "out").exists()


def test_an_encrypted_key_without_passphrase_names_the_option(store: Path) -> None:
    assert run("keygen", "secrets/locked", "--passphrase-env", "PW", cwd=store, env={"PW": "x1"})
    result = run("sign", "models/churn/1.0.0", "--key", "secrets/locked.key", cwd=store, stdin="")
    assert result.returncode == 2, result.stderr
    assert "--passphrase-env" in result.stderr and "encrypted" in result.stderr


# --- files that are not models --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("train.py", b"import os\nos.system('echo hi')\n"),
        ("notes.txt", b"hello world, secret-token-42\n"),
        ("half.skops", b"PK\x03\x04" + b"secret-token-42" * 3),
    ],
)
def test_a_file_that_is_not_a_model_is_named_so_without_its_bytes(
    tmp_path: Path, name: str, content: bytes
) -> None:
    (tmp_path / name).write_bytes(content)
    result = run("scan", name, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "not a pickle, joblib or skops file" in result.stdout
    for secret in ("secret-token-42", "os.system", "echo hi", "import os", "mport"):
        assert secret not in result.stdout + result.stderr
    doc = json.loads(run("scan", name, "--json", cwd=tmp_path).stdout)
    [report] = doc["files"]
    assert report["safe"] is False and report["untrusted"] == []


def test_untrusted_default_policy_is_not_echoed_for_garbage_names(tmp_path: Path) -> None:
    """A protocol-0 stream naming a real global still reports it: only non-names are hidden."""
    (tmp_path / "old.pkl").write_bytes(b"cos\nsystem\n(S'echo'\ntR.")
    doc = json.loads(run("scan", "old.pkl", "--json", cwd=tmp_path).stdout)
    assert doc["files"][0]["untrusted"] == ["os.system"]


# --- missing names and paths: the error alone ----------------------------------------------


def test_ls_of_an_unknown_model_is_an_error(store: Path) -> None:
    result = run("ls", "models", "nosuchmodel", cwd=store)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "no model 'nosuchmodel'" in result.stderr and "churn, fraud" in result.stderr


def test_inspect_of_a_missing_path_prints_only_the_error(store: Path) -> None:
    result = run("inspect", "nope/1.0.0", "--trusted", "keys", cwd=store)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("safeload: error: no artifact at nope")
    doc = json.loads(run("inspect", "nope/1.0.0", "--json", cwd=store).stdout)
    assert set(doc) == {"schema", "error", "type", "message"}
    assert doc["error"] == "error" and doc["type"] == "ArtifactNotFoundError"


def test_scan_of_a_missing_file_prints_no_empty_table(tmp_path: Path) -> None:
    result = run("scan", "nope.pkl", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "nope.pkl" in result.stderr


# --- output read through a pipe -------------------------------------------------------------


def test_piped_tables_never_cut_paths_or_verdicts(tmp_path: Path, pipeline: Pipeline) -> None:
    deep = tmp_path / ("very-long-directory-name-" * 4) / "structure" / "of" / "models"
    deep.mkdir(parents=True)
    joblib.dump(pipeline, deep / "clean.joblib")
    (deep / "evil.pkl").write_bytes(b"\x80\x04cos\nsystem\n.")
    result = run(
        "scan",
        str(deep / "clean.joblib"),
        str(deep / "evil.pkl"),
        cwd=tmp_path,
        env={"COLUMNS": ""},
    )
    assert result.returncode == 1
    assert str(deep / "clean.joblib") in result.stdout
    assert str(deep / "evil.pkl") in result.stdout
    assert "clean" in result.stdout and "UNSAFE" in result.stdout
    assert "…" not in result.stdout


def test_version_and_help_import_no_science(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"safeload {safeload.__version__}"
    probe = (
        "import sys\n"
        "from safeload._cli import main\n"
        "code = main(sys.argv[1:])\n"
        "heavy = sorted(m for m in ('numpy', 'sklearn', 'scipy', 'rich', 'cryptography')"
        " if m in sys.modules)\n"
        "print(heavy)\n"
    )
    for argv in (["--version"], ["--help"], ["verify", "--help"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert done.stdout.strip().splitlines()[-1] == "[]", (argv, done.stdout, done.stderr)


def test_broken_pipe_is_not_a_traceback(tmp_path: Path, pipeline: Pipeline) -> None:
    for i in range(30):
        joblib.dump(pipeline, tmp_path / f"m{i}.joblib")
    files = [f"m{i}.joblib" for i in range(30)]
    command = [str(Path(sys.executable).parent / "safeload"), "scan", *files, "--json"]
    pipe = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert pipe.stdout is not None and pipe.stderr is not None
    pipe.stdout.read(10)
    pipe.stdout.close()
    stderr = pipe.stderr.read().decode()
    assert pipe.wait(timeout=120) in (0, 2)
    assert "Traceback" not in stderr


# --- demo and convert ------------------------------------------------------------------------


def test_demo_keep_keeps_its_files(tmp_path: Path) -> None:
    result = run("demo", "--keep", "tour", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    tour = tmp_path / "tour"
    assert (tour / "models" / "wine-joblib" / "1.0.0" / "model.sig").is_file()
    assert (tour / "keys" / "trainer.pub").is_file()
    assert not (tour / "keys" / "trainer.key").exists(), "the private key is kept out of keys/"
    assert (tour / "secrets" / "trainer.key").is_file()
    assert f"The files are kept in {Path('tour')}" in result.stdout
    again = run("demo", "--keep", "tour", cwd=tmp_path)
    assert again.returncode == 2 and "not an empty folder" in again.stderr


def test_convert_takes_sample_rows_for_a_dataframe_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, 60).astype(float),
            "income": rng.normal(5e4, 1e4, 60),
            "plan": rng.choice(["basic", "pro"], 60),
        }
    )
    joblib.dump(frame_pipeline(frame, rng.integers(0, 2, 60)), tmp_path / "frame.joblib")
    frame.iloc[:20].to_csv(tmp_path / "rows.csv", index=False)
    assert run("keygen", "secrets/t", cwd=tmp_path).returncode == 0
    args = ("convert", "frame.joblib", "out/1.0.0", "--key", "secrets/t.key")
    without = run(*args, cwd=tmp_path)
    assert without.returncode == 2, without.stderr
    assert "--sample" in without.stderr
    done = run(*args, "--sample", "rows.csv", "--sample-rows", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "t.pub").write_bytes((tmp_path / "secrets" / "t.pub").read_bytes())
    loaded = safeload.load_checked(tmp_path / "out" / "1.0.0", trusted=tmp_path / "keys")
    assert loaded.metadata["sample"]["predictions"]["predict"]["shape"] == [5]
    missing = run(*args[:2], "out/2.0.0", *args[3:], "--sample", "nope.csv", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_verify_takes_several_paths(store: Path) -> None:
    good = ["models/churn/1.0.0", "models/fraud/2.0.0"]
    human = run("verify", *good, "--trusted", "keys", cwd=store)
    assert human.returncode == 0, human.stderr
    assert human.stdout.count("OK  ") == 2
    tampered = store / "models" / "churn" / "1.3.0" / "model.joblib"
    tampered.write_bytes(tampered.read_bytes() + b"x")
    mixed = run("verify", *good, "models/churn/1.3.0", "--trusted", "keys", cwd=store)
    assert mixed.returncode == 1
    assert mixed.stdout.count("OK  ") == 2
    assert "safeload: refused:" in mixed.stderr and "model.joblib" in mixed.stderr
    doc = json.loads(
        run(
            "verify", *good, "models/churn/1.3.0", "nope", "--trusted", "keys", "--json", cwd=store
        ).stdout
    )
    assert doc["verified"] is False
    verdicts = [(a["path"], a["verified"], a.get("error")) for a in doc["artifacts"]]
    assert verdicts == [
        (str(Path(good[0])), True, None),
        (str(Path(good[1])), True, None),
        ("models/churn/1.3.0", False, "refused"),
        ("nope", False, "error"),
    ]
    assert doc["artifacts"][2]["type"] == "TamperedArtifactError"
    assert run("verify", *good, "nope", "--trusted", "keys", cwd=store).returncode == 2


class Doubler:
    """A user's own class: not in the default policy."""

    def __init__(self) -> None:
        self.factor = 2


def test_untrusted_types_advice_names_the_cli_option(tmp_path: Path) -> None:
    joblib.dump(Doubler(), tmp_path / "own.joblib")
    assert run("keygen", "secrets/t", cwd=tmp_path).returncode == 0
    result = run("sign", "own.joblib", "--key", "secrets/t.key", "--out", "m/1.0.0", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "tests.test_cli_newuser.Doubler" in result.stderr
    assert "--allow MODULE:NAME" in result.stderr
    assert "TypePolicy" not in result.stderr and ".partial" not in result.stderr
    doc = json.loads(
        run(
            "sign",
            "own.joblib",
            "--key",
            "secrets/t.key",
            "--out",
            "m/1.0.0",
            "--json",
            cwd=tmp_path,
        ).stdout
    )
    assert doc["type"] == "UntrustedTypeError" and "--allow" in doc["message"]
    assert doc["types"] == ["tests.test_cli_newuser.Doubler"]
    assert not (tmp_path / "m").exists()


def test_policy_flags_on_the_command_line(tmp_path: Path) -> None:
    """--allow refuses a door, --unsafe-allow insists (and warns), --policy and the variable."""
    (tmp_path / "evil.pkl").write_bytes(b"\x80\x04cos\nsystem\n.")
    refused = run("scan", "evil.pkl", "--allow", "os:system", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stdout == "", "no table before the error"
    assert "refused even when asked" in refused.stderr and "--unsafe-allow" in refused.stderr
    insisted = run("scan", "evil.pkl", "--unsafe-allow", "os:system", cwd=tmp_path)
    assert insisted.returncode == 0
    assert insisted.stderr.startswith("safeload: warning: ") and "os:system" in insisted.stderr
    (tmp_path / "policy.toml").write_text(
        '[types]\n"os:system" = { why = "a test of insisting", unsafe = true }\n'
    )
    by_file = run("scan", "evil.pkl", "--policy", "policy.toml", "--json", cwd=tmp_path)
    assert by_file.returncode == 0 and json.loads(by_file.stdout)["safe"] is True
    assert "warning" in by_file.stderr
    by_env = run("scan", "evil.pkl", cwd=tmp_path, env={"SAFELOAD_POLICY": "policy.toml"})
    assert by_env.returncode == 0 and "warning" in by_env.stderr
    without = run("scan", "evil.pkl", cwd=tmp_path)
    assert without.returncode == 1 and "os.system" in without.stdout
    missing = run("scan", "evil.pkl", cwd=tmp_path, env={"SAFELOAD_POLICY": "nope.toml"})
    assert missing.returncode == 2 and "nope.toml" in missing.stderr
