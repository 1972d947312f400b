"""Trust written once: policy files, $SAFELOAD_POLICY, and the names no one trusts by accident."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

import safeload
from safeload import _default_types as rules
from safeload._unpickle import unpickle_verified
from safeload.errors import (
    MalformedArtifactError,
    OperationalError,
    PolicyFileError,
    UnsafePolicyError,
    UntrustedTypeError,
)
from safeload.options import LoadOptions, resolve_options
from safeload.policy import (
    POLICY_ENV,
    TypePolicy,
    UnsafePolicyWarning,
    cli_policy,
    parse_type_name,
    resolve_policy,
)
from safeload.policyfile import MAX_POLICY_BYTES, MAX_POLICY_ENTRIES, parse_policy
from safeload.unsafenames import REVIEWED, unsafe_reason
from tests.custom_features import RatioFeatures, clip01
from tests.test_policy import KNOWN_DANGEROUS, call_stream

RATIO = "tests.custom_features:RatioFeatures"
CLIP = "tests.custom_features:clip01"

POLICY = f"""\
# safeload trusted-type policy
[types]
"{RATIO}" = "our own transformer, reviewed in PR 123"
"{CLIP}" = {{ call = false, why = "kept as FunctionTransformer.func, never called by the file" }}

[safe_to_call]
"{CLIP}" = "elementwise clip, bounded cost"
"""


@pytest.fixture(autouse=True)
def _no_env_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POLICY_ENV, raising=False)


@pytest.fixture(scope="module")
def custom(iris: tuple[np.ndarray, np.ndarray]) -> Pipeline:
    X, y = iris
    return make_pipeline(
        RatioFeatures(), FunctionTransformer(clip01), LogisticRegression(max_iter=300)
    ).fit(X, y)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return path


def _write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- the golden path: a user's class trusted once, in a file ---------------------------------


def test_policy_file_trusts_a_users_class_for_save_and_load(
    tmp_path: Path, custom: Pipeline, policy_file: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    key = safeload.generate_key()
    ring = safeload.Keyring.of([key])
    X, _ = iris
    with pytest.raises(UntrustedTypeError) as refused:  # without the file: refused at save
        safeload.save(custom, tmp_path / "no", key=key)
    assert set(refused.value.types) == {RATIO.replace(":", "."), CLIP.replace(":", ".")}
    art = safeload.save(custom, tmp_path / "m", key=key, policy=str(policy_file))
    model = safeload.load(art, trusted=ring, policy=policy_file)  # str or PathLike
    np.testing.assert_array_equal(model.predict(X), custom.predict(X))
    with pytest.raises(UntrustedTypeError):
        safeload.load(art, trusted=ring)
    assert safeload.verify_artifact(art, trusted=ring, policy=policy_file).scan.safe
    assert safeload.inspect(art, trusted=ring, policy=policy_file).verdict == "verified"
    assert safeload.inspect(art, trusted=ring).verdict == "refused"


def test_the_environment_variable_is_the_policy_when_the_caller_gives_none(
    tmp_path: Path,
    custom: Pipeline,
    policy_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    iris: tuple[np.ndarray, np.ndarray],
) -> None:
    key = safeload.generate_key()
    ring = safeload.Keyring.of([key])
    monkeypatch.setenv(POLICY_ENV, str(policy_file))
    store = safeload.Store(tmp_path / "store")  # built before any load: reads the file per load
    store.save(custom, "ratio", "1.0.0", key=key)
    np.testing.assert_array_equal(
        store.load("ratio", "1.0.0", trusted=ring).predict(iris[0]), custom.predict(iris[0])
    )
    art = store.path("ratio", "1.0.0")
    assert safeload.load(art, trusted=ring) is not None
    assert safeload.scan(art / "model.joblib").safe
    # An explicit policy wins over the variable: a list extends the default, not the file.
    with pytest.raises(UntrustedTypeError):
        safeload.load(art, trusted=ring, policy=["mylib:Other"])
    with pytest.raises(UntrustedTypeError):
        store.load("ratio", "1.0.0", trusted=ring, policy=TypePolicy.default())
    monkeypatch.delenv(POLICY_ENV)
    with pytest.raises(UntrustedTypeError):
        store.load("ratio", "1.0.0", trusted=ring)


def test_the_variable_fails_closed_on_a_missing_or_broken_file(
    tmp_path: Path, artifact: Path, key: safeload.SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = safeload.Keyring.of([key])
    monkeypatch.setenv(POLICY_ENV, str(tmp_path / "absent.toml"))
    # even a model the default policy accepts: a configured policy that cannot be read is an
    # error, never a silent fall-back to the default
    with pytest.raises(PolicyFileError, match=r"\$SAFELOAD_POLICY=.*absent\.toml"):
        safeload.load(artifact, trusted=ring)
    with pytest.raises(PolicyFileError):
        safeload.scan(artifact / "model.joblib")
    _write(tmp_path, "[types]\nnot toml at all\n", "absent.toml")
    with pytest.raises(PolicyFileError, match="not valid TOML"):
        safeload.load(artifact, trusted=ring)
    assert isinstance(PolicyFileError("x"), OperationalError)
    # the explicit argument wins: the variable is not even read
    assert safeload.load(artifact, trusted=ring, policy=TypePolicy.default()) is not None
    monkeypatch.setenv(POLICY_ENV, "")  # set but empty: not configured
    assert safeload.load(artifact, trusted=ring) is not None


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = _write(tmp_path, "[types]\n")
    first = TypePolicy.from_file(path)
    assert TypePolicy.from_file(path) is first  # cached while unchanged
    path.write_text(f'[types]\n"{RATIO}" = "added later"\n')
    assert TypePolicy.from_file(path).allows(*RATIO.split(":"))


def test_safe_to_call_from_the_file_reaches_validation(
    tmp_path: Path, custom: Pipeline, policy_file: Path
) -> None:
    key = safeload.generate_key()
    ring = safeload.Keyring.of([key])
    art = safeload.save(custom, tmp_path / "m", key=key, policy=policy_file)
    without = _write(tmp_path, f'[types]\n"{RATIO}" = ""\n"{CLIP}" = {{ call = false }}\n')
    with pytest.raises(MalformedArtifactError, match=r"clip01"):
        safeload.load(art, trusted=ring, policy=without)
    options = LoadOptions(policy=policy_file, safe_to_call=["numpy:log1p"])
    assert options.safe_to_call == ("numpy:log1p", CLIP)
    assert safeload.load(art, trusted=ring, options=options) is not None
    # another policy given on top replaces the file's vouching, not just its names
    assert resolve_options(options, policy=without).safe_to_call == ("numpy:log1p",)
    # a [safe_to_call] name is trusted as a stored reference, never as a call
    policy = TypePolicy.from_file(policy_file)
    assert policy.allows(*CLIP.split(":")) and not policy.may_call(*CLIP.split(":"))
    assert policy.may_call(*RATIO.split(":"))
    # the same through the API: extend(..., safe_to_call=True) vouches on top of trusting
    vouched = TypePolicy.default().extend([CLIP], callable=False, safe_to_call=True)
    assert LoadOptions(policy=vouched).safe_to_call == (CLIP,)


def test_file_entries_keep_the_default_and_mean_what_they_say(policy_file: Path) -> None:
    policy = TypePolicy.from_file(policy_file)
    default = TypePolicy.default()
    assert policy.names >= default.names and policy.callables >= default.callables
    assert len(policy) == len(default) + 2
    assert policy.call_rule(*RATIO.split(":")) == rules.ANY
    assert policy.call_rule(*CLIP.split(":")) is None
    assert resolve_policy(policy_file) == policy == resolve_policy(str(policy_file))
    assert not any(parse_policy("# nothing\n[types]\n[safe_to_call]\n"))


# ---- strict parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[type]\n"a.b:C" = ""\n', r"line 1: unknown key or table 'type'"),
        ("version = 1\n[types]\n", r"unknown key or table 'version'"),
        (
            '[types]\n"a.b:C" = { why = "x", calls = false }\n',
            r"line 2: .*unknown key\(s\) \['calls'\]",
        ),
        ('[types]\n"a.b:C" = { call = "no" }\n', r"`call` must be a bool, not a string"),
        ('[types]\n"a.b:C" = { unsafe = 1 }\n', r"`unsafe` must be a bool, not a int"),
        ('[types]\n"a.b:C" = { why = 3 }\n', r"`why` must be a str"),
        ('[types]\n"a.b:C" = true\n', r"a string \(why it is trusted\) or an inline table"),
        ('[types]\n"a.b:C" = ["x"]\n', r"not a array"),
        ('[types]\n"a.b.C" = ""\n', r"with the colon"),
        ('[types]\n" a.b:C" = ""\n', r"no spaces"),
        ('[types]\n"a b:C" = ""\n', r"not a type name"),
        ('[types]\n"a.b:C.<locals>.f" = ""\n', r"not a type name"),
        ('[safe_to_call]\n"a.b:f" = { call = true }\n', r"unknown key\(s\) \['call'\]"),
        ("types = 3\n", r"`types` must be a table"),
        ('[types]\n"a.b:C" = ""\n"a.b:C" = ""\n', r"not valid TOML.*line 3"),
        ("[types\n", r"not valid TOML"),
    ],
)
def test_strict_parsing_names_the_file_line_and_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PolicyFileError, match=message) as refused:
        TypePolicy.from_file(path)
    assert str(path) in str(refused.value)


def test_entry_count_is_bounded(tmp_path: Path) -> None:
    lines = "".join(f'"m{i}.x:C" = ""\n' for i in range(MAX_POLICY_ENTRIES + 1))
    with pytest.raises(PolicyFileError, match=f"over {MAX_POLICY_ENTRIES} entries"):
        TypePolicy.from_file(_write(tmp_path, "[types]\n" + lines))


def test_size_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with open(path, "wb") as handle:  # sparse: 8 GiB that would take long to read
        handle.truncate(8 << 30)
    with pytest.raises(PolicyFileError, match=f"over the limit of {MAX_POLICY_BYTES}"):
        TypePolicy.from_file(path)


def test_not_utf8_and_not_regular_files_are_refused(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b"# caf\xe9\n")
    with pytest.raises(PolicyFileError, match="not UTF-8"):
        TypePolicy.from_file(latin1)
    with pytest.raises(PolicyFileError, match="not a regular file"):
        TypePolicy.from_file(tmp_path)
    with pytest.raises(PolicyFileError, match=r"cannot read.*\(a single name\? pass a list"):
        safeload.LoadOptions(policy="mylib.features:Thing")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "policy.toml"
    os.mkfifo(fifo)
    code = (
        "import sys, safeload\n"
        "try:\n    safeload.TypePolicy.from_file(sys.argv[1])\n"
        "except safeload.PolicyFileError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=60
    )
    assert "not a regular file" in done.stdout, done.stderr


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_file_anyone_may_write_is_refused(policy_file: Path) -> None:
    policy_file.chmod(0o666)
    with pytest.raises(PolicyFileError, match="writable by every user"):
        TypePolicy.from_file(policy_file)
    policy_file.chmod(0o644)
    assert TypePolicy.from_file(policy_file).allows(*RATIO.split(":"))


# ---- the names no one trusts by accident -----------------------------------------------------

#: (what a user types after --allow, the reason it is refused): one of each kind of door.
DOORS: list[tuple[str, str]] = [
    ("os:system", r"in `os`, a module for the OS"),
    ("posix:system", r"in `posix`, a module for the OS"),
    ("nt:system", r"in `nt`"),
    ("os.path:join", r"in `os\.path`"),  # a submodule: the whole package is the door
    ("posixpath:expanduser", r"in `posixpath`"),
    ("subprocess:Popen", r"in `subprocess`"),
    ("subprocess.Popen", r"in `subprocess`"),  # the dotted spelling is the same name
    (" os:system\n", r"in `os`"),  # surrounding whitespace is stripped, then judged
    ("OS:system", r"in `OS`"),  # case folded: PYTHONCASEOK imports os.py for OS
    ("\uff4fs:getcwd", r"in `\uff4fs`"),  # fullwidth o: NFKC-folded to os
    ("importlib:import_module", r"in `importlib`"),
    ("importlib.machinery:SourceFileLoader", r"in `importlib\.machinery`"),
    ("runpy:run_path", r"in `runpy`"),
    ("ctypes:CDLL", r"in `ctypes`"),
    ("socket:create_connection", r"a module for the network"),
    ("shutil:rmtree", r"in `shutil`"),
    ("pickle:loads", r"deserializers that run code"),
    ("_pickle:Unpickler", r"deserializers that run code"),
    ("marshal:loads", r"deserializers that run code"),
    ("dill:loads", r"deserializers"),
    ("joblib:load", r"deserializers"),
    ("cPickle:loads", r"in `cPickle`"),  # Python 2 spellings, as written...
    ("commands:getoutput", r"in `commands`"),
    ("__builtin__:eval", r"`eval` evaluates text as code"),  # ...and as pickle translates them
    ("__builtin__:file", r"`builtins\.file` reaches the interpreter"),
    ("builtins:eval", r"`eval` evaluates text as code"),
    ("builtins:exec", r"evaluates text"),
    ("builtins:compile", r"evaluates text"),
    ("builtins:getattr", r"reaches attributes by name"),
    ("builtins:setattr", r"reaches attributes by name"),
    ("builtins:vars", r"reaches attributes by name"),
    ("builtins:globals", r"reaches attributes by name"),
    ("builtins:open", r"opens files"),
    ("builtins:input", r"reads input"),
    ("builtins:breakpoint", r"starts a debugger"),
    ("builtins:apply", r"calls what it is given"),
    ("builtins:type", r"`builtins\.type` reaches the interpreter"),
    ("builtins:__import__", r"`__import__` is interpreter attribute machinery"),
    ("numpy:ndarray.__reduce__", r"`__reduce__` is interpreter attribute machinery"),
    ("mylib:Model.__class__", r"`__class__`"),
    ("mylib:Model.__init__.__globals__", r"`__init__`"),
    ("numpy:os.system", r"reaches the module `os` through `numpy`"),  # re-exports
    ("sklearn:utils.sys.modules", r"reaches the module `sys`"),
    ("numpy.testing._private.utils:os", r"in `numpy\.testing"),
    ("numpy._core._internal:_ctypes", r"`_ctypes` is the module `ctypes` re-exported"),
    ("sklearn.utils:getattr", r"`getattr` reaches attributes by name, in whatever module"),
    ("operator:attrgetter", r"in `operator`"),
    ("mylib.vendored:methodcaller", r"`methodcaller` reaches attributes"),
    ("types:FunctionType", r"in `types`"),
    ("types:CodeType", r"in `types`"),
    ("numpy:load", r"`load` loads serialized objects"),  # loaders, in any module
    ("numpy:loadtxt", r"`loadtxt` loads"),
    ("numpy.lib.npyio:NpzFile", r"`numpy\.lib\.npyio` reads files"),
    ("pandas:read_pickle", r"`read_pickle` loads"),
    ("torch:load", r"`load` loads"),
    ("yaml:unsafe_load", r"in `yaml`"),
    ("mylib.io_utils:unsafe_load", r"`unsafe_load` loads"),
    ("mylib:NumpyUnpickler", r"`NumpyUnpickler` loads"),
    ("numpy:memmap", r"opens files"),
    ("pandas:eval", r"evaluates text"),
    ("mylib:spawnve", r"runs processes"),
    ("os:execvpe", r"in `os`"),
    ("mylib.x:execvpe", r"runs processes"),
    ("numpy:vectorize", r"calls what it is given"),
    ("mylib:partial", r"calls what it is given"),
    ("numpy.random:__RandomState_ctor", r"calls the callable it is given"),
    ("sklearn.metrics._dist_metrics:PyFuncDistance64", r"calls the callable"),
    ("sklearn.datasets:fetch_openml", r"in `sklearn\.datasets`"),
    ("webbrowser:open", r"in `webbrowser`"),
    ("tempfile:mktemp", r"in `tempfile`"),
    ("pathlib:Path", r"in `pathlib`"),
    ("io:open", r"in `io`"),
    ("asyncio:create_subprocess_shell", r"in `asyncio`"),
    ("multiprocessing.connection:Client", r"in `multiprocessing\.connection`"),
    ("logging.config:listen", r"`logging\.config` reads files"),
    ("logging:FileHandler", r"opens files"),
    ("copy:deepcopy", r"in `copy`"),
    ("functools:reduce", r"in `functools`"),
    ("pty:spawn", r"in `pty`"),
    ("code:interact", r"in `code`"),
    ("gc:get_objects", r"in `gc`"),
]


@pytest.mark.parametrize(("name", "why"), DOORS, ids=[n.strip() for n, _ in DOORS])
def test_every_way_in_refuses_a_door_with_its_reason(tmp_path: Path, name: str, why: str) -> None:
    for attempt in (
        lambda: TypePolicy.default().extend([name]),
        lambda: TypePolicy.default().extend([name], callable=False),
        lambda: TypePolicy.of([name]),
        lambda: resolve_policy([name]),
        lambda: LoadOptions(policy=[name]),
        lambda: cli_policy(allow=[name]),
    ):
        with pytest.raises(UnsafePolicyError, match=why) as refused:
            attempt()
        assert "refused even when asked" in str(refused.value)
        assert "--unsafe-allow" in str(refused.value) and "unsafe=True" in str(refused.value)
    stripped = name.strip()
    key = stripped if ":" in stripped else ":".join(stripped.rsplit(".", 1))
    path = _write(tmp_path, f'# header\n[types]\n"{key}" = "I was told to"\n')
    with pytest.raises(UnsafePolicyError, match=r"p\.toml: line 3: \[types\].*`unsafe = true`"):
        TypePolicy.from_file(path)
    # a direct construction cannot smuggle it past the rule either
    pair = tuple(key.split(":"))
    with pytest.raises(UnsafePolicyError):
        TypePolicy(frozenset({pair}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        RATIO,
        CLIP,
        "mylib.features:TextCleaner",
        "mylib.models:Outer.Inner",
        "mylib:Workload",  # "load" inside a word is not a loader
        "mylib:payload_size",
        "mylib.ext._cy:__pyx_unpickle_Grid",  # Cython's reconstructor of a user's own type
        "datetime:date",
        "builtins:len",
        "collections:OrderedDict",
        "mylib.os_tools:Cleaner",  # a package named like os, but not os
        "mylib:Select",
        "__main__:MyTransformer",  # a class defined in a script
        "pandas.core.frame:DataFrame",
    ],
)
def test_ordinary_names_pass(name: str) -> None:
    assert TypePolicy.default().extend([name]).allows(*name.split(":"))


def test_names_that_are_not_identifiers_are_refused() -> None:
    for text in ("os :system", "os:sys tem", "os\n:system", "a.b:C;D", "a..b:C", "a.b:C."):
        with pytest.raises(ValueError, match="not a type name"):
            TypePolicy.default().extend([text])
    with pytest.raises(TypeError, match="not one string"):
        TypePolicy.default().extend("os:system")
    with pytest.raises(TypeError, match="not bytes"):
        TypePolicy.default().extend([b"os:system"])  # type: ignore[list-item]


def test_no_default_name_trips_the_rule_and_the_reviewed_doors_are_pinned() -> None:
    import safeload.unsafenames as un

    reviewed = {f"{m}:{q}" for m, q in REVIEWED}
    assert reviewed == set(rules.DEFAULT_TYPES) | set(rules.CALL_RULES)
    assert all(unsafe_reason(*n.split(":")) is None for n in reviewed)
    assert TypePolicy.default().unsafe == frozenset()
    # Without the review's exemption, exactly these reviewed names are doors: each is called
    # only in the one form its call rule fixes. A new default name that is a door must be
    # added here, after a review, or this fails.
    raw = {n for n in reviewed if un._module_door(n.split(":")[0]) or un._name_door(*n.split(":"))}
    assert raw == {
        "copyreg:__newobj__",
        "copyreg:__newobj_ex__",
        "copyreg:_reconstructor",
        "functools:partial",
        "joblib.numpy_pickle:NumpyArrayWrapper",
        "numpy._core.multiarray:_reconstruct",
        "numpy.core.multiarray:_reconstruct",
        "numpy.random._pickle:__bit_generator_ctor",
        "numpy.random._pickle:__generator_ctor",
        "numpy.random._pickle:__randomstate_ctor",
    }
    assert all(
        rules.CALL_RULES.get(n) not in (None, rules.ANY) or n.startswith("joblib") for n in raw
    )


#: Names of test_policy's KNOWN_DANGEROUS that are not doors to code or the OS: dangerous to
#: call with a file's arguments (memory, laundering), which the call rules and the walls judge.
NOT_DOORS = {
    "_codecs:decode",
    "builtins:bytearray",
    "builtins:classmethod",
    "builtins:dir",
    "builtins:memoryview",
    "builtins:print",
    "builtins:property",
    "builtins:staticmethod",
    "builtins:str",
    "builtins:super",
    "codecs:decode",
    "codecs:encode",
    "collections:defaultdict",
    "numpy:bytes_",
    "numpy:recarray",
    "numpy:str_",
    "numpy:void",
    "sklearn.metrics._scorer:get_scorer",
    "sklearn.metrics:make_scorer",
    "sklearn.utils._metadata_requests:RequestMethod",
    "sklearn.utils.fixes:threadpool_limits",
    "sklearn.utils:_safe_indexing",
}


def test_known_dangerous_names_are_doors_unless_reviewed_or_only_costly() -> None:
    passing = {
        n
        for n in KNOWN_DANGEROUS
        if unsafe_reason(*parse_type_name(n)) is None and parse_type_name(n) not in REVIEWED
    }
    assert passing == NOT_DOORS


# ---- insisting: unsafe=True, --unsafe-allow, unsafe = true ------------------------------------


def test_unsafe_is_accepted_and_warns_every_time(
    tmp_path: Path, artifact: Path, key: safeload.SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.warns(UnsafePolicyWarning, match="os:system"):
        policy = TypePolicy.default().extend(["os:system"], callable=False, unsafe=True)
    assert policy.unsafe == {("os", "system")} and not policy.may_call("os", "system")
    assert policy.extend(["mylib:X"]).unsafe == policy.unsafe  # kept through extensions
    path = _write(tmp_path, '[types]\n"os:system" = { call = false, unsafe = true, why = "lab" }\n')
    with pytest.warns(UnsafePolicyWarning, match=r"p\.toml trusts os:system"):
        assert TypePolicy.from_file(path).names == policy.names
    ring = safeload.Keyring.of([key])
    monkeypatch.setenv(POLICY_ENV, str(path))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            safeload.load(artifact, trusted=ring)
        safeload.load(artifact, trusted=ring, policy=policy)
        safeload.scan(artifact / "model.joblib", policy=path)
    unsafe = [w for w in seen if issubclass(w.category, UnsafePolicyWarning)]
    assert len(unsafe) == 5, [str(w.message) for w in unsafe]  # once per operation
    assert "$SAFELOAD_POLICY=" in str(unsafe[0].message)
    with pytest.warns(UnsafePolicyWarning):
        cli = cli_policy(allow=[RATIO], unsafe_allow=["posix:system"], policy_file=None)
    assert cli is not None and cli.may_call("posix", "system") and cli.may_call(*RATIO.split(":"))


def test_an_unsafe_name_still_meets_both_walls_and_validation(
    tmp_path: Path, marker: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    """unsafe=True is the caller's choice to trust a name, not to let the file do anything."""
    with pytest.warns(UnsafePolicyWarning):  # os.system pickles as posix.system (nt on Windows)
        stored_only = TypePolicy.default().extend(
            ["os:system", f"{os.system.__module__}:system"], callable=False, unsafe=True
        )
    stream = call_stream("os", "system", f"touch {marker}")
    with pytest.raises(MalformedArtifactError, match="only as a stored reference"):
        unpickle_verified(bytearray(stream), stored_only)
    report = safeload.scan_bytes(stream, policy=stored_only)
    assert not report.safe and report.untrusted == ()
    assert not marker.exists()
    # Stored where scikit-learn calls it on data: validation refuses what nobody vouched for.
    X, y = iris
    model = make_pipeline(FunctionTransformer(os.system)).fit(X, y)
    key = safeload.generate_key()
    art = safeload.save(model, tmp_path / "m", key=key, policy=stored_only)
    with pytest.warns(UnsafePolicyWarning), pytest.raises(MalformedArtifactError, match="system"):
        safeload.load(art, trusted=safeload.Keyring.of([key]), policy=stored_only)
    assert not marker.exists()
    assert pickle.dumps(stored_only)  # a policy stays a plain value


def test_cli_policy_is_none_when_nothing_is_asked(policy_file: Path) -> None:
    assert cli_policy(None, None, None) is None
    assert cli_policy([], [], None) is None
    from_file = cli_policy(None, None, str(policy_file))
    assert from_file == TypePolicy.from_file(policy_file)
    both = cli_policy(["mylib:Extra"], None, str(policy_file))
    assert both is not None and both.allows("mylib", "Extra") and both.allows(*RATIO.split(":"))
    with pytest.raises(UnsafePolicyError, match="--unsafe-allow"):
        cli_policy(["os:system"], None, None)


def test_resolve_in_a_fresh_interpreter_reads_the_variable(policy_file: Path) -> None:
    code = textwrap.dedent(
        """
        import safeload
        print(safeload.LoadOptions().types.allows("tests.custom_features", "RatioFeatures"))
        """
    )
    env = {**os.environ, POLICY_ENV: str(policy_file), "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.stdout.strip() == "True", done.stderr
