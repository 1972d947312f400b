"""BUILD states of classes whose ``__setstate__`` is compiled: only their own exact form.

``KDTree.__setstate__`` (Cython, ``boundscheck=False``) reads ``state[12]`` of whatever it
gets: a short tuple crashed the interpreter inside the unpickler, before validation (safeload
issue 12). :mod:`safeload.typegate.states` fixes each such class's state form; here, for every
class of its table: real objects pass every wall, and crafted states (short, long, a list, an
element of the wrong kind, an array of the wrong dtype or ndim, a dict with a key missing or
added) are refused by the scanner alone, by the unpickler alone, and (for skops) by the skops
wall, each for this reason. The crash itself is shown in a child process.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pickle
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io
from joblib.numpy_pickle import NumpyPickler
from sklearn.metrics import DistanceMetric
from sklearn.neighbors import BallTree, KDTree, KernelDensity, KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

import safeload
from safeload import _default_types as rules
from safeload._unpickle import unpickle_verified
from safeload.errors import MalformedArtifactError
from safeload.policy import TypeName, format_type_name, parse_type_name, resolve_policy
from safeload.saving import write_signed_artifact
from safeload.typegate import states
from safeload.typegate.states import FORMS, NO_STATE, OWN_CHECKS, Arr, DictOf, Maybe, TupleOf
from tests.helpers import edit_skops_schema

_RNG = np.random.RandomState(0)
X = _RNG.rand(30, 3)
Y = np.arange(30) % 2
_METRIC_ARGS: dict[str, dict[str, Any]] = {
    "mahalanobis": {"V": np.eye(3)},
    "seuclidean": {"V": np.ones(3)},
    "minkowski": {"p": 3},
}


def _real_objects() -> dict[str, Any]:
    """One real object per class of the table (and a weighted tree: the optional element)."""
    found: dict[str, Any] = {
        "KDTree": KDTree(X, leaf_size=5),
        "KDTree-weighted": KDTree(X, sample_weight=np.ones(30)),
        "BallTree": BallTree(X, metric="minkowski", p=3),
        "Tree": DecisionTreeClassifier(random_state=0).fit(X, Y).tree_,
        "RandomState": np.random.RandomState(0),
        "MT19937-legacy": np.random.RandomState(0)._bit_generator,
    }
    for cls in ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"):
        found[cls] = getattr(np.random, cls)(7)
    for _, name in sorted(states.METRIC_CLASSES):
        metric = name.removesuffix("Distance64").lower()
        found[name] = DistanceMetric.get_metric(metric, **_METRIC_ARGS.get(metric, {}))
    return found


REAL = _real_objects()


def _name(obj: object) -> TypeName:
    return (type(obj).__module__, type(obj).__qualname__)


# --- the table is complete and true ------------------------------------------------------------


def _compiled(cls: type, attribute: str) -> bool:
    for klass in cls.__mro__:
        if attribute in klass.__dict__:
            if klass is object:
                return False
            return not isinstance(klass.__dict__[attribute], types.FunctionType)
    return False


def test_every_compiled_setstate_class_of_the_policy_has_a_fixed_form() -> None:
    """Walk the default policy's classes: a compiled ``__setstate__``/``__reduce__`` is tabled."""
    compiled = set()
    for entry in rules.DEFAULT_TYPES:
        module, qualname = parse_type_name(entry)
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if inspect.isclass(obj) and (
            _compiled(obj, "__setstate__") or _compiled(obj, "__reduce__")
        ):
            compiled.add((module, qualname))
    # numpy's abstract scalar classes are never instantiated; builtins reduce in C to no state.
    builtins_ = {n for n in compiled if n[0] == "builtins" or n == ("collections", "OrderedDict")}
    abstract = {("numpy", n) for n in ("number", "integer", "signedinteger", "unsignedinteger")}
    abstract |= {("numpy", n) for n in ("floating", "inexact", "complexfloating")}
    untabled = compiled - set(FORMS) - NO_STATE - OWN_CHECKS - builtins_ - abstract
    assert untabled == set(), sorted(untabled)
    assert ("sklearn.neighbors._kd_tree", "KDTree") in FORMS


def test_every_form_is_what_the_class_writes() -> None:
    """The table's forms against real ``__reduce__`` states (scikit-learn 1.9.1, numpy 2.4.6)."""
    covered = set()
    for label, obj in REAL.items():
        state = obj.__reduce__()[2]
        assert states.concrete_problem(obj, state) is None, label
        covered.add(_name(obj))
    assert covered == set(FORMS)


# --- real objects pass every wall ------------------------------------------------------------


def _joblib(obj: object) -> bytes:
    handle = io.BytesIO()
    joblib.dump(obj, handle)
    return handle.getvalue()


_FORMATS: dict[str, Callable[[object], bytes]] = {
    "joblib": _joblib,
    "pickle2": lambda obj: pickle.dumps(obj, protocol=2),
    "pickle5": lambda obj: pickle.dumps(obj, protocol=5),
}


@pytest.mark.parametrize("fmt", sorted(_FORMATS))
@pytest.mark.parametrize("label", sorted(REAL))
def test_real_states_pass_both_walls(label: str, fmt: str) -> None:
    data = _FORMATS[fmt](REAL[label])
    report = safeload.scan_bytes(data)
    assert report.safe, report.problems
    loaded = unpickle_verified(data, resolve_policy(None))
    assert type(loaded) is type(REAL[label])


_MODELS = {
    "knn-kd": lambda: KNeighborsClassifier(algorithm="kd_tree").fit(X, Y),
    "knn-ball-chebyshev": lambda: KNeighborsClassifier(
        algorithm="ball_tree", metric="chebyshev"
    ).fit(X, Y),
    "kde-weighted": lambda: KernelDensity().fit(X, sample_weight=np.ones(30)),
    "tree": lambda: DecisionTreeClassifier(random_state=0).fit(X, Y),
    "mlp-randomstate": lambda: MLPClassifier(
        hidden_layer_sizes=(3,), max_iter=5, random_state=np.random.RandomState(0)
    ).fit(X, Y),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("label", sorted(_MODELS))
def test_real_models_load(label: str, tmp_path: Path, key: safeload.SigningKey) -> None:
    model = _MODELS[label]()
    path = safeload.save(model, tmp_path / label, key=key, name=label, version="1")
    loaded = safeload.load(path, trusted=safeload.Keyring.of([key]))
    assert type(loaded) is type(model)


# --- crafted states ----------------------------------------------------------------------------


def _wrong(element: Any, value: Any) -> list[tuple[str, Any]]:
    """Values of the wrong kind for ``element`` (the real one is ``value``)."""
    if isinstance(element, Maybe):
        return [(n, v) for n, v in _wrong(element.item, value) if v is not None]
    out: list[tuple[str, Any]] = [("none", None)] if value is not None else []
    if isinstance(element, Arr):
        out.append(("f4", np.zeros(np.shape(value), dtype=np.float32)))
        out.append(("i1", np.zeros(np.shape(value), dtype=np.int8)))
        out.append(("ndim+1", np.asarray(value)[None]))
        out.append(("list", [0.0]))
    elif isinstance(element, states.Scalar):
        out.append(
            ("str" if element.kind is not str else "int", "1" if element.kind is not str else 1)
        )
        out.append(("bool", True))
    elif isinstance(element, states.Instance):
        out.append(("other-object", np.float64(1.0)))
    elif isinstance(element, DictOf):
        out.extend(_dict_mutations(element, value))
    elif isinstance(element, TupleOf):
        out.extend(_tuple_mutations(element, value))
    return out


def _tuple_mutations(form: TupleOf, state: tuple[Any, ...]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [
        ("short", state[:3] if len(state) > 3 else state[:-1]),
        ("long", (*state, 0)),
        ("list", list(state)),
    ]
    for i, (element, value) in enumerate(zip(form.items, state, strict=True)):
        for how, bad in _wrong(element, value):
            out.append((f"[{i}]={how}", (*state[:i], bad, *state[i + 1 :])))
    return out


def _dict_mutations(form: DictOf, state: dict[str, Any]) -> list[tuple[str, Any]]:
    first = next(iter(state))
    out: list[tuple[str, Any]] = [
        ("missing-key", {k: v for k, v in state.items() if k != first}),
        ("extra-key", {**state, "extra": 1}),
    ]
    for key, element in form.fields.items():
        for how, bad in _wrong(element, state[key]):
            out.append((f"[{key}]={how}", {**state, key: bad}))
    return out


def _crafted_cases() -> list[tuple[str, str, Any]]:
    cases = []
    for label, obj in REAL.items():
        if label.endswith(("-weighted", "-legacy")):
            continue
        state = obj.__reduce__()[2]
        form = FORMS[_name(obj)]
        if isinstance(form, TupleOf):
            mutations = _tuple_mutations(form, state)
        else:
            mutations = _dict_mutations(form, state)
        cases.extend((label, how, bad) for how, bad in mutations)
    return cases


CRAFTED = _crafted_cases()
_IDS = [f"{label}-{how}" for label, how, _ in CRAFTED]


def _crafted_bytes(label: str, state: Any, fmt: str = "joblib") -> bytes:
    """``REAL[label]`` pickled with ``state`` in place of its own (everything else genuine)."""
    target = REAL[label]

    def override(obj: object) -> Any:
        if obj is target:
            func, args = obj.__reduce__()[:2]
            return (func, args, state)
        return NotImplemented

    handle = io.BytesIO()
    base: Any = NumpyPickler if fmt == "joblib" else pickle.Pickler
    pickler = type("Crafting", (base,), {"reducer_override": lambda self, obj: override(obj)})
    pickler(handle, protocol=4).dump(target)
    return handle.getvalue()


def _reason(label: str) -> str:
    return f"restores a {format_type_name(_name(REAL[label]))} whose state"


@pytest.mark.parametrize("fmt", ["joblib", "pickle4"])
@pytest.mark.parametrize(("label", "how", "state"), CRAFTED, ids=_IDS)
def test_scanner_alone_refuses_a_crafted_state(label: str, how: str, state: Any, fmt: str) -> None:
    report = safeload.scan_bytes(_crafted_bytes(label, state, fmt))
    assert not report.safe
    assert any(_reason(label) in p for p in report.problems), report.problems


# Crafted states that crash inside __setstate__ itself (the rest crash, or not, when used): the
# unpickler alone is judged on these in a child, so that a missing defence fails the test
# instead of killing the test process.
_CRASHING = ("short", "list")


@pytest.mark.parametrize(
    ("label", "how", "state"),
    [c for c in CRAFTED if c[1] not in _CRASHING],
    ids=[i for i, c in zip(_IDS, CRAFTED, strict=True) if c[1] not in _CRASHING],
)
def test_unpickler_alone_refuses_a_crafted_state(label: str, how: str, state: Any) -> None:
    data = _crafted_bytes(label, state)
    with pytest.raises(MalformedArtifactError, match="compiled __setstate__") as info:
        unpickle_verified(data, resolve_policy(None))
    assert _reason(label) in str(info.value)


_CHILD = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    from safeload._unpickle import unpickle_verified
    from safeload.errors import MalformedArtifactError
    from safeload.policy import resolve_policy
    for path in sys.argv[1:]:
        data = open(path, "rb").read()
        try:
            unpickle_verified(data, resolve_policy(None))
        except MalformedArtifactError as exc:
            print("refused" if "compiled __setstate__" in str(exc) else "other", flush=True)
        else:
            print("loaded", flush=True)
""")
_PLAIN_CHILD = "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read()); print('loaded')"


def _child(code: str, paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_unpickler_alone_refuses_the_states_that_crash_setstate(tmp_path: Path) -> None:
    cases = [c for c in CRAFTED if c[1] in _CRASHING]
    paths = []
    for i, (label, _, state) in enumerate(cases):
        paths.append(tmp_path / f"{i}.joblib")
        paths[-1].write_bytes(_crafted_bytes(label, state))
    done = _child(_CHILD, paths)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split() == ["refused"] * len(cases)


@pytest.mark.parametrize("label", ["KDTree", "BallTree", "EuclideanDistance64"])
def test_a_short_state_really_crashes_plain_unpickling(label: str, tmp_path: Path) -> None:
    """The attack is real: plain pickle dies of a signal on it; safeload refuses it."""
    path = tmp_path / "short.pickle"
    path.write_bytes(_crafted_bytes(label, REAL[label].__reduce__()[2][:1], "pickle4"))
    done = _child(_PLAIN_CHILD, [path])
    assert done.returncode < 0, (done.returncode, done.stdout, done.stderr[-500:])
    refused = _child(_CHILD, [path])
    assert (refused.returncode, refused.stdout.split()) == (0, ["refused"])


def test_the_fuzzer_regression_is_refused_by_both_walls() -> None:
    """The fuzzer's input (issue 12) rebuilt: a KDTree whose state is a 3-tuple."""
    data = _crafted_bytes("KDTree", REAL["KDTree"].__reduce__()[2][:3])
    report = safeload.scan_bytes(data)
    assert any("not a tuple of 13" in p for p in report.problems), report.problems


# --- the skops wall ----------------------------------------------------------------------------

# skops' ObjectNode makes KDTree, BallTree and their metrics by ``cls.__new__(cls)``, which the
# default policy does not allow (references only); a caller who allows it gets the state check.
_SKOPS_POLICY = resolve_policy(None).extend(
    [
        "sklearn.neighbors._kd_tree:KDTree",
        "sklearn.neighbors._ball_tree:BallTree",
        *(f"{m}:{n}" for m, n in sorted(states.METRIC_CLASSES)),
    ]
)
_SKOPS_METADATA = b'{"safeload_format_version": 1, "format": "skops", "name": "x", "version": "1"}'


def _skops_model() -> bytes:
    model = KNeighborsClassifier(algorithm="ball_tree", metric="minkowski", p=3).fit(X, Y)
    return skops.io.dumps(model)


def _nodes(schema: Any) -> list[dict[str, Any]]:
    found, pending = [], [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "__loader__" in node:
                found.append(node)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def _edit_state(cls: str, edit: Callable[[list[dict[str, Any]]], None]) -> Callable[..., None]:
    def apply(schema: dict[str, Any]) -> None:
        for node in _nodes(schema):
            if node.get("__class__") == cls:
                edit(node["content"]["content"])

    return apply


def _swap_first_two(items: list[dict[str, Any]]) -> None:
    items[0], items[1] = items[1], items[0]  # data (2-d float) where idx_array (1-d int) goes


def _float_for_int(items: list[dict[str, Any]]) -> None:
    items[4] = {**items[4], "content": "1.5", "__id__": 1}  # a fresh id: a node of its own


_SKOPS_EDITS: dict[str, Callable[..., None]] = {
    "tree-short": _edit_state("BallTree", lambda items: items.__delitem__(slice(3, None))),
    "tree-long": _edit_state("BallTree", lambda items: items.append(items[4])),
    "tree-arrays-swapped": _edit_state("BallTree", _swap_first_two),
    "tree-float-for-int": _edit_state("BallTree", _float_for_int),
    "metric-short": _edit_state("MinkowskiDistance64", lambda items: items.pop()),
    "metric-array-for-float": _edit_state(
        "MinkowskiDistance64", lambda items: items.__setitem__(0, items[1])
    ),
}


def test_skops_states_of_real_models_pass(tmp_path: Path, key: safeload.SigningKey) -> None:
    data = _skops_model()
    assert safeload.scan_bytes(data, policy=_SKOPS_POLICY).safe
    path = write_signed_artifact(
        tmp_path / "ok", {"model.skops": data, "safeload.json": _SKOPS_METADATA}, key=key
    )
    model = safeload.load(path, trusted=safeload.Keyring.of([key]), policy=_SKOPS_POLICY)
    assert type(model._tree).__name__ == "BallTree"


@pytest.mark.parametrize("edit", sorted(_SKOPS_EDITS))
def test_skops_wall_refuses_a_crafted_state(edit: str) -> None:
    data = edit_skops_schema(_skops_model(), _SKOPS_EDITS[edit])
    report = safeload.scan_bytes(data, policy=_SKOPS_POLICY)
    assert [p for p in report.problems if "the skops file restores a" in p], report.problems
    assert report.untrusted == ()
