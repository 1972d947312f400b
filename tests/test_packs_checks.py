"""The pack boosters' checks on their own: every genuine shape passes, the reader is bounded.

A check that refuses a genuine model is a broken pack, so each library's models are fitted
in the shapes their options produce (multiclass, ranking, categorical splits, random forests,
dart, pruned trees with deleted nodes, stumps) and must pass; what safeload does not read is
refused with a message that says so.
"""

from __future__ import annotations

import struct
import warnings
from typing import Any

import numpy as np
import pytest

from safeload.typegate.boosters import booster_problem
from safeload.typegate.lightgbm_text import LightGBMTextError, check_lightgbm_text
from safeload.typegate.ubjson import MAX_DEPTH, UBJSONError, read_ubjson
from safeload.typegate.xgboost_model import XGBoostModelError, check_xgboost_model
from tests.ubjson_writer import write_ubjson

lightgbm = pytest.importorskip("lightgbm")
xgboost = pytest.importorskip("xgboost")
catboost = pytest.importorskip("catboost")

RNG = np.random.default_rng(1)
X = RNG.normal(size=(300, 4))
X_CAT = X.copy()
X_CAT[:, 2] = RNG.integers(0, 8, size=300)
Y_BIN = (X[:, 0] > 0).astype(int)
Y_CAT = np.isin(X_CAT[:, 2], [1, 3, 6]).astype(int)
Y_MULTI = np.digitize(X[:, 1], [-0.5, 0.5])
Y_REG = X[:, 0] * 2 + X[:, 1]
GROUPS = [150, 150]


def _lightgbm_models() -> dict[str, Any]:
    kw: dict[str, Any] = {"n_estimators": 3, "verbose": -1, "num_leaves": 5, "min_child_samples": 5}
    return {
        "binary": lightgbm.LGBMClassifier(**kw).fit(X, Y_BIN),
        "multiclass": lightgbm.LGBMClassifier(**kw).fit(X, Y_MULTI),
        "regression": lightgbm.LGBMRegressor(**kw).fit(X, Y_REG),
        "quantile": lightgbm.LGBMRegressor(objective="quantile", alpha=0.3, **kw).fit(X, Y_REG),
        "ranker": lightgbm.LGBMRanker(**kw).fit(X, Y_MULTI, group=GROUPS),
        "categorical": lightgbm.LGBMClassifier(
            min_data_per_group=5, cat_smooth=1, max_cat_to_onehot=2, **kw
        ).fit(X_CAT, Y_CAT, categorical_feature=[2]),
        "rf": lightgbm.LGBMClassifier(
            boosting_type="rf", subsample=0.5, subsample_freq=1, **kw
        ).fit(X, Y_BIN),
        "dart": lightgbm.LGBMRegressor(boosting_type="dart", **kw).fit(X, Y_REG),
        "stump": lightgbm.LGBMRegressor(**kw).fit(X, np.ones(len(X))),
    }


def test_every_genuine_lightgbm_shape_passes() -> None:
    models = _lightgbm_models()
    assert "num_cat=1" in models["categorical"].booster_.model_to_string()
    assert "num_leaves=1\n" in models["stump"].booster_.model_to_string()
    for label, model in models.items():
        text = model.booster_.model_to_string()
        check_lightgbm_text(text)
        state = model.booster_.__getstate__()
        assert booster_problem(("lightgbm.basic", "Booster"), state, 1 << 32) is None, label


def test_linear_trees_are_refused_unread() -> None:
    model = lightgbm.LGBMRegressor(n_estimators=2, verbose=-1, linear_tree=True).fit(X, Y_REG)
    with pytest.raises(LightGBMTextError, match="linear tree"):
        check_lightgbm_text(model.booster_.model_to_string())


def _xgboost_models() -> dict[str, Any]:
    kw: dict[str, Any] = {"n_estimators": 3, "max_depth": 3, "n_jobs": 1}
    qid = np.repeat([0, 1], GROUPS)
    return {
        "binary": xgboost.XGBClassifier(**kw).fit(X, Y_BIN),
        "multiclass": xgboost.XGBClassifier(**kw).fit(X, Y_MULTI),
        "regression": xgboost.XGBRegressor(**kw).fit(X, Y_REG),
        "two_targets": xgboost.XGBRegressor(**kw).fit(X, np.c_[Y_REG, -Y_REG]),
        "ranker": xgboost.XGBRanker(**kw).fit(X, Y_MULTI, qid=qid),
        "rf": xgboost.XGBRFClassifier(**kw).fit(X, Y_BIN),
        "rf_regression": xgboost.XGBRFRegressor(**kw).fit(X, Y_REG),
        "dart": xgboost.XGBRegressor(booster="dart", **kw).fit(X, Y_REG),
        "approx": xgboost.XGBRegressor(tree_method="approx", **kw).fit(X, Y_REG),
        "pruned": xgboost.XGBRegressor(tree_method="exact", gamma=5, **kw).fit(X, Y_REG),
    }


def test_every_genuine_xgboost_shape_passes() -> None:
    models = _xgboost_models()
    pruned = read_ubjson(bytes(models["pruned"].get_booster().__getstate__()["handle"]))
    trees = pruned["Model"]["learner"]["gradient_booster"]["model"]["trees"]
    assert any(t["tree_param"]["num_deleted"] != "0" for t in trees)  # the shape is exercised
    for label, model in models.items():
        state = model.get_booster().__getstate__()
        check_xgboost_model(state["handle"])
        assert write_ubjson(read_ubjson(state["handle"])) == bytes(state["handle"]), label
        assert booster_problem(("xgboost.core", "Booster"), state, 1 << 32) is None, label


def test_gblinear_is_refused_unread() -> None:
    model = xgboost.XGBRegressor(booster="gblinear", n_estimators=2, n_jobs=1).fit(X, Y_REG)
    with pytest.raises(XGBoostModelError, match="gblinear"):
        check_xgboost_model(model.get_booster().__getstate__()["handle"])


def test_every_genuine_catboost_shape_passes() -> None:
    import pandas as pd

    kw: dict[str, Any] = {
        "iterations": 3,
        "verbose": 0,
        "allow_writing_files": False,
        "thread_count": 1,
    }
    frame = pd.DataFrame(X, columns=list("abcd"))
    frame["e"] = RNG.choice(["x", "y", "z"], len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "binary": catboost.CatBoostClassifier(**kw).fit(X, Y_BIN),
            "multiclass": catboost.CatBoostClassifier(**kw).fit(X, Y_MULTI),
            "regression": catboost.CatBoostRegressor(**kw).fit(X, Y_REG),
            "categorical": catboost.CatBoostClassifier(cat_features=["e"], **kw).fit(frame, Y_BIN),
        }
    for label, model in models.items():
        name = ("catboost.core", type(model).__name__)
        assert booster_problem(name, model.__getstate__(), 1 << 32) is None, label
    assert booster_problem(("catboost.core", "CatBoostClassifier"), {"iterations": 3}, 1) is None


# --- the UBJSON reader ------------------------------------------------------------------------


def _key(text: str) -> bytes:
    return b"L" + struct.pack(">q", len(text)) + text.encode()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"{" + _key("a") + b"i\x01" + _key("a") + b"i\x02}", "twice"),
        (b"i\x01i\x02", "after the value"),
        (b"[" * (MAX_DEPTH + 2) + b"]" * (MAX_DEPTH + 2), "deeper"),
        ((b"{" + _key("a")) * (MAX_DEPTH + 2), "deeper"),
        (b"[#L" + struct.pack(">q", 1 << 40) + b"i\x01", "past the end"),
        (b"[$d#L" + struct.pack(">q", 1 << 40) + b"\x00" * 8, "past the end"),
        (b"SL" + struct.pack(">q", 1 << 40) + b"abc", "declared"),
        (b"SL" + struct.pack(">q", -1), "negative"),
        (b"[$S#L" + struct.pack(">q", 1), "does not write"),
        (b"H\x01", "does not write"),
        (b"{" + _key("a"), "left"),
        (b"[i\x01", "never ends"),
        (b"SL" + struct.pack(">q", 1) + b"\xff", "UTF-8"),
    ],
)
def test_the_ubjson_reader_refuses_what_xgboost_does_not_write(data: bytes, why: str) -> None:
    with pytest.raises(UBJSONError, match=why):
        read_ubjson(data)


def test_typed_arrays_are_views_not_copies() -> None:
    data = b"[$l#L" + struct.pack(">q", 3) + struct.pack(">3i", 1, -1, 7)
    array = read_ubjson(data)
    assert array.tolist() == [1, -1, 7]
    assert not array.flags.owndata
