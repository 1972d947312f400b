"""The boosters of the packs: their model blobs, checked before native code parses them.

A pack (:mod:`safeload._packs`) trusts a library's estimator classes, whose fitted state holds
a model that only the library's compiled code reads: LightGBM's ``Booster`` a text model
(``LGBM_BoosterLoadModelFromString``), XGBoost's ``Booster`` UBJSON bytes
(``XGBoosterUnserializeFromBuffer``), CatBoost's estimators a CatBoost binary model
(``_CatBoost._deserialize_model``). Their ``__setstate__`` hands that blob straight to native
code, which crashes, hangs or allocates without bound on a crafted one (measured, see
``docs/threat-model.md``). The restricted unpickler asks :func:`booster_problem` before it
runs that ``__setstate__`` (through :func:`safeload.typegate.states.concrete_problem`), with the
caller's :attr:`~safeload.typegate.limits.ScanLimits.max_booster_bytes`:

* LightGBM: the state is a dict whose ``_handle`` is the text (not ``handle``, the other key
  ``__setstate__`` reads), held to :mod:`safeload.typegate.lightgbm_text`;
* XGBoost: the state's ``handle`` is the bytearray, held to
  :mod:`safeload.typegate.xgboost_model`;
* CatBoost: the state's ``__model`` is bytes with CatBoost's ``CBM1`` signature and a core
  size within the bytes. Its contents (a FlatBuffers model that CatBoost verifies itself,
  then trees, features and CTR tables that it does not) are NOT validated by safeload.

skops files of these classes are refused by the skops wall: skops' loader would hand the blob
to ``__setstate__`` without this check.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from safeload.typegate.lightgbm_text import LightGBMTextError, check_lightgbm_text
from safeload.typegate.xgboost_model import XGBoostModelError, check_xgboost_model

__all__ = ["CHECKED", "booster_problem"]

TypeName = tuple[str, str]

_CATBOOST_MAGIC = b"CBM1"


class _Refused(ValueError):
    pass


def _dict(state: object, blob: str, kinds: tuple[type, ...], other: str | None) -> object:
    """The blob the class's ``__setstate__`` will parse: ``state[blob]``, of one of ``kinds``."""
    if type(state) is not dict:
        raise _Refused(f"state is a {type(state).__name__}, not a dict")
    if other is not None and other in state:
        raise _Refused(f"state has {other!r}, which its __setstate__ would parse instead")
    if blob not in state:
        raise _Refused(f"state has no {blob!r}")
    value = state[blob]
    if type(value) not in kinds:
        raise _Refused(f"{blob!r} is a {type(value).__name__}, not what the library writes")
    return value


def _sized(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise _Refused(
            f"model is {size} bytes, over ScanLimits.max_booster_bytes ({max_bytes}); raise "
            "that limit if the model is genuine"
        )


def _lightgbm(state: object, max_bytes: int) -> None:
    text = _dict(state, "_handle", (str,), "handle")
    if not isinstance(text, str):  # _dict checked it: for the type checker
        raise _Refused("model text is not a str")
    _sized(len(text), max_bytes)  # characters: a lower bound of its UTF-8 size
    try:
        check_lightgbm_text(text)
    except LightGBMTextError as exc:
        raise _Refused(f"model text is not what LightGBM writes: {exc}") from None


def _xgboost(state: object, max_bytes: int) -> None:
    data = _dict(state, "handle", (bytearray,), None)
    if not isinstance(data, bytearray):
        raise _Refused("model is not a bytearray")
    _sized(len(data), max_bytes)
    try:
        check_xgboost_model(data)
    except XGBoostModelError as exc:
        raise _Refused(f"model is not what XGBoost writes: {exc}") from None


def _catboost(state: object, max_bytes: int) -> None:
    if type(state) is dict and "__model" not in state:
        return  # an unfitted estimator: nothing reaches native code
    data = _dict(state, "__model", (bytes,), None)
    if not isinstance(data, bytes):
        raise _Refused("model is not bytes")
    _sized(len(data), max_bytes)
    if len(data) < 16 or data[:4] != _CATBOOST_MAGIC:
        raise _Refused("model does not start with CatBoost's CBM1 signature")
    (core,) = struct.unpack_from("<I", data, 4)
    if core < 8 or 8 + core > len(data):
        raise _Refused(f"model's core of {core} bytes does not fit in its {len(data)} bytes")
    (root,) = struct.unpack_from("<I", data, 8)
    if root >= core:
        raise _Refused("model's FlatBuffers root points past its core")


_CATBOOST = ("CatBoost", "CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker")
#: The classes whose state is checked, and how.
CHECKED: dict[TypeName, Callable[[object, int], None]] = {
    ("lightgbm.basic", "Booster"): _lightgbm,
    ("xgboost.core", "Booster"): _xgboost,
    **{("catboost.core", name): _catboost for name in _CATBOOST},
}


def booster_problem(cls: TypeName, state: object, max_bytes: int) -> str | None:
    """Why ``state`` must not reach ``cls``'s ``__setstate__``, or ``None`` (also: no booster)."""
    check = CHECKED.get(cls)
    if check is None:
        return None
    try:
        check(state, max_bytes)
    except _Refused as exc:
        return (
            f"BUILD restores a {cls[0]}.{cls[1]} whose {exc}; its __setstate__ hands the model "
            "to the library's native parser, which crashes or hangs on a crafted one, so only "
            "the form the library writes is accepted"
        )
    return None
