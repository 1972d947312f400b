"""safeload.inspecting: every check reported, a verdict, nothing deserialized, never raises.

``tests/test_artifact.py`` and ``tests/test_cli.py`` exercise ``inspect`` once each (public,
through the CLI); this module pins the module's own contract: the three verdicts, each kind
of reason, the ``to_dict`` shape, and that a bad artifact is reported rather than raised.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import safeload
from safeload.inspecting import InspectReport
from safeload.saving import write_signed_artifact
from safeload.signing import sign_statement
from tests.helpers import joblib_bytes
from tests.malicious import malicious_joblib

GOLDEN = Path(__file__).parent / "golden"

TOP_KEYS = {
    "path",
    "verdict",
    "reasons",
    "signer",
    "signatures",
    "files",
    "missing_files",
    "metadata",
    "metadata_verified",
    "types",
}
SIGNER_KEYS = {"hint", "name", "trusted", "signature_valid"}
FILE_KEYS = {
    "name",
    "size",
    "sha256",
    "signed_sha256",
    "algorithm",
    "digests",
    "signed_digests",
    "matches",
}


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))


def _copy(artifact: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(artifact, tmp_path / name))


def _check_shape(report: InspectReport) -> dict[str, Any]:
    doc = report.to_dict()
    assert set(doc) == TOP_KEYS
    assert set(doc["signer"]) == SIGNER_KEYS
    assert all(set(entry) == FILE_KEYS for entry in doc["files"])
    assert json.loads(json.dumps(doc)) == doc  # plain JSON, no tuples or objects
    return doc


# -- verdict: verified --------------------------------------------------------------------------


def test_verified_report(artifact: Path, keydir: Path, key: safeload.SigningKey) -> None:
    report = safeload.inspect(artifact, trusted=keydir)
    assert report.verdict == "verified" and report.reasons == []
    assert report.signer_hint == key.hint and report.signer_name == "trainer"
    assert report.signer_trusted is True and report.signature_valid is True
    assert [f.name for f in report.files] == ["model.joblib", "safeload.json"]
    assert all(f.matches for f in report.files) and report.missing_files == []
    assert report.metadata is not None and report.metadata["name"] == "iris"
    assert report.metadata_verified is True
    assert report.scan is not None and report.scan["safe"] is True
    doc = _check_shape(report)
    assert doc["path"] == os.fspath(artifact)
    # a Keyring object gives the same verdict as the folder
    assert safeload.inspect(artifact, trusted=safeload.Keyring.of([key])).verdict == "verified"


@pytest.mark.parametrize(
    ("folder", "algorithm"),
    [("v1-joblib-files", "sha256"), ("v1-joblib-shards", "sha256-sharded-16777216")],
)
def test_file_entries_name_the_manifest_serialization(folder: str, algorithm: str) -> None:
    report = safeload.inspect(GOLDEN / folder, trusted=GOLDEN)
    doc = _check_shape(report)
    assert report.verdict == "verified"
    for entry in doc["files"]:
        assert entry["algorithm"] == algorithm
        assert entry["sha256"] == entry["signed_sha256"] == entry["digests"][0]


def test_a_caller_policy_is_what_types_are_judged_by(tmp_path: Path, keydir: Path) -> None:
    key = safeload.load_signing_key(keydir / "trainer.key")
    path = write_signed_artifact(
        tmp_path / "dated",
        {"model.joblib": joblib_bytes({"when": datetime.date(2020, 1, 1)})},
        key=key,
    )
    assert "untrusted type datetime.date" in safeload.inspect(path, trusted=keydir).reasons
    report = safeload.inspect(path, trusted=keydir, policy=["datetime.date"])
    assert report.scan is not None and report.scan["safe"] is True
    assert not any("untrusted type" in reason for reason in report.reasons)


# -- verdict: refused, one case per kind of reason ----------------------------------------------


def test_unsigned(artifact: Path, keydir: Path) -> None:
    (artifact / "model.sig").unlink()
    report = safeload.inspect(artifact, trusted=keydir)
    assert report.verdict == "refused" and report.reasons == ["unsigned: no model.sig"]
    assert report.signer_hint is None and report.signature_valid is None
    assert report.metadata is not None and report.metadata_verified is False
    assert all(f.signed_digests is None for f in report.files)  # nothing to compare against
    _check_shape(report)


def test_untrusted_signer(artifact: Path, tmp_path: Path, key: safeload.SigningKey) -> None:
    stranger = tmp_path / "stranger"
    safeload.generate_key().save(stranger / "x")
    report = safeload.inspect(artifact, trusted=stranger)
    assert report.verdict == "refused"
    assert len(report.reasons) == 1 and "not in the trusted keyring" in report.reasons[0]
    assert report.signer_hint == key.hint  # the claim is shown ...
    assert report.signer_trusted is False and report.signature_valid is None  # ... not believed
    assert report.metadata_verified is False
    _check_shape(report)


def test_no_keyring_given(artifact: Path) -> None:
    report = safeload.inspect(artifact)
    assert report.verdict == "refused"
    assert report.reasons == ["no trusted keys given: the signer cannot be checked"]
    assert report.signer_trusted is None and report.signature_valid is None
    assert all(f.matches for f in report.files)  # the file checks still ran
    assert report.scan is not None and report.metadata_verified is False


def test_forged_signature(artifact: Path, keydir: Path) -> None:
    bundle = json.loads((artifact / "model.sig").read_bytes())
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = "A" * 86 + "=="
    (artifact / "model.sig").write_text(json.dumps(bundle))
    report = safeload.inspect(artifact, trusted=keydir)
    assert report.verdict == "refused"
    assert report.signer_trusted is True and report.signature_valid is False
    assert any("does not verify" in reason for reason in report.reasons)
    assert all(f.matches for f in report.files)  # matching an unverified claim proves nothing
    assert report.metadata_verified is False


@pytest.mark.parametrize("file_name", ["model.joblib", "safeload.json"])
def test_tampered_file(artifact: Path, keydir: Path, file_name: str) -> None:
    _flip(artifact / file_name)
    report = safeload.inspect(artifact, trusted=keydir)
    assert report.verdict == "refused"
    assert f"{file_name} does not match its signed digest" in report.reasons
    assert {f.name: f.matches for f in report.files}[file_name] is False
    assert report.signature_valid is True
    assert report.metadata_verified is (file_name != "safeload.json")
    _check_shape(report)


def test_extra_file(artifact: Path, keydir: Path) -> None:
    (artifact / "extra.txt").write_text("x")
    report = safeload.inspect(artifact, trusted=keydir)
    assert report.verdict == "refused"
    assert report.reasons == ["extra.txt is not in the signed manifest"]
    entry = next(f for f in report.files if f.name == "extra.txt")
    assert entry.signed_digests is None and entry.matches is False
    files = {f["name"]: f for f in _check_shape(report)["files"]}
    assert files["extra.txt"]["signed_digests"] is None and files["extra.txt"]["matches"] is False


def test_missing_file(artifact: Path, keydir: Path) -> None:
    (artifact / "safeload.json").unlink()
    report = safeload.inspect(artifact, trusted=keydir)
    assert report.verdict == "refused"
    assert report.reasons == ["safeload.json is in the signed manifest but missing"]
    assert report.missing_files == ["safeload.json"]
    assert report.metadata is None and report.metadata_verified is False
    assert _check_shape(report)["missing_files"] == ["safeload.json"]


def test_untrusted_type_is_reported_and_never_run(
    tmp_path: Path, keydir: Path, artifact: Path, marker: Path
) -> None:
    """A malicious model signed by a trusted key: reported, and never deserialized."""
    key = safeload.load_signing_key(keydir / "trainer.key")
    files = {
        "model.joblib": malicious_joblib(marker),
        "safeload.json": (artifact / "safeload.json").read_bytes(),
    }
    evil = write_signed_artifact(tmp_path / "evil", files, key=key)
    report = safeload.inspect(evil, trusted=keydir)
    assert report.verdict == "refused"
    assert report.signature_valid is True and all(f.matches for f in report.files)
    assert [r for r in report.reasons if r.startswith("untrusted type ")] == [
        "untrusted type io.open"
    ]
    assert report.scan is not None and report.scan["safe"] is False
    assert not marker.exists()
    _check_shape(report)


def test_every_problem_is_reported_not_only_the_first(artifact: Path, keydir: Path) -> None:
    _flip(artifact / "model.joblib")
    (artifact / "safeload.json").unlink()
    (artifact / "extra.txt").write_text("x")
    reasons = safeload.inspect(artifact, trusted=keydir).reasons
    for expected in (
        "model.joblib does not match its signed digest",
        "extra.txt is not in the signed manifest",
        "safeload.json is in the signed manifest but missing",
    ):
        assert expected in reasons


# -- never raises on a bad artifact -------------------------------------------------------------


def _resign(statement: bytes) -> Callable[[Path, safeload.SigningKey], None]:
    def damage(path: Path, key: safeload.SigningKey) -> None:
        (path / "model.sig").write_bytes(sign_statement(key, statement))

    return damage


def _write(name: str, data: bytes) -> Callable[[Path, safeload.SigningKey], None]:
    def damage(path: Path, key: safeload.SigningKey) -> None:
        (path / name).write_bytes(data)

    return damage


def _symlinked_model(path: Path, key: safeload.SigningKey) -> None:
    os.replace(path / "model.joblib", path.parent / "elsewhere.joblib")
    os.symlink(path.parent / "elsewhere.joblib", path / "model.joblib")


def _many_files(path: Path, key: safeload.SigningKey) -> None:
    for i in range(20):
        (path / f"f{i}").write_text("x")


def _second_model(path: Path, key: safeload.SigningKey) -> None:
    shutil.copyfile(path / "model.joblib", path / "model.skops")


BAD = {
    "empty-sig": _write("model.sig", b""),
    "garbage-sig": _write("model.sig", b"{garbage"),
    "sig-is-a-list": _write("model.sig", b"[]"),
    "sig-bad-base64": _write(
        "model.sig",
        b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial":'
        b' {"publicKey": {"hint": "00"}, "tlogEntries": []}, "dsseEnvelope": {"payload": "!!",'
        b' "payloadType": "application/vnd.in-toto+json", "signatures": []}}',
    ),
    "signed-statement-not-json": _resign(b"\xff\xfe"),
    "signed-statement-a-list": _resign(b"[]"),
    "signed-statement-wrong-shape": _resign(
        json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "predicateType": "https://model_signing/signature/v1.0",
                "subject": [{"name": "x", "digest": {"sha256": "00" * 32}}],
                "predicate": {"resources": {}, "serialization": None},
            }
        ).encode()
    ),
    "garbage-model": _write("model.joblib", b"not a pickle"),
    "empty-model": _write("model.joblib", b""),
    "deep-pickle": _write("model.joblib", b"\x80\x04" + b"(" * 100_000 + b"."),
    "garbage-metadata": _write("safeload.json", b"\xff not json"),
    "hidden-file": _write(".hidden", b"x"),
    "symlinked-model": _symlinked_model,
    "too-many-files": _many_files,
    "two-model-files": _second_model,
}


@pytest.mark.parametrize("damage", list(BAD.values()), ids=list(BAD))
def test_a_bad_artifact_is_refused_never_raised(
    artifact: Path,
    keydir: Path,
    key: safeload.SigningKey,
    damage: Callable[[Path, safeload.SigningKey], None],
) -> None:
    damage(artifact, key)
    report = safeload.inspect(artifact, trusted=keydir)
    assert report.verdict == "refused" and report.reasons
    assert not report.metadata_verified or report.signature_valid  # verified only if signed
    _check_shape(report)


def test_subdirectory_is_refused(artifact: Path, keydir: Path) -> None:
    (artifact / "sub").mkdir()
    report = safeload.inspect(artifact, trusted=keydir)
    assert report.verdict == "refused" and "not a regular file" in report.reasons[0]


# -- verdict: error (operational, not a judgement of the artifact) ------------------------------


def test_missing_path_is_an_error_not_a_refusal(tmp_path: Path, keydir: Path) -> None:
    report = safeload.inspect(tmp_path / "nothing", trusted=keydir)
    assert report.verdict == "error" and "no artifact at" in report.reasons[0]
    _check_shape(report)


def test_missing_keyring_is_an_error(artifact: Path, tmp_path: Path) -> None:
    report = safeload.inspect(artifact, trusted=tmp_path / "no-keys")
    assert report.verdict == "error" and "keyring folder" in report.reasons[0]
    _check_shape(report)
