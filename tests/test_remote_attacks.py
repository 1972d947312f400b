"""A bucket arranged by an attacker who can write to it but cannot sign: odd names, huge listings.

Against the real S3 protocol server of ``tests/test_remote.py`` (moto on loopback). A listing is
bounded by the number of requests it makes and refused past its limit; a name that could not be
a store folder is never listed as a model or version, nor read.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sklearn.pipeline import Pipeline

import safeload
from safeload import remote
from safeload.errors import MalformedArtifactError, OperationalError
from tests.test_remote import S3, _opts, _save, bucket, s3  # noqa: F401  (fixtures)

# Names no store folder may have ("." and ".." are asked for, not uploaded: HTTP clients
# normalise them out of the request path).
ODD = ["<script>", "a b", "%2e%2e", "\u202eevil", "\u00fcber", "x\ty", "-", "a" * 200]


def test_a_bucket_with_thousands_of_model_folders_is_refused_in_few_requests(
    s3: S3,  # noqa: F811
    bucket: str,  # noqa: F811
) -> None:
    client = s3.client()
    names = [f"root/m{i:05d}/1.0/model.sig" for i in range(remote.MAX_LISTED + 200)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b""), names))
    s3.log.clear()
    store = safeload.Store(f"s3://{bucket}/root", options=_opts(s3))
    with pytest.raises(OperationalError, match=f"more than {remote.MAX_LISTED} entries"):
        store.names()
    listings = [q for _, q in s3.requests("GET", bucket) if "list-type" in q]
    # Pages of at most 1,000 common prefixes: what reaches MAX_LISTED + 1, nothing beyond.
    assert len(listings) <= remote.MAX_LISTED // 1000 + 1, len(listings)


def test_odd_names_in_a_bucket_are_not_models_nor_versions(
    s3: S3,  # noqa: F811
    bucket: str,  # noqa: F811
    pipeline: Pipeline,
    key: safeload.SigningKey,
    keydir: Path,
) -> None:
    _save(s3, pipeline, key, f"s3://{bucket}/root/iris/1.0.0")
    client = s3.client()
    for odd in ODD:
        client.put_object(Bucket=bucket, Key=f"root/{odd}/1.0/model.sig", Body=b"{}")
        client.put_object(Bucket=bucket, Key=f"root/iris/{odd}/model.sig", Body=b"{}")
    store = safeload.Store(f"s3://{bucket}/root", options=_opts(s3), rollback="ignore")
    assert store.names() == ["iris"]
    assert store.versions("iris") == ["1.0.0"]
    assert store.load_checked("iris", trusted=keydir).metadata["version"] == "1.0.0"
    s3.log.clear()
    for odd in [*ODD, ".", ".."]:
        with pytest.raises((MalformedArtifactError, ValueError)):
            store.load_checked(odd, "1.0", trusted=keydir)
        with pytest.raises((MalformedArtifactError, ValueError)):
            store.load_checked("iris", odd, trusted=keydir)
    assert s3.requests("GET", bucket) == [] and s3.requests("HEAD", bucket) == []
