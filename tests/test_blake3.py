"""BLAKE3 manifests through every writer (save, Store, sign, convert, cosign) and their readers.

The format itself is checked from the page in tests/test_format_spec.py, and against
model_signing's own verifier in tests/test_interop.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import blake3
import joblib
import pytest
from sklearn.pipeline import Pipeline

import safeload
from tests.test_cli import run
from tests.test_verifying import payload_of

ROW = [[5.1, 3.5, 1.4, 0.2]]


def serialization(artifact: Path) -> dict[str, object]:
    doc = json.loads((artifact / "model.sig").read_bytes())
    statement = json.loads(payload_of(doc))
    algorithms = {r["algorithm"] for r in statement["predicate"]["resources"]}
    assert len(algorithms) == 1
    return dict(statement["predicate"]["serialization"], algorithm=algorithms.pop())


def test_sha256_stays_the_default(artifact: Path) -> None:
    assert serialization(artifact)["algorithm"] == "sha256-sharded-16777216"


def test_unknown_hash_refused_when_saving(tmp_path: Path, pipeline: Pipeline) -> None:
    with pytest.raises(ValueError, match="'sha256'.*'blake3'"):
        safeload.save(pipeline, tmp_path / "m" / "1", key=safeload.generate_key(), hash="md5")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("fmt", ["joblib", "skops"])
def test_store_save_blake3_then_cosign_keeps_it(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path, fmt: str
) -> None:
    store = safeload.Store(tmp_path / "store")
    path = store.save(pipeline, "iris", "1.0.0", key=key, hash="blake3", format=fmt)
    assert isinstance(path, Path)
    before = serialization(path)
    assert (before["method"], before["hash_type"], before["algorithm"]) == (
        "files",
        "blake3",
        "blake3",
    )
    assert store.load("iris", "1.0.0", trusted=keydir).predict(ROW)[0] == 0
    reviewer = safeload.generate_key()
    safeload.cosign(path, reviewer)
    assert serialization(path) == before
    both = safeload.Keyring.of([key, reviewer])
    assert safeload.load(path, trusted=both).predict(ROW)[0] == 0
    report = safeload.inspect(path, trusted=keydir)
    assert report.verdict == "verified"
    assert {f.algorithm for f in report.files} == {"blake3"}
    listed = report.to_dict()["files"]
    model_file = path / f"model.{fmt}"
    (entry,) = [f for f in listed if f["name"] == model_file.name]
    assert entry["digests"] == [blake3.blake3(model_file.read_bytes()).hexdigest()]
    assert entry["sha256"] is None and entry["algorithm"] == "blake3"  # not mislabelled


def test_cli_sign_and_convert_take_hash_blake3(tmp_path: Path, pipeline: Pipeline) -> None:
    assert run("keygen", "keys/trainer", cwd=tmp_path).returncode == 0
    joblib.dump(pipeline, tmp_path / "model.joblib")
    key = ["--key", "keys/trainer.key"]
    packed = run("sign", "model.joblib", "--out", "a/1", "--hash", "blake3", *key, cwd=tmp_path)
    assert packed.returncode == 0, packed.stderr
    assert serialization(tmp_path / "a" / "1")["hash_type"] == "blake3"
    converted = run("convert", "model.joblib", "c/1", "--hash", "blake3", *key, cwd=tmp_path)
    assert converted.returncode == 0, converted.stderr
    assert serialization(tmp_path / "c" / "1")["hash_type"] == "blake3"
    for artifact in ("a/1", "c/1"):
        checked = run("verify", artifact, "--trusted", "keys", cwd=tmp_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    unknown = run("sign", "model.joblib", "--out", "d/1", "--hash", "md5", *key, cwd=tmp_path)
    assert unknown.returncode != 0 and "md5" in unknown.stderr
    assert not (tmp_path / "d").exists()


def test_cli_inspect_names_the_hash_and_the_key_algorithm(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    """The files table is headed by the manifest's own hash; the signer line names the key's."""
    assert run("keygen", "keys/ops", "--algorithm", "ecdsa-p256", cwd=tmp_path).returncode == 0
    joblib.dump(pipeline, tmp_path / "model.joblib")
    key = ["--key", "keys/ops.key"]
    signed = run("sign", "model.joblib", "--out", "b/1", "--hash", "blake3", *key, cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    assert run("sign", "model.joblib", "--out", "s/1", *key, cwd=tmp_path).returncode == 0
    shown = run("inspect", "b/1", "--trusted", "keys", cwd=tmp_path)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    header = next(line for line in shown.stdout.splitlines() if "matches signed" in line)
    assert "blake3" in header and "sha256" not in header
    assert "ecdsa-p256, trusted, signature valid" in shown.stdout
    sha = run("inspect", "s/1", "--trusted", "keys", cwd=tmp_path)
    header = next(line for line in sha.stdout.splitlines() if "matches signed" in line)
    assert "sha256" in header
    doc = json.loads(run("inspect", "b/1", "--trusted", "keys", "--json", cwd=tmp_path).stdout)
    assert [s["algorithm"] for s in doc["signatures"]] == ["ecdsa-p256"]


def test_without_the_blake3_package_an_operational_error_names_the_extra(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, keydir: Path
) -> None:
    """Never a crash, never a pass: verifying or writing BLAKE3 without the package refuses."""
    saved = safeload.save(pipeline, tmp_path / "m" / "1.0.0", key=key, hash="blake3")
    child = textwrap.dedent(
        f"""
        import sys
        sys.modules["blake3"] = None  # what an environment without the package imports
        import joblib
        import safeload
        verdicts = []
        try:
            safeload.load({str(saved)!r}, trusted={str(keydir)!r})
            verdicts.append("loaded")
        except safeload.OperationalError as exc:
            verdicts.append(str(exc))
        try:
            safeload.save(
                joblib.load({str(tmp_path / "model.joblib")!r}),
                {str(tmp_path / "n" / "1")!r},
                key=safeload.load_signing_key({str(keydir.parent / "signer.key")!r}),
                hash="blake3",
            )
            verdicts.append("saved")
        except safeload.OperationalError as exc:
            verdicts.append(str(exc))
        report = safeload.inspect({str(saved)!r}, trusted={str(keydir)!r})
        verdicts.append(report.verdict)
        print("\\n".join(verdicts))
        """
    )
    joblib.dump(pipeline, tmp_path / "model.joblib")
    key.save(keydir.parent / "signer")
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    loaded, saved_verdict, inspected = result.stdout.strip().splitlines()
    assert "safeload[blake3]" in loaded and "BLAKE3" in loaded
    assert "safeload[blake3]" in saved_verdict
    assert inspected == "error"
    assert not (tmp_path / "n").exists()
    # and with the package, the same artifact loads: the refusal was the package's absence
    assert safeload.load(saved, trusted=keydir).predict(ROW)[0] == 0
