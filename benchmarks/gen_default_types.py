"""Print candidate names for ``safeload/_default_types.py`` (for humans to review).

Fits every estimator of ``sklearn.utils.all_estimators()`` (with the recipes of
``tests/test_all_estimators.py``), plus a few common pipelines fitted on pandas DataFrames, dumps
each with joblib and records every global its stream names, and how the stream uses it: called
(by which opcode, with which arguments) or only stored. It loads each stream with safeload's
restricted unpickler, whose policy and call checks are replaced by recorders that allow
everything. Run it only on models you built yourself: it unpickles without a policy.

    python benchmarks/gen_default_types.py            # names, one per line, with their users
    python benchmarks/gen_default_types.py --diff     # only what DEFAULT_TYPES lacks or has extra
    python benchmarks/gen_default_types.py --calls    # how each name is used: call forms or ref
    python benchmarks/gen_default_types.py --calls --diff   # only where DEFAULT_CALLS disagrees

    python benchmarks/gen_default_types.py --pack lightgbm  # a pack's names (safeload/_packs.py)

``--pack NAME`` fits that library's scikit-learn estimators instead (every wrapper class, in a
Pipeline too, on a few shapes of target), and prints the names their streams use beyond the
default policy, with how each is used: the candidates of that pack in ``safeload/_packs.py``.

``--calls`` is how ``DEFAULT_CALLS`` was measured: a name any stream calls must be callable
(and its rule must admit every form seen); a name no stream calls should be a reference.

The committed list is static and reviewed: this script suggests, it never writes the file.
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import joblib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safeload._default_types import CALL_RULES, DEFAULT_CALLS, DEFAULT_TYPES  # noqa: E402
from safeload._unpickle import _RestrictedUnpickler  # noqa: E402
from tests import test_all_estimators as recipes  # noqa: E402

Name = tuple[str, str]


class AllowAll:
    """Duck-typed policy that trusts every global, and lets the stream call it freely."""

    def allows(self, module: str, qualname: str) -> bool:
        return True

    def call_rule(self, module: str, qualname: str) -> str:
        return "any"


class Recorder(_RestrictedUnpickler):  # type: ignore[misc]
    """The restricted unpickler, noting every global it resolves and every call it makes."""

    def __init__(self, buffer: memoryview, start: int = 0, log: Recorder | None = None) -> None:
        super().__init__(buffer, AllowAll(), start)  # type: ignore[arg-type]
        self.seen: set[Name] = set() if log is None else log.seen
        self.calls: dict[Name, set[str]] = defaultdict(set) if log is None else log.calls
        self._log = self if log is None else log

    def find_class(self, module: str, name: str) -> Any:
        self.seen.add((module, name))
        return super().find_class(module, name)

    def _summary(self, value: Any, depth: int = 0) -> str:
        names = self._names(value)
        if names:
            return "/".join(sorted(f"{m}:{n}" for m, n in names))
        if isinstance(value, tuple) and depth < 2:
            return "(" + ", ".join(self._summary(v, depth + 1) for v in value) + ")"
        if isinstance(value, (int, float, bool, str, bytes, type(None))):
            return type(value).__name__
        return type(value).__name__

    def _check_call(self, how: str, func: object, args: object, kwargs: object) -> str:
        shown = self._summary(args) if isinstance(args, tuple) else type(args).__name__
        rule = "any"
        for name in self._names(func):
            self.calls[name].add(f"{how}{shown}" + (" +kwargs" if kwargs else ""))
            rule = CALL_RULES.get(f"{name[0]}:{name[1]}", rule)
        return rule  # the unpickler keeps its bookkeeping (fresh dtypes) by rule

    def _read_array(self, wrapper: Any) -> Any:
        if np.dtype(wrapper.dtype).hasobject:  # the nested pickle: record it too
            handle = self.file_handle
            inner = Recorder(self._buffer, handle.tell(), self._log)
            array = inner.load()
            handle.seek(inner.file_handle.tell())
            return array
        return super()._read_array(wrapper)


def record(obj: Any, calls: dict[Name, set[str]] | None = None) -> set[Name]:
    """The globals obj's joblib stream names (object arrays included); notes calls in ``calls``."""
    handle = io.BytesIO()
    joblib.dump(obj, handle)
    recorder = Recorder(memoryview(handle.getvalue()))
    recorder.load()
    if calls is not None:
        for name, forms in recorder.calls.items():
            calls.setdefault(name, set()).update(forms)
    return recorder.seen


def probes() -> dict[str, Any]:
    """Configurations the per-class recipes miss: every loss, metric, kernel, scorer, splitter."""
    import scipy.sparse as sp
    from sklearn import ensemble, gaussian_process, linear_model, model_selection, neighbors
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.feature_selection import SelectKBest, chi2, f_regression, mutual_info_classif
    from sklearn.gaussian_process import kernels
    from sklearn.metrics import get_scorer, get_scorer_names
    from sklearn.svm import SVC, SVR

    d = recipes.make_data()
    X, yc, yr, yb = d.X, d.y_cls, d.y_reg, d.y_bin
    out: dict[str, Any] = {}
    for loss in [
        "hinge",
        "log_loss",
        "modified_huber",
        "squared_hinge",
        "perceptron",
        "squared_error",
        "huber",
        "epsilon_insensitive",
        "squared_epsilon_insensitive",
    ]:
        est = linear_model.SGDClassifier(loss=loss, max_iter=5, random_state=0)
        out[f"SGDClassifier(loss={loss})"] = est.fit(X, yc)
    for loss in ["squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"]:
        est = linear_model.SGDRegressor(loss=loss, max_iter=5, random_state=0)
        out[f"SGDRegressor(loss={loss})"] = est.fit(X, yr)
    for loss in ["squared_error", "absolute_error", "gamma", "poisson", "quantile"]:
        kw = {"quantile": 0.3} if loss == "quantile" else {}
        est = ensemble.HistGradientBoostingRegressor(loss=loss, max_iter=3, **kw)
        out[f"HGBR(loss={loss})"] = est.fit(X, np.abs(yr) + 1)
    out["HGBC(binary)"] = ensemble.HistGradientBoostingClassifier(max_iter=3).fit(X, yb)
    out["HGBC(categorical mask)"] = ensemble.HistGradientBoostingClassifier(
        max_iter=3, categorical_features=[True, False, False, False]
    ).fit(d.X_int, yb)
    for loss in ["squared_error", "absolute_error", "huber", "quantile"]:
        est = ensemble.GradientBoostingRegressor(loss=loss, n_estimators=3, random_state=0)
        out[f"GBR(loss={loss})"] = est.fit(X, yr)
    for loss in ["log_loss", "exponential"]:
        est = ensemble.GradientBoostingClassifier(loss=loss, n_estimators=3, random_state=0)
        out[f"GBC(loss={loss})"] = est.fit(X, yb)
    for power in [0.0, 1.0, 1.5, 2.0, 3.0]:
        for link in ["auto", "identity", "log"]:
            if link == "identity" and power > 0:
                continue
            est = linear_model.TweedieRegressor(power=power, link=link)
            out[f"Tweedie(power={power}, link={link})"] = est.fit(X, np.abs(yr) + 1)
    out["Poisson"] = linear_model.PoissonRegressor().fit(X, np.abs(yr) + 1)
    out["Gamma"] = linear_model.GammaRegressor().fit(X, np.abs(yr) + 1)
    out["LogisticRegression(binary)"] = linear_model.LogisticRegression().fit(X, yb)
    neighbor_configs: list[tuple[str, str, dict[str, Any]]] = [
        ("kd_tree", "minkowski", {"p": 1}),
        ("kd_tree", "chebyshev", {}),
        ("ball_tree", "minkowski", {"p": 3, "metric_params": {"w": np.ones(4)}}),
        ("ball_tree", "seuclidean", {"metric_params": {"V": np.ones(4)}}),
        ("ball_tree", "mahalanobis", {"metric_params": {"VI": np.eye(4)}}),
        ("ball_tree", "canberra", {}),
        ("ball_tree", "braycurtis", {}),
        ("brute", "cosine", {}),
    ]
    for algo, metric, kw in neighbor_configs:
        est = neighbors.KNeighborsClassifier(algorithm=algo, metric=metric, **kw)
        out[f"KNN({algo}, {metric})"] = est.fit(X, yc)
    out["KNN(ball_tree, haversine)"] = neighbors.KNeighborsClassifier(
        algorithm="ball_tree", metric="haversine"
    ).fit(X[:, :2] / 4, yc)
    out["KNN(sparse)"] = neighbors.KNeighborsClassifier().fit(sp.csr_matrix(X), yc)
    out["KNN(sparse array)"] = neighbors.KNeighborsClassifier().fit(sp.csr_array(X), yc)
    out["KernelDensity(ball_tree)"] = neighbors.KernelDensity(algorithm="ball_tree").fit(X)
    out["SVC(sparse)"] = SVC(probability=True, random_state=0).fit(sp.csr_matrix(X), yc)
    out["SVC(precomputed)"] = SVC(kernel="precomputed").fit(X @ X.T, yc)
    out["SVR(linear)"] = SVR(kernel="linear").fit(X, yr)
    for method in ["sigmoid", "isotonic", "temperature"]:
        est = CalibratedClassifierCV(linear_model.LogisticRegression(), method=method, cv=3)
        out[f"Calibrated({method})"] = est.fit(X, yc)
    out["TTR(log1p)"] = TransformedTargetRegressor(func=np.log1p, inverse_func=np.expm1).fit(
        X, np.abs(yr)
    )
    for func in [chi2, f_regression, mutual_info_classif]:
        out[f"SelectKBest({func.__name__})"] = SelectKBest(func, k=2).fit(X, yc)
    kernel_list = [
        kernels.RBF() + kernels.WhiteKernel(),
        kernels.Matern(),
        kernels.RationalQuadratic(),
        kernels.ExpSineSquared(),
        kernels.DotProduct() ** 2,
        kernels.PairwiseKernel(),
        kernels.ConstantKernel() * kernels.RBF(length_scale=[1.0] * 4),
    ]
    for kernel in kernel_list:
        est = gaussian_process.GaussianProcessRegressor(kernel=kernel, alpha=0.1, random_state=0)
        try:
            out[f"GPR({kernel})"] = est.fit(X, yr)
        except Exception as exc:
            print(f"! GPR({kernel}): {exc!r}", file=sys.stderr)
    for name in get_scorer_names():
        out[f"scorer:{name}"] = get_scorer(name)
    for name in model_selection.__all__:
        if name.startswith("Base") or not name.endswith(("Fold", "Split", "Out")):
            continue
        cls = getattr(model_selection, name)
        if isinstance(cls, type):
            try:
                out[f"cv:{name}"] = cls()
            except TypeError:
                continue
    out["GridSearchCV(scoring=list)"] = model_selection.GridSearchCV(
        linear_model.LogisticRegression(),
        {"C": [0.5, 1.0]},
        cv=3,
        scoring=["accuracy", "f1_macro"],
        refit="accuracy",
    ).fit(X, yc)
    out["RandomState param"] = linear_model.SGDClassifier(
        random_state=np.random.RandomState(0), max_iter=5
    ).fit(X, yc)
    return out


def pack_models(pack: str) -> dict[str, Any]:
    """Small fitted models of one pack's library: each wrapper, each kind of target, a Pipeline."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d = recipes.make_data()
    X, yc, yr, yb = d.X, d.y_cls, d.y_reg, d.y_bin
    group = [len(yc) // 2, len(yc) - len(yc) // 2]
    out: dict[str, Any] = {}
    if pack == "lightgbm":
        import lightgbm as lgb

        kw: dict[str, Any] = {"n_estimators": 3, "verbose": -1, "min_child_samples": 2}
        out["LGBMClassifier(binary)"] = lgb.LGBMClassifier(**kw).fit(X, yb)
        out["LGBMClassifier(multiclass)"] = lgb.LGBMClassifier(**kw).fit(X, yc)
        out["LGBMRegressor"] = lgb.LGBMRegressor(**kw).fit(X, yr)
        out["LGBMRanker"] = lgb.LGBMRanker(**kw).fit(X, yc, group=group)
        out["LGBMModel"] = lgb.LGBMModel(objective="regression", **kw).fit(X, yr)
        out["Pipeline(LGBMClassifier)"] = make_pipeline(
            StandardScaler(), lgb.LGBMClassifier(**kw)
        ).fit(X, yc)
    elif pack == "xgboost":
        import xgboost as xgb

        kw = {"n_estimators": 3, "max_depth": 2}
        out["XGBClassifier(binary)"] = xgb.XGBClassifier(**kw).fit(X, yb)
        out["XGBClassifier(multiclass)"] = xgb.XGBClassifier(**kw).fit(X, yc)
        out["XGBRegressor"] = xgb.XGBRegressor(**kw).fit(X, yr)
        out["XGBRanker"] = xgb.XGBRanker(**kw).fit(X, yc, qid=np.repeat([0, 1], group))
        out["XGBRFClassifier"] = xgb.XGBRFClassifier(**kw).fit(X, yb)
        out["XGBRFRegressor"] = xgb.XGBRFRegressor(**kw).fit(X, yr)
        out["XGBRegressor(dart)"] = xgb.XGBRegressor(booster="dart", **kw).fit(X, yr)
        out["Pipeline(XGBClassifier)"] = make_pipeline(
            StandardScaler(), xgb.XGBClassifier(**kw)
        ).fit(X, yc)
    elif pack == "catboost":
        import catboost as cb

        kw = {"iterations": 3, "verbose": 0, "allow_writing_files": False, "thread_count": 1}
        out["CatBoostClassifier(binary)"] = cb.CatBoostClassifier(**kw).fit(X, yb)
        out["CatBoostClassifier(multiclass)"] = cb.CatBoostClassifier(**kw).fit(X, yc)
        out["CatBoostRegressor"] = cb.CatBoostRegressor(**kw).fit(X, yr)
        out["CatBoostRanker"] = cb.CatBoostRanker(**kw).fit(
            X, yr, group_id=np.repeat([0, 1], group)
        )
        out["Pipeline(CatBoostClassifier)"] = make_pipeline(
            StandardScaler(), cb.CatBoostClassifier(**kw)
        ).fit(X, yc)
    else:
        raise SystemExit(f"unknown pack {pack!r}: lightgbm, xgboost or catboost")
    return out


def print_pack(pack: str) -> int:
    """The names one pack's models use beyond the default policy, and how each is used."""
    users: dict[Name, list[str]] = defaultdict(list)
    calls: dict[Name, set[str]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = pack_models(pack)
    for label, model in models.items():
        for glob in record(model, calls):
            users[glob].append(label)
    default = {tuple(t.split(":", 1)) for t in DEFAULT_TYPES}
    for name in sorted(set(users) - default):
        forms = calls.get(name, set())
        use = "call " + "; ".join(sorted(forms)[:4]) if forms else "ref"
        print(f"{name[0]}:{name[1]}    {use}    # {', '.join(sorted(set(users[name]))[:3])}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--diff", action="store_true", help="only the differences")
    parser.add_argument("--calls", action="store_true", help="how each name is used")
    parser.add_argument("--pack", help="a pack's library instead (lightgbm, xgboost, catboost)")
    args = parser.parse_args()
    if args.pack:
        return print_pack(args.pack)
    users: dict[tuple[str, str], list[str]] = defaultdict(list)
    calls: dict[Name, set[str]] = {}
    failed: dict[str, str] = {}
    models: list[tuple[str, Any]] = []
    for case in recipes.build_cases():
        try:
            models.append((case.name, recipes.fit_case(case)))
        except Exception as exc:
            failed[case.name] = f"fit: {exc!r}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models.extend(recipes.pandas_pipelines().items())
        models.extend(probes().items())
    for name, model in models:
        try:
            for glob in record(model, calls):
                users[glob].append(name)
        except Exception as exc:
            failed[name] = f"record: {exc!r}"
    if args.calls:
        return print_calls(users, calls, only_diff=args.diff)
    committed = {tuple(t.split(":", 1)) for t in DEFAULT_TYPES}
    for (module, qualname), who in sorted(users.items()):
        mark = " " if (module, qualname) in committed else "+"
        if args.diff and mark == " ":
            continue
        shown = ", ".join(sorted(set(who))[:4]) + (" ..." if len(set(who)) > 4 else "")
        print(f"{mark} {module}:{qualname}    # {shown}")
    if args.diff:
        for module, qualname in sorted(committed - set(users)):
            print(f"- {module}:{qualname}    # not seen in any generated model")
    for name, why in sorted(failed.items()):
        print(f"! {name}: {why}", file=sys.stderr)
    return 0


def print_calls(
    users: dict[Name, list[str]], calls: dict[Name, set[str]], *, only_diff: bool
) -> int:
    """One line per name: ``call`` with the forms seen, or ``ref``; marks against DEFAULT_CALLS.

    ``+`` called but not callable by default (must be added, with a rule admitting the forms);
    ``-`` callable by default but never called here (should be a reference, unless a form this
    corpus misses needs it: say why in _default_types.py).
    """
    callable_names = {tuple(t.split(":", 1)) for t in DEFAULT_CALLS}
    for name in sorted(users):
        forms = calls.get(name, set())
        mark = " "
        if forms and name not in callable_names:
            mark = "+"
        elif not forms and name in callable_names:
            mark = "-"
        if only_diff and mark == " ":
            continue
        use = "call " + "; ".join(sorted(forms)[:4]) if forms else "ref"
        print(f"{mark} {name[0]}:{name[1]}    {use}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
