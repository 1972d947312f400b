"""What a new user trips over when saving, refused at save with the fix in the message.

An unfitted model (``search.estimator`` instead of ``search.best_estimator_``), a name/version
that its Store path contradicts, a failed save leaving empty folders, and an untrusted-type
refusal that spoke of loading a staging file: each is caught at save, with real models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, Normalizer, StandardScaler

import safeload
from safeload.errors import OperationalError, SafeloadError, untrusted_types_message
from safeload.saving import pack_model_file, sign_directory

Data = tuple[np.ndarray, np.ndarray]


@pytest.fixture
def ring(key: safeload.SigningKey) -> safeload.Keyring:
    return safeload.Keyring.of([key])


class Doubler(TransformerMixin, BaseEstimator):
    """A user's own transformer: fitted, but not in the default policy."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X) * 2.0


class FolderFiller(Doubler):
    """Pickling it drops a file next to the target: another writer sharing the parent folder."""

    spot: str = ""

    def __getstate__(self) -> dict[str, Any]:
        Path(self.spot).write_text("someone else's file")
        return dict(self.__dict__)


def _search(X: np.ndarray, y: np.ndarray) -> GridSearchCV:
    return GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2).fit(X, y)


def _nothing_under(root: Path) -> bool:
    return not root.exists()


# --- 1. unfitted models ---------------------------------------------------------------------


def _refused_unfitted(model: Any, target: Path, key: safeload.SigningKey, **kw: Any) -> str:
    with pytest.raises(safeload.UnfittedModelError) as caught:
        safeload.save(model, target, key=key, **kw)
    assert isinstance(caught.value, OperationalError)
    assert not target.exists()
    return str(caught.value)


@pytest.mark.parametrize("with_sample", [False, True])
def test_unfitted_model_is_refused_before_the_sample(
    tmp_path: Path, key: safeload.SigningKey, iris: Data, with_sample: bool
) -> None:
    sample = {"sample": iris[0][:3]} if with_sample else {}
    message = _refused_unfitted(
        LogisticRegression(), tmp_path / "models" / "churn" / "1.0.0", key, **sample
    )
    assert message == (
        "LogisticRegression is not fitted: call fit before saving. Saving a search's "
        "`.estimator`? The fitted model is `.best_estimator_`."
    )
    assert _nothing_under(tmp_path / "models")


@pytest.mark.parametrize("with_sample", [False, True])
def test_a_search_estimator_template_is_refused(
    tmp_path: Path, key: safeload.SigningKey, iris: Data, with_sample: bool
) -> None:
    X, y = iris
    search = _search(X, y)
    sample = {"sample": X[:3]} if with_sample else {}
    message = _refused_unfitted(search.estimator, tmp_path / "m" / "1", key, **sample)
    assert "`.best_estimator_`" in message
    # The advice works: the fitted model saves.
    safeload.save(search.best_estimator_, tmp_path / "m" / "1", key=key, **sample)


def test_unfitted_pipeline_names_its_first_unfitted_step(
    tmp_path: Path, key: safeload.SigningKey, iris: Data
) -> None:
    with pytest.raises(safeload.UnfittedModelError) as caught:
        safeload.save(
            make_pipeline(StandardScaler(), LogisticRegression()),
            tmp_path / "p" / "1",
            key=key,
            sample=iris[0][:2],
        )
    assert caught.value.steps == ("standardscaler",)
    assert caught.value.type_name == "StandardScaler"
    assert str(caught.value) == (
        "Pipeline step 'standardscaler' (StandardScaler) is not fitted: call fit on the whole "
        "pipeline before saving (pipeline.fit(X, y) fits every step)."
    )


def test_pipeline_with_fitted_last_step_but_unfitted_first_is_refused(
    tmp_path: Path, key: safeload.SigningKey, iris: Data
) -> None:
    # scikit-learn's own check_is_fitted(pipeline) looks at the last step only: it passes.
    X, y = iris
    clf = LogisticRegression(max_iter=300).fit(X, y)
    model = Pipeline([("scale", StandardScaler()), ("clf", clf)])
    with pytest.raises(safeload.UnfittedModelError) as caught:
        safeload.save(model, tmp_path / "p" / "1", key=key)
    assert caught.value.steps == ("scale",)
    # Nested: the unfitted step inside an inner pipeline is found and named by its path.
    inner = Pipeline([("norm", Normalizer()), ("scale", StandardScaler())])
    nested = Pipeline([("prep", inner), ("clf", clf)])
    with pytest.raises(safeload.UnfittedModelError) as caught:
        safeload.save(nested, tmp_path / "n" / "1", key=key)
    assert caught.value.steps == ("prep", "scale")
    assert "'prep' (Pipeline) > 'scale' (StandardScaler)" in str(caught.value)


@pytest.mark.parametrize("search_class", [GridSearchCV, RandomizedSearchCV])
def test_unfitted_search_itself_says_call_fit(
    tmp_path: Path, key: safeload.SigningKey, search_class: Any
) -> None:
    search = search_class(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2)
    message = _refused_unfitted(search, tmp_path / "s" / "1", key)
    assert message == (
        f"{search_class.__name__} is not fitted: call fit before saving, then save the fitted "
        "search or its `.best_estimator_`."
    )


def _fitted_models(X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    return {
        "search": _search(X, y),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y),
        "knn": KNeighborsClassifier().fit(X, y),
        "log1p": FunctionTransformer(np.log1p).fit(X),
        "stateless_unfitted": FunctionTransformer(),
        "normalizer_unfitted": Normalizer(),  # requires_fit=False: stateless
        "passthrough": Pipeline(
            [("skip", "passthrough"), ("none", None), ("clf", LogisticRegression(max_iter=300))]
        ).fit(X, y),
        "nested": make_pipeline(
            make_pipeline(StandardScaler(), FunctionTransformer()),
            LogisticRegression(max_iter=300),
        ).fit(X, y),
    }


def test_fitted_and_stateless_models_still_save_and_load(
    tmp_path: Path, key: safeload.SigningKey, ring: safeload.Keyring, iris: Data
) -> None:
    X, y = iris
    for label, model in _fitted_models(X, y).items():
        out = safeload.save(model, tmp_path / label / "1.0.0", key=key, sample=X[:4])
        loaded = safeload.load(out, trusted=ring)
        method = "predict" if hasattr(model, "predict") else "transform"
        np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(model, method)(X))


def test_signing_a_file_holding_an_unfitted_model_is_refused(
    tmp_path: Path, key: safeload.SigningKey, iris: Data
) -> None:
    src = tmp_path / "template.joblib"
    joblib.dump(_search(*iris).estimator, src)
    target = tmp_path / "models" / "churn" / "1.0.0"
    with pytest.raises(safeload.UnfittedModelError) as caught:
        pack_model_file(src, target, key=key)
    assert str(caught.value).startswith(f"The model in {src}: LogisticRegression is not fitted")
    assert "before dumping it with joblib" in str(caught.value)
    assert _nothing_under(tmp_path / "models")


def test_signing_a_directory_holding_an_unfitted_model_is_refused(
    tmp_path: Path, key: safeload.SigningKey, iris: Data
) -> None:
    folder = tmp_path / "unsigned"
    folder.mkdir()
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression()), folder / "model.joblib")
    meta = safeload.save(
        LogisticRegression(max_iter=300).fit(*iris), tmp_path / "donor" / "1", key=key
    )
    (folder / "safeload.json").write_bytes((meta / "safeload.json").read_bytes())
    with pytest.raises(safeload.UnfittedModelError):
        sign_directory(folder, key=key)
    assert not (folder / "model.sig").exists()


def test_signing_a_fitted_file_still_works(
    tmp_path: Path, key: safeload.SigningKey, ring: safeload.Keyring, iris: Data
) -> None:
    X, y = iris
    src = tmp_path / "fitted.joblib"
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    joblib.dump(model, src)
    out = pack_model_file(src, tmp_path / "churn" / "1.0.0", key=key)
    np.testing.assert_array_equal(safeload.load(out, trusted=ring).predict(X), model.predict(X))


def test_converting_an_unfitted_model_is_refused(
    tmp_path: Path, key: safeload.SigningKey, iris: Data
) -> None:
    src = tmp_path / "template.joblib"
    joblib.dump(LogisticRegression(), src)
    with pytest.raises(safeload.UnfittedModelError, match="LogisticRegression is not fitted"):
        safeload.convert(src, tmp_path / "models" / "churn" / "1.0.0", key=key, sample=iris[0][:3])
    assert _nothing_under(tmp_path / "models")


# --- 2. a name/version the Store path contradicts -------------------------------------------


def test_store_path_with_another_name_and_version_is_refused(
    tmp_path: Path, key: safeload.SigningKey, pipeline: Pipeline
) -> None:
    target = tmp_path / "models" / "mm" / "1.0.0"
    with pytest.raises(safeload.StoreLayoutError) as caught:
        safeload.save(pipeline, target, key=key, name="iris", version="9.9")
    assert isinstance(caught.value, OperationalError)
    message = str(caught.value)
    assert f"Save to {tmp_path / 'models' / 'iris' / '9.9'}" in message
    assert "pass name='mm', version='1.0.0'" in message
    assert "name='iris', version='9.9'" in message
    assert _nothing_under(tmp_path / "models")


@pytest.mark.parametrize(
    ("name", "version"), [("iris", None), (None, "1.0"), ("mm", "2.0.0"), ("other", "1.0.0")]
)
def test_either_half_of_the_identity_must_match(
    tmp_path: Path,
    key: safeload.SigningKey,
    pipeline: Pipeline,
    name: str | None,
    version: str | None,
) -> None:
    # "1.0" equals "1.0.0" as a PEP 440 version, but the Store compares the exact strings.
    with pytest.raises(safeload.StoreLayoutError):
        safeload.save(pipeline, tmp_path / "mm" / "1.0.0", key=key, name=name, version=version)


def test_matching_or_default_identities_save_and_load_from_the_store(
    tmp_path: Path, key: safeload.SigningKey, ring: safeload.Keyring, pipeline: Pipeline
) -> None:
    store = safeload.Store(tmp_path / "models")
    safeload.save(pipeline, tmp_path / "models" / "mm" / "1.0.0", key=key)
    safeload.save(pipeline, tmp_path / "models" / "mm" / "1.1.0", key=key, name="mm")
    safeload.save(
        pipeline, tmp_path / "models" / "mm" / "1.2.0", key=key, name="mm", version="1.2.0"
    )
    store.save(pipeline, "mm", "2.0.0", key=key)
    for version in store.versions("mm"):
        assert store.load_artifact("mm", version, trusted=ring).metadata["version"] == version


def test_a_folder_that_is_not_a_version_keeps_free_naming(
    tmp_path: Path, key: safeload.SigningKey, ring: safeload.Keyring, pipeline: Pipeline
) -> None:
    out = safeload.save(pipeline, tmp_path / "exports" / "candidate", key=key, name="churn")
    assert safeload.load_artifact(out, trusted=ring).metadata["name"] == "churn"


def test_signing_and_converting_check_the_layout_too(
    tmp_path: Path, key: safeload.SigningKey, pipeline: Pipeline
) -> None:
    src = tmp_path / "p.joblib"
    joblib.dump(pipeline, src)
    with pytest.raises(safeload.StoreLayoutError):
        pack_model_file(src, tmp_path / "models" / "mm" / "1.0.0", key=key, name="iris")
    with pytest.raises(safeload.StoreLayoutError):
        safeload.convert(src, tmp_path / "models" / "mm" / "1.0.0", key=key, version="2")
    assert _nothing_under(tmp_path / "models")


# --- 3. a failed save leaves no folders behind ----------------------------------------------


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_failures_inside_the_save_leave_no_folders(
    tmp_path: Path, key: safeload.SigningKey, iris: Data
) -> None:
    X, y = iris
    untrusted = make_pipeline(Doubler(), LogisticRegression(max_iter=300)).fit(X, y)
    unpicklable = FunctionTransformer(lambda v: v).fit(X)  # a lambda: pickling fails
    target = tmp_path / "models" / "churn" / "1.0.0"
    for model, error in [(untrusted, safeload.UntrustedTypeError), (unpicklable, SafeloadError)]:
        for fmt in ("joblib", "skops"):
            with pytest.raises(error):
                safeload.save(model, target, key=key, format=fmt)
            assert _listing(tmp_path) == [], (type(model).__name__, fmt)
    with pytest.raises(safeload.UnfittedModelError):
        safeload.save(LogisticRegression(), target, key=key)
    with pytest.raises(OperationalError):  # a sample the model cannot take
        safeload.save(untrusted, target, key=key, sample=np.zeros((2, 7)))
    assert _listing(tmp_path) == []


def test_failed_save_keeps_folders_that_existed_or_are_not_empty(
    tmp_path: Path, key: safeload.SigningKey, pipeline: Pipeline, iris: Data
) -> None:
    X, y = iris
    models = tmp_path / "models"
    models.mkdir()  # pre-existing and empty: never removed
    untrusted = make_pipeline(Doubler(), LogisticRegression(max_iter=300)).fit(X, y)
    with pytest.raises(safeload.UntrustedTypeError):
        safeload.save(untrusted, models / "churn" / "1.0.0", key=key)
    assert _listing(tmp_path) == ["models"]

    # A version that exists: refused, nothing around it touched.
    safeload.save(pipeline, models / "iris" / "1.0.0", key=key)
    before = _listing(tmp_path)
    with pytest.raises(safeload.ArtifactExistsError):
        safeload.save(pipeline, models / "iris" / "1.0.0", key=key)
    assert _listing(tmp_path) == before

    # A folder this save created but someone else wrote into meanwhile: kept, and its parent.
    filler = FolderFiller().fit(X)
    filler.spot = str(tmp_path / "new" / "churn" / "notes.txt")
    with pytest.raises(safeload.UntrustedTypeError):
        safeload.save(filler, tmp_path / "new" / "churn" / "1.0.0", key=key)
    assert (tmp_path / "new" / "churn" / "notes.txt").exists()
    assert not any(".partial" in p for p in _listing(tmp_path))


def test_failed_pack_leaves_no_folders(tmp_path: Path, key: safeload.SigningKey) -> None:
    src = tmp_path / "in" / "model.joblib"
    src.parent.mkdir()
    joblib.dump(Doubler().fit(np.ones((2, 2))), src)
    with pytest.raises(safeload.UntrustedTypeError):
        pack_model_file(src, tmp_path / "models" / "churn" / "1.0.0", key=key)
    assert _listing(tmp_path) == ["in", "in/model.joblib"]


# --- 4. the untrusted-types refusal at save time speaks of saving ---------------------------


@pytest.mark.parametrize("fmt", ["joblib", "skops"])
def test_save_time_untrusted_message_names_the_target_and_the_fix(
    tmp_path: Path, key: safeload.SigningKey, ring: safeload.Keyring, iris: Data, fmt: str
) -> None:
    X, y = iris
    model = make_pipeline(Doubler(), LogisticRegression(max_iter=300)).fit(X, y)
    target = tmp_path / "models" / "churn" / "1.0.0"
    with pytest.raises(safeload.UntrustedTypeError) as caught:
        safeload.save(model, target, key=key, format=fmt)
    error = caught.value
    message = str(error)
    assert ".partial" not in message and "do not load" not in message
    assert "Nothing was deserialized" not in message
    name = f"{__name__}.Doubler"
    assert message == (
        f"The model being saved to {target} names 1 type(s) outside the trusted-type policy: "
        f"{name}. Nothing was saved. If you trust these exact names, pass "
        f"policy=safeload.TypePolicy.default().extend([{name!r}]) to save, and the same "
        "policy when loading."
    )
    assert error.types == (name,) and error.saving
    assert error.where == f"The model being saved to {target}"
    assert error.__suppress_context__  # the staging-path refusal is not chained into view
    # The advice given works, at save and at load.
    policy = safeload.TypePolicy.default().extend([name])
    out = safeload.save(model, target, key=key, format=fmt, policy=policy)
    loaded = safeload.load(out, trusted=ring, policy=policy)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_the_cli_can_re_render_the_refusal_with_its_own_advice(
    tmp_path: Path, key: safeload.SigningKey, iris: Data
) -> None:
    with pytest.raises(safeload.UntrustedTypeError) as caught:
        safeload.save(Doubler().fit(iris[0]), tmp_path / "d" / "1", key=key)
    error = caught.value
    cli = "pass --allow MODULE:NAME for each name you trust, or --policy FILE"
    again = untrusted_types_message(error.types, error.where, saving=error.saving, how_to_trust=cli)
    assert again.endswith(f"Nothing was saved. If you trust these exact names, {cli}.")
    assert again.startswith(f"{error.where} names 1 type(s)")


def test_load_time_message_is_unchanged(
    tmp_path: Path, key: safeload.SigningKey, ring: safeload.Keyring, iris: Data
) -> None:
    assert untrusted_types_message(["os.system"], "model.joblib") == (
        "model.joblib names 1 type(s) outside the trusted-type policy: os.system. Nothing was "
        "deserialized. If you trust these exact names, add them to the policy "
        "(safeload.TypePolicy.default().extend([...])); otherwise do not load this file."
    )
    name = f"{__name__}.Doubler"
    policy = safeload.TypePolicy.default().extend([name])
    out = safeload.save(Doubler().fit(iris[0]), tmp_path / "d" / "1", key=key, policy=policy)
    with pytest.raises(safeload.UntrustedTypeError) as caught:
        safeload.load(out, trusted=ring)
    assert not caught.value.saving and caught.value.types == (name,)
    assert caught.value.where == str(out)
    assert "Nothing was deserialized" in str(caught.value)


def test_a_lambda_is_not_advised_into_the_policy(
    tmp_path: Path, key: safeload.SigningKey, iris: Data
) -> None:
    # skops writes a lambda by its name; joblib cannot write it at all. Either way, say why.
    model = FunctionTransformer(lambda v: v).fit(iris[0])
    with pytest.raises(safeload.UntrustedTypeError) as caught:
        safeload.save(model, tmp_path / "f" / "1", key=key, format="skops")
    assert str(caught.value).endswith(
        f"{__name__}.<lambda> cannot be imported by name (a lambda, or a function defined "
        "inside another), so no policy makes it loadable: define it at module level in an "
        "importable module."
    )
    with pytest.raises(OperationalError, match="joblib could not serialize the model"):
        safeload.save(model, tmp_path / "f" / "1", key=key)


def test_many_untrusted_names_stay_bounded() -> None:
    names = [f"m{i}.{'C' * 300}" for i in range(50)]
    message = untrusted_types_message(names, "The model being saved to x", saving=True)
    assert len(message) < 12_000 and "and 30 more" in message and ", ...])" in message
