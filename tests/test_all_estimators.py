"""Every scikit-learn estimator, fitted, saved and loaded through the default policy.

Measured, not assumed: each estimator class that ``sklearn.utils.all_estimators()`` lists is
built (meta-estimators get a simple default sub-estimator instead of being skipped), fitted on
small synthetic data suited to its kind, dumped with joblib, and loaded back under
``TypePolicy.default()``. The reloaded model must be the very object plain ``joblib.load``
builds from the same bytes (equal pickles), and give the outputs of the original (predict,
predict_proba, decision_function, transform, score_samples, whichever exist; floats to the
last bits, since a strided array comes back contiguous and BLAS may sum in another order).

Models go through the public gate (``safeload.save`` + ``safeload.load``) when the package
exposes it; until then through the restricted unpickler alone, which enforces the same policy.

Any estimator that cannot pass is listed in ``KNOWN_EXCEPTIONS`` with its reason, and that list
must stay within 1% of the estimators tried.

``build_cases()`` is also used by ``benchmarks/gen_default_types.py`` to regenerate candidates
for the policy.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import scipy.sparse as sp

# all_estimators() lists the experimental estimators only once they are enabled, so without this
# a run of this file alone never built HalvingGridSearchCV, HalvingRandomSearchCV or
# IterativeImputer, and the whole suite built them or not depending on import order.
from sklearn.experimental import (  # noqa: F401
    enable_halving_search_cv,
    enable_iterative_imputer,
)
from sklearn.utils import all_estimators

import safeload
import safeload.errors
from safeload._unpickle import unpickle_verified
from safeload.policy import TypePolicy
from safeload.validation import validate_model

# name -> why it cannot pass the default policy (kept to at most 1% of the estimators tried).
KNOWN_EXCEPTIONS: dict[str, str] = {}
# The exact names that make each known exception load, to show the documented way out works.
EXTENSIONS: dict[str, list[str]] = {}

N_SAMPLES = 48
N_FEATURES = 4
OUTPUT_METHODS = ("predict", "predict_proba", "decision_function", "transform", "score_samples")


@dataclass
class Case:
    """One estimator to fit, and the inputs to fit and evaluate it on."""

    name: str
    estimator: Any
    fit_args: tuple[Any, ...]
    eval_input: Any = None
    fit_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Data:
    """Small synthetic data sets, one per kind of estimator."""

    X: np.ndarray
    X_int: np.ndarray
    y_cls: np.ndarray
    y_bin: np.ndarray
    y_reg: np.ndarray
    y_pos: np.ndarray
    Y_reg: np.ndarray
    Y_bin: np.ndarray
    y_semi: np.ndarray
    docs: list[str]
    dicts: list[dict[str, float]]
    images: np.ndarray


def make_data(seed: int = 0) -> Data:
    """Build the synthetic data sets (deterministic)."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(0.0, 4.0, size=(N_SAMPLES, N_FEATURES))
    y_cls = rng.permutation(np.arange(N_SAMPLES) % 3)
    X[:, 0] += y_cls  # give classifiers something to learn
    X_int = rng.randint(0, 4, size=(N_SAMPLES, N_FEATURES)).astype(np.float64)
    y_bin = (y_cls == 1).astype(np.int64)
    y_reg = X @ np.array([1.5, -2.0, 0.5, 0.0]) + rng.normal(scale=0.1, size=N_SAMPLES)
    Y_reg = np.column_stack([y_reg, X[:, 1] - X[:, 2]])
    Y_bin = np.column_stack([y_bin, (X[:, 1] > 2.0).astype(np.int64)])
    y_semi = y_cls.copy()
    y_semi[::3] = -1
    words = ["red", "green", "blue", "cat", "dog", "fish", "tree", "rock"]
    docs = [" ".join(rng.choice(words, size=5)) for _ in range(N_SAMPLES)]
    dicts = [{w: float(rng.randint(1, 4)) for w in rng.choice(words, size=3)} for _ in range(20)]
    images = rng.uniform(size=(3, 6, 6))
    y_pos = np.abs(y_reg) + 1.0
    return Data(X, X_int, y_cls, y_bin, y_reg, y_pos, Y_reg, Y_bin, y_semi, docs, dicts, images)


def _constructors(d: Data) -> dict[str, Callable[[type[Any]], Case]]:
    """Per-estimator construction where the defaults do not fit the shared recipe."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    X = d.X

    def clf() -> Any:
        return LogisticRegression(max_iter=200)

    def meta_clf(**kw: Any) -> Callable[[type[Any]], Case]:
        return lambda cls: Case(cls.__name__, cls(clf(), **kw), (X, d.y_cls))

    def meta_bin(**kw: Any) -> Callable[[type[Any]], Case]:
        return lambda cls: Case(cls.__name__, cls(clf(), **kw), (X, d.y_bin))

    def meta_multi_clf(**kw: Any) -> Callable[[type[Any]], Case]:
        return lambda cls: Case(cls.__name__, cls(clf(), **kw), (X, d.Y_bin))

    def meta_multi_reg(**kw: Any) -> Callable[[type[Any]], Case]:
        return lambda cls: Case(cls.__name__, cls(Ridge(), **kw), (X, d.Y_reg))

    def fitted_frozen(cls: type[Any]) -> Case:
        return Case(cls.__name__, cls(clf().fit(X, d.y_cls)), (X, d.y_cls))

    def sparse_coder(cls: type[Any]) -> Case:
        dictionary = np.linalg.qr(np.random.RandomState(1).normal(size=(N_FEATURES, 3)))[0].T
        return Case(cls.__name__, cls(dictionary=dictionary), (X,))

    def column_transformer(cls: type[Any]) -> Case:
        ct = cls(
            [("num", StandardScaler(), [0, 1]), ("cat", OneHotEncoder(), [2])],
            remainder="passthrough",
        )
        return Case(cls.__name__, ct, (np.column_stack([X[:, :2], d.X_int[:, :1], X[:, 3]]),))

    def stacking_clf(cls: type[Any]) -> Case:
        ests = [("lr", clf()), ("dt", DecisionTreeClassifier(max_depth=3))]
        return Case(cls.__name__, cls(ests, cv=3), (X, d.y_cls))

    def stacking_reg(cls: type[Any]) -> Case:
        ests = [("lr", LinearRegression()), ("dt", DecisionTreeRegressor(max_depth=3))]
        return Case(cls.__name__, cls(ests, cv=3), (X, d.y_reg))

    def search(**kw: Any) -> Callable[[type[Any]], Case]:
        return lambda cls: Case(
            cls.__name__, cls(clf(), {"C": [0.1, 1.0]}, cv=3, **kw), (X, d.y_cls)
        )

    def text(cls: type[Any]) -> Case:
        return Case(cls.__name__, cls(), (d.docs,), d.docs)

    def dicts(cls: type[Any]) -> Case:
        est = cls(n_features=16) if cls.__name__ == "FeatureHasher" else cls()
        return Case(cls.__name__, est, (d.dicts,), d.dicts)

    def labels(cls: type[Any]) -> Case:
        return Case(cls.__name__, cls(), (d.y_cls,), d.y_cls)

    def multilabel(cls: type[Any]) -> Case:
        labs = [{1, 2}, {3}, {2, 3}, set()]
        return Case(cls.__name__, cls(), (labs,), labs)

    def patches(cls: type[Any]) -> Case:
        return Case(
            cls.__name__,
            cls(patch_size=(2, 2), max_patches=4, random_state=0),
            (d.images,),
            d.images,
        )

    def isotonic(cls: type[Any]) -> Case:
        return Case(cls.__name__, cls(), (X[:, 0], d.y_reg), X[:, 0])

    def kernel_centerer(cls: type[Any]) -> Case:
        return Case(cls.__name__, cls(), (X @ X.T,), X @ X.T)

    def integer_data(y: np.ndarray | None) -> Callable[[type[Any]], Case]:
        def build(cls: type[Any]) -> Case:
            args = (d.X_int,) if y is None else (d.X_int, y)
            return Case(cls.__name__, cls(), args, d.X_int)

        return build

    def tfidf_transformer(cls: type[Any]) -> Case:
        return Case(cls.__name__, cls(), (d.X_int,), d.X_int)

    def semi(cls: type[Any]) -> Case:
        est = cls(clf()) if cls.__name__ == "SelfTrainingClassifier" else cls()
        return Case(cls.__name__, est, (X, d.y_semi))

    def with_params(y: np.ndarray | None = None, **kw: Any) -> Callable[[type[Any]], Case]:
        def build(cls: type[Any]) -> Case:
            return Case(cls.__name__, cls(**kw), (X,) if y is None else (X, y))

        return build

    return {
        # meta-estimators: given a simple sub-estimator rather than skipped
        "CalibratedClassifierCV": meta_clf(cv=3),
        "ClassifierChain": meta_multi_clf(),
        "MultiOutputClassifier": meta_multi_clf(),
        "MultiOutputRegressor": meta_multi_reg(),
        "RegressorChain": meta_multi_reg(),
        "OneVsOneClassifier": meta_clf(),
        "OneVsRestClassifier": meta_clf(),
        "OutputCodeClassifier": meta_clf(random_state=0),
        "FixedThresholdClassifier": meta_bin(),
        "TunedThresholdClassifierCV": meta_bin(cv=3),
        "RFE": meta_clf(n_features_to_select=2),
        "RFECV": meta_clf(cv=3),
        "SelectFromModel": meta_clf(),
        "SequentialFeatureSelector": meta_clf(n_features_to_select=2, cv=3),
        "SelfTrainingClassifier": semi,
        "LabelPropagation": semi,
        "LabelSpreading": semi,
        "FrozenEstimator": fitted_frozen,
        "GridSearchCV": search(),
        "RandomizedSearchCV": search(n_iter=2, random_state=0),
        "HalvingGridSearchCV": search(),
        "HalvingRandomSearchCV": search(random_state=0),
        "StackingClassifier": stacking_clf,
        "VotingClassifier": lambda cls: Case(
            cls.__name__,
            cls([("lr", clf()), ("dt", DecisionTreeClassifier(max_depth=3))], voting="soft"),
            (X, d.y_cls),
        ),
        "StackingRegressor": stacking_reg,
        "VotingRegressor": lambda cls: Case(
            cls.__name__,
            cls([("lr", LinearRegression()), ("dt", DecisionTreeRegressor(max_depth=3))]),
            (X, d.y_reg),
        ),
        "Pipeline": lambda cls: Case(
            cls.__name__, cls([("scale", StandardScaler()), ("clf", clf())]), (X, d.y_cls)
        ),
        "FeatureUnion": lambda cls: Case(
            cls.__name__, cls([("pca", PCA(n_components=2)), ("scale", StandardScaler())]), (X,)
        ),
        "ColumnTransformer": column_transformer,
        "SparseCoder": sparse_coder,
        # inputs that are not a numeric matrix
        "CountVectorizer": text,
        "TfidfVectorizer": text,
        "HashingVectorizer": text,
        "DictVectorizer": dicts,
        "FeatureHasher": dicts,
        "LabelBinarizer": labels,
        "LabelEncoder": labels,
        "MultiLabelBinarizer": multilabel,
        "PatchExtractor": patches,
        "IsotonicRegression": isotonic,
        "KernelCenterer": kernel_centerer,
        "CategoricalNB": integer_data(d.y_cls),
        "TargetEncoder": integer_data(d.y_reg),
        "OneHotEncoder": integer_data(None),
        "OrdinalEncoder": integer_data(None),
        "TfidfTransformer": tfidf_transformer,
        # multi-output or positive targets
        "CCA": with_params(d.Y_reg),
        "PLSCanonical": with_params(d.Y_reg),
        "PLSSVD": with_params(d.Y_reg),
        "PoissonRegressor": with_params(d.y_pos),
        "GammaRegressor": with_params(d.y_pos),
        "MultiTaskElasticNet": with_params(d.Y_reg),
        "MultiTaskElasticNetCV": with_params(d.Y_reg, cv=3),
        "MultiTaskLasso": with_params(d.Y_reg),
        "MultiTaskLassoCV": with_params(d.Y_reg, cv=3),
        # parameters for tiny data or speed
        "RadiusNeighborsClassifier": with_params(d.y_cls, radius=5.0),
        "RadiusNeighborsRegressor": with_params(d.y_reg, radius=5.0),
        "TSNE": with_params(None, perplexity=5.0, max_iter=250, random_state=0),
        "MDS": with_params(None, n_init=1, max_iter=50, random_state=0),
        "SpectralBiclustering": with_params(None, n_clusters=2, random_state=0),
        "SpectralCoclustering": with_params(None, n_clusters=2, random_state=0),
        "GaussianProcessClassifier": with_params(d.y_bin, random_state=0),
        "QuantileTransformer": with_params(None, n_quantiles=20),
        "LatentDirichletAllocation": with_params(None, n_components=2, max_iter=5, random_state=0),
        "NMF": with_params(None, n_components=2, max_iter=500, random_state=0),
        "MiniBatchNMF": with_params(None, n_components=2, random_state=0),
        "DictionaryLearning": with_params(None, n_components=3, max_iter=20, random_state=0),
        "MiniBatchDictionaryLearning": with_params(
            None, n_components=3, max_iter=5, random_state=0
        ),
        "SparsePCA": with_params(None, n_components=2, max_iter=20, random_state=0),
        "MiniBatchSparsePCA": with_params(None, n_components=2, max_iter=5, random_state=0),
        "HistGradientBoostingClassifier": with_params(d.y_cls, max_iter=10),
        "HistGradientBoostingRegressor": with_params(d.y_reg, max_iter=10),
        "MLPClassifier": with_params(d.y_cls, max_iter=50, random_state=0),
        "MLPRegressor": with_params(d.y_reg, max_iter=50, random_state=0),
        "BernoulliRBM": with_params(None, n_iter=5, random_state=0),
        "GaussianRandomProjection": with_params(None, n_components=2, random_state=0),
        "SparseRandomProjection": with_params(None, n_components=2, random_state=0),
        "TruncatedSVD": with_params(None, n_components=2, random_state=0),
        "AgglomerativeClustering": with_params(None, n_clusters=2),
        "FeatureAgglomeration": with_params(None, n_clusters=2),
        "Birch": with_params(None, n_clusters=2),
        "HDBSCAN": with_params(None, min_cluster_size=4),
        "OPTICS": with_params(None, min_samples=4),
        "IncrementalPCA": with_params(None, batch_size=16),
        "MeanShift": with_params(None, bandwidth=2.0),
        "LocallyLinearEmbedding": with_params(None, n_neighbors=8, random_state=0),
        "Isomap": with_params(None, n_neighbors=8),
        "SpectralEmbedding": with_params(None, n_neighbors=8, random_state=0),
        "SpectralClustering": with_params(None, n_clusters=2, n_neighbors=8, random_state=0),
    }


def _generic_case(cls: type[Any], d: Data) -> Case:
    """Build a case from the estimator's kind (its tags), for the many that need nothing special."""
    from sklearn.base import is_classifier, is_regressor

    est = cls()
    if is_classifier(est):
        return Case(cls.__name__, est, (d.X, d.y_cls))
    if is_regressor(est):
        return Case(cls.__name__, est, (d.X, d.y_reg))
    return Case(cls.__name__, est, (d.X, d.y_cls))


def _seed(est: Any) -> None:
    """Fix every random_state the estimator (and its sub-estimators) exposes."""
    try:
        params = est.get_params(deep=True)
    except Exception:
        return
    seeds = {k: 0 for k, v in params.items() if k.endswith("random_state") and v is None}
    if seeds:
        est.set_params(**seeds)


def build_cases(d: Data | None = None) -> Iterator[Case]:
    """Yield an unfitted case for every estimator of ``all_estimators()``, sorted by name."""
    d = d or make_data()
    special = _constructors(d)
    for name, cls in all_estimators():
        case = special[name](cls) if name in special else _generic_case(cls, d)
        if case.eval_input is None:
            case.eval_input = d.X
        _seed(case.estimator)
        yield case


def outputs(est: Any, X: Any) -> dict[str, Any]:
    """Every output method the fitted estimator supports on X (the ones that do not raise)."""
    out: dict[str, Any] = {}
    for method in OUTPUT_METHODS:
        try:
            fn = getattr(est, method, None)
        except Exception:
            fn = None
        if fn is None:
            continue
        with contextlib.suppress(Exception):  # e.g. transductive estimators
            out[method] = fn(X)
    return out


def fit_case(case: Case) -> Any:
    """Fit the case's estimator quietly and return it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return case.estimator.fit(*case.fit_args, **case.fit_kwargs)


def dump_bytes(obj: Any) -> bytes:
    """The bytes ``joblib.dump`` writes for obj (uncompressed)."""
    handle = io.BytesIO()
    joblib.dump(obj, handle)
    return handle.getvalue()


def _gate_available() -> bool:
    return all(hasattr(safeload, n) for n in ("save", "load", "generate_key", "Keyring"))


def load_through_gate(obj: Any, tmp_path: Path, policy: TypePolicy) -> tuple[Any, bytes]:
    """Save obj as a signed artifact, load it back through the public gate; also its bytes."""
    key = safeload.generate_key()
    keys = tmp_path / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    key.save(keys / "trainer")
    target = tmp_path / "model"
    safeload.save(
        obj, target, key=key, format="joblib", name="model", version="1.0.0", policy=policy
    )
    loaded = safeload.load(target, trusted=safeload.Keyring.from_dir(keys), policy=policy)
    return loaded, (target / "model.joblib").read_bytes()


def load_restricted(obj: Any, policy: TypePolicy) -> tuple[Any, bytes]:
    """Load obj's joblib bytes through the restricted unpickler and structural validation."""
    data = dump_bytes(obj)
    loaded = unpickle_verified(bytearray(data), policy)
    validate_model(loaded)
    return loaded, data


def roundtrip(obj: Any, tmp_path: Path, policy: TypePolicy | None = None) -> Any:
    """Through the public gate when it exists, else through the restricted unpickler.

    Also checks that the result is what plain ``joblib.load`` makes of the same bytes.
    """
    policy = policy or TypePolicy.default()
    if _gate_available():
        loaded, data = load_through_gate(obj, tmp_path, policy)
    else:
        loaded, data = load_restricted(obj, policy)
    assert_same_state(loaded, joblib.load(io.BytesIO(data)), "model", set())
    return loaded


def _same_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, float | np.floating) and isinstance(b, float | np.floating):
        return bool(a == b or (np.isnan(a) and np.isnan(b)))
    return bool(a == b)


def assert_same_state(a: Any, b: Any, where: str, seen: set[tuple[int, int]]) -> None:
    """Recursive equality of two object graphs (arrays by value, objects by state).

    Used instead of comparing pickles: structured arrays (a Tree's nodes) carry padding bytes
    whose content is arbitrary.
    """
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if (id(a), id(b)) in seen:
        return
    seen.add((id(a), id(b)))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype.names:
            for name in a.dtype.names:
                assert_same_state(a[name], b[name], f"{where}[{name!r}]", seen)
        elif a.dtype.hasobject:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
                assert_same_state(x, y, f"{where}[{i}]", seen)
        else:
            assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif sp.issparse(a):
        assert_same_state(vars(a), vars(b), where, seen)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}[{key!r}]", seen)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]", seen)
    elif isinstance(a, str | bytes | int | float | complex | np.generic | type(None) | type):
        assert _same_scalar(a, b), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, set | frozenset) or (callable(a) and not hasattr(a, "__dict__")):
        assert a == b, where
    elif hasattr(a, "__dict__") and not hasattr(a, "__reduce_cython__"):
        assert_same_state(vars(a), vars(b), where, seen)
    else:  # Cython objects (Tree, KDTree, losses, ...): their pickled state
        assert_same_state(a.__reduce__()[1:], b.__reduce__()[1:], where, seen)


def assert_same_output(a: Any, b: Any, where: str) -> None:
    """Exact equality of two outputs (arrays, sparse matrices, lists of arrays)."""
    if sp.issparse(a):
        assert sp.issparse(b) and a.shape == b.shape, where
        diff = abs(sp.csr_array(a) - sp.csr_array(b))
        scale = max(1.0, float(abs(sp.csr_array(a)).max()))
        assert diff.nnz == 0 or float(diff.max()) <= 1e-9 * scale, where
    elif isinstance(a, (list, tuple)) and a and not np.isscalar(a[0]):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_output(x, y, f"{where}[{i}]")
    else:
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind in "fc":
            # Arrays come back C- or F-contiguous where the original may have been a strided
            # view, so BLAS may sum in another order: allow for the last bits.
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-300, err_msg=where)
        else:
            np.testing.assert_array_equal(b, a, err_msg=where)


# ---- pipelines on pandas DataFrames ------------------------------------------------------------


def pandas_cases() -> dict[str, tuple[Any, Any, np.ndarray]]:
    """Common pipelines on DataFrames with numeric, string and categorical columns (unfitted)."""
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    rng = np.random.RandomState(0)
    n = 60
    df = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, n),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["paris", "oslo", "rome"], n),
            "plan": pd.Categorical(rng.choice(["a", "b"], n)),
        }
    )
    df.loc[::7, "age"] = np.nan
    y = rng.randint(0, 2, n)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
        ]
    )
    by_dtype = ColumnTransformer(
        [
            ("num", SimpleImputer(), make_column_selector(dtype_include=np.number)),
            ("cat", OneHotEncoder(), make_column_selector(dtype_include=object)),
            ("kind", OneHotEncoder(), make_column_selector(pattern="^pl")),
        ]
    )
    dense = ColumnTransformer(
        [
            ("num", SimpleImputer(), ["age", "income"]),
            ("cat", OneHotEncoder(sparse_output=False), ["city"]),
        ]
    )
    log_income = ColumnTransformer(
        [("log", FunctionTransformer(np.log1p, np.expm1), ["income"])], remainder="drop"
    )
    numeric = df[["age", "income", "plan"]]
    return {
        "ColumnTransformer+LogisticRegression": (
            Pipeline([("pre", pre), ("clf", LogisticRegression())]),
            df,
            y,
        ),
        "selectors+RandomForest": (
            make_pipeline(by_dtype, RandomForestClassifier(n_estimators=3, random_state=0)),
            df,
            y,
        ),
        "log1p+HGB": (make_pipeline(log_income, HistGradientBoostingClassifier(max_iter=5)), df, y),
        "set_output(pandas)": (
            Pipeline([("pre", dense), ("clf", LogisticRegression())]).set_output(
                transform="pandas"
            ),
            df,
            y,
        ),
        "HGB native categorical": (
            HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype"),
            numeric,
            y,
        ),
    }


def pandas_pipelines() -> dict[str, Any]:
    """The pandas cases, fitted (for benchmarks/gen_default_types.py)."""
    return {f"pandas:{k}": m.fit(X, y) for k, (m, X, y) in pandas_cases().items()}


@pytest.mark.parametrize("name", sorted(pandas_cases()))
def test_pandas_pipeline_loads(name: str, tmp_path: Path) -> None:
    model, frame, target = pandas_cases()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = model.fit(frame, target)
    expected = outputs(fitted, frame)
    loaded = roundtrip(fitted, tmp_path, TypePolicy.default())
    got = outputs(loaded, frame)
    assert set(got) == set(expected) and expected
    for method, value in expected.items():
        assert_same_output(value, got[method], f"{name}.{method}")


# ---- the measured test ------------------------------------------------------------------------

_DATA = make_data()
_CASES = {c.name: c for c in build_cases(_DATA)}


def test_known_exceptions_within_one_percent() -> None:
    tried = len(_CASES)
    assert tried >= 150, f"all_estimators() listed only {tried} estimators"
    unknown = set(KNOWN_EXCEPTIONS) - set(_CASES)
    assert not unknown, f"KNOWN_EXCEPTIONS names estimators that do not exist: {unknown}"
    assert len(KNOWN_EXCEPTIONS) <= math.floor(0.01 * tried), (
        f"{len(KNOWN_EXCEPTIONS)} known exceptions out of {tried} estimators exceeds 1%"
    )


def test_known_exceptions_have_a_way_out() -> None:
    assert set(EXTENSIONS) == set(KNOWN_EXCEPTIONS)


# Estimators the default policy should load but does not: each a finding, kept as a strict xfail
# so the suite stays green while it is open and fails (XPASS) the moment it is fixed.
FINDINGS: dict[str, str] = {}


def params_with_findings(names: Iterable[str], findings: dict[str, str]) -> list[Any]:
    """One pytest param per name, each open finding a strict xfail carrying its reason."""
    return [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=f"FINDING: {findings[name]}")]
            if name in findings
            else [],
        )
        for name in sorted(names)
    ]


def _estimator_params() -> list[Any]:
    return params_with_findings(_CASES, FINDINGS)


@pytest.mark.parametrize("name", _estimator_params())
def test_estimator_loads_under_default_policy(name: str, tmp_path: Path) -> None:
    case = _CASES[name]
    fitted = fit_case(case)
    expected = outputs(fitted, case.eval_input)
    policy = TypePolicy.default()
    if name in KNOWN_EXCEPTIONS:
        with pytest.raises(safeload.errors.UntrustedTypeError) as refused:
            roundtrip(fitted, tmp_path / "default")
        extra = {n.replace(":", ".") for n in EXTENSIONS[name]}
        assert set(refused.value.types) == extra, KNOWN_EXCEPTIONS[name]
        policy = policy.extend(EXTENSIONS[name])
    start = time.perf_counter()
    loaded = roundtrip(fitted, tmp_path, policy)
    assert time.perf_counter() - start < 10
    assert type(loaded) is type(fitted)
    got = outputs(loaded, case.eval_input)
    assert set(got) == set(expected)
    for method, value in expected.items():
        assert_same_output(value, got[method], f"{name}.{method}")
    for protocol in OLD_PROTOCOLS:
        assert_loads_at_protocol(fitted, protocol, policy, name)


# Protocol 0 (text opcodes, copy_reg._reconstructor for plain objects) and 2 (Python 2 names,
# bytes through _codecs.encode): joblib.dump(model, protocol=...) must load too. The model is
# already fitted here, so each costs a dump, a scan and an unpickling (tens of ms in all).
OLD_PROTOCOLS = (0, 2)


def assert_loads_at_protocol(fitted: Any, protocol: int, policy: TypePolicy, name: str) -> None:
    """Both walls accept the protocol's bytes and build what plain joblib.load builds."""
    handle = io.BytesIO()
    joblib.dump(fitted, handle, protocol=protocol)
    data = handle.getvalue()
    report = safeload.scan_bytes(data, policy=policy)
    assert report.safe, (protocol, report.to_dict())
    loaded = unpickle_verified(bytearray(data), policy)
    validate_model(loaded)
    assert_same_state(loaded, joblib.load(io.BytesIO(data)), f"{name}@{protocol}", set())
