"""The attack suite: every hostile file of ``tests/attacks/corpus.py`` against both walls.

For each attack, refused for its *own* reason (``INFO[name].expect``, a regex on the offending
global or the specific rule or limit: a refusal for some incidental reason does not count):

* the static scan refuses it (``scan_bytes(...).safe is False``), names that reason among
  ``report.untrusted`` / ``report.problems``, and never raises;
* signed by a *trusted* key as an artifact, ``safeload.load`` refuses it at the scanner, with
  that reason: the restricted unpickler is replaced by a tripwire, so that the second wall
  cannot hide a hole in the first;
* the second wall alone (``_unpickle.unpickle_verified``, as if the scanner had a bug) raises a
  SafeloadError with its own reason (``INFO[name].second_wall_reason``);
* and in all three the marker file that the payload would create never appears.

Tests that could hang or crash if their defence regressed carry a hard time bound (a
``timeout`` marker, or a subprocess with ``timeout=``), so a regression fails fast.

A sanity check proves the corpus is real: plain ``pickle.loads``/``joblib.load`` in a throwaway
subprocess DOES create the marker, for every attack that fires on load. Nothing hostile is ever
unpickled in this process except through safeload's own loader.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import NoReturn

import pytest

import safeload
from safeload import _unpickle
from safeload.saving import write_signed_artifact
from safeload.typegate import ScanLimits
from safeload.typegate.compression import decompress
from tests.attacks.corpus import ATTACKS, BENIGN, BENIGN_EXTRA_TYPES, BOUNDED, INFO

ROOT = Path(__file__).resolve().parents[1]
METADATA = json.dumps(
    {"safeload_format_version": 1, "format": "joblib", "name": "x", "version": "1"}
).encode()

# Attacks the current code does NOT stop, per test. Each is a finding, kept as a strict xfail so
# the suite stays green while it is open and fails (XPASS) the moment it is fixed: then delete
# the entry. Never add an entry to make a regression pass.
_SCANNER_GAPS: dict[str, str] = {}
_SECOND_WALL_GAPS: dict[str, str] = {}
KNOWN_GAPS: dict[str, dict[str, str]] = {
    "scan": _SCANNER_GAPS,
    "load": _SCANNER_GAPS,
    "second_wall": _SECOND_WALL_GAPS,
}

# Compression bombs: the decompressor, not the unpickler, bounds them (and the second wall
# test would first need their 1 GiB decompressed).
COMPRESSION_BOMBS = ("bomb_zlib_1gib", "bomb_lz4_1gib")


def _params(names: list[str], test: str) -> list[object]:
    gaps = KNOWN_GAPS[test]
    return [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=f"FINDING: {gaps[name]}")]
            if name in gaps
            else [],
        )
        for name in names
    ]


ALL = sorted(ATTACKS)
SECOND_WALL = sorted(
    n for n in ATTACKS if not INFO[n].second_wall_skip and n not in COMPRESSION_BOMBS
)
SECOND_WALL_EXCLUDED = {
    **{n: INFO[n].second_wall_skip for n in ATTACKS if INFO[n].second_wall_skip},
    **{n: "decompression limits bound it, not the unpickler" for n in COMPRESSION_BOMBS},
}
FIRING = sorted(n for n in ATTACKS if INFO[n].fires in ("pickle", "joblib", "async"))


@pytest.fixture(scope="module")
def signer() -> safeload.SigningKey:
    return safeload.generate_key()


def _build(name: str, marker: Path) -> bytes:
    return ATTACKS[name](marker)


def _policy(name: str) -> safeload.TypePolicy:
    """What the victim trusts: the default policy, plus any names the attack says a user added.

    A victim who trusts a door to code or the OS (``logging:FileHandler``) had to insist.
    """
    info = INFO[name]
    policy = safeload.TypePolicy.default().extend(info.policy, unsafe=True)
    return policy.extend(info.references, callable=False, unsafe=True)


def _assert_reason(expect: str, reasons: list[str], what: str) -> None:
    """One of ``reasons`` must match ``expect``: the attack was refused for its own reason."""
    assert any(re.search(expect, reason) for reason in reasons), (
        f"{what}: no reason matches {expect!r}; got {reasons!r}"
    )


def _error_reasons(exc: BaseException) -> list[str]:
    """What a refusal says: its message, the names it carries, the error it wraps."""
    reasons = [str(exc), *getattr(exc, "types", ())]
    if exc.__cause__ is not None:
        reasons.append(type(exc.__cause__).__name__)
    return reasons


def _bomb_precondition(name: str, data: bytes) -> None:
    """Bombs and memory attacks hang or crash the process if they get through: never let them."""
    if (INFO[name].bomb or INFO[name].isolate) and safeload.scan_bytes(
        data, policy=_policy(name)
    ).safe:
        pytest.fail(f"{name}: the scanner accepts it; load() would hang or crash")


def _second_wall_tripwire(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("the scanner let it through")


# --- the first wall: the static scan ---------------------------------------------------------


@pytest.mark.parametrize("name", _params([n for n in ALL if n not in COMPRESSION_BOMBS], "scan"))
@pytest.mark.timeout(60, method="signal")  # fails fast if the bound regresses
def test_scan_refuses(name: str, marker: Path) -> None:
    data = _build(name, marker)
    report = safeload.scan_bytes(data, policy=_policy(name))
    assert report.safe is False, f"{name} scanned safe: {report.to_dict()}"
    _assert_reason(INFO[name].expect, [*report.untrusted, *report.problems], name)
    assert not marker.exists()


_MEASURE = textwrap.dedent(
    """
    import json, resource, sys, time
    import safeload
    data = open(sys.argv[1], "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    report = safeload.scan_bytes(data)
    print(json.dumps({
        "safe": report.safe,
        "problems": list(report.problems),
        "seconds": time.monotonic() - started,
        "peak_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
    }))
    """
)


@pytest.fixture(scope="module")
def bomb_scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    """Scan each compression bomb in a fresh process, measuring time and peak memory."""
    base = tmp_path_factory.mktemp("bombs")
    results: dict[str, dict[str, object]] = {}
    for name in COMPRESSION_BOMBS:
        path = base / name
        path.write_bytes(_build(name, base / "PWNED"))
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(path)],
            capture_output=True,
            text=True,
            timeout=60,  # the scan must take < 30 s: a child still running at 60 s is a hang
            check=True,
        )
        results[name] = json.loads(done.stdout)
        results[name]["size"] = path.stat().st_size
    return results


@pytest.mark.parametrize("name", COMPRESSION_BOMBS)
def test_compression_bomb_refused_quickly(
    name: str, bomb_scans: dict[str, dict[str, object]]
) -> None:
    result = bomb_scans[name]
    assert result["safe"] is False, result
    _assert_reason(INFO[name].expect, list(result["problems"]), name)  # type: ignore[call-overload]
    assert float(result["seconds"]) < 30, result  # type: ignore[arg-type]


@pytest.mark.parametrize("name", COMPRESSION_BOMBS)
def test_compression_bomb_bounded_memory(
    name: str, bomb_scans: dict[str, dict[str, object]]
) -> None:
    result = bomb_scans[name]
    assert float(result["peak_mib"]) < 256, result  # type: ignore[arg-type]


# --- both walls: a hostile file signed by a trusted key --------------------------------------


@pytest.mark.parametrize("name", _params(ALL, "load"))
@pytest.mark.timeout(60, method="signal")  # fails fast if the bound regresses
def test_signed_attack_is_refused(
    name: str,
    marker: Path,
    tmp_path: Path,
    signer: safeload.SigningKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _build(name, marker)
    _bomb_precondition(name, data)
    artifact = write_signed_artifact(
        tmp_path / "art", {"model.joblib": data, "safeload.json": METADATA}, key=signer
    )
    # The first wall alone must refuse it: reaching the unpickler fails the test.
    monkeypatch.setattr(_unpickle, "unpickle_verified", _second_wall_tripwire)
    monkeypatch.setattr(_unpickle, "load_skops_verified", _second_wall_tripwire)
    with pytest.raises(safeload.RefusedError) as caught:
        safeload.load(artifact, trusted=safeload.Keyring.of([signer]), policy=_policy(name))
    refusal = caught.value
    assert isinstance(refusal, (safeload.UntrustedTypeError, safeload.MalformedArtifactError))
    # Refused at step 4 (decompression limits or the static scan), never by the unpickler.
    assert "(at load time)" not in str(refusal)
    _assert_reason(INFO[name].expect, _error_reasons(refusal), name)
    assert not marker.exists()


# --- the second wall alone: the restricted unpickler, as if the scanner had a bug -----------


_SECOND_WALL_CHILD = textwrap.dedent(
    """
    import json, sys
    import safeload
    from safeload import _unpickle
    from safeload.typegate.compression import decompress
    policy = safeload.TypePolicy.default().extend(json.loads(sys.argv[2]), unsafe=True)
    policy = policy.extend(json.loads(sys.argv[3]), callable=False, unsafe=True)
    try:
        _, payload = decompress(open(sys.argv[1], "rb").read())
        model = _unpickle.unpickle_verified(bytearray(payload), policy)
    except safeload.SafeloadError as exc:
        reasons = [str(exc), *getattr(exc, "types", ())]
        if exc.__cause__ is not None:
            reasons.append(type(exc.__cause__).__name__)
        print(json.dumps({"refused": reasons}))
        sys.exit(0)
    print("accepted", flush=True)
    repr(model)  # what any later use would do
    """
)
# A child that starts, imports and refuses takes a few seconds; one that hangs is a regression.
_CHILD_SECONDS = 30


@pytest.mark.parametrize("name", _params(SECOND_WALL, "second_wall"))
@pytest.mark.timeout(60, method="signal")  # fails fast if the bound regresses
def test_second_wall_alone(name: str, marker: Path, tmp_path: Path) -> None:
    data = _build(name, marker)
    info = INFO[name]
    if info.isolate:  # may crash or hang the loader: only in a child, with a time bound
        path = tmp_path / "model.joblib"
        path.write_bytes(data)
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                _SECOND_WALL_CHILD,
                str(path),
                json.dumps(info.policy),
                json.dumps(info.references),
            ],
            capture_output=True,
            text=True,
            timeout=_CHILD_SECONDS,
        )
        assert child.returncode == 0 and child.stdout.startswith("{"), (
            f"exit {child.returncode}, stdout {child.stdout[:300]!r}"
        )
        reasons = json.loads(child.stdout)["refused"]
    else:
        with pytest.raises(safeload.SafeloadError) as caught:
            _, payload = decompress(data)
            _unpickle.unpickle_verified(bytearray(payload), _policy(name))
        reasons = _error_reasons(caught.value)
    _assert_reason(info.second_wall_reason, reasons, name)
    assert not marker.exists()


def test_second_wall_exclusions_are_explicit() -> None:
    """Only resource bombs may skip the second wall, each with its reason."""
    for name, reason in SECOND_WALL_EXCLUDED.items():
        assert INFO[name].bomb, f"{name} is not a bomb but skips the second wall"
        assert reason
    assert len(SECOND_WALL) + len(SECOND_WALL_EXCLUDED) == len(ATTACKS)


# --- the corpus is real: plain pickle/joblib run every payload ------------------------------

_RUNNER = textwrap.dedent(
    """
    import os, pickle, resource, signal, sys, time
    sys.path.insert(0, sys.argv[1])  # tests.malicious, for attacks on a user's references
    import joblib
    # Import the heavy modules once, before forking, so that each child only runs its payload.
    import numpy.f2py, numpy.testing, sklearn.preprocessing, sklearn.utils._testing
    import bdb, code, cProfile, joblib.testing, pty, runpy, timeit
    jobs = [line.split("\\t") for line in sys.stdin.read().splitlines()]
    children = []
    for loader, folder in jobs:
        pid = os.fork()
        if pid == 0:
            os.chdir(folder)
            signal.alarm(60)
            resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            try:
                if loader == "pickle":
                    with open("model.joblib", "rb") as handle:
                        pickle.loads(handle.read())
                else:
                    joblib.load(os.path.join(folder, "model.joblib"))
            except BaseException:
                pass
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
        os.path.exists(os.path.join(folder, "PWNED")) for _, folder in jobs
    ):
        time.sleep(0.1)
    """
)


@pytest.fixture(scope="module")
def fired(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bool]:
    """Load every firing attack with plain pickle/joblib, each in a forked throwaway child."""
    base = tmp_path_factory.mktemp("fire")
    jobs = []
    for name in FIRING:
        folder = base / name
        folder.mkdir()
        (folder / "model.joblib").write_bytes(_build(name, folder / "PWNED"))
        loader = "joblib" if INFO[name].fires == "joblib" else "pickle"
        jobs.append(f"{loader}\t{folder}")
    subprocess.run(
        [sys.executable, "-c", _RUNNER, str(ROOT)],
        input="\n".join(jobs),
        text=True,
        cwd=base,
        timeout=240,
        check=True,
    )
    return {name: (base / name / "PWNED").exists() for name in FIRING}


@pytest.mark.parametrize("name", FIRING)
def test_attack_is_real(name: str, fired: dict[str, bool]) -> None:
    assert fired[name], f"{name}: plain {INFO[name].fires} loading did not run the payload"


def test_sanity_covers_every_category() -> None:
    needed = {"direct", "reexport", "nested", "gadget", "opcode", "joblib", "compression"}
    assert needed <= {INFO[n].category for n in FIRING}
    for technique in (
        "memo_stack_global_binput_binget",
        "inst_opcode_p0",
        "obj_opcode_p1",
        "global_py2_builtin_eval",
        "joblib_payload_after_array",
        "joblib_object_array_nested",
        "nested_pickle_loads_p2",
        "reexport_numpy_testing_os_system",
    ):
        assert technique in FIRING


def test_corpus_size() -> None:
    assert len(ATTACKS) >= 45
    assert set(INFO) == set(ATTACKS)


# Phrases every refusal of a kind shares: an expectation made only of one of them would accept
# a refusal for any reason, which is what these tests must not do.
_GENERIC = (
    "refused",
    "outside the trusted-type policy",
    "refused by the static scan",
    "could not be deserialized",
    "which its own pickles never do",
    "nothing more was deserialized",
)


@pytest.mark.parametrize("name", ALL)
def test_every_attack_names_its_own_reason(name: str) -> None:
    info = INFO[name]
    for expect in {info.expect, info.second_wall_reason}:
        re.compile(expect)
        stripped = expect
        for phrase in _GENERIC:
            stripped = stripped.replace(phrase, "")
        assert len(stripped.strip(" .;:,^$\\")) >= 6, f"{name}: {expect!r} is not specific"


# --- benign look-alikes: data that spells attacks is still data ------------------------------


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_scans_safe_and_loads(
    name: str, marker: Path, tmp_path: Path, signer: safeload.SigningKey
) -> None:
    data = BENIGN[name](marker)
    extra = list(BENIGN_EXTRA_TYPES[name])
    policy = safeload.TypePolicy.default().extend(extra)
    report = safeload.scan_bytes(data, policy=policy)
    assert report.safe, report.to_dict()
    artifact = write_signed_artifact(
        tmp_path / "art", {"model.joblib": data, "safeload.json": METADATA}, key=signer
    )
    model = safeload.load(artifact, trusted=safeload.Keyring.of([signer]), policy=extra)
    assert type(model).__name__ == "StandardScaler"
    assert not marker.exists()


# --- costly but harmless streams: bounded by ScanLimits ---------------------------------------


@pytest.mark.parametrize("name", sorted(BOUNDED))
@pytest.mark.timeout(60, method="signal")  # fails fast if the bound regresses
def test_costly_streams_are_bounded(name: str, marker: Path) -> None:
    case = BOUNDED[name]
    data = case.build(marker)
    started = time.monotonic()
    safeload.scan_bytes(data)  # whatever the verdict: it must finish, and never raise
    assert time.monotonic() - started < 30
    started = time.monotonic()
    report = safeload.scan_bytes(data, limits=ScanLimits(**case.limits))  # type: ignore[arg-type]
    assert report.safe is False, report.to_dict()
    _assert_reason(case.expect, list(report.problems), name)
    assert time.monotonic() - started < 10
