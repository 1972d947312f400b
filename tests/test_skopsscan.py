"""The skops type check at unit level: which (loader, type) pairs pass without the policy."""

from __future__ import annotations

import pytest

from safeload.policy import TypePolicy
from safeload.skopsscan import untrusted_skops_types

EMPTY = TypePolicy.of([])


@pytest.mark.parametrize(
    "type_name", [("numpy", "ndarray"), ("numpy", "float64"), ("numpy", "int8")]
)
def test_arrays_and_numpy_scalars_need_no_policy_entry(type_name: tuple[str, str]) -> None:
    assert untrusted_skops_types([("NdArrayNode", type_name)], EMPTY) == []


@pytest.mark.parametrize(
    "type_name",
    [("os", "system"), ("numpy", "load"), ("numpy", "ndarray.tofile"), ("builtins", "eval")],
)
def test_an_array_node_naming_any_other_type_needs_the_policy(type_name: tuple[str, str]) -> None:
    """The exemption is for the array loader with numpy's own array or scalar types only."""
    name = ".".join(type_name)
    assert untrusted_skops_types([("NdArrayNode", type_name)], EMPTY) == [name]
    allowed = TypePolicy.of([f"{type_name[0]}:{type_name[1]}"])
    assert untrusted_skops_types([("NdArrayNode", type_name)], allowed) == []


@pytest.mark.parametrize("kind", ["ObjectNode", "ReduceNode", "TypeNode"])
def test_numpy_types_through_other_loaders_need_the_policy(kind: str) -> None:
    found = [(kind, ("numpy", "ndarray")), (kind, ("numpy", "float64"))]
    assert untrusted_skops_types(found, EMPTY) == ["numpy.float64", "numpy.ndarray"]


def test_container_loaders_pass_only_their_own_type() -> None:
    assert untrusted_skops_types([("DictNode", ("builtins", "dict"))], EMPTY) == []
    assert untrusted_skops_types([("DictNode", ("os", "system"))], EMPTY) == ["os.system"]
