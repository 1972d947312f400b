"""``trust.toml``, the keys folder and policy files attacked: each a clear error, in bounded time.

These files belong to the deployment, but they are read by every load, copied between hosts and
edited by hand; and the model name that trust rules match comes from the artifact, chosen by
whoever signed it. A bad file is a :class:`~safeload.errors.TrustFileError`,
:class:`~safeload.errors.KeyFileError` or :class:`~safeload.errors.PolicyFileError` naming it,
never a traceback; anything that could hang runs in a child process with a timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

import safeload
from safeload.keys import public_pem
from safeload.trust import MAX_MODEL_NAME, parse_trust_file
from tests.test_cli import run

NESTED = {
    "arrays": "x = " + "[" * 20_000 + "]" * 20_000 + "\n",
    "inline-tables": "x = " + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n",
    "arrays-of-tables": "x = " + "[{a = " * 3_000 + "1" + "}]" * 3_000 + "\n",
}


def keys_folder(tmp_path: Path, trust: str | bytes | None) -> Path:
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "trainer.pub").write_bytes(public_pem(safeload.generate_key().public_key))
    if trust is not None:
        data = trust.encode() if isinstance(trust, str) else trust
        (folder / "trust.toml").write_bytes(data)
    return folder


# --- trust.toml ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", sorted(NESTED))
def test_a_deeply_nested_trust_file_is_a_trust_file_error(tmp_path: Path, shape: str) -> None:
    folder = keys_folder(tmp_path, NESTED[shape])
    assert len(NESTED[shape]) < 64 * 1024  # under the size limit: the nesting is the attack
    with pytest.raises(safeload.TrustFileError, match="nests arrays or inline tables too deeply"):
        safeload.Keyring.from_dir(folder)


def test_the_cli_says_so_too_without_a_traceback(tmp_path: Path) -> None:
    key = safeload.generate_key()
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    artifact = safeload.save(model, tmp_path / "m", key=key, name="m", version="1")
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "trainer.pub").write_bytes(public_pem(key.public_key))
    (folder / "trust.toml").write_text(NESTED["arrays"])
    done = run("verify", str(artifact), "--trusted", str(folder), cwd=tmp_path)
    assert done.returncode not in (0, 1), done.stdout + done.stderr
    assert "nests arrays or inline tables too deeply" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("2027-06-30", True),
        ("9999-12-31", True),
        ("0001-01-01", True),  # a date long past: the key is expired, not an error
        ("2027-06-30T00:00:00Z", False),
        ("2027-06-30T00:00:00+14:00", False),
        ("2027-06-30 00:00:00", False),
        ("07:32:00", False),
        ('"2027-06-30"', False),
        ("20270630", False),
        ("2027-02-30", False),  # no such day: tomllib refuses it
        ("10000-01-01", False),
    ],
)
def test_odd_dates(value: str, accepted: bool) -> None:
    text = f'[keys.trainer]\nfile = "trainer.pub"\nexpires = {value}\n'
    if accepted:
        assert parse_trust_file(text.encode(), "trust.toml").keys["trainer"].expires is not None
    else:
        with pytest.raises(safeload.TrustFileError, match="TOML"):
            parse_trust_file(text.encode(), "trust.toml")


def test_huge_arrays_are_refused_by_their_bound() -> None:
    patterns = ", ".join(['"a"'] * 12_000)
    text = f'[keys.t]\nfile = "t.pub"\n[[require]]\nmodels = [{patterns}]\nsigners = ["t"]\n'
    with pytest.raises(safeload.TrustFileError, match="non-empty list of strings"):
        parse_trust_file((text + "threshold = 1\n").encode(), "trust.toml")
    long_pattern = f'[keys.t]\nfile = "t.pub"\n[[require]]\nmodels = ["{"*" * 300}"]\n'
    with pytest.raises(safeload.TrustFileError, match="non-empty list of strings"):
        parse_trust_file((long_pattern + 'signers = ["t"]\nthreshold = 1\n').encode(), "t")


def test_a_huge_signed_name_is_refused_not_matched_pattern_by_pattern() -> None:
    # The deployment's patterns (legitimate, if odd), the signer's name: matching 240 patterns
    # of 128 stars against a 700 kB name took seconds per load, and the signer picks the name.
    pattern = "*a" * 127
    models = ", ".join(f'"{pattern}{chr(98 + i % 20)}"' for i in range(240))
    text = f'[keys.t]\nfile = "t.pub"\n[[require]]\nmodels = [{models}]\nsigners = ["t"]\n'
    trust = parse_trust_file((text + "threshold = 1\n").encode(), "trust.toml")
    started = time.perf_counter()
    with pytest.raises(safeload.SignatureError, match="signed model name is 700000 characters"):
        trust.rule_for("a" * 700_000)
    assert time.perf_counter() - started < 1
    assert trust.rule_for("a" * MAX_MODEL_NAME) is None  # up to the bound: matched as ever


def test_a_model_signed_under_a_huge_name_does_not_load_under_rules(tmp_path: Path) -> None:
    key = safeload.generate_key()
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    name = "churn" + "x" * 5_000  # matches "churn*": must not fall through to "no rule"
    artifact = safeload.save(model, tmp_path / "m", key=key, name=name, version="1")
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "trainer.pub").write_bytes(public_pem(key.public_key))
    (folder / "trust.toml").write_text(
        '[keys.trainer]\nfile = "trainer.pub"\n[[require]]\nmodels = ["churn*"]\n'
        'signers = ["trainer"]\nthreshold = 1\n'
    )
    with pytest.raises(safeload.SignatureError, match="over 1024"):
        safeload.load_checked(artifact, trusted=folder)


# --- the keys folder --------------------------------------------------------------------------

_FOLDER_CHILD = """
import sys
import safeload
try:
    safeload.Keyring.from_dir(sys.argv[1])
except safeload.SafeloadError as exc:
    print(type(exc).__name__, exc)
"""


def from_dir_in_a_child(folder: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _FOLDER_CHILD, str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-1500:]
    return done.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("name", ["trust.toml", "ci.pub"])
def test_a_fifo_in_the_keys_folder_is_refused_without_hanging(tmp_path: Path, name: str) -> None:
    folder = keys_folder(tmp_path, None)
    os.mkfifo(folder / name)
    assert from_dir_in_a_child(folder).startswith("KeyFileError")


def test_a_symlinked_or_huge_key_is_refused(tmp_path: Path) -> None:
    folder = keys_folder(tmp_path, None)
    (tmp_path / "elsewhere.pub").write_bytes((folder / "trainer.pub").read_bytes())
    (folder / "linked.pub").symlink_to(tmp_path / "elsewhere.pub")
    assert "symlink" in from_dir_in_a_child(folder)
    (folder / "linked.pub").unlink()
    (folder / "huge.pub").write_bytes(b"-" * (1 << 20))
    assert from_dir_in_a_child(folder).startswith("KeyFileError")


def test_a_keys_folder_of_many_files_is_refused_by_its_bound(tmp_path: Path) -> None:
    folder = keys_folder(tmp_path, None)
    for i in range(5_000):
        (folder / f"k{i}.txt").touch()
    started = time.perf_counter()
    assert "more than 4096 entries" in from_dir_in_a_child(folder)
    assert time.perf_counter() - started < 30


# --- policy files -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", sorted(NESTED))
def test_a_deeply_nested_policy_file_is_a_policy_file_error(tmp_path: Path, shape: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[types]\n"mylib:Thing" = "reviewed"\n' + NESTED[shape])
    with pytest.raises(safeload.PolicyFileError, match="nests arrays or inline tables too deep"):
        safeload.TypePolicy.from_file(path)


def test_a_deeply_nested_policy_file_through_the_cli(tmp_path: Path) -> None:
    key = safeload.generate_key()
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    artifact = safeload.save(model, tmp_path / "m", key=key, name="m", version="1")
    key.save(tmp_path / "keys" / "trainer")
    path = tmp_path / "policy.toml"
    path.write_text(NESTED["inline-tables"])
    done = run(
        "verify",
        str(artifact),
        "--trusted",
        str(tmp_path / "keys"),
        "--policy",
        str(path),
        cwd=tmp_path,
    )
    assert done.returncode not in (0, 1) and "Traceback" not in done.stderr, done.stderr[-1500:]
    assert "nests arrays or inline tables too deeply" in done.stderr
