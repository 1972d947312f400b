"""The benchmark script still runs end to end (tiny sizes; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _bench_load(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_load.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def test_bench_load_smoke(tmp_path: Path) -> None:
    result = _bench_load(
        "--smoke",
        "--formats",
        "joblib",
        "--workdir",
        str(tmp_path),
        "--json",
        str(tmp_path / "results.json"),
        "--svg",
        str(tmp_path / "ratios.svg"),
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| knn-1MB")]
    # the main table (14 columns), then the SHA-256 / BLAKE3 table (11 columns)
    assert [row.count("|") for row in rows] == [15, 12]
    assert any(line.startswith("| `safeload --help` |") for line in result.stdout.splitlines())
    doc = json.loads((tmp_path / "results.json").read_text())
    cases = {(r["model"], r["format"]) for r in doc["rows"]}
    assert cases == {(m, "joblib") for m in ("knn-1MB", "pipeline", "forest-5", "hgb-5")}
    assert {"load_blake3_s", "save_blake3_s", "save_peer_rss_mib"} <= set(doc["rows"][0])
    assert len(doc["rows"][0]["load_sha256_runs_s"]) == doc["repeat"]
    assert (tmp_path / "ratios.svg").read_text().count("<svg") == 1
    redrawn = _bench_load(
        "--chart-from",
        str(tmp_path / "results.json"),
        "--svg",
        str(tmp_path / "again.svg"),
        timeout=120,
    )
    assert redrawn.returncode == 0, redrawn.stderr
    assert (tmp_path / "again.svg").read_bytes() == (tmp_path / "ratios.svg").read_bytes()


def test_bench_gate_steps_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gate_steps.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| text")]
    assert len(rows) == 1 and rows[0].count("|") == 6


def test_bench_cost_bounds_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_cost_bounds.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 6 and all(row.count("|") == 9 for row in rows)


def test_bench_hash_smoke(tmp_path: Path) -> None:
    svg = tmp_path / "hash.svg"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_hash.py"), "--smoke", "--svg", str(svg)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 1 and rows[0].count("|") == 9  # size and 7 throughputs
    assert svg.read_text().lstrip().startswith("<?xml")


def test_bench_serve_smoke() -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_serve.py"), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr  # 1 on any error
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 4 and all(row.endswith("| 0 |") for row in rows[2:])


def test_chart_drift_smoke(tmp_path: Path) -> None:
    svg = tmp_path / "drift.svg"
    script = str(ROOT / "benchmarks" / "chart_drift.py")
    result = subprocess.run(
        [sys.executable, script, "--smoke", "--svg", str(svg)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    days = [line for line in result.stderr.splitlines() if line.startswith("day ")]
    assert len(days) == 5 and all("stable" in d or "watch" in d for d in days)
    assert svg.read_text().lstrip().startswith("<?xml")
