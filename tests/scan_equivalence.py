"""Golden verdicts of the static pickle scanner, over real models and thousands of broken ones.

The scanner's main loop runs its commonest opcodes inline, for speed (``_stream._Stream.run``).
Those fast paths must change nothing: this module rebuilds the same inputs every time (small
real models at protocols 0-5, by joblib and by pickle, and seeded byte-flipped, truncated,
opcode-swapped, cut and duplicated variants of each) and digests everything the scan decides
about each one: the verdict, the problems, the names, and the fast path's plan (the positions
of calls, builds, dtype fetches and arrays it reads from the scan).

``tests/data/scan_bases.json.gz`` holds the base streams as bytes and
``tests/data/scan_golden.json`` the digests computed by the scanner *before* the fast paths
(commit 8881932, ``main`` then); ``tests/test_scan_speed_equivalence.py`` recomputes them
with today's code. A golden file rather than a copy of the old scanner in the test: the old
code would be 1,400 lines kept alive beside the new ones, and importing it from git would make
the test depend on a branch that moves. Regenerate only on a deliberate change of verdicts:

    PYTHONPATH=<tree of the scanner to record> python tests/scan_equivalence.py --write
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import pickle
import pickletools
import random
import sys
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).parent / "data" / "scan_golden.json"
BASES = Path(__file__).parent / "data" / "scan_bases.json.gz"
PROTOCOLS = range(6)
VARIANTS = 50  # per base stream: 5 models x 6 protocols x 2 writers x 50 = 3,000 variants
_KINDS = ("flip", "opswap", "truncate", "cut", "dup")
_OPCODE_BYTES = bytes(sorted({op.code.encode("latin-1")[0] for op in pickletools.opcodes}))


def models() -> dict[str, Any]:
    """Small, deterministic fitted models of the families the scanner sees most."""
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    words = ["spam eggs", "ham spam", "eggs only", "more ham", "spam spam spam", "no eggs"]
    labels = np.array([1, 1, 0, 0, 1, 0])
    text = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(words, labels)
    # The vectorizer keeps id(stop_words), an address that changes with each run: fixed here,
    # so that the same bytes are written every time.
    text.steps[0][1]._stop_words_id = 0
    return {
        "pipeline": make_pipeline(StandardScaler(), PCA(2), LogisticRegression()).fit(X, y),
        "forest": RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y),
        "hgb": HistGradientBoostingClassifier(
            max_iter=3, max_leaf_nodes=4, early_stopping=False, random_state=0
        ).fit(X, y),
        "knn": KNeighborsClassifier(n_neighbors=3).fit(X[:20], y[:20]),
        "text": text,
    }


def bases() -> dict[str, bytes]:
    """The recorded streams (``tests/data/scan_bases.json.gz``): bytes, whatever is installed.

    Kept as bytes, not rebuilt from the models, so that a scikit-learn, numpy or joblib
    release that pickles a model differently cannot turn the comparison into a false alarm.
    """
    doc = json.loads(gzip.decompress(BASES.read_bytes()))
    return {key: base64.b64decode(text) for key, text in doc.items()}


def fresh_bases() -> dict[str, bytes]:
    """Each model's stream at every protocol, as joblib writes it and as pickle does."""
    import joblib

    out: dict[str, bytes] = {}
    for name, model in models().items():
        for proto in PROTOCOLS:
            sink = io.BytesIO()
            joblib.dump(model, sink, protocol=proto)
            out[f"{name}-joblib-{proto}"] = sink.getvalue()
            out[f"{name}-pickle-{proto}"] = pickle.dumps(model, protocol=proto)
    return out


def _opcode_starts(data: bytes) -> list[int]:
    """Where opcodes start, as far as pickletools can follow (joblib's raw arrays stop it)."""
    starts = []
    try:
        for _, _, pos in pickletools.genops(data):
            if pos is not None:
                starts.append(pos)
    except Exception:  # the first joblib array, or the end
        return starts
    return starts


def variants(key: str, data: bytes) -> list[tuple[str, bytes]]:
    """Seeded broken copies of one stream: ``(kind, bytes)``."""
    rng = random.Random(f"scan-equivalence/{key}")  # noqa: S311 (test data)
    starts = _opcode_starts(data) or [0]
    out = []
    for i in range(VARIANTS):
        kind = _KINDS[i % len(_KINDS)]
        buf = bytearray(data)
        pos = rng.randrange(len(buf))
        if kind == "flip":
            buf[pos] ^= 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
        elif kind == "opswap":
            buf[rng.choice(starts)] = rng.choice(_OPCODE_BYTES)
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "cut":
            del buf[pos : pos + rng.randrange(1, 16)]
        else:
            at = rng.randrange(len(buf))
            buf[at:at] = buf[pos : pos + rng.randrange(1, 24)]
        out.append((kind, bytes(buf)))
    return out


def digest(data: bytes) -> str:
    """Everything the scan decides about ``data``, hashed: verdict, problems, names, plan."""
    from safeload.policy import TypePolicy
    from safeload.typegate import scan_planned

    report, plan = scan_planned(data, TypePolicy.default(), None, None, None, None)
    fields: list[Any] = [
        report.safe,
        report.format,
        list(report.globals),
        list(report.untrusted),
        list(report.problems),
    ]
    if plan is not None:
        arrays = [[a.region, a.data, a.dtype.str, list(a.shape), a.order] for a in plan.arrays]
        fields.append([plan.ops, plan.gets, plan.proto, arrays])
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def record() -> dict[str, Any]:
    """The golden file's content, computed by whichever scanner is on the path."""
    import safeload

    golden: dict[str, Any] = {"scanner": safeload.__file__, "bases": {}, "digests": {}}
    for key, data in bases().items():
        golden["bases"][key] = fingerprint(data)
        found = [digest(data)] + [digest(v) for _, v in variants(key, data)]
        golden["digests"][key] = " ".join(found)
    return golden


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    streams = {key: base64.b64encode(data).decode() for key, data in fresh_bases().items()}
    BASES.write_bytes(gzip.compress(json.dumps(streams, sort_keys=True).encode(), mtime=0))
    content = record()
    print("recorded with", content["scanner"])
    content["scanner"] = "the scanner of commit 8881932 (before the inline fast paths)"
    FIXTURE.write_text(json.dumps(content, indent=0, sort_keys=True) + "\n")
