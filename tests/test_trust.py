"""trust.toml and several signatures: thresholds, distinct keys, revocation, expiry, rotation.

Every artifact here is a real signed Pipeline; every keyring is read from a real folder of
``*.pub`` files and a real ``trust.toml`` through ``Keyring.from_dir``. Dates are injected with
``Keyring.from_dir(..., today=...)``, the caller's knob, never the artifact's.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sklearn.pipeline import Pipeline

import safeload
from safeload.keys import public_pem
from safeload.saving import write_signed_artifact
from tests.test_cli import run, run_json

SIGNERS = ("trainer", "reviewer", "old-ci", "ci-2025")
TRUST = """
[keys.trainer]
file = "trainer.pub"
expires = 2027-06-30

[keys.reviewer]
file = "reviewer.pub"

[keys.old-ci]
file = "old-ci.pub"
revoked = true

[keys.ci-2025]
file = "ci-2025.pub"
retired = 2026-01-01

[[require]]
models = ["churn*", "fraud"]
signers = ["trainer", "reviewer"]
threshold = 2
"""
BEFORE_EXPIRY = datetime.date(2027, 6, 29)


def team(tmp_path: Path, trust: str | None = TRUST) -> dict[str, safeload.SigningKey]:
    """A key per signer; their .pub files in keys/, with ``trust`` as keys/trust.toml."""
    keys = {name: safeload.generate_key() for name in SIGNERS}
    folder = tmp_path / "keys"
    folder.mkdir()
    for name, key in keys.items():
        (folder / f"{name}.pub").write_bytes(public_pem(key.public_key))
    if trust is not None:
        (folder / "trust.toml").write_text(trust)
    return keys


def ring(tmp_path: Path, today: datetime.date = BEFORE_EXPIRY) -> safeload.Keyring:
    return safeload.Keyring.from_dir(tmp_path / "keys", today=today)


def save(tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey, name: str = "churn") -> Path:
    return safeload.save(pipeline, tmp_path / "models" / name / "1.0.0", key=key)


def bundle(artifact: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((artifact / "model.sig").read_bytes())
    return loaded


def write_bundle(artifact: Path, doc: dict[str, Any]) -> None:
    (artifact / "model.sig").write_text(json.dumps(doc))


# -- thresholds ---------------------------------------------------------------------------------


def test_threshold_met_loads(tmp_path: Path, pipeline: Pipeline) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"])
    safeload.cosign(artifact, keys["reviewer"])
    verified = safeload.verify_artifact(artifact, trusted=ring(tmp_path))
    assert [(c.name, c.status) for c in verified.statement.signatures] == [
        ("trainer", "valid"),
        ("reviewer", "valid"),
    ]
    assert verified.statement.signer_name == "trainer"
    assert safeload.load(artifact, trusted=ring(tmp_path)).predict([[5.1, 3.5, 1.4, 0.2]])[0] == 0


def test_threshold_unmet_is_refused_with_found_needed_missing(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"])
    with pytest.raises(safeload.UntrustedSignerError) as refused:
        safeload.load(artifact, trusted=ring(tmp_path))
    error = refused.value
    assert (error.found, error.needed, error.missing) == (1, 2, ("reviewer",))
    assert error.signatures == ((keys["trainer"].hint, "trainer", "valid"),)
    message = str(error)
    assert "model 'churn' needs 2" in message and "found 1 (trainer)" in message
    assert "missing: reviewer" in message


def test_a_model_no_rule_matches_needs_one_trusted_signature(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["reviewer"], name="iris")
    assert safeload.verify_artifact(artifact, trusted=ring(tmp_path)).statement.model_name == "iris"


def test_without_a_trust_file_any_key_in_the_folder_is_enough(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    keys = team(tmp_path, trust=None)
    artifact = save(tmp_path, pipeline, keys["old-ci"])
    keyring = ring(tmp_path)
    assert keyring.trust is None and keyring.name_of(keys["old-ci"].hint) == "old-ci"
    safeload.verify_artifact(artifact, trusted=keyring)


# -- one key never counts twice -----------------------------------------------------------------


def test_the_same_signature_twice_counts_once(tmp_path: Path, pipeline: Pipeline) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"])
    doc = bundle(artifact)
    first = doc["dsseEnvelope"]["signatures"][0]
    doc["dsseEnvelope"]["signatures"].append({"sig": first["sig"], "keyid": keys["trainer"].hint})
    write_bundle(artifact, doc)
    with pytest.raises(safeload.UntrustedSignerError, match="found 1 .trainer.") as refused:
        safeload.verify_artifact(artifact, trusted=ring(tmp_path))
    assert refused.value.found == 1
    assert [s for _, _, s in refused.value.signatures] == ["valid", "duplicate"]


def test_the_same_key_in_two_files_is_refused(tmp_path: Path) -> None:
    team(tmp_path)
    folder = tmp_path / "keys"
    shutil.copy(folder / "trainer.pub", folder / "reviewer.pub")  # one key, two "signers"
    with pytest.raises(safeload.KeyFileError, match="same public key"):
        ring(tmp_path)


def test_one_file_under_two_names_is_refused(tmp_path: Path) -> None:
    team(tmp_path, TRUST.replace('file = "reviewer.pub"', 'file = "trainer.pub"'))
    (tmp_path / "keys" / "reviewer.pub").unlink()
    with pytest.raises(safeload.TrustFileError, match="name the same file trainer.pub"):
        ring(tmp_path)


def test_a_keyring_of_the_same_key_twice_holds_it_once() -> None:
    key = safeload.generate_key()
    assert len(safeload.Keyring.of([key, key.public_key])) == 1


# -- revocation, expiry, retirement -------------------------------------------------------------


def test_nothing_a_revoked_key_signed_loads(tmp_path: Path, pipeline: Pipeline) -> None:
    """Revoked: compromised. Its signature refuses the artifact, whatever other keys signed."""
    keys = team(tmp_path)
    alone = save(tmp_path, pipeline, keys["old-ci"], name="iris")
    with pytest.raises(safeload.UntrustedSignerError, match=r"revoked key old-ci") as refused:
        safeload.load(alone, trusted=ring(tmp_path, today=datetime.date(2000, 1, 1)))
    assert refused.value.found == 0 and refused.value.signatures[0][2] == "revoked"
    # A valid signature by a current key beside it does not rescue it (signed outside the
    # library here: cosign itself refuses to vouch next to a revoked signature).
    safeload.cosign(alone, keys["reviewer"])
    with pytest.raises(safeload.UntrustedSignerError, match="nothing a revoked key signed"):
        safeload.verify_artifact(alone, trusted=ring(tmp_path))
    inspected = safeload.inspect(alone, trusted=ring(tmp_path))
    assert inspected.verdict == "refused"
    assert [s["status"] for s in inspected.to_dict()["signatures"]] == ["revoked", "valid"]
    with pytest.raises(safeload.UntrustedSignerError, match="revoked key old-ci"):
        safeload.cosign(alone, keys["trainer"], trusted=ring(tmp_path))


def test_an_expired_key_stops_counting_on_its_date(tmp_path: Path, pipeline: Pipeline) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"], name="iris")
    safeload.verify_artifact(artifact, trusted=ring(tmp_path, today=datetime.date(2027, 6, 29)))
    with pytest.raises(safeload.UntrustedSignerError, match=r"trainer \(expired\)"):
        safeload.verify_artifact(artifact, trusted=ring(tmp_path, today=datetime.date(2027, 6, 30)))


def test_a_retired_key_signs_nothing_new_but_its_old_signatures_stay_valid(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    keys = team(tmp_path)
    before = ring(tmp_path, today=datetime.date(2025, 12, 31))
    after = ring(tmp_path, today=datetime.date(2026, 1, 1))
    old = safeload.save(
        pipeline, tmp_path / "models" / "iris" / "1.0.0", key=keys["ci-2025"], trusted=before
    )
    with pytest.raises(safeload.KeyFileError, match="retired since 2026-01-01") as refused:
        safeload.save(
            pipeline, tmp_path / "models" / "iris" / "2.0.0", key=keys["ci-2025"], trusted=after
        )
    assert refused.value.reason == "retired"
    assert not (tmp_path / "models" / "iris" / "2.0.0").exists()
    fresh = save(tmp_path, pipeline, keys["reviewer"], name="other")
    with pytest.raises(safeload.KeyFileError, match="retired"):
        safeload.cosign(fresh, keys["ci-2025"], trusted=after)
    assert len(bundle(fresh)["dsseEnvelope"]["signatures"]) == 1
    # What it signed before its retirement still loads, at any later date.
    later = ring(tmp_path, today=datetime.date(2026, 6, 1))
    assert safeload.verify_artifact(old, trusted=later).statement.signer_name == "ci-2025"


def test_signing_with_a_revoked_expired_or_unknown_key_is_refused(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    keys = team(tmp_path)
    late = ring(tmp_path, today=datetime.date(2027, 6, 30))
    for key, reason in (
        (keys["old-ci"], "revoked"),
        (keys["trainer"], "expired"),
        (safeload.generate_key(), "untrusted"),
    ):
        with pytest.raises(safeload.KeyFileError) as refused:
            safeload.save(pipeline, tmp_path / "m" / reason, key=key, trusted=late)
        assert refused.value.reason == reason


# -- cosign ---------------------------------------------------------------------------------


def test_cosign_leaves_every_other_file_and_the_payload_unchanged(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"])
    before = {p.name: p.read_bytes() for p in artifact.iterdir()}
    mode = (artifact / "model.sig").stat().st_mode
    old = bundle(artifact)
    safeload.cosign(artifact, keys["reviewer"])
    after = {p.name: p.read_bytes() for p in artifact.iterdir()}
    assert set(after) == set(before)  # no temporary file left behind
    assert {n: b for n, b in after.items() if n != "model.sig"} == {
        n: b for n, b in before.items() if n != "model.sig"
    }
    new = bundle(artifact)
    assert new["dsseEnvelope"]["payload"] == old["dsseEnvelope"]["payload"]
    assert new["verificationMaterial"] == old["verificationMaterial"]
    assert new["dsseEnvelope"]["signatures"][0] == old["dsseEnvelope"]["signatures"][0]
    assert new["dsseEnvelope"]["signatures"][1]["keyid"] == keys["reviewer"].hint
    assert (artifact / "model.sig").stat().st_mode == mode


@pytest.mark.parametrize("change", ["model-byte", "metadata-byte", "added-file", "removed-file"])
def test_cosign_refuses_a_changed_payload(tmp_path: Path, pipeline: Pipeline, change: str) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"])
    if change == "added-file":
        (artifact / "notes.txt").write_text("added after signing")
    elif change == "removed-file":
        (artifact / "safeload.json").unlink()
    else:
        target = artifact / ("model.joblib" if change == "model-byte" else "safeload.json")
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
    signature = (artifact / "model.sig").read_bytes()
    with pytest.raises(safeload.TamperedArtifactError, match="cosigning would sign another"):
        safeload.cosign(artifact, keys["reviewer"])
    assert (artifact / "model.sig").read_bytes() == signature


def test_cosign_refuses_a_key_that_already_signed(tmp_path: Path, pipeline: Pipeline) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"])
    with pytest.raises(safeload.ArtifactExistsError, match="already signed by this key"):
        safeload.cosign(artifact, keys["trainer"])
    safeload.cosign(artifact, keys["reviewer"])
    with pytest.raises(safeload.ArtifactExistsError, match="already signed by this key"):
        safeload.cosign(artifact, keys["reviewer"])


def test_cosign_refuses_to_vouch_next_to_a_signature_that_does_not_verify(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"])
    doc = bundle(artifact)
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[5] ^= 1
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    write_bundle(artifact, doc)
    before = (artifact / "model.sig").read_bytes()
    with pytest.raises(safeload.SignatureError, match=r"does not verify \(signer trainer\)"):
        safeload.cosign(artifact, keys["reviewer"], trusted=ring(tmp_path))
    assert (artifact / "model.sig").read_bytes() == before


# -- signatures that do not verify, unknown signers, bounds ---------------------------------


def test_an_invalid_signature_among_valid_ones_refuses_the_artifact(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"], name="iris")
    safeload.cosign(artifact, keys["reviewer"])
    doc = bundle(artifact)
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][1]["sig"]))
    sig[0] ^= 1
    doc["dsseEnvelope"]["signatures"][1]["sig"] = base64.b64encode(bytes(sig)).decode()
    write_bundle(artifact, doc)
    with pytest.raises(safeload.SignatureError, match=r"does not verify \(signer reviewer\)"):
        safeload.verify_artifact(artifact, trusted=ring(tmp_path))
    report = safeload.inspect(artifact, trusted=ring(tmp_path))
    assert report.verdict == "refused"
    assert [s.status for s in report.signatures] == ["valid", "invalid"]


def test_an_unknown_signer_is_reported_and_not_counted(tmp_path: Path, pipeline: Pipeline) -> None:
    keys = team(tmp_path)
    outsider = safeload.generate_key()
    artifact = save(tmp_path, pipeline, keys["trainer"])
    safeload.cosign(artifact, outsider)
    with pytest.raises(safeload.UntrustedSignerError) as refused:
        safeload.verify_artifact(artifact, trusted=ring(tmp_path))
    assert refused.value.found == 1 and refused.value.missing == ("reviewer",)
    assert refused.value.signatures[1] == (outsider.hint, None, "unknown")
    assert f"{outsider.hint[:16]}" in str(refused.value)


def test_more_signatures_than_the_bound_are_refused_before_any_is_verified(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"], name="iris")
    doc = bundle(artifact)
    first = doc["dsseEnvelope"]["signatures"][0]
    doc["dsseEnvelope"]["signatures"] += [
        {"sig": first["sig"], "keyid": keys["trainer"].hint} for _ in range(16)
    ]
    write_bundle(artifact, doc)
    with pytest.raises(safeload.SignatureError, match="expected 1 to 16 signatures, found 17"):
        safeload.verify_artifact(artifact, trusted=ring(tmp_path))


@pytest.mark.parametrize(
    "keyid", ["", "not-a-hint", 7, "0" * 64], ids=["empty", "odd", "number", "another-hint"]
)
def test_further_signatures_must_name_their_key(
    tmp_path: Path, pipeline: Pipeline, keyid: object
) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"], name="iris")
    safeload.cosign(artifact, keys["reviewer"])
    doc = bundle(artifact)
    doc["dsseEnvelope"]["signatures"][1]["keyid"] = keyid
    write_bundle(artifact, doc)
    if keyid == "0" * 64:  # a well-formed hint of no trusted key: that signature is unknown
        verified = safeload.verify_artifact(artifact, trusted=ring(tmp_path))
        assert [c.status for c in verified.statement.signatures] == ["valid", "unknown"]
    else:
        with pytest.raises(safeload.SignatureError, match="keyid"):
            safeload.verify_artifact(artifact, trusted=ring(tmp_path))


# -- the rules: order, and the signed name ------------------------------------------------------

ORDERED = """
[keys.trainer]
file = "trainer.pub"
[keys.reviewer]
file = "reviewer.pub"
[keys.old-ci]
file = "old-ci.pub"
[keys.ci-2025]
file = "ci-2025.pub"

[[require]]
models = ["churn-lite"]
signers = ["trainer"]
threshold = 1

[[require]]
models = ["churn*"]
signers = ["trainer", "reviewer"]
threshold = 2
"""


def test_the_first_matching_rule_applies(tmp_path: Path, pipeline: Pipeline) -> None:
    keys = team(tmp_path, ORDERED)
    lite = save(tmp_path, pipeline, keys["trainer"], name="churn-lite")
    full = save(tmp_path, pipeline, keys["trainer"], name="churn-full")
    safeload.verify_artifact(lite, trusted=ring(tmp_path))
    with pytest.raises(safeload.UntrustedSignerError, match="missing: reviewer"):
        safeload.verify_artifact(full, trusted=ring(tmp_path))
    # The same rules in the other order: "churn*" comes first and now covers churn-lite too.
    first, second = ORDERED.split("[[require]]")[1:]
    head = ORDERED.split("[[require]]")[0]
    (tmp_path / "keys" / "trust.toml").write_text(f"{head}[[require]]{second}[[require]]{first}")
    with pytest.raises(safeload.UntrustedSignerError, match="model 'churn-lite' needs 2"):
        safeload.verify_artifact(lite, trusted=ring(tmp_path))


def test_rules_match_the_signed_name_not_the_path(tmp_path: Path, pipeline: Pipeline) -> None:
    keys = team(tmp_path)
    artifact = save(tmp_path, pipeline, keys["trainer"])  # churn, signed by one key only
    moved = tmp_path / "elsewhere" / "iris" / "1.0.0"
    shutil.copytree(artifact, moved)
    with pytest.raises(safeload.UntrustedSignerError, match="model 'churn' needs 2"):
        safeload.load(moved, trusted=ring(tmp_path))


def test_the_signed_name_and_the_metadata_name_must_agree(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    """One signer signs subject misc/1.0.0 (no rule) holding metadata named churn (rule: 2)."""
    keys = team(tmp_path)
    genuine = save(tmp_path, pipeline, keys["trainer"])
    files = {n: (genuine / n).read_bytes() for n in ("model.joblib", "safeload.json")}
    forged = write_signed_artifact(
        tmp_path / "forged", files, key=keys["trainer"], subject_name="misc/1.0.0"
    )
    with pytest.raises(safeload.SignatureError, match="signed statement names model 'misc'"):
        safeload.load(forged, trusted=ring(tmp_path), name="churn")
    report = safeload.inspect(forged, trusted=ring(tmp_path))
    assert report.verdict == "refused"
    assert any("safeload.json names 'churn'" in r for r in report.reasons)


# -- the trust file is strict -----------------------------------------------------------------

BAD_TRUST_FILES = {
    "unknown-table": ("[policy]\nx = 1\n", "unknown key 'policy'"),
    "unknown-key-field": ('[keys.trainer]\nfile = "trainer.pub"\nexpire = 2027-01-01\n', "expire"),
    "unknown-rule-field": (
        '[keys.trainer]\nfile = "trainer.pub"\n[[require]]\nmodels = ["a"]\n'
        'signers = ["trainer"]\ntreshold = 1\n',
        "treshold",
    ),
    "datetime-not-date": (
        '[keys.trainer]\nfile = "trainer.pub"\nexpires = 2027-01-01T00:00:00Z\n',
        "must be a TOML date",
    ),
    "string-date": ('[keys.trainer]\nfile = "trainer.pub"\nexpires = "2027-01-01"\n', "TOML date"),
    "revoked-string": ('[keys.trainer]\nfile = "trainer.pub"\nrevoked = "yes"\n', "true or false"),
    "path-in-file": ('[keys.trainer]\nfile = "../trainer.pub"\n', "plain name"),
    "not-a-pub": ('[keys.trainer]\nfile = "trainer.key"\n', "NAME.pub"),
    "no-file": ("[keys.trainer]\nexpires = 2027-01-01\n", "NAME.pub"),
    "odd-key-name": ('[keys."a b"]\nfile = "trainer.pub"\n', "plain name"),
    "threshold-zero": (
        '[keys.trainer]\nfile = "trainer.pub"\n[[require]]\nmodels = ["a"]\n'
        'signers = ["trainer"]\nthreshold = 0\n',
        "threshold must be an integer from 1 to 1",
    ),
    "threshold-above-signers": (
        '[keys.trainer]\nfile = "trainer.pub"\n[[require]]\nmodels = ["a"]\n'
        'signers = ["trainer"]\nthreshold = 2\n',
        "threshold must be an integer from 1 to 1",
    ),
    "threshold-bool": (
        '[keys.trainer]\nfile = "trainer.pub"\n[[require]]\nmodels = ["a"]\n'
        'signers = ["trainer"]\nthreshold = true\n',
        "threshold must be an integer",
    ),
    "no-models": (
        '[keys.trainer]\nfile = "trainer.pub"\n[[require]]\nmodels = []\n'
        'signers = ["trainer"]\nthreshold = 1\n',
        "non-empty list",
    ),
    "signer-twice": (
        '[keys.trainer]\nfile = "trainer.pub"\n[[require]]\nmodels = ["a"]\n'
        'signers = ["trainer", "trainer"]\nthreshold = 2\n',
        "lists a signer twice",
    ),
    "not-toml": ("[keys.trainer\n", "not valid TOML"),
    "duplicate-key": ('[keys.trainer]\nfile = "trainer.pub"\nfile = "trainer.pub"\n', "TOML"),
    "missing-pub": (
        '[keys.trainer]\nfile = "trainer.pub"\n[keys.nobody]\nfile = "nobody.pub"\n',
        "names nobody.pub, which is not a .pub file",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TRUST_FILES))
def test_a_bad_trust_file_is_refused(tmp_path: Path, case: str) -> None:
    text, expected = BAD_TRUST_FILES[case]
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "trainer.pub").write_bytes(public_pem(safeload.generate_key().public_key))
    (folder / "trust.toml").write_text(text)
    with pytest.raises(safeload.TrustFileError) as refused:
        safeload.Keyring.from_dir(folder)
    assert expected in str(refused.value)


def test_a_rule_naming_an_undeclared_signer_is_refused(tmp_path: Path) -> None:
    team(tmp_path, TRUST.replace('["trainer", "reviewer"]', '["trainer", "reviwer"]'))
    with pytest.raises(safeload.TrustFileError, match="signers not declared.*'reviwer'"):
        ring(tmp_path)


def test_a_pub_file_the_trust_file_does_not_declare_is_refused(tmp_path: Path) -> None:
    team(tmp_path)
    stray = safeload.generate_key()
    (tmp_path / "keys" / "stray.pub").write_bytes(public_pem(stray.public_key))
    with pytest.raises(safeload.TrustFileError, match="stray.pub, not declared in trust.toml"):
        ring(tmp_path)


def test_a_huge_or_symlinked_trust_file_is_refused(tmp_path: Path) -> None:
    team(tmp_path, trust=None)
    folder = tmp_path / "keys"
    (folder / "trust.toml").write_bytes(b"#" * (64 * 1024 + 1))
    with pytest.raises(safeload.KeyFileError, match="too large"):
        ring(tmp_path)
    (folder / "trust.toml").unlink()
    (tmp_path / "elsewhere.toml").write_text(TRUST)
    (folder / "trust.toml").symlink_to(tmp_path / "elsewhere.toml")
    with pytest.raises(safeload.KeyFileError, match="symlink"):
        ring(tmp_path)


# -- the command line -----------------------------------------------------------------------


def test_cli_sign_add_verify_and_inspect_show_every_signature(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    keys = team(tmp_path, TRUST.replace("2027-06-30", "2099-01-01"))
    secrets = tmp_path / "secrets"
    keys["trainer"].save(secrets / "trainer")
    keys["reviewer"].save(secrets / "reviewer")
    keys["ci-2025"].save(secrets / "ci-2025")
    artifact = save(tmp_path, pipeline, keys["trainer"])

    refused = run_json("verify", str(artifact), "--trusted", "keys", cwd=tmp_path, code=1)
    assert refused["type"] == "UntrustedSignerError"
    assert (refused["found"], refused["needed"], refused["missing"]) == (1, 2, ["reviewer"])
    assert refused["signatures"] == [
        {"hint": keys["trainer"].hint, "name": "trainer", "status": "valid"}
    ]
    human = run("verify", str(artifact), "--trusted", "keys", cwd=tmp_path)
    assert human.returncode == 1 and "missing: reviewer" in human.stderr

    added = run(
        "sign", str(artifact), "--key", "secrets/reviewer.key", "--add", "--trusted", "keys",
        cwd=tmp_path,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "added a signature" in added.stdout
    again = run("sign", str(artifact), "--key", "secrets/reviewer.key", "--add", cwd=tmp_path)
    assert again.returncode == 2 and "already signed by this key" in again.stderr

    doc = run_json("verify", str(artifact), "--trusted", "keys", cwd=tmp_path, code=0)
    assert doc["signer_name"] == "trainer"
    assert [(s["name"], s["status"]) for s in doc["signatures"]] == [
        ("trainer", "valid"),
        ("reviewer", "valid"),
    ]
    ok = run("verify", str(artifact), "--trusted", "keys", cwd=tmp_path)
    assert ok.returncode == 0 and "signed by trainer, reviewer" in ok.stdout

    report = run_json("inspect", str(artifact), "--trusted", "keys", cwd=tmp_path, code=0)
    assert [s["status"] for s in report["signatures"]] == ["valid", "valid"]
    shown = run("inspect", str(artifact), "--trusted", "keys", cwd=tmp_path)
    assert "(reviewer): valid" in shown.stdout and "(trainer): valid" in shown.stdout
    blind = run_json("inspect", str(artifact), cwd=tmp_path, code=1)
    assert [s["status"] for s in blind["signatures"]] == ["unchecked", "unchecked"]

    retired = run(
        "sign", str(artifact), "--key", "secrets/ci-2025.key", "--add", "--trusted", "keys",
        cwd=tmp_path,
    )  # fmt: skip
    assert retired.returncode == 2 and "retired since 2026-01-01" in retired.stderr


def test_cli_names_revoked_and_expired_signers(tmp_path: Path, pipeline: Pipeline) -> None:
    keys = team(tmp_path, TRUST.replace("2027-06-30", "2020-01-01"))
    artifact = save(tmp_path, pipeline, keys["trainer"], name="iris")
    safeload.cosign(artifact, keys["old-ci"])
    result = run("verify", str(artifact), "--trusted", "keys", cwd=tmp_path)
    assert result.returncode == 1
    assert "trainer (expired)" in result.stderr and "old-ci (revoked)" in result.stderr
    shown = run("inspect", str(artifact), "--trusted", "keys", cwd=tmp_path)
    assert "(trainer): EXPIRED" in shown.stdout and "(old-ci): REVOKED" in shown.stdout


# -- the guide --------------------------------------------------------------------------------

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "team-signing.md"


def _shown_lines_match(shown: list[str], output: str, command: str) -> None:
    """Each output line the guide shows appears in the real output (``...`` matches anything)."""
    real = output.splitlines()
    for line in shown:
        pattern = ".*".join(re.escape(part) for part in line.split("..."))
        assert any(re.fullmatch(pattern, r.rstrip()) for r in real), (
            f"{command!r} did not print {line!r}; it printed:\n{output}"
        )


def test_team_signing_guide_runs(tmp_path: Path) -> None:
    """Every command, trust file and Python block of the guide, in order, in an empty folder."""
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    blocks = re.findall(r"```(\w+)\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert [kind for kind, _ in blocks].count("toml") == 3
    for kind, body in blocks:
        if kind == "toml":
            (tmp_path / "keys" / "trust.toml").write_text(body)
        elif kind == "python":
            done = subprocess.run(
                [sys.executable, "-c", body], cwd=tmp_path, capture_output=True, text=True,
                timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
        else:
            assert kind == "console", kind
            steps = re.split(r"^\$ ", body, flags=re.M)[1:]
            for step in steps:
                command, *shown = step.rstrip("\n").split("\n")
                line, _, expected = command.partition("  # exit ")
                argv = shlex.split(line)
                if argv[0] == "safeload":
                    result = run(*argv[1:], cwd=tmp_path)
                else:
                    result = subprocess.run(
                        ["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True,
                        env={**os.environ, **env}, timeout=60,
                    )  # fmt: skip
                assert result.returncode == int(expected or 0), (
                    f"{line}: exit {result.returncode}\n{result.stdout}{result.stderr}"
                )
                _shown_lines_match(shown, result.stdout + result.stderr, line)
