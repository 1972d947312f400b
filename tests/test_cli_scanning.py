"""CI-grade scanning: trees walked without following symlinks, bounded, and SARIF output.

The CLI runs as the real console script in a subprocess; the tree walk is also tested on its
own. SARIF logs are validated against the official OASIS schema vendored in tests/data.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sklearn.pipeline import Pipeline

from safeload._cli import tree
from safeload.errors import OperationalError
from tests.malicious import malicious_joblib
from tests.test_cli import run

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())


@pytest.fixture
def repo(tmp_path: Path, pipeline: Pipeline, marker: Path) -> Path:
    """A checkout: a clean model, a malicious pickle two levels down, and traps around them.

    * ``a/b/evil.pkl``: malicious, nested two directories deep;
    * ``a/skip-me.pkl``: malicious, to be excluded by a pattern;
    * ``a/b/notes.txt``: a malicious pickle under a name models do not use;
    * ``link.pkl``: a symlink to a malicious file outside the tree;
    * ``a/loop``: a symlink to its own parent (a directory loop).
    """
    import joblib

    root = tmp_path / "repo"
    (root / "a" / "b").mkdir(parents=True)
    joblib.dump(pipeline, root / "clean.joblib")
    evil = malicious_joblib(marker)
    (root / "a" / "b" / "evil.pkl").write_bytes(evil)
    (root / "a" / "skip-me.pkl").write_bytes(evil)
    (root / "a" / "b" / "notes.txt").write_bytes(evil)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.pkl").write_bytes(malicious_joblib(marker, compress=3))
    (root / "link.pkl").symlink_to(outside / "target.pkl")
    (root / "a" / "loop").symlink_to("..", target_is_directory=True)
    return root


def scan_json(*args: str, cwd: Path, code: int) -> Any:
    result = run("scan", *args, "--json", cwd=cwd)
    assert result.returncode == code, result.stdout + result.stderr
    return json.loads(result.stdout)


def sarif(*args: str, cwd: Path, code: int) -> Any:
    result = run(*args, "--format", "sarif", cwd=cwd)
    assert result.returncode == code, result.stdout + result.stderr
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    return log


def test_tree_scan_finds_nested_file_never_follows_symlinks(repo: Path, marker: Path) -> None:
    cwd = repo.parent
    doc = scan_json("repo", "--exclude", "skip-me.pkl", cwd=cwd, code=1)
    verdicts = {f["path"]: f["safe"] for f in doc["files"]}
    assert verdicts == {"repo/clean.joblib": True, "repo/a/b/evil.pkl": False}
    assert doc["files"][1]["untrusted"] == ["io.open"]
    assert doc["skipped"] == [
        {"path": "repo/link.pkl", "reason": "symbolic link, not followed"},
        {"path": "repo/a/loop", "reason": "symbolic link, not followed"},
    ]
    # The link's target (compressed, so its report would say zlib) was never scanned.
    assert "target.pkl" not in json.dumps(doc["files"]) and "zlib" not in json.dumps(doc)
    assert doc["errors"] == [] and not marker.exists()
    human = run("scan", "repo", "--exclude", "skip-me.pkl", cwd=cwd)
    assert human.returncode == 1 and "repo/a/b/evil.pkl" in human.stdout
    assert "safeload: skipped repo/link.pkl: symbolic link, not followed" in human.stderr
    assert "listing" not in human.stderr and "scanning" not in human.stderr  # piped: no bar


def test_include_and_exclude(repo: Path) -> None:
    cwd = repo.parent
    paths = [f["path"] for f in scan_json("repo", cwd=cwd, code=1)["files"]]
    assert "repo/a/skip-me.pkl" in paths and "repo/a/b/notes.txt" not in paths
    doc = scan_json("repo", "--include", "*.txt", cwd=cwd, code=1)
    assert {"repo/a/b/notes.txt": False}.items() <= {
        f["path"]: f["safe"] for f in doc["files"]
    }.items()
    # Relative-path patterns; exclude wins over include; an excluded directory is not entered.
    doc = scan_json("repo", "--include", "a/b/*", "--exclude", "a/b/*.pkl", cwd=cwd, code=1)
    paths = [f["path"] for f in doc["files"]]
    assert "repo/a/b/notes.txt" in paths and "repo/a/b/evil.pkl" not in paths
    doc = scan_json("repo", "--exclude", "a", "--exclude", "link.pkl", cwd=cwd, code=0)
    assert [f["path"] for f in doc["files"]] == ["repo/clean.joblib"]
    assert doc["skipped"] == [] and doc["safe"] is True
    # A file named on the command line is scanned whatever its name.
    doc = scan_json("repo/a/b/notes.txt", "--exclude", "*.txt", cwd=cwd, code=1)
    assert doc["files"][0]["untrusted"] == ["io.open"]


def test_symlink_on_the_command_line_is_refused(repo: Path, marker: Path) -> None:
    for link in ("repo/link.pkl", "repo/a/loop", "repo/a/loop/", "repo/a/loop//"):
        doc = scan_json(link, cwd=repo.parent, code=2)
        assert doc["files"] == [] and "is a symlink" in doc["errors"][0]["message"]
    assert not marker.exists()


def test_limits_are_errors_not_truncation(repo: Path) -> None:
    cwd = repo.parent
    doc = scan_json("repo", "--max-files", "4", cwd=cwd, code=2)
    assert doc["files"] == [] and "more than 4 entries" in doc["errors"][0]["message"]
    result = run("scan", "repo", "--max-depth", "1", cwd=cwd)
    assert result.returncode == 2 and "--max-depth" in result.stderr
    assert result.stdout == ""  # nothing under the tree is reported as scanned
    scan_json("repo", "--max-depth", "2", cwd=cwd, code=1)
    # The budget counts across every directory given.
    total = scan_json("repo", cwd=cwd, code=1)
    assert total["errors"] == []
    doc = scan_json("repo", "repo/a", "--max-files", "12", cwd=cwd, code=2)
    assert doc["errors"][0]["path"] == "repo/a"
    assert run("scan", "repo", "--max-files", "0", cwd=cwd).returncode == 2
    for i in range(5):  # one directory alone larger than the limit: counted as it is read
        (repo / "a" / "b" / f"filler{i}").write_bytes(b"")
    doc = scan_json("repo/a/b", "--max-files", "6", cwd=cwd, code=2)
    assert doc["files"] == [] and "more than 6 entries" in doc["errors"][0]["message"]


def test_format_and_json_must_agree(repo: Path) -> None:
    cwd = repo.parent
    result = run("scan", "repo/clean.joblib", "--json", "--format", "sarif", cwd=cwd)
    assert result.returncode == 2 and "disagree" in result.stderr and result.stdout == ""
    same = run("scan", "repo/clean.joblib", "--json", "--format", "json", cwd=cwd)
    assert same.returncode == 0 and json.loads(same.stdout)["safe"] is True
    table = run("scan", "repo/clean.joblib", "--format", "table", cwd=cwd)
    assert table.returncode == 0 and "clean" in table.stdout


def _results(log: Any) -> list[tuple[str, str, str]]:
    return [
        (
            r["ruleId"],
            r["level"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        )
        for r in log["runs"][0]["results"]
    ]


def _notes(log: Any) -> list[tuple[str, str, str]]:
    return [
        (
            n["descriptor"]["id"],
            n["level"],
            n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        )
        for n in log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    ]


def test_scan_sarif(repo: Path) -> None:
    import safeload

    (repo / "a" / "bad.pkl").write_bytes(b"not a pickle at all")
    log = sarif("scan", "repo", cwd=repo.parent, code=1)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    run_ = log["runs"][0]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "safeload" and driver["version"] == safeload.__version__
    rules = [r["id"] for r in driver["rules"]]
    assert rules[:3] == ["SL001", "SL002", "SL003"]
    assert sorted(_results(log)) == [
        ("SL001", "error", "repo/a/b/evil.pkl"),
        ("SL001", "error", "repo/a/skip-me.pkl"),
        ("SL002", "error", "repo/a/bad.pkl"),
    ]
    for result in run_["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        location = result["locations"][0]
        assert location["physicalLocation"]["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        if result["ruleId"] == "SL001":
            assert location["logicalLocations"] == [
                {"fullyQualifiedName": "io.open", "kind": "type"}
            ]
            assert result["properties"]["type"] == "io.open"
    base = run_["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert base == repo.parent.as_uri() + "/"
    assert _notes(log) == [
        ("SL101", "warning", "repo/link.pkl"),
        ("SL101", "warning", "repo/a/loop"),
    ]
    invocation = run_["invocations"][0]
    assert invocation["executionSuccessful"] is True and invocation["exitCode"] == 1
    clean = [a for a in run_["artifacts"] if a["properties"]["safe"]]
    assert [a["location"]["uri"] for a in clean] == ["repo/clean.joblib"]
    # A path that cannot be read is no finding: a notification, and the run did not succeed.
    log = sarif("scan", "repo/clean.joblib", "missing.pkl", cwd=repo.parent, code=2)
    assert _results(log) == [] and _notes(log) == [("SL100", "error", "missing.pkl")]
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is False
    # Run from inside the tree, paths outside the current directory are file: URIs.
    log = sarif("scan", str(repo / "a" / "b" / "evil.pkl"), cwd=repo / "a", code=1)
    assert _results(log) == [("SL001", "error", "b/evil.pkl")]
    log = sarif("scan", "../clean.joblib", cwd=repo / "a", code=0)
    assert log["runs"][0]["artifacts"][0]["location"] == {"uri": (repo / "clean.joblib").as_uri()}


def test_verify_sarif(tmp_path: Path, artifact: Path, keydir: Path) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(artifact, tampered)
    data = bytearray((tampered / "model.joblib").read_bytes())
    data[100] ^= 1
    (tampered / "model.joblib").write_bytes(bytes(data))
    unsigned = tmp_path / "unsigned"
    shutil.copytree(artifact, unsigned)
    (unsigned / "model.sig").unlink()
    good = os.path.relpath(artifact, tmp_path)
    args = ("verify", good, "tampered", "unsigned", "missing", "--trusted", "keys")
    log = sarif(*args, cwd=tmp_path, code=2)
    assert _results(log) == [
        ("SL003", "error", "tampered/model.joblib"),
        ("SL004", "error", "unsigned/"),
    ]
    result = log["runs"][0]["results"][0]
    assert result["properties"] == {"type": "TamperedArtifactError", "files": ["model.joblib"]}
    assert "signed manifest" in result["message"]["text"]
    assert _notes(log) == [("SL100", "error", "missing")]
    run_ = log["runs"][0]
    assert run_["invocations"][0]["executionSuccessful"] is False
    assert [a["location"]["uri"] for a in run_["artifacts"]] == [good + "/"]
    human = run(*args, cwd=tmp_path)
    assert human.returncode == 2 and "safeload: refused: tampered: the artifact" in human.stderr
    assert "safeload: refused: unsigned: " in human.stderr and good in human.stdout
    # Without the missing path, the same refusals are exit 1 and the run succeeded.
    log = sarif(*args[:4], "--trusted", "keys", cwd=tmp_path, code=1)
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is True
    log = sarif("verify", good, "--trusted", "keys", cwd=tmp_path, code=0)
    assert log["runs"][0]["results"] == []
    same = run("verify", good, "--trusted", "keys", "--format", "json", cwd=tmp_path)
    assert same.returncode == 0 and json.loads(same.stdout)["verified"] is True


def test_verify_sarif_untrusted_types(tmp_path: Path, keydir: Path, key: Any) -> None:
    import safeload

    # Signed by a careless signer who insisted on os.system: a trusted key, an untrusted type.
    careless = safeload.TypePolicy.default().extend(["posix.system"], unsafe=True)
    safeload.save(
        {"f": os.system}, tmp_path / "art", key=key, name="x", version="1", policy=careless
    )
    log = sarif("verify", "art", "--trusted", "keys", cwd=tmp_path, code=1)
    assert _results(log) == [("SL001", "error", "art/model.joblib")]
    result = log["runs"][0]["results"][0]
    assert result["properties"]["type"] == "posix.system"
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "posix.system"


# --- the walk on its own -------------------------------------------------------------------


def test_model_names() -> None:
    for name in ("m.pkl", "M.PKL", "m.joblib", "model.skops", "m.joblib.gz", "m.pkl.lz4"):
        assert tree.is_model_name(name), name
    for name in ("m.txt", "m.csv.gz", "pkl", ".pkl", "m.gz", "m.bin", "m.pt", "m.dat"):
        assert not tree.is_model_name(name), name


def test_walk_never_enters_a_symlinked_directory(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "m.pkl").write_bytes(b"x")
    (tmp_path / "root" / "dir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    found = tree.walk(str(tmp_path / "root"))
    assert found.files == [] and [s.path for s in found.skipped] == [str(tmp_path / "root" / "dir")]
    with pytest.raises(OperationalError, match="symlink"):
        tree.walk(str(tmp_path / "root" / "dir"))


def test_a_directory_swapped_for_a_symlink_after_listing_is_not_followed(tmp_path: Path) -> None:
    """A tree that changes between listing and scanning cannot redirect the scan."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "m.pkl").write_bytes(b"listed")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "m.pkl").write_bytes(b"secret")
    (found,) = tree.walk(str(root)).files
    shutil.rmtree(root / "sub")
    (root / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(OperationalError, match="never followed"):
        os.close(tree.open_found(found))
    # And the file itself swapped for a symlink.
    (root / "sub").unlink()
    (root / "sub").mkdir()
    (root / "sub" / "m.pkl").symlink_to(tmp_path / "elsewhere" / "m.pkl")
    with pytest.raises(OperationalError, match="never followed"):
        os.close(tree.open_found(found))


def test_special_files_are_skipped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.pkl")
    found = tree.walk(str(tmp_path))
    assert found.files == []
    assert [(os.path.basename(s.path), s.reason) for s in found.skipped] == [
        ("pipe.pkl", "not a regular file")
    ]


def test_sarif_file_names_that_are_not_utf8(tmp_path: Path, marker: Path) -> None:
    """A hostile checkout's odd file names still make a valid log that names the exact file."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x.pkl").write_bytes(malicious_joblib(marker))
    os.rename(tmp_path / "t" / "x.pkl", os.fsencode(tmp_path / "t") + b"/b\xff d.pkl")
    log = sarif("scan", "t", cwd=tmp_path, code=1)
    (result,) = log["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "t/b%FF%20d.pkl"
    assert result["message"]["text"].startswith("t/b\ufffd d.pkl names the untrusted type")
    assert not marker.exists()


def _stderr_on_a_terminal(*args: str, cwd: Path) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal (stdout piped); return the status and stderr."""
    import pty
    import subprocess

    from tests.test_cli import SCRIPT

    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "safeload"]
    master, slave = pty.openpty()
    with subprocess.Popen(
        [*command, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=slave
    ) as child:
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        status = child.wait(timeout=120)
    os.close(master)
    return status, seen.decode(errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_on_a_terminal_only_for_tables(repo: Path) -> None:
    status, stderr = _stderr_on_a_terminal("scan", "repo", cwd=repo.parent)
    assert status == 1 and "scanning repo" in stderr
    for fmt in ("json", "sarif"):
        status, stderr = _stderr_on_a_terminal("scan", "repo", "--format", fmt, cwd=repo.parent)
        assert status == 1 and "scanning" not in stderr and "listing" not in stderr


def test_walk_of_the_current_directory_shows_plain_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "m.pkl").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    (found,) = tree.walk(".").files
    assert found.path == os.path.join("d", "m.pkl") and found.parts == ("d", "m.pkl")
    os.close(tree.open_found(found))
