"""Sharded manifests: digests computed while reading and writing, and the verifier's strictness."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import safeload
from safeload import layout
from safeload.manifest import (
    SHARD_SIZE,
    Hashing,
    Manifest,
    Resource,
    ShardedSha256,
    file_digests,
    shard_bounds,
    split_shards,
)
from safeload.signing import PAYLOAD_TYPE, pae
from safeload.verifying import VerifiedStatement, check_file_set


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_shard_bounds_partition_the_file() -> None:
    assert shard_bounds(0, 4) == [(0, 0)]
    assert shard_bounds(4, 4) == [(0, 4)]
    assert shard_bounds(9, 4) == [(0, 4), (4, 8), (8, 9)]


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=8),
    shard=st.integers(1, 64),
)
def test_streaming_split_and_whole_buffer_digests_agree(
    data: bytes, cuts: list[int], shard: int
) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    expected = tuple(_sha(data[a:b]) for a, b in shard_bounds(len(data), shard))
    streaming = ShardedSha256(shard)
    for piece in pieces:
        streaming.update(piece)
    assert streaming.digests() == expected
    assert file_digests(data, Hashing(shard_size=shard)) == expected
    regrouped = tuple(
        _sha(b"".join(bytes(p) for p in parts)) for parts in split_shards(pieces, shard)
    )
    assert regrouped == expected


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5, 9 * 4096 + 1])
@pytest.mark.parametrize("chunk", [1000, 1 << 20])
@pytest.mark.parametrize("shard_size", [4096, None])
@pytest.mark.parametrize("threaded", [False, True])
def test_reader_hashes_each_shard_while_reading(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    chunk: int,
    shard_size: int | None,
    threaded: bool,
) -> None:
    """Shards both smaller and larger than the read chunk come out as whole-buffer digests,
    whether a small file is hashed by the reading thread or, like a large one, chunk by chunk
    in the hashing lanes (each shard's updates in order, shards two at a time)."""
    monkeypatch.setattr(layout, "_CHUNK", chunk)
    if threaded:
        monkeypatch.setattr(layout, "_INLINE", 0)
        monkeypatch.setattr(layout, "_MIN_CHUNK", 1)
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        view, digests = layout.read_fd(fd, "f", 1 << 30, scheme=Hashing(shard_size=shard_size))
    finally:
        os.close(fd)
    assert bytes(view) == data
    assert digests == file_digests(data, Hashing(shard_size=shard_size))


# --- a large model: several shards, each checked ----------------------------------------------


@pytest.fixture(scope="module")
def large_artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("large")
    key = safeload.generate_key()
    key.save(root / "keys" / "trainer")
    weights = np.random.default_rng(0).normal(size=(2 * SHARD_SIZE + 4096) // 8)
    artifact = safeload.save({"w": weights}, root / "big" / "1.0", key=key)
    return artifact, root / "keys"


def test_large_model_is_signed_shard_by_shard_and_loads(large_artifact: tuple[Path, Path]) -> None:
    artifact, keys = large_artifact
    statement = _statement(artifact)
    shards = [r["name"] for r in statement["predicate"]["resources"]]
    size = (artifact / "model.joblib").stat().st_size
    assert [s for s in shards if s.startswith("model.joblib:")] == [
        f"model.joblib:{a}:{b}" for a, b in shard_bounds(size, SHARD_SIZE)
    ]
    assert len(shard_bounds(size, SHARD_SIZE)) == 3
    loaded = safeload.load(artifact, trusted=keys)
    assert loaded["w"].shape == ((2 * SHARD_SIZE + 4096) // 8,)


def test_a_byte_changed_in_a_middle_shard_is_refused(
    large_artifact: tuple[Path, Path], tmp_path: Path
) -> None:
    artifact, keys = large_artifact
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in artifact.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    with (copy / "model.joblib").open("r+b") as handle:
        handle.seek(SHARD_SIZE + 12345)
        byte = handle.read(1)
        handle.seek(SHARD_SIZE + 12345)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(safeload.TamperedArtifactError, match="changed: model.joblib"):
        safeload.load(copy, trusted=keys)


def test_compressed_save_streams_shard_digests(tmp_path: Path, keydir: Path) -> None:
    """joblib.dump's own path (compression) hashes per shard through the streaming writer."""
    key = safeload.load_signing_key(keydir / "trainer.key")
    noise = np.random.default_rng(1).integers(0, 2**63, size=(SHARD_SIZE + 65536) // 8)
    artifact = safeload.save({"n": noise}, tmp_path / "c" / "1.0", key=key, compress=1)
    assert (artifact / "model.joblib").stat().st_size > SHARD_SIZE  # at least two shards
    assert np.array_equal(safeload.load(artifact, trusted=keydir)["n"], noise)


# --- the verifier refuses every non-canonical manifest, even when validly signed -------------


def _statement(artifact: Path) -> dict[str, Any]:
    bundle = json.loads((artifact / "model.sig").read_text())
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))  # type: ignore[no-any-return]


def _resign(artifact: Path, key: safeload.SigningKey, statement: dict[str, Any]) -> None:
    """Sign ``statement`` (subject digest recomputed from its resources, in listed order)."""
    raw = b"".join(bytes.fromhex(r["digest"]) for r in statement["predicate"]["resources"])
    statement["subject"][0]["digest"]["sha256"] = hashlib.sha256(raw).hexdigest()
    payload = json.dumps(statement).encode()
    bundle = json.loads((artifact / "model.sig").read_text())
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(
        key.sign(pae(PAYLOAD_TYPE, payload))
    ).decode()
    (artifact / "model.sig").write_text(json.dumps(bundle))


def _split_model_shard(statement: dict[str, Any], artifact: Path, at: int) -> None:
    """Replace the model's single shard by two shards split at ``at`` (correct digests)."""
    data = (artifact / "model.joblib").read_bytes()
    algorithm = statement["predicate"]["resources"][0]["algorithm"]
    statement["predicate"]["resources"][0:1] = [
        {"name": f"model.joblib:0:{at}", "algorithm": algorithm, "digest": _sha(data[:at])},
        {
            "name": f"model.joblib:{at}:{len(data)}",
            "algorithm": algorithm,
            "digest": _sha(data[at:]),
        },
    ]


def _tamper_statement(kind: str, statement: dict[str, Any], artifact: Path) -> None:
    predicate = statement["predicate"]
    first = predicate["resources"][0]
    size = (artifact / "model.joblib").stat().st_size
    if kind == "split_inside_shard_size":
        _split_model_shard(statement, artifact, 100)
    elif kind == "gap":
        first["name"] = f"model.joblib:1:{size}"
    elif kind == "leading_zero":
        first["name"] = f"model.joblib:00:{size}"
    elif kind == "negative":
        first["name"] = f"model.joblib:-0:{size}"
    elif kind == "unsorted":
        predicate["resources"].reverse()
    elif kind == "duplicate":
        predicate["resources"].insert(0, dict(first))
    elif kind == "whole_file_algorithm_in_shards":
        first["algorithm"] = "sha256"
    elif kind == "other_shard_size_in_algorithm":
        first["algorithm"] = "sha256-sharded-1024"
    elif kind == "bool_shard_size":
        predicate["serialization"]["shard_size"] = True
    elif kind == "zero_shard_size":
        predicate["serialization"]["shard_size"] = 0
    elif kind == "unknown_method":
        predicate["serialization"]["method"] = "blocks"
    elif kind == "no_serialization":
        del predicate["serialization"]
    elif kind == "symlinks_allowed":
        predicate["serialization"]["allow_symlinks"] = True
    elif kind == "other_hash_type":
        predicate["serialization"]["hash_type"] = "md5"
    elif kind == "shard_name_without_bounds":
        first["name"] = "model.joblib"
    elif kind == "shard_size_with_whole_files":
        predicate["serialization"]["method"] = "files"  # shard_size left in place
        for resource in predicate["resources"]:
            file = resource["name"].split(":")[0]
            resource.update(name=file, algorithm="sha256")
            resource["digest"] = _sha((artifact / file).read_bytes())
    else:  # pragma: no cover
        raise AssertionError(kind)


CRAFTED = [
    "split_inside_shard_size",
    "gap",
    "leading_zero",
    "negative",
    "unsorted",
    "duplicate",
    "whole_file_algorithm_in_shards",
    "other_shard_size_in_algorithm",
    "bool_shard_size",
    "zero_shard_size",
    "unknown_method",
    "no_serialization",
    "symlinks_allowed",
    "other_hash_type",
    "shard_name_without_bounds",
    "shard_size_with_whole_files",
]


@pytest.mark.parametrize("kind", CRAFTED)
def test_signed_but_non_canonical_manifest_refused(
    artifact: Path, keydir: Path, key: safeload.SigningKey, kind: str
) -> None:
    statement = _statement(artifact)
    _tamper_statement(kind, statement, artifact)
    _resign(artifact, key, statement)
    with pytest.raises(safeload.SignatureError):
        safeload.load(artifact, trusted=keydir)


def test_the_untampered_resign_helper_still_loads(
    artifact: Path, keydir: Path, key: safeload.SigningKey
) -> None:
    """Control for the test above: re-signing an unchanged statement is accepted."""
    _resign(artifact, key, _statement(artifact))
    assert safeload.load(artifact, trusted=keydir) is not None


@pytest.mark.parametrize("change", [b"x", b""])
def test_size_change_is_refused_from_the_listing(
    artifact: Path, keydir: Path, monkeypatch: pytest.MonkeyPatch, change: bytes
) -> None:
    """Shards sign sizes: a file of another size is refused before any of it is read."""
    model = artifact / "model.joblib"
    data = model.read_bytes()
    model.write_bytes(data + change if change else data[:-1])
    read: list[str] = []
    original = layout.ArtifactDir.read_hashed

    def spy(self: layout.ArtifactDir, name: str, **kwargs: Any) -> Any:
        read.append(name)
        return original(self, name, **kwargs)

    monkeypatch.setattr(layout.ArtifactDir, "read_hashed", spy)
    with pytest.raises(safeload.TamperedArtifactError, match="changed: model.joblib"):
        safeload.load(artifact, trusted=keydir)
    assert "model.joblib" not in read


def test_an_empty_file_signs_size_zero_in_a_sharded_manifest() -> None:
    """The shard ``[0, 0)`` of an empty file means size 0: kept, and one byte more is refused."""
    manifest = Manifest((Resource("model.joblib", _sha(b""), 0, 0, 4096),), 4096)
    assert manifest.sizes() == {"model.joblib": 0}
    statement = VerifiedStatement("0" * 64, None, "m", manifest)
    check_file_set(statement, {"model.joblib": 0})
    with pytest.raises(safeload.TamperedArtifactError, match="changed: model.joblib"):
        check_file_set(statement, {"model.joblib": 1})
