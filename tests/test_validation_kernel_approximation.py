"""Kernel approximations: sketch and projection widths agree with their arrays and the budget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.kernel_approximation import (
    AdditiveChi2Sampler,
    Nystroem,
    PolynomialCountSketch,
    RBFSampler,
    SkewedChi2Sampler,
)

from safeload import ScanLimits
from safeload.errors import MalformedArtifactError
from safeload.validation import validate_model
from tests.crafted_child import predict_in_child
from tests.validation_cases import edited_copy, passes_both_ways

X = np.random.default_rng(0).random((30, 3))

LEGIT: dict[str, Callable[[], Any]] = {
    "sketch": lambda: PolynomialCountSketch(n_components=10, random_state=0).fit(X),
    "sketch_coef0": lambda: PolynomialCountSketch(n_components=8, coef0=1, degree=3).fit(X),
    "rbf": lambda: RBFSampler(n_components=7, random_state=0).fit(X),
    "skewed": lambda: SkewedChi2Sampler(n_components=7, random_state=0).fit(X),
    "nystroem": lambda: Nystroem(n_components=5, random_state=0).fit(X),
    "nystroem_clipped": lambda: Nystroem(n_components=50, random_state=0).fit(X),
    "additive": lambda: AdditiveChi2Sampler().fit(X),
}


@pytest.mark.parametrize("name", sorted(LEGIT))
def test_legit_models_pass(name: str) -> None:
    passes_both_ways(LEGIT[name]())


def edited(name: str, **changes: Any) -> Any:
    return edited_copy(LEGIT[name](), **changes)


CRAFTED: dict[str, tuple[Callable[[], Any], str]] = {
    "sketch_components": (lambda: edited("sketch", n_components=10**9), "max_output_features"),
    "sketch_degree_times_components": (
        lambda: edited("sketch", n_components=1 << 23, degree=4),
        "degree x n_components",
    ),
    "sketch_degree_huge": (lambda: edited("sketch", degree=10**12), "max_output_features"),
    "sketch_index_out_of_range": (
        lambda: edited("sketch", indexHash_=np.full((2, 3), 10)),
        "indexHash_ has entries outside [0, 10)",
    ),
    "sketch_index_negative": (
        lambda: edited("sketch", indexHash_=np.full((2, 3), -1)),
        "outside",
    ),
    "sketch_shape": (lambda: edited("sketch", degree=3), "(degree, input columns)"),
    "sketch_bits": (lambda: edited("sketch", bitHash_=np.full((2, 3), 7)), "bitHash_"),
    "sketch_float_index": (
        lambda: edited("sketch", indexHash_=np.zeros((2, 3))),
        "not an integer dtype",
    ),
    "rbf_offset": (lambda: edited("rbf", random_offset_=np.zeros(3)), "random_offset_"),
    "rbf_weights_rows": (
        lambda: edited("rbf", random_weights_=np.zeros((4, 7))),
        "random_weights_",
    ),
    "rbf_components": (lambda: edited("rbf", n_components=10**9), "n_components"),
    "skewed_names": (lambda: edited("skewed", _n_features_out=10**9), "_n_features_out"),
    "nystroem_normalization": (
        lambda: edited("nystroem", normalization_=np.zeros((5, 4))),
        "normalization_",
    ),
    "nystroem_columns": (
        lambda: edited("nystroem", components_=np.zeros((5, 2))),
        "components_",
    ),
    "additive_steps": (lambda: edited("additive", sample_steps=10**9), "sample_steps"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_is_refused(name: str) -> None:
    build, fragment = CRAFTED[name]
    with pytest.raises(MalformedArtifactError) as info:
        validate_model(build())
    assert fragment in str(info.value), str(info.value)


def test_budget_is_the_callers() -> None:
    model = LEGIT["sketch"]()  # 2 x 10 values per sample
    with pytest.raises(MalformedArtifactError, match="max_output_features=19"):
        validate_model(model, limits=ScanLimits(max_output_features=19))
    validate_model(model, limits=ScanLimits(max_output_features=20))


def test_sketch_components_exhaust_memory_in_a_child(tmp_path: Path) -> None:
    crafted = edited("sketch", n_components=10**9)
    fate = predict_in_child(crafted, tmp_path, "transform", "np.ones((2, 3))")
    assert fate != "survived", fate  # 2 x 2 x 10**9 floats: MemoryError under the 4 GiB cap
    with pytest.raises(MalformedArtifactError, match="n_components"):
        validate_model(crafted)
