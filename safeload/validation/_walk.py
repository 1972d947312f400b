"""The walk over a loaded model: every object once, bounded, each handed to its checks.

Which checks apply is decided by the object's class and its bases (its MRO) against classes
named by exact module and name in each family's ``CHECKS``. A model can only hold an instance
of a class whose module is already imported, so the registry is built from ``sys.modules`` and
never imports anything:
validating a pipeline does not pay for importing trees, neighbors and SVMs it does not contain.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

from safeload.errors import MalformedArtifactError, shown
from safeload.typegate.limits import Deadline, ScanLimits
from safeload.validation import (
    bisecting,
    callables,
    cluster,
    decomposition,
    features,
    hist_boosting,
    kernel_approximation,
    linear,
    meta,
    neighbors,
    patterns,
    preprocessing,
    probabilistic,
    selection,
    settings,
    sparse,
    svm,
    text,
    trees,
)
from safeload.validation._base import Check, Checks, Context, Invalid
from safeload.validation.sparse import check_sparse

#: Upper bound on the objects (and object-array elements) one validation visits, unless the
#: caller's limits say otherwise (``validate_model`` uses ``ScanLimits.max_opcodes``).
MAX_OBJECTS = ScanLimits().max_opcodes

_PRIMITIVES = (str, bytes, bytearray, int, float, complex, bool, type(None), np.generic)
_OPAQUE = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    np.ufunc,
    np.dtype,
)
_SPEC: Checks = [
    *features.CHECKS,
    *trees.CHECKS,
    *hist_boosting.CHECKS,
    *neighbors.CHECKS,
    *svm.CHECKS,
    *sparse.CHECKS,
    *cluster.CHECKS,
    *linear.CHECKS,
    *decomposition.CHECKS,
    *probabilistic.CHECKS,
    *bisecting.CHECKS,
    *callables.CHECKS,
    *patterns.CHECKS,
    *preprocessing.CHECKS,
    *kernel_approximation.CHECKS,
    *text.CHECKS,
    *selection.CHECKS,
    *meta.CHECKS,
    *settings.CHECKS,
]
_NATIVE = (
    "It was refused before use because native code would trust these values; re-create the "
    "artifact from the original training run"
)
_REGISTRY_CACHE: dict[frozenset[str], list[tuple[tuple[type, ...], Check]]] = {}


def _join(path: str, where: str) -> str:
    if not where:
        return path
    return path + (where if where.startswith("[") else "." + where)


# A place in the model, built in O(1) per object and rendered only for a refusal: eager path
# strings cost depth x length per object (quadratic for a deep tuple, gigabytes below a huge
# attribute name). ``()`` is the model itself; otherwise (parent, how, step).
_Path = tuple[Any, ...]
_ROOT: _Path = ()
_SHOWN_STEPS = 12


def _render(path: _Path) -> str:
    """``model.steps[1][1].tree_``: the last few steps, each shown short (``errors.shown``)."""
    steps: list[str] = []
    while path and len(steps) <= _SHOWN_STEPS:
        path, how, step = path
        if how == "attr":
            name = step if isinstance(step, str) and len(step) <= 60 else shown(step)
            steps.append(f".{name}")
        elif how == "item":
            steps.append(f"[{step}]")
        else:
            steps.append(f"[{shown(step)}]" if how == "key" else f"<key {shown(step)}>")
    prefix = "model..." if path else "model"
    return prefix + "".join(reversed(steps[:_SHOWN_STEPS]))


class Walker(Context):
    def __init__(
        self,
        max_objects: int,
        limits: ScanLimits,
        deadline: Deadline,
        safe_to_call: tuple[str, ...] = (),
    ) -> None:
        super().__init__(limits, deadline, safe_to_call)
        self.max_objects = max_objects
        self.visited = 0
        self.seen: set[int] = set()
        self.stack: list[tuple[_Path, Any]] = []
        # type -> its checks, for this walk only (a later walk may see more classes loaded).
        self.checks_by_type: dict[type, list[Check]] = {}
        self.registry = _registry()  # the classes loaded now: deserializing loaded them all

    def run(self, root: object) -> None:
        self.stack.append((_ROOT, root))
        steps = 0
        while self.stack:
            path, obj = self.stack.pop()
            steps += 1
            if steps & 1023 == 1:  # the first step too: no walk starts late
                self.deadline.check("validating the model")
            try:
                self.visit(path, obj)
            except Invalid as exc:
                raise MalformedArtifactError(
                    f"the model is structurally invalid at {_join(_render(path), exc.where)}: "
                    f"{exc.message}. {exc.advice or _NATIVE}."
                ) from None

    def push(self, path: _Path, obj: Any) -> None:
        if isinstance(obj, _PRIMITIVES) or isinstance(obj, _OPAQUE):
            return
        if id(obj) in self.seen:
            return
        self.visited += 1
        if self.visited > self.max_objects:
            raise MalformedArtifactError(
                f"the model holds more than {self.max_objects} objects; refusing to walk it "
                f"(reached at {_render(path)})"
            )
        self.seen.add(id(obj))
        self.stack.append((path, obj))

    def visit(self, path: _Path, obj: Any) -> None:
        import scipy.sparse as sp

        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                self.count(obj.size, path)
                flat = np.asarray(obj).reshape(-1)
                if flat.dtype == object:
                    for i, item in enumerate(flat):
                        self.push((path, "item", i), item)
            return
        if sp.issparse(obj):
            check_sparse(obj)
            return
        if isinstance(obj, dict):
            self.count(len(obj), path)
            for key, value in obj.items():
                self.push((path, "key", key), value)
                self.push((path, "keyof", key), key)
            return
        if isinstance(obj, (list, tuple, set, frozenset)):
            self.count(len(obj), path)
            for i, item in enumerate(obj):
                self.push((path, "item", i), item)
            return
        for check in self.checks_of(obj):
            check(self, obj)
        attrs = getattr(obj, "__dict__", None)
        if isinstance(attrs, dict):
            self.count(len(attrs), path)
            for name, value in attrs.items():
                self.push((path, "attr", name), value)

    def checks_of(self, obj: Any) -> list[Check]:
        """:func:`_checks_for`, asked once per class in a walk (300 trees share one class).

        ``isinstance`` asks an object's ``__class__`` too: one that names another class than
        its type is asked afresh every time.
        """
        cls = type(obj)
        if getattr(obj, "__class__", None) is not cls:
            return list(_checks_for(obj, self.registry))
        found = self.checks_by_type.get(cls)
        if found is None:
            found = self.checks_by_type[cls] = list(_checks_for(obj, self.registry))
        return found

    def count(self, n: int, path: _Path) -> None:
        self.visited += n
        if self.visited > self.max_objects:
            raise MalformedArtifactError(
                f"the model holds more than {self.max_objects} objects; refusing to walk it "
                f"(reached at {_render(path)})"
            )


def _checks_for(obj: Any, registry: list[tuple[tuple[type, ...], Check]]) -> Iterator[Check]:
    """The checks that apply to obj: those of a class in its MRO, imported lazily.

    ``isinstance`` without its ABC half: a class's own bases decide, never
    ``ABCMeta.register``. Asking an ABC about a new class walks every subclass it has (a
    millisecond in a fresh process for a forest's or an SVM's bases) and forgets its answers
    whenever anything registers anywhere; no file can register a class, and no check applies
    to a class that does not derive from the one it checks.
    """
    bases = set(type(obj).__mro__)
    claimed = getattr(obj, "__class__", None)
    if isinstance(claimed, type) and claimed is not type(obj):
        bases.update(claimed.__mro__)  # what isinstance would also ask
    for classes, check in registry:
        if not bases.isdisjoint(classes):
            yield check


def _registry() -> list[tuple[tuple[type, ...], Check]]:
    loaded = frozenset(module for names, _ in _SPEC for module, _ in names if module in sys.modules)
    cached = _REGISTRY_CACHE.get(loaded)
    if cached is not None:
        return cached
    registry: list[tuple[tuple[type, ...], Check]] = []
    for names, check in _SPEC:
        classes = tuple(
            cls
            for module, name in names
            if module in sys.modules
            and isinstance(cls := getattr(sys.modules[module], name, None), type)
        )
        if classes:
            registry.append((classes, check))
        _REGISTRY_CACHE[loaded] = registry
    return registry
