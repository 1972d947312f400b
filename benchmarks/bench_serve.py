"""A bounded load run against ``safeload serve``: latency percentiles and errors, on loopback.

A store with one signed DataFrame pipeline (scaled numbers and a one-hot category, the shape
of the web-service guide) is served by the real console script in a subprocess; ``--clients``
threads, each with its own keep-alive ``httpx.Client``, send ``--requests`` requests per
scenario between them (JSON records of 1 and 100 rows, CSV of 100 rows, ``predict_proba``).
Every answer must be a 200 with the right number of predictions: any other is an error, and
the script exits 1 when there is one. Latency is measured by the client (request sent to body
read). With ``--json FILE`` the results are kept; with ``--svg PATH`` they are drawn.

    python benchmarks/bench_serve.py --json serve.json --svg docs/img/serve-latency.svg
    python benchmarks/bench_serve.py --smoke
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from charts import save_svg
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import safeload

PLANS = ["basic", "plus", "pro"]


def training_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50_000, 10_000, n),
            "plan": pd.Categorical(rng.choice(PLANS, n)),
        }
    )


def make_store(base: Path) -> None:
    X = training_frame(2_000)
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age", "income"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, (X["age"] > 45).to_numpy().astype(int))
    key = safeload.generate_key()
    key.save(base / "keys" / "trainer")
    safeload.save(
        model,
        base / "models" / "churn" / "1.0.0",
        key=key,
        name="churn",
        version="1.0.0",
        sample=X.head(5),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(base: Path) -> Iterator[str]:
    port = free_port()
    script = Path(sys.executable).parent / "safeload"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "safeload"]
    command += ["serve", str(base / "models"), "--trusted", str(base / "keys")]
    command += ["--port", str(port), "--state", str(base / "state.json")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"safeload serve exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("safeload serve did not become ready in 120 s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def scenarios() -> list[dict[str, Any]]:
    def records(n: int) -> list[dict[str, Any]]:
        X = training_frame(n, seed=n)
        return [
            {"age": int(a), "income": float(i), "plan": str(p)}
            for a, i, p in zip(X["age"], X["income"], X["plan"], strict=True)
        ]

    def csv(n: int) -> bytes:
        lines = [f"{r['age']},{r['income']!r},{r['plan']}" for r in records(n)]
        return ("age,income,plan\n" + "\n".join(lines) + "\n").encode()

    as_json = {"content-type": "application/json"}
    return [
        {
            "name": "JSON, 1 row",
            "route": "predict",
            "body": json.dumps(records(1)).encode(),
            "headers": as_json,
            "rows": 1,
        },
        {
            "name": "JSON, 100 rows",
            "route": "predict",
            "body": json.dumps(records(100)).encode(),
            "headers": as_json,
            "rows": 100,
        },
        {
            "name": "CSV, 100 rows",
            "route": "predict",
            "body": csv(100),
            "headers": {"content-type": "text/csv"},
            "rows": 100,
        },
        {
            "name": "proba, JSON 1 row",
            "route": "predict_proba",
            "body": json.dumps(records(1)).encode(),
            "headers": as_json,
            "rows": 1,
        },
    ]


def load_run(url: str, scenario: dict[str, Any], requests: int, clients: int) -> dict[str, Any]:
    path = f"/v1/models/churn/{scenario['route']}"
    key = "probabilities" if scenario["route"] == "predict_proba" else "predictions"
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    shares = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]

    def client(count: int) -> None:
        mine: list[float] = []
        wrong: list[str] = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for _ in range(count):
                start = time.perf_counter()
                try:
                    answer = http.post(path, content=scenario["body"], headers=scenario["headers"])
                    ok = answer.status_code == 200 and len(answer.json()[key]) == scenario["rows"]
                    if not ok:
                        wrong.append(f"{answer.status_code}: {answer.text[:200]}")
                except httpx.HTTPError as exc:
                    wrong.append(f"{type(exc).__name__}: {exc}")
                mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)
            errors.extend(wrong)

    threads = [threading.Thread(target=client, args=(n,)) for n in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1e3
    return {
        "scenario": scenario["name"],
        "requests": len(latencies),
        "clients": clients,
        "errors": len(errors),
        "first_errors": errors[:5],
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "requests_per_s": len(latencies) / elapsed,
    }


def chart(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.38
    xs = np.arange(len(rows))
    for k, (field, label) in enumerate((("p50_ms", "p50"), ("p99_ms", "p99"))):
        bars = ax.bar(xs + (k - 0.5) * width, [r[field] for r in rows], width, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(xs, [r["scenario"] for r in rows], fontsize=8)
    ax.set_ylabel("latency (ms)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    save_svg(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_000, help="per scenario")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--smoke", action="store_true", help="40 requests per scenario")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--svg", type=Path, help="also draw p50/p99 per scenario here")
    args = parser.parse_args()
    requests = 40 if args.smoke else args.requests
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        make_store(base)
        with server(base) as url:
            rows = [load_run(url, s, requests, args.clients) for s in scenarios()]
    print("| scenario | requests | clients | p50 (ms) | p99 (ms) | max (ms) | req/s | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['requests']} | {r['clients']} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['requests_per_s']:.0f} | {r['errors']} |"
        )
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": rows}, indent=2) + "\n")
    if args.svg:
        title = (
            f"safeload serve on loopback: {requests:,} requests per scenario from "
            f"{args.clients} concurrent clients ({machine})"
        )
        chart(rows, args.svg, title)
        print(f"chart written to {args.svg}", file=sys.stderr)
    failed = [r for r in rows if r["errors"]]
    for r in failed:
        print(f"{r['scenario']}: {r['errors']} errors, e.g. {r['first_errors']}", file=sys.stderr)
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
