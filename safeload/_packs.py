"""Opt-in packs of trusted names: the gradient-boosting libraries used inside scikit-learn.

A pack is the exact ``module:qualname`` names one library's scikit-learn estimators pickle
beyond the default policy, each with the one form of call its pickles take. None is trusted
by default: a caller opts in by name (``TypePolicy.default().with_packs("lightgbm")``,
``--pack lightgbm``, ``packs = ["lightgbm"]`` in a policy file).

Generated against LightGBM 4.7.0, XGBoost 3.2.0 and CatBoost 1.2.10 (scikit-learn 1.9.1) by
``benchmarks/gen_default_types.py --pack NAME``, which fits each library's estimators (every
wrapper, binary, multiclass, regression and ranking targets, in a Pipeline too), records every
global their joblib streams name and how each is used, then reviewed by hand:

* the estimator classes and the Booster classes are data classes: pickles make them with
  ``cls.__new__(cls)`` (``NEWOBJ``, no arguments, never their ``__init__``) and restore their
  state with ``BUILD``. That state holds a model that only the library's native code parses
  (LightGBM's model text, XGBoost's UBJSON, CatBoost's binary model), so the restricted
  unpickler checks it first (:mod:`safeload.typegate.boosters`) and refuses any form the
  library does not write; skops files of these classes are refused (save them as joblib);
* ``builtins.bytearray`` (XGBoost's serialized Booster) only as ``bytearray(<bytes>)``;
* ``collections.defaultdict`` (LightGBM's evaluation results) only as
  ``defaultdict(collections.OrderedDict)``: its factory is called on every missing key.

Rules describe what the names do, so :data:`PACK_CALL_RULES` hold in every policy, as
``_default_types.CALL_RULES`` do (a caller who trusts ``builtins:bytearray`` by hand gets its
rule too).
"""

from __future__ import annotations

from collections.abc import Iterable

from safeload._default_types import BYTEARRAY, DEFAULTDICT, NEW

#: Each pack: its names, each with its call rule (every name of a pack is callable).
PACKS: dict[str, dict[str, str]] = {
    "lightgbm": {
        "lightgbm.sklearn:LGBMClassifier": NEW,
        "lightgbm.sklearn:LGBMRegressor": NEW,
        "lightgbm.sklearn:LGBMRanker": NEW,
        "lightgbm.sklearn:LGBMModel": NEW,
        # Booster.__setstate__ parses "_handle", the model text, with LightGBM's C++.
        "lightgbm.basic:Booster": NEW,
        # LGBMModel's evals_result_ / best_score_: defaultdict(OrderedDict).
        "collections:defaultdict": DEFAULTDICT,
    },
    "xgboost": {
        "xgboost.sklearn:XGBClassifier": NEW,
        "xgboost.sklearn:XGBRegressor": NEW,
        "xgboost.sklearn:XGBRanker": NEW,
        "xgboost.sklearn:XGBRFClassifier": NEW,
        "xgboost.sklearn:XGBRFRegressor": NEW,
        # Booster.__setstate__ parses "handle", the UBJSON bytes, with XGBoost's C++.
        "xgboost.core:Booster": NEW,
        "builtins:bytearray": BYTEARRAY,
    },
    "catboost": {
        # __setstate__ parses "__model", CatBoost's binary model, with CatBoost's C++.
        "catboost.core:CatBoostClassifier": NEW,
        "catboost.core:CatBoostRegressor": NEW,
        "catboost.core:CatBoostRanker": NEW,
    },
}

#: The call rule of every pack name (they describe the functions, so hold in any policy).
PACK_CALL_RULES: dict[str, str] = {n: r for names in PACKS.values() for n, r in names.items()}


def pack_for(names: Iterable[str]) -> str | None:
    """The pack whose names include all of ``names`` (``module:qualname`` or dotted), if any.

    Advice for refusals only: a pack is never trusted because a file names its types.
    """
    wanted = set(names)
    if not wanted:
        return None
    for pack, entries in PACKS.items():
        spelled = set(entries) | {n.replace(":", ".") for n in entries}
        if wanted <= spelled:
            return pack
    return None
