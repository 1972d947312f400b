"""The trusted-type policy: exact names only, nothing dangerous, every entry real."""

from __future__ import annotations

import importlib
import inspect
import pickle
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from safeload import _default_types as rules
from safeload._default_types import DEFAULT_TYPES
from safeload._unpickle import unpickle_verified
from safeload.errors import MalformedArtifactError, PolicyFileError, UntrustedTypeError
from safeload.policy import (
    TypePolicy,
    UnsafePolicyWarning,
    format_type_name,
    parse_type_name,
    resolve_policy,
)

# ---- crafted streams ----------------------------------------------------------------------------


def _unicode(text: str) -> bytes:
    raw = text.encode()
    if len(raw) < 256:
        return pickle.SHORT_BINUNICODE + bytes([len(raw)]) + raw
    return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw


def call_stream(module: str, qualname: str, *args: str, opcode: str = "STACK_GLOBAL") -> bytes:
    """A protocol-4 pickle that calls ``module.qualname(*args)`` (strings) and returns it."""
    if opcode == "STACK_GLOBAL":
        head = _unicode(module) + _unicode(qualname) + pickle.STACK_GLOBAL
    else:  # the protocol-0 GLOBAL opcode ("module\nname\n")
        head = pickle.GLOBAL + f"{module}\n{qualname}\n".encode()
    body = pickle.MARK + b"".join(_unicode(a) for a in args) + pickle.TUPLE + pickle.REDUCE
    return pickle.PROTO + b"\x04" + head + body + pickle.STOP


def test_call_stream_is_a_real_call(tmp_path: Path) -> None:
    # Control: the crafted stream does call what it names when a plain unpickler reads it.
    marker = tmp_path / "made"
    assert pickle.loads(call_stream("builtins", "open", str(marker), "w")) is not None
    assert marker.exists()


def _touch(marker: Path) -> str:
    return f"touch {marker}"


def _eval_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


# (module, qualname, argument builder): dangerous callables reachable through modules that the
# default policy trusts other names of. A prefix- or module-based policy would run them.
REEXPORTS: list[tuple[str, str, Any]] = [
    ("joblib.numpy_pickle", "os.system", _touch),
    ("joblib.numpy_pickle", "pickle.loads", lambda m: "x"),
    ("numpy._core.numeric", "builtins.eval", _eval_code),
    ("numpy._core.numeric", "builtins.exec", _eval_code),
    ("numpy.ma.core", "builtins.exec", _eval_code),
    ("numpy.core.numeric", "builtins.getattr", lambda m: "x"),
    ("numpy", "load", lambda m: str(m)),
    ("sklearn.compose._column_transformer", "partial", lambda m: "x"),
    ("sklearn.ensemble._bagging", "partial", lambda m: "x"),
    ("sklearn.cluster._kmeans", "check_array", lambda m: "x"),
    ("builtins", "eval", _eval_code),
    ("builtins", "exec", _eval_code),
    ("builtins", "getattr", lambda m: "x"),
    ("builtins", "__import__", lambda m: "os"),
    ("builtins", "open", lambda m: str(m)),
    ("os", "system", _touch),
    ("posix", "system", _touch),
    ("subprocess", "getoutput", _touch),
    ("sklearn.utils", "getattr", lambda m: "x"),
    ("sklearn.tree._classes", "Tree.__init__", lambda m: "x"),
    ("numpy", "ndarray.__reduce__", lambda m: "x"),
    ("numpy", "dtype.__class__", lambda m: "x"),
]


def _resolvable(module: str, qualname: str) -> bool:
    try:
        _resolve(f"{module}:{qualname}")
    except (ImportError, AttributeError):
        return False
    return True


@pytest.mark.parametrize("opcode", ["STACK_GLOBAL", "GLOBAL"])
@pytest.mark.parametrize(
    ("module", "qualname", "arg"), REEXPORTS, ids=[f"{m}.{q}" for m, q, _ in REEXPORTS]
)
def test_reexported_and_dangerous_names_refused(
    module: str, qualname: str, arg: Any, opcode: str, tmp_path: Path
) -> None:
    marker = tmp_path / "PWNED"
    stream = call_stream(module, qualname, arg(marker), opcode=opcode)
    with pytest.raises(UntrustedTypeError) as refused:
        unpickle_verified(bytearray(stream), TypePolicy.default())
    assert refused.value.types == (f"{module}.{qualname}",)
    assert not marker.exists()


def test_reexports_are_real() -> None:
    # The table above is only meaningful if those names resolve in the installed versions
    # (a few are listed for older versions and need not).
    live = [(m, q) for m, q, _ in REEXPORTS if _resolvable(m, q)]
    assert len(live) >= 15, live


def test_exact_name_elsewhere_does_run(tmp_path: Path) -> None:
    # Control: the same stream runs when its exact name is trusted, so the refusals above are
    # the policy's doing, not a broken payload.
    marker = tmp_path / "PWNED"
    with pytest.warns(UnsafePolicyWarning, match=r"joblib\.numpy_pickle:os\.system"):
        policy = TypePolicy.of(["joblib.numpy_pickle:os.system"], unsafe=True)
    unpickle_verified(
        bytearray(call_stream("joblib.numpy_pickle", "os.system", _touch(marker))), policy
    )
    assert marker.exists()


def test_scanner_reports_reexports_without_running(tmp_path: Path) -> None:
    from safeload import typegate as scanning

    marker = tmp_path / "PWNED"
    for module, qualname, arg in REEXPORTS:
        report = scanning.scan_payload(call_stream(module, qualname, arg(marker)))
        assert f"{module}.{qualname}" in report.untrusted
        assert not report.safe
    assert not marker.exists()


# ---- the default list ---------------------------------------------------------------------------

#: Names that run code, import, reach the OS or files, or call/return arbitrary callables.
#: A regression guard on top of the allowlist principle: none may ever be a default entry.
KNOWN_DANGEROUS = [
    *(
        f"builtins:{n}"
        for n in (
            "eval",
            "exec",
            "compile",
            "getattr",
            "setattr",
            "delattr",
            "__import__",
            "open",
            "input",
            "breakpoint",
            "globals",
            "locals",
            "vars",
            "type",
            "super",
            "apply",
            "execfile",
            "help",
            "memoryview",
            "print",
            "str",
            "bytearray",
            "bytes",
            "classmethod",
            "staticmethod",
            "property",
            "dir",
            "exit",
            "quit",
        )
    ),
    *(
        f"os:{n}"
        for n in (
            "system",
            "popen",
            "execv",
            "execve",
            "execvp",
            "spawnv",
            "fork",
            "remove",
            "unlink",
            "rmdir",
            "open",
            "putenv",
            "kill",
        )
    ),
    "posix:system",
    "nt:system",
    "pty:spawn",
    "shutil:rmtree",
    "shutil:copy",
    "shutil:move",
    *(
        f"subprocess:{n}"
        for n in (
            "Popen",
            "call",
            "run",
            "check_call",
            "check_output",
            "getoutput",
            "getstatusoutput",
        )
    ),
    "sys:exit",
    "sys:modules",
    "sys:setprofile",
    "sys:settrace",
    "importlib:import_module",
    "importlib:reload",
    "importlib.machinery:SourceFileLoader",
    "runpy:run_path",
    "runpy:run_module",
    "runpy:_run_code",
    "code:interact",
    "code:InteractiveInterpreter",
    "code:InteractiveConsole",
    "codeop:compile_command",
    "types:FunctionType",
    "types:CodeType",
    "types:LambdaType",
    "types:MethodType",
    "types:ModuleType",
    "marshal:loads",
    "pickle:loads",
    "pickle:load",
    "pickle:Unpickler",
    "pickle:_loads",
    "_pickle:loads",
    "_pickle:load",
    "_pickle:Unpickler",
    "shelve:open",
    "dill:loads",
    "cloudpickle:loads",
    "copyreg:_reconstructor",
    "copyreg:__newobj__",
    "copyreg:__newobj_ex__",
    "copy:deepcopy",
    "_codecs:encode",
    "_codecs:decode",
    "codecs:encode",
    "codecs:decode",
    "codecs:open",
    "io:open",
    "io:FileIO",
    "_io:open",
    "_io:FileIO",
    "pathlib:Path",
    "tempfile:mktemp",
    "socket:socket",
    "socket:create_connection",
    "urllib.request:urlopen",
    "webbrowser:open",
    "ctypes:CDLL",
    "ctypes:cdll",
    "ctypes:pythonapi",
    "ctypes.util:find_library",
    "multiprocessing:Process",
    "threading:Thread",
    "asyncio:create_subprocess_shell",
    "operator:attrgetter",
    "operator:itemgetter",
    "operator:methodcaller",
    "operator:call",
    "functools:partial",
    "functools:reduce",
    "functools:partialmethod",
    "itertools:starmap",
    "builtins:map",
    "builtins:filter",
    "collections:defaultdict",
    "timeit:timeit",
    "pdb:run",
    "trace:Trace",
    "profile:run",
    "cProfile:run",
    "doctest:debug_script",
    "logging.config:listen",
    "venv:create",
    "ensurepip:bootstrap",
    "pip:main",
    # numpy: file and pickle readers, python-function wrappers, code-running helpers
    "numpy:load",
    "numpy:loadtxt",
    "numpy:genfromtxt",
    "numpy:fromfile",
    "numpy:memmap",
    "numpy:save",
    "numpy:savez",
    "numpy:frompyfunc",
    "numpy:vectorize",
    "numpy:piecewise",
    "numpy:apply_along_axis",
    "numpy:apply_over_axes",
    "numpy:fromregex",
    "numpy:DataSource",
    "numpy:str_",
    "numpy:bytes_",
    "numpy:void",
    "numpy:recarray",
    "numpy.lib.npyio:load",
    "numpy.lib._npyio_impl:load",
    "numpy.lib.format:read_array",
    "numpy.testing._private.utils:runstring",
    "numpy.f2py:compile",
    "numpy.distutils:exec",
    "numpy._core.multiarray:_ufunc_reconstruct",
    "numpy.core.multiarray:_ufunc_reconstruct",
    "numpy._core:_ufunc_reconstruct",
    "numpy.core:_ufunc_reconstruct",
    "numpy._core._internal:_ctypes",
    "numpy.ctypeslib:load_library",
    "numpy.random:__RandomState_ctor",
    # joblib: loaders, legacy wrappers that read side files, parallel execution
    "joblib:load",
    "joblib.numpy_pickle:load",
    "joblib.numpy_pickle:NDArrayWrapper",
    "joblib.numpy_pickle:ZNDArrayWrapper",
    "joblib.numpy_pickle_compat:NDArrayWrapper",
    "joblib.numpy_pickle_compat:ZNDArrayWrapper",
    "joblib.numpy_pickle_compat:load_compatibility",
    "joblib:Parallel",
    "joblib:delayed",
    "joblib:Memory",
    # scipy / pandas readers and evaluators
    "scipy.io:loadmat",
    "scipy.sparse:load_npz",
    "scipy.sparse._matrix_io:load_npz",
    "pandas:read_pickle",
    "pandas:eval",
    "pandas.io.pickle:read_pickle",
    # scikit-learn: helpers that run given callables, read files, or trust unchecked arrays
    "sklearn.utils.validation:check_array",
    "sklearn.utils:_safe_indexing",
    "sklearn.utils._joblib:load",
    "sklearn.datasets:load_svmlight_file",
    "sklearn.datasets:fetch_openml",
    "sklearn.utils.fixes:threadpool_limits",
    "sklearn.utils.parallel:delayed",
    "sklearn.utils._testing:assert_run_python_script",
    "sklearn.metrics._dist_metrics:PyFuncDistance64",
    "sklearn.metrics._dist_metrics:PyFuncDistance32",
    "sklearn.metrics:make_scorer",
    "sklearn.metrics._scorer:get_scorer",
    "sklearn.utils._metadata_requests:RequestMethod",
]


#: Dangerous with the file's arguments, trusted by default only under a rule that fixes the one
#: harmless form protocols 0-2 write them in: bytes as ``_codecs.encode(text, 'latin1')``, empty
#: bytes as ``bytes()``, plain objects as ``copyreg._reconstructor(cls, object, None)``;
#: ``functools.partial`` only as ``partial(check_array)`` (HistGradientBoosting's categorical
#: preprocessor), ``check_array`` itself a reference only (``None``: never called by a stream).
RULED_DANGEROUS: dict[str, str | None] = {
    "functools:partial": rules.PARTIAL,
    "sklearn.utils.validation:check_array": None,
    "_codecs:encode": rules.ENCODE,
    "builtins:bytes": rules.NO_ARGS,
    "copyreg:_reconstructor": rules.COPYREG_RECONSTRUCTOR,
}


def test_default_policy_has_no_known_dangerous_name() -> None:
    policy = TypePolicy.default()
    present = [n for n in KNOWN_DANGEROUS if policy.allows(*parse_type_name(n))]
    assert sorted(present) == sorted(RULED_DANGEROUS)
    for name, rule in RULED_DANGEROUS.items():
        assert policy.call_rule(*parse_type_name(name)) == rule, name
    assert set(KNOWN_DANGEROUS) & set(DEFAULT_TYPES) == set(RULED_DANGEROUS)


#: The only builtins the default trusts, each justified in ``_default_types.py``.
ALLOWED_BUILTINS = {
    *("slice", "set", "frozenset", "complex", "float", "int", "bool", "object", "tuple", "dict"),
    "bytes",
}
FORBIDDEN_MODULE_ROOTS = {
    "os",
    "posix",
    "nt",
    "sys",
    "subprocess",
    "importlib",
    "runpy",
    "code",
    "codeop",
    "types",
    "marshal",
    "pickle",
    "_pickle",
    "copyreg",
    "copy",
    "codecs",
    "_codecs",
    "io",
    "_io",
    "socket",
    "urllib",
    "ctypes",
    "multiprocessing",
    "threading",
    "asyncio",
    "operator",
    "functools",
    "itertools",
    "shutil",
    "tempfile",
    "pathlib",
    "pandas",
    "dill",
    "cloudpickle",
}


def test_default_policy_shape() -> None:
    assert len(DEFAULT_TYPES) == len(set(DEFAULT_TYPES)), "duplicate entries"
    assert list(DEFAULT_TYPES) == [n.strip() for n in DEFAULT_TYPES]
    for name in DEFAULT_TYPES:
        module, qualname = name.split(":")
        assert module.split(".")[0] not in FORBIDDEN_MODULE_ROOTS or name in RULED_DANGEROUS, name
        if module == "builtins":
            assert qualname in ALLOWED_BUILTINS, name
        if module == "collections":
            assert qualname == "OrderedDict", name
        assert "." not in qualname, f"{name}: nested qualnames reach attributes of a class"
    assert len(TypePolicy.default()) == len(DEFAULT_TYPES)


def test_default_policy_covers_every_estimator() -> None:
    from sklearn.experimental import (  # noqa: F401 - registers the experimental estimators
        enable_halving_search_cv,
        enable_iterative_imputer,
    )
    from sklearn.utils import all_estimators

    policy = TypePolicy.default()
    missing = [
        f"{c.__module__}.{c.__qualname__}"
        for _, c in all_estimators()
        if not policy.allows(c.__module__, c.__qualname__)
    ]
    assert missing == []


def _resolve(name: str) -> Any:
    module, qualname = name.split(":")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy.core.* warns on numpy 2
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    return obj


def _is_class_or_function(obj: Any) -> bool:
    function_types = {"cython_function_or_method", "_ArrayFunctionDispatcher"}
    return (
        isinstance(obj, type)
        or inspect.isfunction(obj)
        or inspect.isbuiltin(obj)
        or isinstance(obj, np.ufunc)
        or type(obj).__name__ in function_types
    )


#: Entries that are not the canonical (``__module__``, ``__qualname__``) of what they resolve
#: to: spellings that older numpy versions write into pickles.
COMPAT_SPELLINGS = {
    "numpy.core.multiarray:_reconstruct",
    "numpy.core.multiarray:scalar",
    "numpy.core.numeric:_frombuffer",
    "numpy.ma.core:MaskedArray",
    "numpy:bool_",
}


@pytest.mark.parametrize("name", DEFAULT_TYPES)
def test_every_entry_resolves_to_a_class_or_function(name: str) -> None:
    obj = _resolve(name)
    assert _is_class_or_function(obj), f"{name} resolves to {type(obj).__name__}"
    module, qualname = name.split(":")
    canonical = (getattr(obj, "__module__", None), getattr(obj, "__qualname__", obj.__name__))
    if name in COMPAT_SPELLINGS:
        assert canonical != (module, qualname)
    else:
        # What pickle writes for this object is exactly this entry (no alias, no re-export).
        assert canonical == (module, qualname), f"{name} is really {canonical}"
        assert pickle.loads(pickle.dumps(obj, protocol=4)) is obj


# ---- parsing and policy objects ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("numpy:ndarray", ("numpy", "ndarray")),
        ("numpy.ndarray", ("numpy", "ndarray")),
        ("sklearn.tree._tree:Tree", ("sklearn.tree._tree", "Tree")),
        ("sklearn.tree._tree.Tree", ("sklearn.tree._tree", "Tree")),
        ("pkg.mod:Outer.Inner", ("pkg.mod", "Outer.Inner")),
        ("pkg.mod.Outer.Inner", ("pkg.mod.Outer", "Inner")),
        ("  numpy:dtype \n", ("numpy", "dtype")),
    ],
)
def test_parse_type_name(text: str, expected: tuple[str, str]) -> None:
    assert parse_type_name(text) == expected


@pytest.mark.parametrize(
    "text",
    # every dotted part must be an identifier: a space, newline or empty part names no global
    ["", "ndarray", ":ndarray", "numpy:", "a:b:c", ".x", "x.", " : ", "os :system", "os\n:system",
     "a..b:C", "a.b:C.", "a.b:C.<locals>.f", "a-b:C", "1a:C"],
)  # fmt: skip
def test_parse_type_name_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_type_name(text)


def test_format_round_trip() -> None:
    for name in DEFAULT_TYPES:
        module, qualname = parse_type_name(name)
        assert format_type_name((module, qualname)) == f"{module}.{qualname}"


def test_policy_is_exact() -> None:
    policy = TypePolicy.of(["numpy:ndarray", "pkg.mod:Outer.Inner"])
    assert policy.allows("numpy", "ndarray")
    assert not policy.allows("numpy", "ndarray.__reduce__")
    assert not policy.allows("numpy.core", "ndarray")
    assert not policy.allows("numpy", "NDARRAY")
    assert not policy.allows("numpy", "ndarra")
    assert not policy.allows("nump", "ndarray")
    assert policy.allows("pkg.mod", "Outer.Inner")
    assert not policy.allows("pkg.mod.Outer", "Inner")
    assert not policy.allows("pkg.mod", "Outer")


def test_policy_extend_and_report() -> None:
    base = TypePolicy.default()
    extended = base.extend(["mypkg.models:MyEstimator", "mypkg.helpers.scale"])
    assert extended is not base and len(extended) == len(base) + 2
    assert extended.allows("mypkg.models", "MyEstimator")
    assert extended.allows("mypkg.helpers", "scale")
    assert not base.allows("mypkg.models", "MyEstimator")
    assert base.untrusted([("numpy", "ndarray"), ("os", "system"), ("os", "system")]) == [
        "os.system"
    ]
    assert "numpy:ndarray" in list(base)
    with pytest.raises(ValueError):
        base.extend(["nodots"])


def test_resolve_policy() -> None:
    assert resolve_policy(None) is TypePolicy.default()
    custom = TypePolicy.of(["numpy:ndarray"])
    assert resolve_policy(custom) is custom
    assert resolve_policy(["a.b:C"]).allows("a.b", "C")
    assert resolve_policy(["a.b:C"]).allows("numpy", "ndarray")
    # a single string is a policy file's path, never a name: refused as a missing file
    with pytest.raises(PolicyFileError, match=r"a single name\? pass a list"):
        resolve_policy("a.b:C")


# ---- references and callables -----------------------------------------------------------------
#
# A trusted name is either a reference (a stream may store it) or a callable (a stream may also
# call it, in the one form its rule allows). The split is what stops "harmless" names from being
# bombs: numpy.ndarray((10**12,)) or numpy.square(huge) from a 100-byte file.


def test_default_callables_are_trusted_names_with_known_rules() -> None:
    assert set(rules.DEFAULT_CALLS) <= set(DEFAULT_TYPES)
    assert set(rules.CALL_RULES.values()) <= rules.RULES
    policy = TypePolicy.default()
    assert policy.callables == {parse_type_name(n) for n in rules.DEFAULT_CALLS}
    for name in DEFAULT_TYPES:
        module, qualname = parse_type_name(name)
        assert policy.allows(module, qualname)
        assert policy.may_call(module, qualname) == (name in rules.DEFAULT_CALLS)
        assert policy.call_rule(module, qualname) == rules.DEFAULT_CALLS.get(name)


#: Names legitimate pickles only store (measured: ``gen_default_types.py --calls``). Called by a
#: stream, each is a memory bomb, or launders a call (a class a reconstructor instantiates).
MUST_BE_REFERENCES = [
    "numpy:ndarray",
    "numpy:square",
    "numpy:log",
    "numpy:log1p",
    "numpy:exp",
    "numpy:expm1",
    "numpy:sqrt",
    "numpy:mean",
    "numpy:float64",
    "numpy:object_",
    "numpy:number",
    "builtins:float",
    "builtins:int",
    "builtins:bool",
    "builtins:object",
    "numpy.ma:MaskedArray",
    "numpy.ma.core:MaskedArray",
    "numpy.random._mt19937:MT19937",
    "numpy.random._pcg64:PCG64",
    "numpy.random.bit_generator:SeedSequence",
    "numpy.random.mtrand:RandomState",
    "numpy.random._generator:Generator",
    "scipy._lib.array_api_compat.numpy._aliases:asarray",
    "sklearn.neighbors._kd_tree:KDTree",
    "sklearn.neighbors._ball_tree:BallTree",
    "sklearn.metrics._dist_metrics:EuclideanDistance64",
    "sklearn._loss._loss:CyHalfMultinomialLoss",
    "sklearn.metrics._classification:accuracy_score",
    "sklearn.metrics._regression:r2_score",
    "sklearn.feature_selection._univariate_selection:f_classif",
    "sklearn.feature_selection._mutual_info:mutual_info_classif",
    # BisectingKMeans' routine: stored by the model, written out of bounds if a stream called
    # it with inconsistent arrays; validation admits it only in BisectingKMeans._kmeans_single.
    "sklearn.cluster._kmeans:_kmeans_single_lloyd",
    "sklearn.cluster._kmeans:_kmeans_single_elkan",
    # bound by HistGradientBoosting's partial (its rule names it); called only by scikit-learn.
    "sklearn.utils.validation:check_array",
]


@pytest.mark.parametrize("name", MUST_BE_REFERENCES)
def test_stored_only_names_are_references(name: str) -> None:
    module, qualname = parse_type_name(name)
    policy = TypePolicy.default()
    assert policy.allows(module, qualname)
    assert not policy.may_call(module, qualname)
    assert policy.call_rule(module, qualname) is None


#: The only default callables that accept any arguments: classes whose construction stores a
#: few numbers (and joblib's wrapper, which the scanner models). Adding one needs a review.
FREELY_CALLABLE = {
    "joblib.numpy_pickle:NumpyArrayWrapper",
    "builtins:slice",
    "builtins:complex",
    *(n for n in rules.DEFAULT_CALLS if n.startswith("sklearn._loss._loss:Cy")),
    *(n for n in rules.DEFAULT_CALLS if n.startswith("sklearn.linear_model._sgd_fast:")),
}


def test_freely_callable_defaults_are_few_and_reviewed() -> None:
    free = {n for n, rule in rules.DEFAULT_CALLS.items() if rule == rules.ANY}
    assert free == FREELY_CALLABLE


@pytest.mark.parametrize("name", sorted(rules.DEFAULT_CALLS))
def test_no_default_function_is_callable_with_arbitrary_arguments(name: str) -> None:
    # A plain function that a stream may call always comes with a rule that pins its arguments;
    # classes created by NEWOBJ never run their __init__ on the stream's arguments.
    obj = _resolve(name)
    rule = rules.DEFAULT_CALLS[name]
    if not isinstance(obj, type):
        assert rule not in (rules.ANY, rules.NEW), f"{name} is a function callable freely"
    if rule == rules.NEW:
        assert isinstance(obj, type), f"{name} is created by NEWOBJ but is not a class"


def test_bit_generator_classes_are_real_and_references() -> None:
    from numpy.random.bit_generator import BitGenerator

    for name in rules.BIT_GENERATOR_CLASSES:
        assert name in DEFAULT_TYPES and name not in rules.DEFAULT_CALLS
        assert issubclass(_resolve(name), BitGenerator)


def test_extend_and_of_make_names_callable_unless_told_otherwise() -> None:
    base = TypePolicy.default()
    referenced = base.extend(["mypkg.helpers:scale"], callable=False)
    assert referenced.allows("mypkg.helpers", "scale")
    assert not referenced.may_call("mypkg.helpers", "scale")
    assert referenced.call_rule("mypkg.helpers", "scale") is None
    called = referenced.extend(["mypkg.helpers:scale", "mypkg.models:MyEstimator"])
    assert called.may_call("mypkg.helpers", "scale")
    assert called.call_rule("mypkg.models", "MyEstimator") == rules.ANY
    # an extension only ever adds permissions
    again = called.extend(["mypkg.helpers:scale", "numpy:dtype"], callable=False)
    assert again.may_call("mypkg.helpers", "scale") and again.may_call("numpy", "dtype")
    assert base.extend(["numpy:ndarray"], callable=False) == base
    # of(): callable by default; rules are facts about functions and hold in every policy
    custom = TypePolicy.of(["numpy._core.multiarray:_reconstruct", "mypkg:f"])
    assert custom.call_rule("numpy._core.multiarray", "_reconstruct") == rules.RECONSTRUCT
    assert custom.call_rule("mypkg", "f") == rules.ANY
    assert not TypePolicy.of(["mypkg:f"], callable=False).may_call("mypkg", "f")
    # a list of names on top of the default: callable, as a user's own classes need
    assert resolve_policy(["a.b:C"]).may_call("a.b", "C")


def test_a_policy_built_directly_trusts_no_call() -> None:
    names = frozenset({("mypkg", "f")})
    assert TypePolicy(names).call_rule("mypkg", "f") is None
    assert TypePolicy(names, names).call_rule("mypkg", "f") == rules.ANY
    with pytest.raises(ValueError, match="callables"):
        TypePolicy(frozenset(), names)


def _reduce_stream(module: str, qualname: str, args: bytes, *, opcode: bytes = b"R") -> bytes:
    """``module.qualname`` applied to the opcodes ``args`` (a tuple) by REDUCE or NEWOBJ."""
    head = _unicode(module) + _unicode(qualname) + pickle.STACK_GLOBAL
    return pickle.PROTO + b"\x04" + head + args + opcode + pickle.STOP


def _int_tuple(*values: int) -> bytes:
    body = b"".join(
        pickle.LONG1 + bytes([8]) + v.to_bytes(8, "little", signed=True) for v in values
    )
    return pickle.MARK + body + pickle.TUPLE


@pytest.mark.parametrize(
    ("module", "qualname", "args", "opcode"),
    [
        ("numpy", "ndarray", _int_tuple(10**15), pickle.REDUCE),
        ("numpy", "ndarray", _int_tuple(10**15), pickle.NEWOBJ),
        ("numpy", "square", _int_tuple(3), pickle.REDUCE),
        ("numpy", "log1p", _int_tuple(3), pickle.REDUCE),
        ("builtins", "int", _int_tuple(3), pickle.REDUCE),
        ("numpy.random.bit_generator", "SeedSequence", _int_tuple(1), pickle.REDUCE),
        ("sklearn.metrics._regression", "r2_score", _int_tuple(1, 2), pickle.REDUCE),
        ("sklearn.cluster._kmeans", "_kmeans_single_lloyd", _int_tuple(1, 2), pickle.REDUCE),
        ("sklearn.cluster._kmeans", "_kmeans_single_elkan", _int_tuple(1, 2), pickle.REDUCE),
    ],
)
def test_second_wall_refuses_to_call_references(
    module: str, qualname: str, args: bytes, opcode: bytes
) -> None:
    stream = _reduce_stream(module, qualname, args, opcode=opcode)
    with pytest.raises(MalformedArtifactError, match="only as a stored reference"):
        unpickle_verified(bytearray(stream), TypePolicy.default())
    from safeload import typegate as scanning

    report = scanning.scan_payload(stream)
    assert any(f"calls {module}.{qualname}" in p for p in report.problems), report.problems
    # trusted as callable, the same stream runs (the refusal is the split, not a broken stream)
    if qualname in ("square", "log1p", "int"):
        allowed = TypePolicy.default().extend([f"{module}:{qualname}"])
        unpickle_verified(bytearray(stream), allowed)
        assert scanning.scan_payload(stream, policy=allowed).safe
