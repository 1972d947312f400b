"""Write the golden artifacts of the running format version. Run by hand, never by tests.

    cd <repo> && python tests/golden/make_goldens.py

A fresh Ed25519 key is generated in a temporary folder; only its public half is written
(``tests/golden/<key-name>.pub``) and the private half is deleted with the folder, so that
nobody can ever re-sign a golden. Existing folders and keys are never touched: a later format
version ADDS goldens (and a new key name), it never replaces them (see README.md).

Four artifacts are written per format version, ``v<N>-<format>-<serialization>``:

- ``shards``: exactly what ``safeload.save`` writes.
- ``files``: the same two files re-signed with a whole-file manifest (``"method": "files"``,
  one ``sha256`` resource per file, no ``shard_size``), which today's writers never produce but
  every verifier must accept. It is built with safeload's own manifest and signing functions
  (``resources_for(..., shard_size=None)``, ``build_statement``, ``sign_statement``), and
  ``tests/test_golden.py`` also checks it with the independent verifier of
  ``tests/test_format_spec.py``, written from ``docs/format.md`` alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import safeload
from safeload.layout import METADATA_FILE, MODEL_FILES, SIGNATURE_FILE
from safeload.manifest import file_digests, resources_for
from safeload.metadata import FORMAT_VERSION
from safeload.signing import build_statement, sign_statement

HERE = Path(__file__).resolve().parent
SERIALIZATIONS = ("shards", "files")


def tiny_model() -> tuple[Pipeline, np.ndarray]:
    """A 2-step Pipeline fitted on 20 synthetic rows, and 3 sample rows for the contract."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3)).round(3)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    return model, X[:3]


def write_files_serialization(
    source: Path, target: Path, key: safeload.SigningKey, subject: str
) -> None:
    """Copy an artifact's signed files to ``target`` and sign them by whole-file digests."""
    files = {p.name: p.read_bytes() for p in source.iterdir() if p.name != SIGNATURE_FILE}
    digests = {name: file_digests(data, None) for name, data in files.items()}
    sizes = {name: len(data) for name, data in files.items()}
    resources = resources_for(digests, sizes, None)
    bundle = sign_statement(key, build_statement(subject, resources))
    target.mkdir()
    for name, data in files.items():
        (target / name).write_bytes(data)
    (target / SIGNATURE_FILE).write_bytes(bundle)


def main(argv: list[str] | None = None) -> int:
    """Write the missing goldens of the running format version."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key-name", default="golden", help="stem of the public key to write")
    args = parser.parse_args(argv)
    pub = HERE / f"{args.key_name}.pub"
    prefix = f"v{FORMAT_VERSION}"
    wanted = [HERE / f"{prefix}-{fmt}-{ser}" for fmt in MODEL_FILES for ser in SERIALIZATIONS]
    if pub.exists() or any(p.exists() for p in wanted):
        print(
            f"{pub.name} or a {prefix}-* folder exists: goldens are never replaced; add new "
            "ones under a new format version and key name instead.",
            file=sys.stderr,
        )
        return 1
    model, sample = tiny_model()
    with tempfile.TemporaryDirectory() as tmp:
        key = safeload.generate_key()
        key.save(Path(tmp) / "key" / args.key_name)
        for fmt in MODEL_FILES:
            for ser in SERIALIZATIONS:
                target = HERE / f"{prefix}-{fmt}-{ser}"
                out = target if ser == "shards" else Path(tmp) / "staging" / target.name
                safeload.save(
                    model,
                    out,
                    key=key,
                    format=fmt,
                    name="golden",
                    version=target.name,
                    metrics={"note": "golden artifact, kept forever"},
                    sample=sample,
                )
                if ser == "files":
                    write_files_serialization(out, target, key, f"golden/{target.name}")
                assert (target / METADATA_FILE).exists()
                print(f"wrote {target.relative_to(HERE)}")
        shutil.copyfile(Path(tmp) / "key" / f"{args.key_name}.pub", pub)
    print(f"wrote {pub.name}; the private key is gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
