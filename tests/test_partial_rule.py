"""HistGradientBoosting with native categorical features loads under the default policy.

Its preprocessor keeps ``FunctionTransformer(func=partial(check_array, dtype=[float64],
ensure_all_finite=False))``; ``functools.partial`` is callable only as ``partial(check_array)``
with the state its own ``__reduce__`` writes (``safeload.typegate.partialrule``). The pickle
attacks on that rule (another callable bound, positional or keyword arguments, a state that
swaps the function, binds arguments or objects, is short, or is built twice) are corpus entries
(``tests/attacks/corpus.py``, ``partial_*``), each refused by the scanner alone and by the
unpickler alone in ``tests/test_attacks.py``; the skops wall is tried here on crafted schemas.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

import safeload
from safeload._unpickle import unpickle_verified
from safeload.policy import TypePolicy
from safeload.typegate.compression import decompress
from safeload.validation import validate_model
from tests.helpers import edit_skops_schema, joblib_bytes

_RNG = np.random.default_rng(0)
_FRAME = pd.DataFrame(
    {
        "num": _RNG.normal(size=80),
        "cat": pd.Categorical(_RNG.choice(["a", "b", "c"], size=80)),
    }
)
_ARRAY = np.column_stack([_RNG.normal(size=80), _RNG.integers(0, 4, size=80)]).astype(float)
_Y = (_FRAME["num"] > 0).to_numpy().astype(int) ^ (_FRAME["cat"] == "b").to_numpy()


def _models() -> dict[str, tuple[Any, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = HistGradientBoostingClassifier(max_iter=5).fit(_FRAME, _Y)
        mask = HistGradientBoostingRegressor(max_iter=5, categorical_features=[False, True]).fit(
            _ARRAY, _ARRAY[:, 0]
        )
    return {"from_dtype": (frame, _FRAME), "bool_mask": (mask, _ARRAY)}


MODELS = _models()


def _partial_of(model: Any) -> functools.partial[Any]:
    funcs = [getattr(step, "func", None) for _, step, _ in model._preprocessor.transformers_]
    partials = [f for f in funcs if isinstance(f, functools.partial)]
    assert len(partials) == 1
    return partials[0]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_model_really_holds_partial_of_check_array(name: str) -> None:
    from sklearn.utils.validation import check_array

    assert _partial_of(MODELS[name][0]).func is check_array


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_protocol_passes_both_walls_and_validation(name: str, protocol: int) -> None:
    model, X = MODELS[name]
    data = joblib_bytes(model, protocol=protocol)
    report = safeload.scan_bytes(data)
    assert report.safe, report.to_dict()
    loaded = unpickle_verified(bytearray(decompress(data)[1]), TypePolicy.default())
    validate_model(loaded)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert _partial_of(loaded).keywords == _partial_of(model).keywords


@pytest.mark.parametrize("fmt", ["joblib", "skops"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_signed_round_trip_predicts_like_the_original(name: str, fmt: str, tmp_path: Path) -> None:
    model, X = MODELS[name]
    key = safeload.generate_key()
    target = safeload.save(model, tmp_path / "m" / "1", key=key, format=fmt, name="m", version="1")
    loaded = safeload.load(target, trusted=safeload.Keyring.of([key]))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


# --- the skops wall: skops' PartialNode calls partial(func, *args, **kwds) -------------------


def _partial_nodes(schema: Any) -> list[dict[str, Any]]:
    """The model's PartialNodes (its preprocessor's unfitted and fitted transformer lists)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("__loader__") == "PartialNode":
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert found
    return found


def _function(module: str, name: str) -> dict[str, Any]:
    return {"__class__": name, "__module__": module, "__loader__": "FunctionNode", "__id__": 7}


def _json(text: str) -> dict[str, Any]:
    return {
        "__class__": "int",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": text,
        "is_json": True,
        "__id__": 8,
    }


def _swap_func(node: dict[str, Any]) -> None:
    node["content"]["func"] = _function("numpy", "log1p")


def _add_args(node: dict[str, Any]) -> None:
    args = {**node["content"]["args"], "content": [_json("1")], "__id__": 9}
    node["content"]["args"] = args


def _callable_kwd(node: dict[str, Any]) -> None:
    node["content"]["kwds"]["content"]["dtype"] = _function("numpy", "log1p")


def _foreign_kwd(node: dict[str, Any]) -> None:
    kwds = node["content"]["kwds"]
    kwds["content"] = {"x": _json("1")}
    kwds["key_types"]["content"] = kwds["key_types"]["content"][:1]


def _namespace(node: dict[str, Any]) -> None:
    node["content"]["namespace"] = _json("1")


def _as_object(node: dict[str, Any]) -> None:
    node["__loader__"] = "ObjectNode"
    node["content"] = None


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_swap_func, "binding something other than sklearn.utils.validation.check_array"),
        (_add_args, "with positional arguments"),
        (_callable_kwd, "keyword 'dtype' that is not plain data"),
        (_foreign_kwd, "not check_array's parameter"),
        (_namespace, "__dict__ that is neither None nor empty"),
        (_as_object, "other than a PartialNode"),
    ],
    ids=["func", "args", "callable-kwd", "foreign-kwd", "namespace", "object-node"],
)
def test_skops_wall_refuses_other_partials(edit: Any, fragment: str) -> None:
    data = skops.io.dumps(MODELS["from_dtype"][0])
    assert safeload.scan_bytes(data).safe
    crafted = edit_skops_schema(data, lambda schema: [edit(n) for n in _partial_nodes(schema)])
    report = safeload.scan_bytes(crafted, policy=TypePolicy.default().extend(["numpy:log1p"]))
    assert not report.safe
    assert any("functools.partial" in p and fragment in p for p in report.problems), report.problems
