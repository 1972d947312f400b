"""Mutation harness: corrupt a fitted model's arrays and scalars, then load and predict it.

A signed model can still hold arrays that disagree with each other (a column dropped, a dtype
changed, an index out of range). Native code behind ``predict`` trusts those arrays, so the gate
must either refuse such a model or leave it able to fail only as a Python exception. This module
finds every fitted array and integer in an estimator's object graph (``__dict__`` values, nested
estimators, lists, dicts, object arrays, and Cython objects through their ``__reduce__`` state),
derives a bounded, deterministic set of mutants, and judges each one in a forked child with a
memory limit and a timer:

* ``refused``: the gate's own steps (type check, restricted unpickling, ``validate_model``)
  refused the mutant's joblib bytes;
* ``ok`` / ``raised``: it loaded, and every output method returned or raised a Python exception;
* ``crash`` (a signal), ``hang`` (past the time budget) and ``memory`` (a ``MemoryError`` under
  ``RLIMIT_AS``) are failures.

Starting an interpreter per mutant would cost hours, so one worker per shard (started with
single-threaded BLAS, so forking is safe) fits its estimators once and forks a child per mutant;
the fork is the deep copy, so the child mutates the model in place. Run as
``python -m tests.mutations --out FILE`` (``--selftest`` judges probes that must crash, hang and
run out of memory, so a broken harness cannot pass silently).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import io
import json
import os
import random
import resource
import select
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.helpers import BINARY_TREE_STATE

# Outcomes: the first three are acceptable, the last three fail the test.
ACCEPTABLE = ("refused", "ok", "raised")
FAILURES = ("crash", "hang", "memory")
OTHER = ("unbuildable", "harness-error", "gate-error")

TIME_BUDGET = 10.0  # seconds per mutant (load + validate + every output method)
MEMORY_BUDGET = 3 << 30  # RLIMIT_AS headroom above what the worker already maps
CI_PER_ESTIMATOR = 24  # mutants per estimator by default (a prefix of the full list)
ALL_PER_ESTIMATOR = 40  # with --all / SAFELOAD_MUTATIONS=all
SEED = 20260412
HUGE = 10**12
OUTPUT_METHODS = (
    "predict",
    "predict_proba",
    "decision_function",
    "transform",
    "score_samples",
    "inverse_transform",
)

_EXIT = {
    "refused": 10,
    "ok": 11,
    "raised": 12,
    "memory": 13,
    "unbuildable": 14,
    "harness-error": 15,
    "gate-error": 16,
}
_BY_EXIT = {code: name for name, code in _EXIT.items()}

# ---- where the fitted state lives ---------------------------------------------------------------

Step = tuple[str, Any]  # ("attr", name) | ("item", i) | ("key", k) | ("elem", i) |
# ("args", i) | ("state", key) | ("field", name)


@dataclass(frozen=True)
class Site:
    """One mutable value in the model graph: its path, its kind and a priority (lower first)."""

    path: tuple[Step, ...]
    kind: str  # "int", "float", "other", "struct", "field-int", "field-float", "scalar",
    # "state-tuple"
    ndim: int
    priority: int
    size: int = 1

    @property
    def where(self) -> str:
        """A readable path, e.g. ``estimators_[0].tree_.<state>['nodes']['feature']``."""
        out = ""
        for step, key in self.path:
            if step == "attr":
                out += f".{key}"
            elif step in ("item", "elem"):
                out += f"[{key}]"
            elif step == "key":
                out += f"[{key!r}]"
            elif step == "args":
                out += f".<args>[{key}]"
            elif step == "state" and key == "*":
                out += ".<state>"
            elif step == "state":
                out += f".<state>[{key[1] if isinstance(key, tuple) else key!r}]"
            else:
                out += f"[{key!r}]"
        return out.lstrip(".")


def _reduced_by_state(obj: Any) -> bool:
    """A compiled scikit-learn object (Tree, KDTree, losses) whose state only its reduce shows."""
    mod = type(obj).__module__ or ""
    return mod.startswith("sklearn") and type(obj).__reduce__ is not object.__reduce__


def _walkable(obj: Any) -> bool:
    mod = type(obj).__module__ or ""
    return (
        hasattr(obj, "__dict__")
        and mod.split(".")[0] in ("sklearn", "scipy")
        and not _reduced_by_state(obj)
    )


def _reduce(obj: Any) -> tuple[Any, tuple[Any, ...], Any]:
    red = obj.__reduce__()
    return red[0], tuple(red[1]), red[2] if len(red) > 2 else None


# BinaryTree.__getstate__ (KDTree, BallTree), by position: for readable finding paths.
_STATE_NAMES = {13: BINARY_TREE_STATE}
MAX_ITEMS = 2  # members of a list, dict or object array to walk into (the rest are alike)


def find_sites(model: Any) -> list[Site]:
    """Every array and integer reachable from the model, each once (the first path wins)."""
    sites: list[Site] = []
    seen: set[int] = set()

    def visit(obj: Any, path: tuple[Step, ...], fitted: bool, depth: int) -> None:
        if depth > 12 or id(obj) in seen:
            return
        if isinstance(obj, bool | np.bool_ | str | bytes | float | np.floating | type(None)):
            return
        if isinstance(obj, int | np.integer):
            sites.append(Site(path, "scalar", 0, 3 if fitted else 5))
            return
        if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
            # Not deduplicated: joblib writes each reference to an array as its own copy (a
            # KNN's _fit_X and its KDTree's data), so a file can change one and not the other.
            _array_sites(obj, path, fitted, depth)
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            _array_sites(obj, path, fitted, depth)
        elif isinstance(obj, list | tuple):
            for i, item in enumerate(obj[:MAX_ITEMS]):
                visit(item, (*path, ("item", i)), fitted, depth + 1)
        elif isinstance(obj, dict):
            for key in sorted(obj, key=repr)[:MAX_ITEMS]:
                visit(obj[key], (*path, ("key", key)), fitted, depth + 1)
        elif _walkable(obj):
            for name, value in vars(obj).items():
                is_fitted = name.endswith("_") or name.startswith("_")
                visit(value, (*path, ("attr", name)), is_fitted, depth + 1)
        elif _reduced_by_state(obj):
            with contextlib.suppress(Exception):
                _, args, state = _reduce(obj)
                for i, arg in enumerate(args):
                    visit(arg, (*path, ("args", i)), True, depth + 1)
                if isinstance(state, dict):
                    for key, value in state.items():
                        visit(value, (*path, ("state", key)), True, depth + 1)
                elif isinstance(state, tuple):
                    # The state's form itself: a compiled __setstate__ may index it unchecked.
                    sites.append(Site((*path, ("state", "*")), "state-tuple", 1, 0, len(state)))
                    names = _STATE_NAMES.get(len(state), ()) if "Tree" in type(obj).__name__ else ()
                    for i, value in enumerate(state):
                        step = ("state", (i, names[i])) if names else ("state", i)
                        visit(value, (*path, step), True, depth + 1)

    def _array_sites(arr: np.ndarray, path: tuple[Step, ...], fitted: bool, depth: int) -> None:
        base = 0 if fitted else 4
        if arr.dtype.names:
            sites.append(Site(path, "struct", arr.ndim, base + 1, arr.size))
            for name in arr.dtype.names:
                kind = arr.dtype[name].kind
                if kind in "iu":
                    field = Site((*path, ("field", name)), "field-int", arr.ndim, base, arr.size)
                    sites.append(field)
                elif kind == "f":
                    field = Site(
                        (*path, ("field", name)), "field-float", arr.ndim, base + 2, arr.size
                    )
                    sites.append(field)
        elif arr.dtype.hasobject:
            sites.append(Site(path, "other", arr.ndim, base + 2, arr.size))
            for i, item in enumerate(arr.ravel()[:MAX_ITEMS]):
                visit(item, (*path, ("elem", i)), fitted, depth + 1)
        elif arr.dtype.kind in "iu":
            sites.append(Site(path, "int", arr.ndim, base, arr.size))
        elif arr.dtype.kind == "f":
            sites.append(Site(path, "float", arr.ndim, base + 1, arr.size))
        else:
            sites.append(Site(path, "other", arr.ndim, base + 2, arr.size))

    visit(model, (), True, 0)
    return sites


# ---- mutations --------------------------------------------------------------------------------


def _index(arr: np.ndarray, rng: random.Random) -> tuple[int, ...]:
    return tuple(rng.randrange(n) for n in arr.shape)


def _set_element(value: Any) -> Callable[[np.ndarray, random.Random], np.ndarray]:
    def apply(arr: np.ndarray, rng: random.Random) -> np.ndarray:
        if arr.size == 0:
            raise _Unbuildable("empty array")
        out = np.array(arr, copy=True)
        v = value(out) if callable(value) else value
        if out.dtype.kind in "iu":
            info = np.iinfo(out.dtype)
            v = min(max(v, int(info.min)), int(info.max))
        out[_index(out, rng)] = v
        return out

    return apply


def _big(arr: np.ndarray) -> int:
    return int(max(arr.shape or (1,))) + 10**9


def _astype(dtype: Any) -> Callable[[np.ndarray, random.Random], np.ndarray]:
    return lambda arr, rng: arr.astype(dtype)


def _drop_col(arr: np.ndarray, rng: random.Random) -> np.ndarray:
    return np.ascontiguousarray(arr[:, :-1])


def _add_col(arr: np.ndarray, rng: random.Random) -> np.ndarray:
    return np.concatenate([arr, arr[:, -1:]], axis=1)


def _drop_row(arr: np.ndarray, rng: random.Random) -> np.ndarray:
    return arr[:-1].copy()


def _add_row(arr: np.ndarray, rng: random.Random) -> np.ndarray:
    return np.concatenate([arr, arr[-1:]], axis=0)


def _empty(arr: np.ndarray, rng: random.Random) -> np.ndarray:
    return arr[:0].copy()


def _strided(arr: np.ndarray, rng: random.Random) -> np.ndarray:
    return np.repeat(arr, 2, axis=0)[::2]


def _fortran(arr: np.ndarray, rng: random.Random) -> np.ndarray:
    return np.asfortranarray(arr)


# Per kind, in priority order: the ones most likely to reach native code first.
ARRAY_MUTATIONS: dict[str, list[tuple[str, Callable[[np.ndarray, random.Random], np.ndarray]]]] = {
    "int": [
        ("index_high", _set_element(_big)),
        ("drop_row", _drop_row),
        ("index_negative", _set_element(-(10**9))),
        ("to_int32", _astype(np.int32)),
        ("drop_col", _drop_col),
        ("add_row", _add_row),
        ("empty", _empty),
        ("to_object", _astype(object)),
        ("to_float64", _astype(np.float64)),
        ("add_col", _add_col),
        ("fortran", _fortran),
        ("strided", _strided),
    ],
    "float": [
        ("drop_col", _drop_col),
        ("drop_row", _drop_row),
        ("nan", _set_element(np.nan)),
        ("to_float32", _astype(np.float32)),
        ("add_col", _add_col),
        ("empty", _empty),
        ("inf", _set_element(np.inf)),
        ("add_row", _add_row),
        ("to_object", _astype(object)),
        ("to_int64", _astype(np.int64)),
        ("fortran", _fortran),
        ("strided", _strided),
    ],
    "other": [
        ("drop_row", _drop_row),
        ("drop_col", _drop_col),
        ("empty", _empty),
        ("add_row", _add_row),
        ("add_col", _add_col),
        ("to_object", _astype(object)),
    ],
    "struct": [("drop_row", _drop_row), ("add_row", _add_row), ("empty", _empty)],
    "field-int": [
        ("index_high", _set_element(_big)),
        ("index_negative", _set_element(-(10**9))),
    ],
    "field-float": [("nan", _set_element(np.nan)), ("inf", _set_element(np.inf))],
}
_ELEMENT_MUTATIONS = ("index_high", "index_negative", "nan", "inf")
SCALAR_MUTATIONS: list[tuple[str, int]] = [("huge", HUGE), ("minus_one", -1)]
# A Cython object's whole state tuple, shortened (BinaryTree writes 13 items, DistanceMetric 3).
STATE_MUTATIONS: dict[str, Callable[[tuple[Any, ...]], tuple[Any, ...]]] = {
    "truncate_half": lambda state: state[: len(state) // 2],
    "drop_last": lambda state: state[:-1],
}


def applicable(site: Site) -> list[str]:
    """The mutations that make sense for a site, in priority order."""
    if site.kind == "scalar":
        return [name for name, _ in SCALAR_MUTATIONS]
    if site.kind == "state-tuple":
        return list(STATE_MUTATIONS) if site.size else []
    names = []
    for name, _ in ARRAY_MUTATIONS[site.kind]:
        if name in ("drop_col", "add_col", "fortran") and site.ndim < 2:
            continue
        if name in ("drop_row", "add_row", "empty", "strided") and site.ndim < 1:
            continue
        if name in _ELEMENT_MUTATIONS and site.size == 0:
            continue
        names.append(name)
    return names


def select_mutants(sites: list[Site], limit: int, seed: str) -> list[tuple[Site, str]]:
    """Round-robin over sites (fitted arrays first), so the mutants touch distinct attributes.

    Deterministic: sites of equal priority are shuffled with a seed drawn from ``seed`` (the
    estimator's name), and a smaller ``limit`` always gives a prefix of a larger one.
    """
    rng = random.Random(f"{SEED}:{seed}")  # noqa: S311 (reproducible, not secret)
    order = sorted(sites, key=lambda s: (s.priority, rng.random()))
    queues = [(site, applicable(site)) for site in order]
    chosen: list[tuple[Site, str]] = []
    rank = 0
    while len(chosen) < limit and any(rank < len(q) for _, q in queues):
        for site, queue in queues:
            if rank < len(queue) and len(chosen) < limit:
                chosen.append((site, queue[rank]))
        rank += 1
    return chosen


class _Unbuildable(Exception):
    """The mutation does not apply to this value (e.g. an element of an empty array)."""


class _Reduced:
    """Stands in for a Cython object when pickled, with a mutated ``__reduce__`` state.

    The restricted unpickler then rebuilds the real class from the mutated state, exactly as
    it would from a crafted file.
    """

    def __init__(self, cls: Any, args: tuple[Any, ...], state: Any) -> None:
        self.red = (cls, args, state)

    def __reduce_ex__(self, protocol: object) -> tuple[Any, ...]:
        return self.red


def _replace(obj: Any, path: tuple[Step, ...], fn: Callable[[Any], Any]) -> Any:
    """Return obj with the value at path replaced by fn(value) (containers edited in place)."""
    if not path:
        return fn(obj)
    (step, key), rest = path[0], path[1:]
    if step == "attr":
        vars(obj)[key] = _replace(vars(obj)[key], rest, fn)
        return obj
    if step in ("item", "key"):
        if isinstance(obj, tuple):
            items = list(obj)
            items[key] = _replace(items[key], rest, fn)
            return type(obj)(items) if type(obj) is tuple else type(obj)(*items)
        obj[key] = _replace(obj[key], rest, fn)
        return obj
    if step == "elem":
        flat = obj.reshape(-1)
        flat[key] = _replace(flat[key], rest, fn)
        return obj
    if step == "field":
        out = obj.copy()
        out[key] = _replace(np.ascontiguousarray(obj[key]), rest, fn)
        return out
    cls, args, state = _reduce(obj)
    if step == "args":
        items = list(args)
        items[key] = _replace(items[key], rest, fn)
        return _Reduced(cls, tuple(items), state)
    if isinstance(key, tuple):
        key = key[0]
    if key == "*":
        state = _replace(state, rest, fn)
    elif isinstance(state, dict):
        state = dict(state)
        state[key] = _replace(state[key], rest, fn)
    else:
        items = list(state)
        items[key] = _replace(items[key], rest, fn)
        state = tuple(items)
    return _Reduced(cls, args, state)


def mutate(model: Any, site: Site, mutation: str, rng: random.Random) -> Any:
    """Apply one mutation to the model (in place where possible; the caller owns the copy)."""
    if site.kind == "scalar":
        value = dict(SCALAR_MUTATIONS)[mutation]

        def fn(old: Any) -> Any:
            return type(old)(value) if isinstance(old, np.integer) else value
    elif site.kind == "state-tuple":
        fn = STATE_MUTATIONS[mutation]
    else:
        op = dict(ARRAY_MUTATIONS[site.kind])[mutation]

        def fn(old: Any) -> Any:
            if not isinstance(old, np.ndarray):
                raise _Unbuildable(type(old).__name__)
            return op(old, rng)

    return _replace(model, site.path, fn)


def reproduction(estimator: str, site: Site, mutation: str) -> str:
    """A one-line hint to reproduce a finding by hand."""
    return (
        "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=. "
        f"python -m tests.mutations --only {estimator} --site {site.where!r} --mutation {mutation}"
    )


# ---- the verdict, in a forked child -------------------------------------------------------------


def _vm_size() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def gate(data: bytes, policy: Any) -> Any:
    """The gate's steps 4 and 5 on joblib bytes: type check, restricted unpickling, validation."""
    from safeload import _unpickle
    from safeload.typegate import check_types
    from safeload.validation import validate_model

    checked = check_types(bytearray(data), policy, format="joblib")
    model = _unpickle.deserialize_checked(checked, policy)
    validate_model(model, deadline=checked.deadline)  # as safeload.loading does
    return model


def run_outputs(model: Any, X: Any) -> list[str]:
    """Every output method on X; the names of those that raised (MemoryError propagates)."""
    raised = []
    out = None
    for method in OUTPUT_METHODS:
        try:
            fn = getattr(model, method, None)
        except MemoryError:
            raise
        except Exception:
            fn = None
        if fn is None:
            continue
        arg = out if method == "inverse_transform" and out is not None else X
        try:
            result = fn(arg)
            if method == "transform":
                out = result
        except MemoryError:
            raise
        except Exception as exc:
            raised.append(f"{method}:{type(exc).__name__}")
    return raised


def judge(model: Any, X: Any, policy: Any) -> tuple[str, str]:
    """The verdict on one (already mutated) model: dump, gate, and if it loads, predict."""
    import joblib

    from safeload.errors import SafeloadError

    buf = io.BytesIO()
    try:
        joblib.dump(model, buf)
    except MemoryError:
        raise
    except Exception as exc:
        return "unbuildable", f"joblib.dump: {type(exc).__name__}"
    del model
    try:
        loaded = gate(buf.getvalue(), policy)
    except SafeloadError as exc:
        return "refused", str(exc)[:300]
    except MemoryError:
        raise
    except Exception as exc:
        return "gate-error", f"{type(exc).__name__}: {str(exc)[:200]}"
    raised = run_outputs(loaded, X)
    return ("raised", ", ".join(raised)) if raised else ("ok", "")


def run_forked(
    body: Callable[[], tuple[str, str]], *, seconds: float, memory: int
) -> tuple[int, int]:
    """Fork a child that runs body under limits; return (pid, read end of its result pipe)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        return pid, read_fd
    code = _EXIT["harness-error"]
    try:
        os.close(read_fd)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # native loops die too, not only Python
        resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + memory, resource.RLIM_INFINITY))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            outcome, detail = body()
        except MemoryError:
            outcome, detail = "memory", "MemoryError"
        except _Unbuildable as exc:
            outcome, detail = "unbuildable", str(exc)
        except BaseException as exc:
            outcome, detail = "harness-error", f"{type(exc).__name__}: {str(exc)[:200]}"
        code = _EXIT[outcome]
        os.write(write_fd, detail.encode("utf-8", "replace")[:4000])
    finally:
        os._exit(code)


def reap(pid: int, read_fd: int, seconds: float) -> tuple[str, str]:
    """Wait for one child (killing it past the budget); its outcome and detail."""
    deadline = time.monotonic() + seconds + 5.0
    chunks: list[bytes] = []
    status = None
    while status is None:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:  # a child that ignored its own timer (signals blocked)
            os.kill(pid, signal.SIGKILL)
            status = os.waitpid(pid, 0)[1]
            break
        ready, _, _ = select.select([read_fd], [], [], min(remaining, 0.05))
        if ready:
            chunk = os.read(read_fd, 4096)
            if chunk:
                chunks.append(chunk)
    with contextlib.suppress(OSError):
        while chunk := os.read(read_fd, 4096):
            chunks.append(chunk)
    os.close(read_fd)
    detail = b"".join(chunks).decode("utf-8", "replace")
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGALRM, signal.SIGKILL):
            return "hang", f"over {seconds:g} s ({signal.Signals(sig).name})"
        return "crash", signal.Signals(sig).name
    code = os.WEXITSTATUS(status)
    if code in _BY_EXIT:
        return _BY_EXIT[code], detail
    return "crash", f"exit status {code}: {detail}"


# ---- the worker -------------------------------------------------------------------------------


def _policy_for(name: str) -> Any:
    from safeload.policy import TypePolicy
    from tests.test_all_estimators import EXTENSIONS

    policy = TypePolicy.default()
    return policy.extend(EXTENSIONS[name]) if name in EXTENSIONS else policy


def _cases(only: set[str] | None, shard: int, shards: int) -> Iterator[Any]:
    from tests.test_all_estimators import build_cases

    for i, case in enumerate(build_cases()):
        if (only is None or case.name in only) and i % shards == shard:
            yield case


def run_worker(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Fit this shard's estimators once; fork a judged child per mutant; collect the results."""
    from tests.test_all_estimators import fit_case

    only = set(args.only) if args.only else None
    results: list[dict[str, Any]] = []
    for case in _cases(only, args.shard, args.shards):
        start = time.perf_counter()
        try:
            fitted = fit_case(case)
        except Exception as exc:
            results.append(_row(case.name, "-", "baseline", "harness-error", f"fit: {exc!r}", 0))
            continue
        policy = _policy_for(case.name)
        sites = find_sites(fitted)
        chosen: list[tuple[Site | None, str]] = [(None, "baseline")]
        if args.site:
            chosen += [(s, args.mutation) for s in sites if s.where == args.site]
        else:
            chosen += select_mutants(sites, args.limit, case.name)
        for site, mutation in chosen:
            rng = random.Random(f"{SEED}:{case.name}:{site and site.where}:{mutation}")  # noqa: S311

            body = functools.partial(
                _judge_mutant, fitted, site, mutation, rng, case.eval_input, policy
            )
            t0 = time.perf_counter()
            pid, fd = run_forked(body, seconds=args.seconds, memory=args.memory)
            outcome, detail = reap(pid, fd, args.seconds)
            where = "-" if site is None else site.where
            results.append(
                _row(case.name, where, mutation, outcome, detail, time.perf_counter() - t0)
            )
            if site is not None and outcome in FAILURES:
                results[-1]["hint"] = reproduction(case.name, site, mutation)
        print(
            f"{case.name}: {len(chosen)} in {time.perf_counter() - start:.1f}s",
            file=sys.stderr,
            flush=True,
        )
    return results


def _judge_mutant(
    fitted: Any, site: Site | None, mutation: str, rng: random.Random, X: Any, policy: Any
) -> tuple[str, str]:
    """In the child: mutate the (forked, so private) fitted model and judge it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fitted if site is None else mutate(fitted, site, mutation, rng)
        return judge(model, X, policy)


def _row(est: str, where: str, mutation: str, outcome: str, detail: str, secs: float) -> dict:
    return {
        "estimator": est,
        "attribute": where,
        "mutation": mutation,
        "outcome": outcome,
        "detail": detail[:300],
        "seconds": round(secs, 3),
    }


# ---- probes for the harness's own verdicts ------------------------------------------------


def _probe_segfault() -> tuple[str, str]:
    ctypes.string_at(0)
    return "ok", ""


def _probe_hang() -> tuple[str, str]:
    while True:  # a native-looking busy loop: no sleep a signal handler could wake
        pass


def _probe_native_hang() -> tuple[str, str]:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # only the worker's kill helps
    time.sleep(3600)
    return "ok", ""


def _probe_memory() -> tuple[str, str]:
    hog = np.ones(8 << 30, dtype=np.uint8)  # 8 GiB, past any limit set here
    return "ok", str(hog.size)


def _probe_abort() -> tuple[str, str]:
    os.abort()


def _probe_refused() -> tuple[str, str]:
    from sklearn.linear_model import LinearRegression

    from safeload.policy import TypePolicy

    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    model.coef_ = np.array([ctypes.c_int])  # type: ignore[assignment]
    return judge(model, np.zeros((2, 1)), TypePolicy.default())


def _probe_ok() -> tuple[str, str]:
    from sklearn.neighbors import KNeighborsClassifier

    from safeload.policy import TypePolicy

    X = np.arange(20.0).reshape(10, 2)
    model = KNeighborsClassifier(3).fit(X, np.arange(10) % 2)
    return judge(model, X, TypePolicy.default())


PROBES: dict[str, Callable[[], tuple[str, str]]] = {
    "segfault": _probe_segfault,
    "abort": _probe_abort,
    "hang": _probe_hang,
    "native_hang": _probe_native_hang,
    "memory": _probe_memory,
    "refused": _probe_refused,
    "ok": _probe_ok,
}


def run_selftest(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Judge each probe exactly as a mutant is judged."""
    import joblib  # noqa: F401  (imported before forking, as the worker has for mutants)
    import sklearn.linear_model
    import sklearn.neighbors  # noqa: F401

    import safeload.typegate
    import safeload.validation  # noqa: F401

    results = []
    for name, probe in PROBES.items():
        pid, fd = run_forked(probe, seconds=args.seconds, memory=args.memory)
        outcome, detail = reap(pid, fd, args.seconds)
        results.append(_row("selftest", name, name, outcome, detail, 0))
    return results


def main(argv: list[str] | None = None) -> int:
    """Worker entry point; writes a JSON list of results to --out (or stdout)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--limit", type=int, default=CI_PER_ESTIMATOR)
    parser.add_argument("--all", action="store_true", help=f"{ALL_PER_ESTIMATOR} per estimator")
    parser.add_argument("--only", action="append")
    parser.add_argument("--site")
    parser.add_argument("--mutation")
    parser.add_argument("--seconds", type=float, default=TIME_BUDGET)
    parser.add_argument("--memory", type=int, default=MEMORY_BUDGET)
    parser.add_argument("--selftest", action="store_true")
    args = parser.parse_args(argv)
    if args.all:
        args.limit = ALL_PER_ESTIMATOR
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var) != "1":
            parser.error(f"start the worker with {var}=1: forking a threaded BLAS can deadlock")
    results = run_selftest(args) if args.selftest else run_worker(args)
    text = json.dumps(results, indent=1)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
