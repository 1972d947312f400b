"""Stored callables: a name trusted to be stored is not thereby trusted to be called.

The walls let a file store trusted references (``numpy.random.SeedSequence``, ``numpy.clip``);
scikit-learn then calls some of them at ``transform``/``predict`` with arguments the file chose.
Each attack is shown to pass the walls and to cost (or write a file) when used, then to be
refused by ``validate_model`` and by a signed ``safeload.load``. Costly predictions run in a
subprocess under a timeout or a memory limit.
"""

from __future__ import annotations

import functools
import importlib
import io
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io
from sklearn.cluster import BisectingKMeans, FeatureAgglomeration, KMeans
from sklearn.cluster._kmeans import _kmeans_single_elkan, _kmeans_single_lloyd
from sklearn.compose import TransformedTargetRegressor
from sklearn.decomposition import KernelPCA
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from sklearn.svm import SVC

import safeload
from safeload import callsafe
from safeload._default_types import DEFAULT_TYPES
from safeload._unpickle import unpickle_verified
from safeload.errors import MalformedArtifactError
from safeload.options import LoadOptions
from safeload.policy import TypePolicy
from safeload.validation import validate_model
from safeload.validation.callables import stored_callable
from tests.helpers import edit_skops_schema
from tests.test_policy import KNOWN_DANGEROUS

rng = np.random.RandomState(0)
X = rng.uniform(0.5, 4.0, size=(40, 3))
X_INT = rng.randint(1, 5, size=(4, 3))
y = np.arange(40) % 2
DOCS = ["red cat", "blue dog", "red dog", "green fish"] * 5


def my_metric(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).sum())


def my_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(a @ b.T)


def refused(obj: object, *fragments: str, **kwargs: Any) -> str:
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(obj, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def restricted_load(obj: object, policy: TypePolicy | None = None) -> Any:
    """Through both walls (scan is implied by the unpickler's own policy checks)."""
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return unpickle_verified(bytearray(buffer.getvalue()), policy or TypePolicy.default())


def signed(tmp_path: Path, model: object, policy: TypePolicy | None = None) -> tuple[Path, Any]:
    key = safeload.generate_key()
    target = safeload.save(
        model, tmp_path / "m" / "1", key=key, name="m", version="1", policy=policy
    )
    return target, safeload.Keyring.of([key])


def _seed_sequence_model() -> FunctionTransformer:
    from numpy.random import SeedSequence

    return FunctionTransformer(func=SeedSequence, kw_args={"pool_size": 10**6}).fit(X_INT)


def _run(code: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---- SeedSequence: loads cleanly, hangs transform ----------------------------------------------


def test_seed_sequence_attack_passes_the_walls_and_hangs_transform(tmp_path: Path) -> None:
    model = _seed_sequence_model()
    loaded = restricted_load(model)  # both walls: every name is a trusted reference
    assert loaded.func is np.random.SeedSequence
    path = tmp_path / "attack.joblib"
    joblib.dump(loaded, path)
    code = f"""
        import joblib, numpy as np
        model = joblib.load({str(path)!r})
        model.transform(np.array({X_INT.tolist()!r}))
        print("returned")
    """
    with pytest.raises(subprocess.TimeoutExpired):
        _run(code, timeout=15)


def test_seed_sequence_attack_is_refused_by_validation() -> None:
    message = refused(restricted_load(_seed_sequence_model()), "model.func", "SeedSequence")
    assert "not on the list of functions safe to call" in message
    assert "safe_to_call" in message  # says how to extend


def test_seed_sequence_attack_is_refused_by_a_signed_load(tmp_path: Path) -> None:
    target, keys = signed(tmp_path, make_pipeline(_seed_sequence_model()))
    with pytest.raises(MalformedArtifactError, match=r"steps\[0\]\[1\]\.func"):
        safeload.load(target, trusted=keys)


# ---- a trusted callable that writes a file when called -----------------------------------------


def test_partial_that_writes_a_file_is_refused(tmp_path: Path) -> None:
    """``partial(numpy.save, path)`` would write a file at transform. Even with
    ``functools.partial`` extended by hand and ``numpy.save`` trusted as a stored reference, the
    walls refuse it (partial's call rule binds only ``check_array``, in every policy), and
    validation refuses the object on its own."""
    marker = tmp_path / "PWNED.npy"
    model = FunctionTransformer(func=functools.partial(np.save, str(marker))).fit(X)
    policy = (
        TypePolicy.default()
        .extend(["functools:partial"])
        .extend(["numpy:save"], callable=False, unsafe=True)
    )
    with pytest.raises(MalformedArtifactError, match=r"functools\.partial with other than"):
        restricted_load(model, policy)
    refused(model, "model.func", "numpy.save", "functools.partial")
    with pytest.raises(MalformedArtifactError, match=r"functools\.partial"):
        signed(tmp_path, model, policy)
    assert not marker.exists()


def _default_function_like_references() -> list[str]:
    found = []
    for name in DEFAULT_TYPES:
        module, qualname = name.split(":")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if stored_callable(obj):
            found.append(name)
    return found


@pytest.mark.parametrize("name", _default_function_like_references())
def test_no_default_reference_is_called_unless_on_the_list(name: str) -> None:
    """Every function or class of the default policy, stored as ``func``: refused unless it is
    on SAFE_TO_CALL, and those that are do elementwise math or reductions (no I/O)."""
    obj = callsafe.resolve(name)
    model = FunctionTransformer(func=obj)
    safe = callsafe.safe_call_problem(obj, {}) is None
    if safe:
        # on the reviewed list under its own exact name: elementwise math and reductions, and
        # check_array (HistGradientBoosting's partial: it converts its input, within the keyword
        # rules of its entry; a default name only as a reference the stream never calls)
        assert name in callsafe.SAFE_TO_CALL, name
        if name != "sklearn.utils.validation:check_array":
            assert name not in KNOWN_DANGEROUS, name
            assert name.startswith("numpy:"), name
        validate_model(model)
    else:
        refused(model, "model.func", "not on the list")


# ---- keyword-argument bombs on an allowed function ---------------------------------------------


def test_clip_with_array_bounds_costs_memory_and_is_refused(tmp_path: Path) -> None:
    bound = np.zeros((100_000, 1, 1))  # 800 kB in the file, times the caller's rows x columns
    model = FunctionTransformer(np.clip, kw_args={"a_min": bound, "a_max": None}).fit(X)
    loaded = restricted_load(model)
    path = tmp_path / "bomb.joblib"
    joblib.dump(loaded, path)
    code = f"""
        import resource, joblib, numpy as np
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        model = joblib.load({str(path)!r})
        try:
            model.transform(np.ones((1000, 100)))
        except MemoryError:
            print("MemoryError")
    """
    result = _run(code, timeout=60)
    assert "MemoryError" in result.stdout, result.stdout + result.stderr
    refused(loaded, "model.func", "numpy.clip", "a_min", "not a real number")


@pytest.mark.parametrize(
    ("func", "kwargs", "fragment"),
    [
        (np.round, {"decimals": 10**6}, "outside [-30, 30]"),
        (np.round, {"decimals": 2.5}, "not an integer"),
        (np.log1p, {"out": None}, "no keyword argument 'out'"),
        (np.mean, {"axis": 1, "dtype": np.float16}, "no keyword argument 'dtype'"),
        (np.mean, {"axis": 10**9}, "not one of"),
        (np.round, {"decimals": np.log}, "not an integer"),  # a callable nested in kw_args
    ],
)
def test_keyword_arguments_are_held_to_the_entry_rules(
    func: Any, kwargs: dict[str, Any], fragment: str
) -> None:
    refused(FunctionTransformer(func, kw_args=kwargs), "model.func", fragment)


def test_keyword_arguments_of_inverse_func() -> None:
    model = FunctionTransformer(np.log1p, np.round, inv_kw_args={"decimals": 99})
    refused(model, "model.inverse_func", "outside [-30, 30]")
    validate_model(FunctionTransformer(np.log1p, np.round, inv_kw_args={"decimals": 3}))


def test_kw_args_must_be_a_dict() -> None:
    model = FunctionTransformer(np.round)
    model.kw_args = [("decimals", 3)]  # type: ignore[assignment]
    refused(model, "model.func", "not a dict")


# ---- other places scikit-learn calls from ------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        (KNeighborsClassifier(metric=my_metric, algorithm="brute"), "model.metric"),
        (KNeighborsClassifier(metric=np.log1p, algorithm="brute"), "model.metric"),
        (SVC(kernel=my_kernel), "model.kernel"),
        (KernelPCA(kernel=my_kernel), "model.kernel"),
        (CountVectorizer(analyzer=str.split), "model.analyzer"),
        (CountVectorizer(tokenizer=str.split, token_pattern=None), "model.tokenizer"),
        (TfidfVectorizer(preprocessor=str.lower), "model.preprocessor"),
        (CountVectorizer(strip_accents=str.upper), "model.strip_accents"),
        (FunctionTransformer(np.log1p, feature_names_out=my_metric), "model.feature_names_out"),
        (KNeighborsClassifier(weights=my_metric), "model.weights"),
        (TransformedTargetRegressor(LinearRegression(), func=np.random.SeedSequence), "func"),
        (FeatureAgglomeration(pooling_func=np.random.SeedSequence), "model.pooling_func"),
        (FunctionTransformer(func=np.float64), "model.func"),  # a class, called as a function
        (SelectKBest(score_func=np.random.SeedSequence), "model.score_func"),
        (OneHotEncoder(dtype=np.random.SeedSequence), "model.dtype"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_callables_where_sklearn_would_call_them_are_refused(model: Any, fragment: str) -> None:
    refused(model, fragment)


def test_fitted_callable_metric_is_refused_with_its_fitted_copy() -> None:
    knn = KNeighborsClassifier(metric=my_metric, algorithm="brute", n_neighbors=3).fit(X, y)
    knn.metric = "euclidean"  # only the fitted effective_metric_ still holds the function
    refused(knn, "model.effective_metric_", "my_metric")


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        (FunctionTransformer(functools.partial(np.round, decimals=10**6)), "outside [-30, 30]"),
        (FunctionTransformer(functools.partial(np.log1p, X)), "positional arguments"),
        (
            FunctionTransformer(functools.partial(np.random.SeedSequence, pool_size=10**6)),
            "SeedSequence",
        ),
        (
            FunctionTransformer(functools.partial(np.round, decimals=3), kw_args={"decimals": 99}),
            "outside [-30, 30]",
        ),
        (
            KNeighborsClassifier(metric="minkowski", metric_params={"f": np.log1p}),
            "model.metric_params",
        ),
        (
            FunctionTransformer(np.log1p, kw_args={"nested": [{"f": np.log}]}),
            "no keyword argument 'nested'",
        ),
    ],
    ids=["partial-kw", "partial-positional", "partial-seed", "partial-merged", "params", "nested"],
)
def test_partials_and_nested_callables(model: Any, fragment: str) -> None:
    refused(model, fragment)


def test_nested_callable_in_a_plain_field_is_refused() -> None:
    km = KMeans(n_clusters=2, n_init=1, random_state=0).fit(X)
    km.extra_ = {"steps": [("f", np.random.SeedSequence)]}
    refused(km, "model.extra_", "SeedSequence")


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (SVC().fit(X, y), "kernel", "bogus"),
        (KNeighborsClassifier(n_neighbors=3).fit(X, y), "metric", "bogus"),
        (KNeighborsClassifier(n_neighbors=3).fit(X, y), "effective_metric_", "bogus"),
        (CountVectorizer().fit(DOCS), "analyzer", "bogus"),
    ],
)
def test_dispatched_names_must_be_sklearn_own(model: Any, field: str, value: str) -> None:
    validate_model(model)
    setattr(model, field, value)
    refused(model, f"model.{field}", "not a name")


def test_kmeans_routine_is_a_reference_only_in_bisecting_kmeans() -> None:
    km = KMeans(n_clusters=2, n_init=1, random_state=0).fit(X)
    km._kmeans_single = _kmeans_single_lloyd
    refused(km, "model._kmeans_single", "_kmeans_single_lloyd")
    bkm = BisectingKMeans(n_clusters=3, random_state=0).fit(X)
    bkm._kmeans_single = np.log1p
    refused(bkm, "model._kmeans_single", "log1p")
    bkm._kmeans_single = _kmeans_single_elkan
    validate_model(bkm)


# ---- the caller's extension ----------------------------------------------------------------------


def test_the_caller_can_vouch_for_a_function(tmp_path: Path) -> None:
    model = FunctionTransformer(func=my_metric, kw_args={"b": 1.0})
    name = f"{__name__}:my_metric"
    refused(model, "model.func", "my_metric")
    validate_model(model, safe_to_call=[name])
    knn = KNeighborsClassifier(metric=my_metric, algorithm="brute", n_neighbors=3).fit(X, y)
    validate_model(knn, safe_to_call=[name])
    refused(knn, "model.metric", safe_to_call=["numpy:log1p"])  # exact, per function
    # Through the gate: the name must be in the policy (stored) and vouched for (called).
    policy = TypePolicy.default().extend([name], callable=False)
    target, keys = signed(tmp_path, knn, policy)
    with pytest.raises(MalformedArtifactError, match="metric"):
        safeload.load(target, trusted=keys, policy=policy)
    options = LoadOptions(policy=policy, safe_to_call=[name])
    loaded = safeload.load(target, trusted=keys, options=options)
    np.testing.assert_array_equal(loaded.predict(X), knn.predict(X))
    # An unsigned file takes the same vouching, from its caller only.
    bare = tmp_path / "bare.joblib"
    joblib.dump(knn, bare)
    with pytest.warns(UserWarning), pytest.raises(MalformedArtifactError, match="metric"):
        safeload.load_file(bare, unsafe_allow_unsigned=True, policy=policy)
    with pytest.warns(UserWarning):
        plain = safeload.load_file(
            bare, unsafe_allow_unsigned=True, policy=policy, safe_to_call=[name]
        )
    np.testing.assert_array_equal(plain.predict(X), knn.predict(X))


def test_safe_to_call_takes_exact_names_only() -> None:
    with pytest.raises(TypeError):
        LoadOptions(safe_to_call="numpy:log1p")
    with pytest.raises(ValueError):
        LoadOptions(safe_to_call=["log1p"])
    assert LoadOptions(safe_to_call=["numpy.log1p"]).safe_to_call == ("numpy:log1p",)


def test_names_are_trusted_by_identity_not_by_their_own_claim() -> None:
    def log1p(x: Any) -> Any:  # claims numpy's name
        return x

    log1p.__module__, log1p.__qualname__ = "numpy", "log1p"
    refused(FunctionTransformer(func=log1p), "model.func", "not on the list")


# ---- legitimate models pass ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        FunctionTransformer(np.log1p, np.expm1).fit(X),
        FunctionTransformer(None).fit(X),
        FunctionTransformer(np.round, kw_args={"decimals": 2}).fit(X),
        FunctionTransformer(np.clip, kw_args={"a_min": 0.0, "a_max": 3.0}).fit(X),
        KNeighborsClassifier(n_neighbors=3, metric="manhattan").fit(X, y),
        KNeighborsClassifier(n_neighbors=3, metric="minkowski", p=3).fit(X, y),
        SVC(kernel="rbf").fit(X, y),
        TfidfVectorizer().fit(DOCS),
        OneHotEncoder(dtype=np.float32).fit(X_INT),
        SelectKBest(f_classif, k=2).fit(X, y),
        FeatureAgglomeration(n_clusters=2).fit(X),
        TransformedTargetRegressor(LinearRegression(), func=np.log1p, inverse_func=np.expm1).fit(
            X, X[:, 0]
        ),
    ],
    ids=lambda m: type(m).__name__,
)
def test_legitimate_models_pass(model: Any) -> None:
    validate_model(restricted_load(model))


def test_a_partial_of_another_safe_function_passes_validation_but_not_the_walls() -> None:
    """Validation's own rules accept ``partial(numpy.round, decimals=1)``; the walls only ever
    let a file make ``partial(check_array)``, whatever the policy."""
    model = FunctionTransformer(functools.partial(np.round, decimals=1)).fit(X)
    validate_model(model)
    with pytest.raises(MalformedArtifactError, match=r"functools\.partial with other than"):
        restricted_load(model, TypePolicy.default().extend(["functools:partial"]))


# ---- BisectingKMeans under the default policy ----------------------------------------------------


@pytest.fixture(scope="module")
def bisecting() -> BisectingKMeans:
    return BisectingKMeans(n_clusters=4, random_state=0).fit(X)


@pytest.mark.parametrize("fmt", ["joblib", "skops"])
@pytest.mark.parametrize("algorithm", ["lloyd", "elkan"])
def test_bisecting_kmeans_loads_and_predicts_like_the_original(
    tmp_path: Path, fmt: str, algorithm: str
) -> None:
    model = BisectingKMeans(n_clusters=4, random_state=0, algorithm=algorithm).fit(X)
    key = safeload.generate_key()
    target = safeload.save(model, tmp_path / "b" / "1", key=key, format=fmt, sample=X[:5])
    loaded = safeload.load(target, trusted=safeload.Keyring.of([key]))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))


@pytest.mark.parametrize("name", ["_kmeans_single_lloyd", "_kmeans_single_elkan"])
def test_skops_file_may_not_call_the_kmeans_routine(name: str) -> None:
    data = skops.io.dumps(KMeans(n_clusters=2, n_init=1).fit(X))

    def edit(schema: dict[str, Any]) -> None:
        schema["__module__"], schema["__class__"] = "sklearn.cluster._kmeans", name

    report = safeload.scan_bytes(edit_skops_schema(data, edit))
    assert report.untrusted == ()
    assert any("only as a stored reference" in p for p in report.problems), report.problems


def _copy(model: BisectingKMeans) -> BisectingKMeans:
    return restricted_load(model)  # type: ignore[no-any-return]


def _leaves(model: BisectingKMeans) -> list[Any]:
    return list(model._bisecting_tree.iter_leaves())


def _make_cycle(model: BisectingKMeans) -> None:
    leaf = _leaves(model)[0]
    leaf.left, leaf.right = model._bisecting_tree, model._bisecting_tree.right


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: setattr(m._bisecting_tree.left, "center", np.zeros(2)), "center has shape"),
        (
            lambda m: setattr(m._bisecting_tree.right, "center", np.zeros(3, np.int64)),
            "center has shape",
        ),
        (lambda m: setattr(_leaves(m)[0], "label", 7), "not labelled"),
        (lambda m: setattr(_leaves(m)[1], "label", _leaves(m)[0].label), "not labelled"),
        (lambda m: setattr(_leaves(m)[0], "label", 0.5), "not an integer"),
        (lambda m: setattr(_leaves(m)[0], "left", m._bisecting_tree), "one child"),
        (lambda m: _make_cycle(m), "already in the tree"),
        (lambda m: setattr(m._bisecting_tree, "left", "x"), "not a _BisectingTree"),
        (lambda m: setattr(m._bisecting_tree, "indices", np.arange(5)), "indices is kept"),
        (lambda m: setattr(m, "_X_mean", np.zeros(2)), "_X_mean"),
        (lambda m: setattr(m, "n_clusters", 9), "n_clusters"),
        (lambda m: setattr(m._bisecting_tree, "x" * 10**6, 1), "unexpected field"),
    ],
    ids=[
        "narrow-center",
        "int-center",
        "label-out-of-range",
        "label-twice",
        "label-float",
        "one-child",
        "cycle",
        "not-a-node",
        "indices",
        "x-mean",
        "n-clusters",
        "extra-field",
    ],
)
def test_crafted_bisecting_tree_is_refused(
    bisecting: BisectingKMeans, edit: Any, fragment: str
) -> None:
    model = _copy(bisecting)
    validate_model(model)
    edit(model)
    refused(model, "model", fragment)


def test_search_grids_keep_candidates_but_the_chosen_one_is_judged() -> None:
    from sklearn.model_selection import GridSearchCV

    grid = {"functiontransformer__func": [np.log1p, np.sqrt]}
    search = GridSearchCV(make_pipeline(FunctionTransformer(), LinearRegression()), grid, cv=2).fit(
        X, X[:, 0]
    )
    validate_model(restricted_load(search))
    search.best_estimator_.steps[0][1].func = np.random.SeedSequence
    refused(search, "best_estimator_", "SeedSequence")


def test_scipy_expit_is_safe_to_call_once_stored() -> None:
    import scipy.special

    validate_model(FunctionTransformer(scipy.special.expit, scipy.special.logit).fit(X / 5))


def test_scorer_metric_and_its_arguments() -> None:
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(
        SVC(), {"C": [1.0, 2.0]}, cv=2, scoring=make_scorer(f1_score, average="macro")
    ).fit(X, y)
    validate_model(restricted_load(search))
    search.scorer_._kwargs = {"labels": list(range(10**5))}
    refused(search, "._kwargs", "labels", "when the model is scored")
    search.scorer_._kwargs = {"average": "macro"}
    search.scorer_._score_func = np.random.SeedSequence
    refused(search, "._score_func", "SeedSequence")


# ---- splitters kept by searches ----------------------------------------------------------------


def test_repeated_splitters_keep_their_splitter_class() -> None:
    """``RepeatedKFold.cv`` is the KFold class, called by ``split`` at fit time only."""
    from sklearn.model_selection import (
        GridSearchCV,
        KFold,
        RepeatedKFold,
        RepeatedStratifiedKFold,
    )

    for splitter in (RepeatedKFold(n_splits=2, n_repeats=1), RepeatedStratifiedKFold(n_splits=2)):
        search = GridSearchCV(LinearRegression(), {"fit_intercept": [True]}, cv=splitter)
        validate_model(search.fit(X, y))
    crossed = RepeatedStratifiedKFold(n_splits=2)
    crossed.cv = KFold  # the other splitter's class: not what this one keeps
    refused(crossed, "model.cv", "KFold")
