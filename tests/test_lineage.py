"""Lineage: the training data's digest and statistics, and the code's commit, signed with a model.

The digest is checked against an independent implementation of the scheme as docs/format.md
writes it (so the documentation is the specification), and for what it promises: the same data
gives the same digest, a changed value or reordered rows another. The statistics stay bounded
on a wide and a high-cardinality frame; the git record comes from a real repository, and from
none. What is recorded is signed: an edited statistics block is tampering, and a re-signed one
that breaks the schema's bounds is refused as malformed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import safeload
from safeload import datastats, lineage
from safeload.lineage import SCHEME, git_record, table_digest
from safeload.saving import write_signed_artifact
from tests.test_cli import run

GIT = shutil.which("git")


def frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000, 10_000, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )


def fitted(X: pd.DataFrame) -> Any:
    return LogisticRegression(max_iter=500).fit(X[["age", "income"]], X["age"] > 45)


# --- the digest ---------------------------------------------------------------------------------


def _lp(data: bytes) -> bytes:
    return struct.pack("<Q", len(data)) + data


def spec_digest(columns: list[tuple[str, str, list[Any]]], rows: int) -> str:
    """docs/format.md's safeload-table-v1, written from the page: float, int and text columns."""
    h = hashlib.sha256(b"safeload-table-v1\x00" + struct.pack("<QQ", rows, len(columns)))
    for name, kind, values in columns:
        h.update(_lp(name.encode()) + _lp(kind.encode()))
        for v in values:
            if kind == "float":
                h.update(struct.pack("<Q", 0x7FF8000000000000) if v != v else struct.pack("<d", v))
            elif kind == "int":
                h.update(struct.pack("<q", v))
            else:
                h.update(b"\x00" if v is None else b"s" + _lp(v.encode()))
        if kind == "int":
            h.update(b"\x00")  # no missing values: the flag, no mask
    return h.hexdigest()


def test_the_digest_is_the_documented_scheme() -> None:
    X = pd.DataFrame({"x": [1.5, float("nan"), -0.0], "n": [3, -7, 2**40], "s": ["a", None, "ünï"]})
    expected = spec_digest(
        [
            ("x", "float", [1.5, float("nan"), 0.0]),
            ("n", "int", [3, -7, 2**40]),
            ("s", "values", ["a", None, "ünï"]),
        ],
        3,
    )
    assert table_digest(X).sha256 == expected
    assert (table_digest(X).rows, table_digest(X).columns) == (3, 3)


def test_the_same_data_gives_the_same_digest_and_any_change_another() -> None:
    X = frame()
    digest = table_digest(X).sha256
    assert table_digest(X).sha256 == digest  # twice
    assert table_digest(X.copy()).sha256 == digest  # a copy
    assert table_digest(frame()).sha256 == digest  # rebuilt from the same values
    changed = X.copy()
    changed.loc[17, "income"] += 0.01
    assert table_digest(changed).sha256 != digest
    text_changed = X.copy()
    text_changed.loc[3, "plan"] = "gold"
    assert table_digest(text_changed).sha256 != digest
    # Documented: row order is part of the data, and so are column order and names.
    assert table_digest(X.iloc[::-1].reset_index(drop=True)).sha256 != digest
    assert table_digest(X[["income", "age", "plan"]]).sha256 != digest
    assert table_digest(X.rename(columns={"age": "Age"})).sha256 != digest


def test_the_digest_is_of_values_not_of_their_container() -> None:
    rng = np.random.default_rng(1)
    A = rng.integers(-1000, 1000, size=(50, 3))
    # An array and the DataFrame pandas makes of it (columns "0", "1", "2") are one table.
    assert table_digest(A) == table_digest(pd.DataFrame(A))
    # Integer widths and float widths are canonicalised; kinds are not.
    assert table_digest(A.astype(np.int32)) == table_digest(A)
    F = rng.normal(size=(50, 2)).astype(np.float32)
    assert table_digest(F) == table_digest(F.astype(np.float64))
    assert table_digest(A.astype(float)) != table_digest(A)
    # Every NaN is one NaN; -0.0 is 0.0.
    odd_nan = np.array([[struct.unpack("<d", struct.pack("<Q", 0x7FF8DEADBEEF0001))[0]]])
    assert table_digest(odd_nan) == table_digest(np.array([[np.nan]]))
    assert table_digest(np.array([[-0.0]])) == table_digest(np.array([[0.0]]))
    # A nullable integer column without missing values is the plain column; with one it is not.
    ints = pd.DataFrame({"k": [1, 2, 3]})
    assert table_digest(ints.astype("Int64")) == table_digest(ints)
    holes = pd.DataFrame({"k": pd.array([1, None, 3], dtype="Int64")})
    assert table_digest(holes) != table_digest(pd.DataFrame({"k": [1, 0, 3]}))
    # Categories digest as their values: a categorical and a text column agree.
    text = pd.DataFrame({"c": ["a", "b", None]})
    assert table_digest(text.astype("category")) == table_digest(text)


def test_save_records_the_digest_counts_and_uri_never_the_data(
    tmp_path: Path, key: safeload.SigningKey
) -> None:
    X = frame()
    path = safeload.save(
        fitted(X), tmp_path / "m", key=key, training_data=X[["age", "income"]],
        data_uri="s3://lake/churn/2026-11-30.parquet", run_id="run-42",
    )  # fmt: skip
    meta = json.loads((path / "safeload.json").read_text())
    data = meta["lineage"]["data"]
    assert data == {
        "scheme": SCHEME,
        "sha256": table_digest(X[["age", "income"]]).sha256,
        "rows": 300,
        "columns": 2,
        "uri": "s3://lake/churn/2026-11-30.parquet",
    }
    assert meta["training_data_sha256"] == data["sha256"]
    assert meta["lineage"]["run_id"] == "run-42"
    text = (path / "safeload.json").read_text()
    assert str(X["income"].iloc[5]) not in text  # statistics, never rows


# --- bounded statistics -------------------------------------------------------------------------


def test_statistics_stay_bounded_on_a_wide_and_a_high_cardinality_frame(
    tmp_path: Path, key: safeload.SigningKey
) -> None:
    rng = np.random.default_rng(2)
    wide = pd.DataFrame(rng.normal(size=(30, 2000)), columns=[f"f{i}" for i in range(2000)])
    ids = [f"customer-{i:06d}-" + "x" * 100 for i in range(100_000)]
    tall = pd.DataFrame({"id": ids, "v": rng.normal(size=100_000)})
    for name, X in (("wide", wide), ("tall", tall)):
        model = LogisticRegression().fit(X.select_dtypes("number"), rng.integers(0, 2, len(X)))
        path = safeload.save(model, tmp_path / name, key=key, training_data=X)
        size = (path / "safeload.json").stat().st_size
        stats = json.loads((path / "safeload.json").read_text())["training_stats"]
        assert len(json.dumps(stats)) < 600_000, name
        assert size < 1_000_000, (name, size)
        assert len(stats["features"]) <= datastats.MAX_STATS_COLUMNS
    wide_stats = json.loads((tmp_path / "wide" / "safeload.json").read_text())["training_stats"]
    assert wide_stats["columns"] == 2000
    assert wide_stats["unrecorded_columns"] == 2000 - datastats.MAX_STATS_COLUMNS
    ident = json.loads((tmp_path / "tall" / "safeload.json").read_text())["training_stats"]
    ident = ident["features"][0]
    assert ident["kind"] == "categorical" and ident["distinct"] == 100_000
    assert len(ident["top"]) == datastats.TOP_CATEGORIES
    assert all(len(text) == datastats.MAX_CATEGORY_CHARS for text, _ in ident["top"])
    assert ident["other"] == 100_000 - datastats.TOP_CATEGORIES


def test_numeric_statistics_are_right() -> None:
    X = pd.DataFrame({"v": [1.0, 2.0, np.nan, 4.0, np.inf] + [3.0] * 15})
    (v,) = datastats.training_stats(X)["features"]
    finite = np.array([1.0, 2.0, 4.0] + [3.0] * 15)
    assert (v["count"], v["missing"], v["infinite"]) == (19, 1, 1)
    assert (v["min"], v["max"]) == (1.0, 4.0)
    assert v["mean"] == pytest.approx(finite.mean()) and v["std"] == pytest.approx(finite.std())
    assert v["quantiles"] == [float(q) for q in np.quantile(finite, datastats.QUANTILES)]
    assert sum(v["bin_counts"]) == 18


# --- the code -----------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    command = [str(GIT), "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _repo_with_one_commit(tmp_path: Path, name: str, text: str) -> Path:
    """A git work tree in ``tmp_path/repo`` whose one commit adds ``name``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / name).write_text(text)
    _git(repo, "add", name)
    _git(repo, "commit", "-qm", name)
    return repo


@pytest.mark.skipif(GIT is None, reason="needs git")
def test_the_commit_and_a_dirty_tree_are_recorded(tmp_path: Path, key: safeload.SigningKey) -> None:
    repo = _repo_with_one_commit(tmp_path, "train.py", "print('train')\n")
    head = _git(repo, "rev-parse", "HEAD")
    X = frame()
    model = fitted(X)
    clean = safeload.save(model, tmp_path / "a", key=key, source=repo)
    (repo / "train.py").write_text("print('train harder')\n")
    dirty = safeload.save(model, tmp_path / "b", key=key, source=repo)
    code = [json.loads((p / "safeload.json").read_text())["lineage"] for p in (clean, dirty)]
    assert code[0]["code"] == {"git_commit": head, "git_dirty": False}
    assert code[1]["code"] == {"git_commit": head, "git_dirty": True}
    assert code[0]["source"] == str(repo)
    assert "data" not in code[0]  # no training_data, no data lineage


@pytest.mark.skipif(GIT is None, reason="needs git")
def test_the_repositorys_config_runs_nothing(tmp_path: Path) -> None:
    """``git status`` runs ``core.fsmonitor`` from the repository: safeload switches it off."""
    repo = _repo_with_one_commit(tmp_path, "f", "x")
    marker = tmp_path / "PWNED"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    _git(repo, "config", "core.fsmonitor", str(hook))
    record = git_record(repo)
    assert record["git_commit"] == _git(repo, "-c", "core.fsmonitor=false", "rev-parse", "HEAD")
    assert not marker.exists()


def test_no_git_or_no_work_tree_never_fails_a_save(
    tmp_path: Path, key: safeload.SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    if GIT is not None:
        assert git_record(plain) == {"git_unrecorded": "not a git work tree with a commit"}
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    X = frame()
    path = safeload.save(fitted(X), tmp_path / "m", key=key, training_data=X, source=plain)
    lineage = json.loads((path / "safeload.json").read_text())["lineage"]
    assert lineage["code"] == {"git_unrecorded": "no git command on PATH"}
    assert lineage["data"]["rows"] == 300


class NotInThePolicy:
    """A class no policy trusts: saving it is refused by the scan, after git started."""


def _slow_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A ``git`` on PATH that writes its pid, then sleeps; and a folder it answers for."""
    folder = tmp_path / "work"
    (folder / ".git").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "git.pid"
    script = bin_dir / "git"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 30\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return folder, pid_file


def _gone(pid_file: Path) -> bool:
    """Whether the process whose pid the fake git wrote is gone (killed and reaped)."""
    for _ in range(100):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.01)
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_git_that_hangs_is_cut_off_and_the_save_goes_on(
    tmp_path: Path, key: safeload.SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, pid_file = _slow_git(tmp_path, monkeypatch)
    monkeypatch.setattr(lineage, "GIT_TIMEOUT", 0.3)
    started = time.monotonic()
    path = safeload.save(fitted(frame()), tmp_path / "m", key=key, source=folder)
    assert time.monotonic() - started < 10
    code = json.loads((path / "safeload.json").read_text())["lineage"]["code"]
    assert code == {"git_unrecorded": "git took longer than 0.3 s"}
    assert _gone(pid_file)
    pid_file.unlink()
    assert git_record(folder) == {"git_unrecorded": "git took longer than 0.3 s"}
    assert _gone(pid_file)


def test_a_save_that_fails_leaves_no_git_running(
    tmp_path: Path, key: safeload.SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git starts before the model is written; a refusal after it ends git too."""
    folder, pid_file = _slow_git(tmp_path, monkeypatch)
    with pytest.raises(safeload.UntrustedTypeError):
        safeload.save(
            {"model": fitted(frame()), "odd": NotInThePolicy()},
            tmp_path / "m",
            key=key,
            source=folder,
            policy=safeload.TypePolicy.default(),
        )
    assert not (tmp_path / "m").exists()
    assert _gone(pid_file)


# --- signed, and held to the schema -------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("signed")
    key = safeload.generate_key()
    key.save(folder / "keys" / "trainer")
    X = frame()
    path = safeload.save(fitted(X), folder / "m", key=key, training_data=X[["age", "income"]])
    meta = json.loads((path / "safeload.json").read_text())
    return folder, (path / "model.joblib").read_bytes(), {"key": key, "meta": meta}


def test_an_edited_statistics_block_is_tampering(saved: tuple[Path, bytes, dict[str, Any]]) -> None:
    folder, _, _ = saved
    target = folder / "edited"
    shutil.copytree(folder / "m", target)
    meta = json.loads((target / "safeload.json").read_text())
    meta["training_stats"]["features"][1]["max"] = 1e12  # widen the range: hide a shift
    (target / "safeload.json").write_text(json.dumps(meta))
    with pytest.raises(safeload.TamperedArtifactError):
        safeload.load_checked(target, trusted=folder / "keys")


def _top(n: int, chars: int = 8) -> list[list[Any]]:
    return [[f"{i:0{chars}d}", 1] for i in range(n)]


def _categorical(**change: Any) -> dict[str, Any]:
    base = {"name": "c", "kind": "categorical", "count": 3, "missing": 0, "distinct": 3,
            "top": _top(3), "other": 0}  # fmt: skip
    return {**base, **change}


EDITS: dict[str, Any] = {
    "too-many-features": lambda m: m["training_stats"].update(
        features=[{**_categorical(), "name": f"c{i}"} for i in range(501)]
    ),
    "too-many-categories": lambda m: m["training_stats"]["features"].append(
        _categorical(top=_top(21))
    ),
    "category-too-long": lambda m: m["training_stats"]["features"].append(
        _categorical(top=_top(1, chars=65))
    ),
    "unknown-feature-field": lambda m: m["training_stats"]["features"].append(
        _categorical(note="x")
    ),
    "unknown-kind": lambda m: m["training_stats"]["features"].append(_categorical(kind="text")),
    "quantiles-unsorted": lambda m: m["training_stats"]["features"][0].update(
        quantiles=list(reversed(m["training_stats"]["features"][0]["quantiles"]))
    ),
    "bins-disagree-with-deciles": lambda m: m["training_stats"]["features"][0].update(
        bin_counts=[1] * 11
    ),
    "negative-count": lambda m: m["training_stats"]["features"][0].update(missing=-1),
    "feature-named-twice": lambda m: m["training_stats"]["features"].append(
        dict(m["training_stats"]["features"][0])
    ),
    "unknown-stats-field": lambda m: m["training_stats"].update(rows_seen=1),
    "digest-not-hex": lambda m: m["lineage"]["data"].update(sha256="z" * 64),
    "unknown-scheme": lambda m: m["lineage"]["data"].update(scheme="safeload-table-v9"),
    "unknown-lineage-field": lambda m: m["lineage"].update(author="me"),
    "commit-not-hex": lambda m: m["lineage"].update(code={"git_commit": "HEAD", "git_dirty": 0}),
    "run-id-too-long": lambda m: m["lineage"].update(run_id="r" * 2000),
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_resigned_statistics_that_break_the_schema_are_refused(
    saved: tuple[Path, bytes, dict[str, Any]], edit: str, tmp_path: Path
) -> None:
    folder, model, extra = saved
    meta = json.loads(json.dumps(extra["meta"]))
    EDITS[edit](meta)
    target = write_signed_artifact(
        tmp_path / "m",
        {"model.joblib": model, "safeload.json": json.dumps(meta).encode()},
        key=extra["key"],
        subject_name=f"{meta['name']}/{meta['version']}",
    )
    with pytest.raises(safeload.MalformedArtifactError, match="safeload.json"):
        safeload.load_checked(target, trusted=folder / "keys")


def test_an_artifact_without_lineage_still_loads(
    tmp_path: Path, keydir: Path, key: safeload.SigningKey, pipeline: Any
) -> None:
    """Artifacts written before lineage (no ``lineage``, no ``training_stats``) load as before."""
    path = safeload.save(pipeline, tmp_path / "m", key=key)
    meta = json.loads((path / "safeload.json").read_text())
    del meta["lineage"]
    old = write_signed_artifact(
        tmp_path / "old",
        {"model.joblib": (path / "model.joblib").read_bytes(),
         "safeload.json": json.dumps(meta).encode()},
        key=key,
        subject_name=f"{meta['name']}/{meta['version']}",
    )  # fmt: skip
    loaded = safeload.load_checked(old, trusted=keydir)
    with pytest.raises(safeload.OperationalError, match="training_data"):
        loaded.check_drift(np.zeros((3, 4)))


# --- shown: inspect and ls ----------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(*args, cwd=cwd, env={"COLUMNS": "300"})


def test_inspect_and_ls_show_the_lineage(tmp_path: Path, key: safeload.SigningKey) -> None:
    key.save(tmp_path / "keys" / "trainer")
    X = frame()
    model = fitted(X)
    data = X[["age", "income"]]
    for version in ("1.0.0", "1.1.0"):
        safeload.save(model, tmp_path / "models" / "churn" / version, key=key, training_data=data)
    safeload.save(model, tmp_path / "models" / "churn" / "2.0.0", key=key, training_data=data[:99])
    artifact = str(tmp_path / "models" / "churn" / "1.0.0")
    digest = table_digest(data).sha256
    table = _cli("inspect", artifact, "--trusted", "keys", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert f"sha256:{digest}" in table.stdout and "300 rows x 2 columns" in table.stdout
    assert "training statistics (300 rows)" in table.stdout and "income" in table.stdout
    as_json = json.loads(
        _cli("inspect", artifact, "--trusted", "keys", "--json", cwd=tmp_path).stdout
    )
    assert as_json["metadata"]["lineage"]["data"]["sha256"] == digest
    assert [f["name"] for f in as_json["metadata"]["training_stats"]["features"]] == [
        "age",
        "income",
    ]
    listing = _cli("ls", "models", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    other = table_digest(data[:99]).sha256
    assert f"{digest[:12]}, {digest[:12]}, {other[:12]}" in listing.stdout
    doc = json.loads(_cli("ls", "models", "--json", cwd=tmp_path).stdout)
    assert doc["models"][0]["data_sha256"] == {"1.0.0": digest, "1.1.0": digest, "2.0.0": other}


def test_inspect_prints_no_more_statistics_than_save_writes(
    saved: tuple[Path, bytes, dict[str, Any]], tmp_path: Path
) -> None:
    """An edited (unverified) safeload.json may list a million features: the table stays bounded."""
    folder, _, _ = saved
    target = tmp_path / "edited"
    shutil.copytree(folder / "m", target)
    meta = json.loads((target / "safeload.json").read_text())
    feature = meta["training_stats"]["features"][0]
    meta["training_stats"]["features"] = [{**feature, "name": f"f{i}"} for i in range(20_000)]
    (target / "safeload.json").write_text(json.dumps(meta))
    shown = _cli("inspect", str(target), "--trusted", str(folder / "keys"), cwd=tmp_path)
    assert shown.returncode == 1 and "REFUSED" in shown.stdout
    assert (
        "(unverified)" in shown.stdout and "f499 " in shown.stdout and "f500 " not in shown.stdout
    )
    assert "... and 19500 more features not shown" in shown.stdout


def test_train_data_is_the_issue_s_name_and_training_data_the_same_argument(
    tmp_path: Path,
) -> None:
    X = frame(200)
    key = safeload.generate_key()
    one = safeload.save(fitted(X), tmp_path / "a", key=key, train_data=X)
    two = safeload.save(fitted(X), tmp_path / "b", key=key, training_data=X)
    lineages = [json.loads((Path(p) / "safeload.json").read_bytes())["lineage"] for p in (one, two)]
    assert lineages[0]["data"] == lineages[1]["data"] and lineages[0]["data"]["rows"] == 200
    with pytest.raises(TypeError, match="not both"):
        safeload.save(fitted(X), tmp_path / "c", key=key, train_data=X, training_data=X)
    assert not (tmp_path / "c").exists()
