"""The gate fuzzer (tests/fuzzing/fuzz_gate.py) for a bounded time: no crash, hang or stray error.

Runs atheris in a subprocess (a native crash must not take pytest down) for
``SAFELOAD_FUZZ_SECONDS`` (default 60) from the real-artifact seeds, with libFuzzer's own
per-input timeout and memory limit. Skipped where atheris is not installed (it ships wheels for
Linux x86_64 only; the ``fuzz`` extra installs it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGRESSIONS = ROOT / "tests" / "fuzzing" / "regressions"
# Inputs the fuzzer found that still fail (file name -> why), as strict xfails until fixed.
OPEN: dict[str, str] = {}
SECONDS = int(os.environ.get("SAFELOAD_FUZZ_SECONDS", "60"))


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_fuzzer(work: Path, seconds: int, *extra: str) -> subprocess.CompletedProcess[str]:
    """The fuzzer on a fresh corpus in work; its findings land in work/artifacts."""
    (work / "corpus").mkdir(parents=True)
    (work / "artifacts").mkdir()
    cmd = [sys.executable, "-m", "tests.fuzzing.fuzz_gate", str(work / "corpus")]
    cmd += [f"-max_total_time={seconds}", "-timeout=20", "-rss_limit_mb=3072", "-seed=1"]
    cmd += [f"-artifact_prefix={work / 'artifacts'}/", *extra]
    return subprocess.run(
        cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=seconds + 300
    )


def problems(proc: subprocess.CompletedProcess[str], work: Path) -> list[str]:
    """What the run found: a failing exit status and the saved crash/timeout/oom inputs."""
    found = sorted(p.name for p in (work / "artifacts").iterdir())
    return ([f"exit status {proc.returncode}"] if proc.returncode else []) + found


def test_gate_survives_fuzzing(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    proc = run_fuzzer(tmp_path, SECONDS)
    tail = proc.stderr[-4000:]
    assert not problems(proc, tmp_path), f"fuzzer findings {problems(proc, tmp_path)}:\n{tail}"
    runs = re.search(r"Done (\d+) runs", proc.stderr)
    assert runs and int(runs.group(1)) >= 100, f"the fuzzer barely ran:\n{tail}"
    seeds = len(list((tmp_path / "corpus").iterdir()))
    assert seeds >= 20, "the corpus was not seeded with real artifacts"


@pytest.mark.parametrize("canary", ["exception", "segfault"])
def test_fuzzer_reports_failures(
    canary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A harness that cannot fail proves nothing: the canary fails on the first accepted input."""
    pytest.importorskip("atheris")
    monkeypatch.setenv("SAFELOAD_FUZZ_CANARY", canary)
    proc = run_fuzzer(tmp_path, 60)
    found = problems(proc, tmp_path)
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert any(name.startswith("crash-") for name in found), (found, proc.stderr[-2000:])


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            p.name,
            marks=[pytest.mark.xfail(strict=True, reason=OPEN[p.name])] if p.name in OPEN else [],
        )
        for p in sorted(REGRESSIONS.iterdir())
    ],
)
def test_fuzzer_regression(name: str, tmp_path: Path) -> None:
    """Each input the fuzzer once failed on, replayed through the target (a subprocess)."""
    pytest.importorskip("atheris")
    cmd = [sys.executable, "-m", "tests.fuzzing.fuzz_gate", str(REGRESSIONS / name)]
    cmd += ["-timeout=20", "-rss_limit_mb=3072", f"-artifact_prefix={tmp_path}/"]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
