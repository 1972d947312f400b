"""Sign-and-save then verified load, and every way of tampering with an artifact."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

import safeload
from safeload import loading
from safeload.saving import write_signed_artifact
from tests.malicious import malicious_joblib

ARTIFACT_FILES = ["model.joblib", "safeload.json", "model.sig"]


def test_round_trip_predictions(
    artifact: Path, keydir: Path, pipeline: Pipeline, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = iris
    assert sorted(os.listdir(artifact)) == sorted(ARTIFACT_FILES)
    model = safeload.load(artifact, trusted=keydir)
    assert isinstance(model, Pipeline)
    np.testing.assert_array_equal(model.predict(X), pipeline.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), pipeline.predict_proba(X))


def test_trusted_accepts_keyring_object(artifact: Path, key: safeload.SigningKey) -> None:
    model = safeload.load(artifact, trusted=safeload.Keyring.of([key]))
    assert isinstance(model, Pipeline)


@pytest.mark.parametrize("compress", [3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lz4", 3)])
def test_round_trip_compressed(
    tmp_path: Path,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    iris: tuple[np.ndarray, np.ndarray],
    compress: object,
) -> None:
    path = safeload.save(
        pipeline, tmp_path / "m", key=key, name="m", version="1", compress=compress
    )  # type: ignore[arg-type]
    model = safeload.load(path, trusted=safeload.Keyring.of([key]))
    np.testing.assert_array_equal(model.predict(iris[0]), pipeline.predict(iris[0]))


def test_metadata_recorded(artifact: Path) -> None:
    meta = json.loads((artifact / "safeload.json").read_text())
    assert meta["format"] == "joblib"
    assert meta["name"] == "iris" and meta["version"] == "1.0.0"
    assert meta["estimator"] == "sklearn.pipeline.Pipeline"
    assert meta["schema"]["n_features_in"] == 4
    assert meta["versions"]["scikit-learn"]


def test_signature_shape(artifact: Path, key: safeload.SigningKey) -> None:
    bundle = json.loads((artifact / "model.sig").read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["publicKey"]["hint"] == key.hint
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    predicate = statement["predicate"]
    sizes = {name: (artifact / name).stat().st_size for name in ("model.joblib", "safeload.json")}
    names = [r["name"] for r in predicate["resources"]]
    assert names == [f"{name}:0:{size}" for name, size in sizes.items()]
    assert {r["algorithm"] for r in predicate["resources"]} == {"sha256-sharded-16777216"}
    assert predicate["serialization"] == {
        "method": "shards",
        "hash_type": "sha256",
        "shard_size": 16777216,
        "allow_symlinks": False,
        "ignore_paths": ["model.sig"],
    }


# --- refusals -------------------------------------------------------------------------------


def test_unsigned_refused(artifact: Path, keydir: Path) -> None:
    (artifact / "model.sig").unlink()
    with pytest.raises(safeload.UnsignedArtifactError, match="not signed"):
        safeload.load(artifact, trusted=keydir)


def test_signer_not_in_keyring(artifact: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-keys"
    safeload.generate_key().save(other / "someone")
    with pytest.raises(safeload.UntrustedSignerError, match="not in the trusted keyring") as err:
        safeload.load(artifact, trusted=other)
    assert err.value.hint is not None


def test_empty_keyring_refuses(artifact: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(safeload.UntrustedSignerError):
        safeload.load(artifact, trusted=empty)


@pytest.mark.parametrize("name", ARTIFACT_FILES)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_one_flipped_byte_in_any_file_refused(
    artifact: Path, keydir: Path, name: str, where: str, marker: Path
) -> None:
    target = artifact / name
    data = bytearray(target.read_bytes())
    index = {"first": 0, "middle": len(data) // 2, "last": len(data) - 1}[where]
    data[index] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(safeload.RefusedError) as err:
        safeload.load(artifact, trusted=keydir)
    if name != "model.sig":
        assert isinstance(err.value, safeload.TamperedArtifactError)
        assert name in err.value.files
    else:
        assert isinstance(err.value, (safeload.SignatureError, safeload.UntrustedSignerError))


def test_file_added_refused(artifact: Path, keydir: Path) -> None:
    (artifact / "extra.joblib").write_bytes(b"hello")
    with pytest.raises(safeload.TamperedArtifactError, match="extra.joblib") as err:
        safeload.load(artifact, trusted=keydir)
    assert err.value.files == ("extra.joblib",)


def test_file_removed_refused(artifact: Path, keydir: Path) -> None:
    (artifact / "safeload.json").unlink()
    with pytest.raises(safeload.TamperedArtifactError, match="missing: safeload.json"):
        safeload.load(artifact, trusted=keydir)


def test_file_renamed_refused(artifact: Path, keydir: Path) -> None:
    (artifact / "safeload.json").rename(artifact / "metadata.json")
    with pytest.raises(safeload.TamperedArtifactError) as err:
        safeload.load(artifact, trusted=keydir)
    assert set(err.value.files) == {"metadata.json", "safeload.json"}


def test_model_file_renamed_refused(artifact: Path, keydir: Path) -> None:
    (artifact / "model.joblib").rename(artifact / "model.skops")
    with pytest.raises(safeload.RefusedError):
        safeload.load(artifact, trusted=keydir)


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage", b"{}", b"[]", b'{"mediaType": 1}', b"\xff\xfe", b"null"],
)
def test_garbage_signature_refused(artifact: Path, keydir: Path, content: bytes) -> None:
    (artifact / "model.sig").write_bytes(content)
    with pytest.raises(safeload.SignatureError):
        safeload.load(artifact, trusted=keydir)


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9, 0.99])
def test_truncated_signature_refused(artifact: Path, keydir: Path, keep: float) -> None:
    sig = artifact / "model.sig"
    data = sig.read_bytes()
    sig.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(safeload.SignatureError):
        safeload.load(artifact, trusted=keydir)


def test_duplicate_json_keys_refused(artifact: Path, keydir: Path) -> None:
    sig = artifact / "model.sig"
    text = sig.read_text()
    sig.write_text(text.replace('"mediaType"', '"mediaType": "x", "mediaType"', 1))
    with pytest.raises(safeload.SignatureError, match="duplicate key"):
        safeload.load(artifact, trusted=keydir)


@pytest.fixture
def other_artifact(
    tmp_path: Path, key: safeload.SigningKey, iris: tuple[np.ndarray, np.ndarray]
) -> Path:
    """A second artifact, validly signed by the same trusted key."""
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    model = DecisionTreeClassifier(max_depth=2).fit(X, y)
    return safeload.save(model, tmp_path / "other", key=key, name="other", version="1")


def test_signature_copied_from_another_artifact(
    artifact: Path, keydir: Path, other_artifact: Path
) -> None:
    shutil.copy(other_artifact / "model.sig", artifact / "model.sig")
    with pytest.raises(safeload.TamperedArtifactError):
        safeload.load(artifact, trusted=keydir)


def test_whole_artifact_swapped_files_refused(
    artifact: Path, keydir: Path, other_artifact: Path
) -> None:
    shutil.copy(other_artifact / "model.joblib", artifact / "model.joblib")
    with pytest.raises(safeload.TamperedArtifactError, match="model.joblib"):
        safeload.load(artifact, trusted=keydir)


def test_symlink_in_place_of_a_file_refused(artifact: Path, keydir: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.joblib"
    shutil.move(artifact / "model.joblib", real)
    (artifact / "model.joblib").symlink_to(real)
    with pytest.raises(safeload.MalformedArtifactError, match="symlink"):
        safeload.load(artifact, trusted=keydir)


def test_symlinked_artifact_directory_refused(artifact: Path, keydir: Path, tmp_path: Path) -> None:
    link = tmp_path / "current"
    link.symlink_to(artifact, target_is_directory=True)
    with pytest.raises(safeload.MalformedArtifactError, match="symlink"):
        safeload.load(link, trusted=keydir)


def test_subdirectory_refused(artifact: Path, keydir: Path) -> None:
    (artifact / "nested").mkdir()
    with pytest.raises(safeload.MalformedArtifactError, match="not a regular file"):
        safeload.load(artifact, trusted=keydir)


def test_hidden_file_refused(artifact: Path, keydir: Path) -> None:
    (artifact / ".hidden").write_text("x")
    with pytest.raises(safeload.MalformedArtifactError, match="odd file name"):
        safeload.load(artifact, trusted=keydir)


@pytest.mark.parametrize(
    "evil_name", ["../escape.joblib", "/etc/passwd", "sub/model.joblib", "..", "a\\b", ".x", ""]
)
def test_crafted_manifest_with_odd_names_refused(
    tmp_path: Path, key: safeload.SigningKey, evil_name: str
) -> None:
    """A validly *signed* statement naming an odd path is still refused before any read."""
    from safeload.manifest import Resource, subject_digest
    from safeload.signing import PAYLOAD_TYPE, pae

    good = write_signed_artifact(
        tmp_path / "a", {"model.joblib": b"x", "safeload.json": b"{}"}, key=key
    )
    resources = [Resource(evil_name, "0" * 64), Resource("model.joblib", "1" * 64)]
    resources.sort(key=Resource.sort_key)
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "a", "digest": {"sha256": subject_digest(resources)}}],
            "predicateType": "https://model_signing/signature/v1.0",
            "predicate": {
                "resources": [r.to_json() for r in resources],
                "serialization": {
                    "method": "files",
                    "hash_type": "sha256",
                    "allow_symlinks": False,
                },
            },
        }
    ).encode()
    bundle = json.loads((good / "model.sig").read_text())
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(statement).decode()
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(
        key.sign(pae(PAYLOAD_TYPE, statement))
    ).decode()
    (good / "model.sig").write_text(json.dumps(bundle))
    with pytest.raises(safeload.SignatureError, match="odd path"):
        safeload.load(good, trusted=safeload.Keyring.of([key]))


def test_malicious_joblib_unsigned_refused_marker_absent(
    tmp_path: Path, keydir: Path, marker: Path
) -> None:
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "model.joblib").write_bytes(malicious_joblib(marker))
    (folder / "safeload.json").write_text('{"format": "joblib"}')
    with pytest.raises(safeload.UnsignedArtifactError):
        safeload.load(folder, trusted=keydir)
    assert not marker.exists()


def test_malicious_joblib_signed_by_trusted_key_refused_marker_absent(
    tmp_path: Path, key: safeload.SigningKey, marker: Path
) -> None:
    """The signature vouches for the bytes, not their safety: the type gate still refuses."""
    evil = write_signed_artifact(
        tmp_path / "evil",
        {
            "model.joblib": malicious_joblib(marker),
            "safeload.json": json.dumps(
                {"safeload_format_version": 1, "format": "joblib", "name": "evil", "version": "1"}
            ).encode(),
        },
        key=key,
    )
    with pytest.raises(safeload.UntrustedTypeError) as err:
        safeload.load(evil, trusted=safeload.Keyring.of([key]))
    assert "io.open" in err.value.types
    assert not marker.exists()


def test_swapped_between_hashing_and_deserializing_is_never_used(
    artifact: Path,
    keydir: Path,
    marker: Path,
    monkeypatch: pytest.MonkeyPatch,
    pipeline: Pipeline,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    """Swap the model file on disk after verification: the loader uses the verified bytes."""
    real_verify = loading.verify_artifact
    swapped = []

    def verify_then_swap(*args: object, **kwargs: object) -> loading.VerifiedArtifact:
        verified = real_verify(*args, **kwargs)  # type: ignore[arg-type]
        (artifact / "model.joblib").write_bytes(malicious_joblib(marker))
        swapped.append(True)
        return verified

    monkeypatch.setattr(loading, "verify_artifact", verify_then_swap)
    model = safeload.load(artifact, trusted=keydir)
    assert swapped
    assert not marker.exists()
    np.testing.assert_array_equal(model.predict(iris[0]), pipeline.predict(iris[0]))


def test_metadata_claiming_other_format_refused(
    tmp_path: Path, key: safeload.SigningKey, pipeline: Pipeline
) -> None:
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    path = write_signed_artifact(
        tmp_path / "x",
        {
            "model.joblib": buffer.getvalue(),
            "safeload.json": json.dumps(
                {"safeload_format_version": 1, "format": "skops", "name": "x", "version": "1"}
            ).encode(),
        },
        key=key,
    )
    with pytest.raises(safeload.MalformedArtifactError, match="format"):
        safeload.load(path, trusted=safeload.Keyring.of([key]))


def test_missing_path_is_operational(tmp_path: Path, keydir: Path) -> None:
    with pytest.raises(safeload.OperationalError):
        safeload.load(tmp_path / "nope", trusted=keydir)


# --- saving ---------------------------------------------------------------------------------


def test_save_refuses_existing_path(
    artifact: Path, pipeline: Pipeline, key: safeload.SigningKey
) -> None:
    before = (artifact / "model.sig").read_bytes()
    with pytest.raises(safeload.ArtifactExistsError, match="never overwritten"):
        safeload.save(pipeline, artifact, key=key)
    assert (artifact / "model.sig").read_bytes() == before


def test_save_is_atomic_on_crash(
    tmp_path: Path,
    pipeline: Pipeline,
    key: safeload.SigningKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crash while signing leaves no target, temporary directory or parent it created."""
    from safeload import saving

    def crash(*args: object, **kwargs: object) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(saving, "sign_statement", crash)
    target = tmp_path / "models" / "m" / "1"
    with pytest.raises(KeyboardInterrupt):
        safeload.save(pipeline, target, key=key)
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_save_refuses_untrusted_types(
    tmp_path: Path, key: safeload.SigningKey, marker: Path
) -> None:
    from tests.malicious import CreatesMarker

    target = tmp_path / "m"
    with pytest.raises(safeload.UntrustedTypeError, match="io.open"):
        safeload.save(CreatesMarker(marker), target, key=key)
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_save_refuses_non_json_metrics(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey
) -> None:
    with pytest.raises(safeload.OperationalError, match="metrics"):
        safeload.save(pipeline, tmp_path / "m", key=key, metrics={"acc": object()})


def test_artifact_is_readable_by_others_per_umask(artifact: Path) -> None:
    """mkdtemp's 0700 must not leak into the artifact: a server user has to read it."""
    umask = os.umask(0o022)
    os.umask(umask)
    assert artifact.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (artifact / "model.joblib").stat().st_mode & 0o777 == 0o666 & ~umask


def test_large_arrays_are_views_on_the_verified_buffer(
    tmp_path: Path, key: safeload.SigningKey
) -> None:
    """Zero-copy load: array data is not duplicated (the performance contract of issue 7)."""
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    knn = KNeighborsClassifier(algorithm="brute").fit(
        rng.normal(size=(2000, 50)), rng.integers(0, 2, 2000)
    )
    path = safeload.save(knn, tmp_path / "knn", key=key)
    model = safeload.load(path, trusted=safeload.Keyring.of([key]))
    fit_x = model._fit_X
    assert fit_x.flags.writeable and fit_x.flags.aligned
    assert not fit_x.flags.owndata  # a view on the buffer the file was read into
    np.testing.assert_array_equal(fit_x, knn._fit_X)


def test_save_to_odd_name_is_a_usage_error(
    tmp_path: Path, pipeline: Pipeline, key: safeload.SigningKey
) -> None:
    with pytest.raises(safeload.OperationalError, match="plain name"):
        safeload.save(pipeline, tmp_path / "bad name!", key=key)
    assert list(tmp_path.iterdir()) == []


def test_inspect_is_public_and_reports_without_loading(artifact: Path, keydir: Path) -> None:
    report = safeload.inspect(artifact, trusted=keydir)
    assert report.verdict == "verified"
    (artifact / "model.sig").unlink()
    report = safeload.inspect(artifact, trusted=keydir)
    assert report.verdict == "refused" and "unsigned: no model.sig" in report.reasons


def test_signed_artifact_without_metadata_is_malformed(tmp_path: Path, keydir: Path) -> None:
    """A validly signed directory holding only a model file is refused with a safeload error."""
    key = safeload.load_signing_key(keydir / "trainer.key")
    bare = write_signed_artifact(tmp_path / "bare", {"model.joblib": b"\x80\x04N."}, key=key)
    with pytest.raises(safeload.MalformedArtifactError, match="no safeload.json"):
        safeload.load(bare, trusted=keydir)


@pytest.mark.parametrize("version", [0, -1])
def test_metadata_naming_a_format_version_that_never_existed_is_refused(
    tmp_path: Path, keydir: Path, artifact: Path, version: int
) -> None:
    meta = json.loads((artifact / "safeload.json").read_text())
    meta["safeload_format_version"] = version
    files = {"model.joblib": (artifact / "model.joblib").read_bytes()}
    files["safeload.json"] = json.dumps(meta).encode()
    key = safeload.load_signing_key(keydir / "trainer.key")
    resigned = write_signed_artifact(tmp_path / "v", files, key=key)
    with pytest.raises(safeload.MalformedArtifactError, match="never existed"):
        safeload.load(resigned, trusted=keydir)
