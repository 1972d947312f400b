"""The second wall at unit level: the restricted unpickler refuses calls on its own.

Streams go straight to ``unpickle_verified`` (no scan first), so each refusal here is the
unpickler's, not the scanner's.
"""

from __future__ import annotations

import pickle

import pytest

from safeload._unpickle import unpickle_verified
from safeload.errors import MalformedArtifactError, UntrustedTypeError
from safeload.policy import TypePolicy

OP = pickle


def _glob(module: str, name: str) -> bytes:
    return OP.GLOBAL + f"{module}\n{name}\n".encode()


def test_a_new_only_class_called_by_reduce_is_refused_by_the_unpickler() -> None:
    stream = OP.PROTO + b"\x02" + _glob("scipy.sparse._csr", "csr_matrix")
    stream += OP.EMPTY_TUPLE + OP.REDUCE + OP.STOP
    with pytest.raises(MalformedArtifactError, match="which its own pickles never do"):
        unpickle_verified(stream, TypePolicy.default())


def test_a_reference_only_name_called_is_refused_by_the_unpickler() -> None:
    policy = TypePolicy.of(["builtins:len"], callable=False)
    stream = OP.PROTO + b"\x02" + _glob("builtins", "len") + OP.EMPTY_TUPLE
    with pytest.raises(MalformedArtifactError, match=r"builtins\.len \(REDUCE\).*stored reference"):
        unpickle_verified(stream + OP.REDUCE + OP.STOP, policy)


def test_a_name_outside_the_policy_is_refused_before_import() -> None:
    stream = OP.PROTO + b"\x02" + _glob("os", "system") + OP.STOP
    with pytest.raises(UntrustedTypeError) as err:
        unpickle_verified(stream, TypePolicy.default())
    assert err.value.types == ("os.system",)


def test_a_stored_reference_loads_and_trailing_bytes_are_refused() -> None:
    policy = TypePolicy.of(["builtins:len"], callable=False)
    stream = OP.PROTO + b"\x02" + _glob("builtins", "len") + OP.STOP
    assert unpickle_verified(stream, policy) is len
    with pytest.raises(MalformedArtifactError, match="1 unexpected byte"):
        unpickle_verified(stream + b"\0", policy)


def test_bytes_after_stop_inside_the_last_frame_are_refused() -> None:
    """Protocol 4 frames: extra bytes can hide in the frame that STOP ends, not only after it."""
    body = OP.NONE + OP.STOP
    framed = OP.PROTO + b"\x04" + OP.FRAME + (len(body) + 1).to_bytes(8, "little") + body
    assert (
        unpickle_verified(
            OP.PROTO + b"\x04" + OP.FRAME + len(body).to_bytes(8, "little") + body,
            TypePolicy.default(),
        )
        is None
    )
    with pytest.raises(MalformedArtifactError, match="unexpected bytes after the end"):
        unpickle_verified(framed + b"x", TypePolicy.default())
