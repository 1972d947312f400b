"""Legitimate models load at every pickle protocol (0 to 5) and every joblib compression.

Protocols 0 to 2 write what Python 3 still writes for them: Python 2 spellings that the
unpickler translates (``copy_reg._reconstructor``, ``__builtin__.object``), bytes as
``_codecs.encode(text, 'latin1')``, plain objects as ``_reconstructor(cls, object, None)``,
a ``Bunch`` through its dict base, a namedtuple through its tuple base. A gate that refused
them would refuse every model a user saved with ``protocol=2`` for compatibility.

Each file must pass the static scan with no problem, then the restricted unpickler and
structural validation must build exactly what plain ``joblib.load`` builds from the same bytes;
a subset goes through the whole signed gate (``safeload.load``). Every protocol is tried on
every model uncompressed; every compression on a few models (the compressor does not change the
stream the walls see, only how it is stored).
"""

from __future__ import annotations

import importlib.util
import io
import json
import pickle
import time
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

import safeload
from safeload import typegate
from safeload._unpickle import unpickle_verified
from safeload.saving import write_signed_artifact
from safeload.validation import validate_model
from tests.test_all_estimators import assert_same_output, assert_same_state, outputs

PROTOCOLS = range(6)
COMPRESSIONS = ["zlib", "gzip", "bz2", "lzma", "xz"] + (
    ["lz4"] if importlib.util.find_spec("lz4") is not None else []
)
METADATA = json.dumps(
    {"safeload_format_version": 1, "format": "joblib", "name": "m", "version": "1"}
).encode()


def _fit_models() -> dict[str, tuple[Any, Any]]:
    """A dozen small models the way people ship them, each with the input to evaluate it on."""
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        RandomForestClassifier,
        VotingClassifier,
    )
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import IterativeImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    X_cat = np.column_stack([rng.randint(0, 3, 60), X[:, 1:]])
    X_nan = X.copy()
    X_nan[::5, 1] = np.nan
    words = ["red", "green", "blue", "cat", "dog", "tree"]
    docs = [" ".join(rng.choice(words, size=4)) for _ in range(60)]
    column = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), [0]), ("num", StandardScaler(), [1, 2])]
    )
    models: dict[str, tuple[Any, Any, Any]] = {
        "scaler_logreg": (make_pipeline(StandardScaler(), LogisticRegression()), X, y),
        "decision_tree": (DecisionTreeClassifier(max_depth=4, random_state=0), X, y),
        "random_forest": (RandomForestClassifier(5, max_depth=3, random_state=0), X, y),
        "hist_gradient_boosting": (HistGradientBoostingClassifier(max_iter=5), X, y),
        "kneighbors": (KNeighborsClassifier(3), X, y),
        "svc": (SVC(), X, y),
        "tfidf_logreg": (make_pipeline(TfidfVectorizer(), LogisticRegression()), docs, y),
        "onehot_column_transformer": (make_pipeline(column, LogisticRegression()), X_cat, y),
        "kmeans": (KMeans(3, n_init=1, random_state=0), X, None),
        "pca": (PCA(2), X, None),
        "iterative_imputer": (IterativeImputer(max_iter=3, random_state=0), X_nan, None),
        "gaussian_nb": (GaussianNB(), X, y),
        "mlp": (MLPClassifier((8,), max_iter=30, random_state=0), X, y),
        # a Bunch (named_estimators_): written through its dict base at protocols 0 and 1
        "voting": (VotingClassifier([("lr", LogisticRegression()), ("nb", GaussianNB())]), X, y),
    }
    fitted = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (model, data, target) in models.items():
            fitted[name] = (model.fit(data) if target is None else model.fit(data, target), data)
    return fitted


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[Any, Any]]:
    return _fit_models()


MODEL_NAMES = [
    "decision_tree",
    "gaussian_nb",
    "hist_gradient_boosting",
    "iterative_imputer",
    "kmeans",
    "kneighbors",
    "mlp",
    "onehot_column_transformer",
    "pca",
    "random_forest",
    "scaler_logreg",
    "svc",
    "tfidf_logreg",
    "voting",
]
# Every compression at every protocol: a pipeline, the namedtuple and Bunch holders.
COMPRESSED = ["iterative_imputer", "scaler_logreg", "voting"]


def _dump(model: Any, protocol: int, compress: Any = 0) -> bytes:
    handle = io.BytesIO()
    joblib.dump(model, handle, compress=compress, protocol=protocol)
    return handle.getvalue()


def _both_walls(data: bytes) -> Any:
    """The static scan passes without a problem; then the unpickler and validation build it."""
    report = safeload.scan_bytes(data)
    assert report.safe, report.to_dict()
    assert report.problems == () and report.untrusted == ()
    checked = typegate.check_types(data, safeload.TypePolicy.default())
    loaded = unpickle_verified(checked.payload, safeload.TypePolicy.default())
    validate_model(loaded)
    return loaded


def test_the_names_cover_every_model(models: dict[str, tuple[Any, Any]]) -> None:
    assert sorted(models) == MODEL_NAMES
    assert set(COMPRESSED) <= set(MODEL_NAMES)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_protocol_loads_as_joblib_does(
    models: dict[str, tuple[Any, Any]], name: str, protocol: int
) -> None:
    model, _ = models[name]
    data = _dump(model, protocol)
    loaded = _both_walls(data)
    assert_same_state(loaded, joblib.load(io.BytesIO(data)), name, set())


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("name", COMPRESSED)
def test_every_compression_loads_as_joblib_does(
    models: dict[str, tuple[Any, Any]], name: str, compression: str, protocol: int
) -> None:
    model, _ = models[name]
    data = _dump(model, protocol, (compression, 3))
    report = safeload.scan_bytes(data)
    assert report.compression is not None
    loaded = _both_walls(data)
    assert_same_state(loaded, joblib.load(io.BytesIO(data)), name, set())


@pytest.fixture(scope="module")
def signer() -> safeload.SigningKey:
    return safeload.generate_key()


@pytest.mark.parametrize(("protocol", "compression"), [(0, None), (1, "gzip"), (2, "lz4")])
def test_the_signed_gate_loads_old_protocols(
    models: dict[str, tuple[Any, Any]],
    signer: safeload.SigningKey,
    tmp_path: Path,
    protocol: int,
    compression: str | None,
) -> None:
    """Through safeload.load (signature, hashes, scan, unpickler, validation): same outputs."""
    if compression not in (None, *COMPRESSIONS):
        pytest.skip(f"{compression} is not installed")
    for name in MODEL_NAMES:
        model, data = models[name]
        stored = _dump(model, protocol, (compression, 3) if compression else 0)
        artifact = write_signed_artifact(
            tmp_path / name, {"model.joblib": stored, "safeload.json": METADATA}, key=signer
        )
        loaded = safeload.load(artifact, trusted=safeload.Keyring.of([signer]))
        assert_same_state(loaded, joblib.load(io.BytesIO(stored)), name, set())
        expected, got = outputs(model, data), outputs(loaded, data)
        assert set(got) == set(expected) and expected, name
        for method, value in expected.items():
            assert_same_output(value, got[method], f"{name}.{method}")


def _values() -> dict[str, Any]:
    """Values fitted state holds, each pickled differently below protocol 3."""
    return {
        "empty numpy str": np.str_(""),  # scalar(dtype, bytes()): empty bytes are bytes()
        "empty numpy bytes": np.bytes_(b""),
        "empty void": np.void(b""),
        "bytes": b"\x00\xff" * 3000,  # _codecs.encode of a long text
        "empty bytes": b"",
        "numpy scalars": [np.float64(1.5), np.int64(-3), np.bool_(True), np.complex128(1j)],
        "text": "h\xe9llo \u2713 \U0001f600",
        "sets": ({1, 2}, frozenset({"a"}), set()),
        "slice and complex": (slice(1, None, 2), 1 + 2j),
        "ordered dict": __import__("collections").OrderedDict(a=1),
        "random states": (np.random.RandomState(0), np.random.default_rng(0)),
        "dtypes": (np.dtype([("a", "<f8"), ("b", "<i4")]), np.float64),
        "datetimes": (np.datetime64("2020-01-01"), np.array(["2020-01-01"], dtype="M8[D]")),
        "object array": np.array(["a", None, 1.5], dtype=object),
        "masked array": np.ma.masked_array([1, 2], mask=[0, 1]),
        "big int": 2**100,
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_values_fitted_state_holds_load_at_every_protocol(protocol: int) -> None:
    for name, value in _values().items():
        for data in (pickle.dumps(value, protocol=protocol), _dump(value, protocol)):
            loaded = _both_walls(data)
            expected = joblib.load(io.BytesIO(data))
            assert_same_state(loaded, expected, f"{name}@{protocol}", set())


def test_the_walls_are_quick_at_protocol_0(models: dict[str, tuple[Any, Any]]) -> None:
    """Text opcodes are slower to walk than binary ones, but not much: a bound, not a benchmark."""
    started = time.perf_counter()
    for name in MODEL_NAMES:
        _both_walls(_dump(models[name][0], 0))
    assert time.perf_counter() - started < 10
