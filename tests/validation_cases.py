"""What the validation test files share: a legit model passing both ways, a crafted copy."""

from __future__ import annotations

import copy
import io
from typing import Any

import joblib

from safeload._unpickle import unpickle_verified
from safeload.policy import TypePolicy
from safeload.validation import validate_model


def passes_both_ways(model: Any) -> None:
    """The model as fitted, and as the restricted unpickler rebuilds it, both validate."""
    validate_model(model)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    validate_model(unpickle_verified(bytearray(buffer.getvalue()), TypePolicy.default()))


def edited_copy(model: Any, **changes: Any) -> Any:
    """A deep copy of ``model`` with fitted attributes overwritten (the crafted model)."""
    crafted = copy.deepcopy(model)
    for key, value in changes.items():
        setattr(crafted, key, value)
    return crafted
