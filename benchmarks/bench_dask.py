"""Batch scoring throughput of ``safeload.dask.predict`` on 1 and 2 worker processes.

A small signed pipeline (StandardScaler, then LogisticRegression, 20 float features) scores
``--rows`` rows (3 million by default) split in partitions of ``--partition`` rows. Each
partition is generated on the worker that scores it (as a job reading its own slice of a
dataset would), so the figures are generation plus scoring, and the client gathers only one
number per partition (the count of positive predictions). For reference, the same partitions
are generated and scored in this process, one after the other, by the bare pipeline's
``predict`` and by the schema-checked ``LoadedArtifact.predict``.

Reported per setup: rows per second (best of ``--repeat`` runs), and, for the clusters, the
time ``safeload.dask.register`` takes (every worker verifying and loading the artifact once).

    python benchmarks/bench_dask.py --json bench-dask.json --svg docs/img/dask-throughput.svg
    python benchmarks/bench_dask.py --smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from charts import save_svg, write_outputs
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import safeload

FEATURES = [f"f{i:02}" for i in range(20)]


def partition(i: int, rows: int, run: int = 0) -> pd.DataFrame:
    """Partition ``i``: ``rows`` rows of 20 normal features, the same wherever it is made.

    ``run`` changes nothing but the task keys, so that no run reuses results of the last one.
    """
    rng = np.random.default_rng(i)
    return pd.DataFrame(
        rng.normal(size=(rows, len(FEATURES))),
        columns=FEATURES,
        index=pd.RangeIndex(i * rows, (i + 1) * rows),
    )


def sign_model(folder: Path) -> tuple[Path, Path, Any]:
    """A fitted pipeline, signed with a sample, and the folder of its trusted key."""
    X = partition(10_000, 20_000)
    y = (X["f00"] + X["f01"] - X["f02"] > 0).astype(np.int64)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    key = safeload.generate_key()
    key.save(folder / "keys" / "trainer")
    path = safeload.save(model, folder / "models" / "churn" / "1.0.0", key=key, sample=X.head(5))
    return Path(path), folder / "keys", model


def best(run: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def local(predict: Any, parts: int, rows: int) -> int:
    return sum(int(np.sum(predict(partition(i, rows)))) for i in range(parts))


def on_cluster(
    workers: int, path: Path, keys: Path, parts: int, rows: int, repeat: int
) -> dict[str, Any]:
    import dask.dataframe as dd
    import distributed

    import safeload.dask as sdask

    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        start = time.perf_counter()
        sdask.register(path, trusted=keys, client=client)
        register = time.perf_counter() - start
        runs = iter(range(repeat + 1))

        def job() -> int:
            frames = dd.from_map(partition, list(range(parts)), rows=rows, run=next(runs))
            return int(sdask.predict(frames, path, trusted=keys).sum().compute())

        positives = job()  # the first job also starts the workers' thread pools
        seconds = best(job, repeat)
    return {"register": register, "seconds": seconds, "positives": positives}


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    names = [r["setup"] for r in rows]
    values = [r["rows_per_s"] / 1e6 for r in rows]
    colors = ["#999999" if r["setup"].startswith("local") else "#1f77b4" for r in rows]
    bars = ax.barh(names, values, color=colors)
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.2f}", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("million rows per second (generate + score)")
    ax.set_title("safeload.dask.predict: 20 features, StandardScaler + LogisticRegression")
    save_svg(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--partition", type=int, default=250_000, help="rows per partition")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="60,000 rows, one run each")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--svg", type=Path, help="draw the chart here")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.partition, args.repeat = 60_000, 20_000, 1
    parts = max(1, args.rows // args.partition)
    rows = parts * args.partition
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path, keys, model = sign_model(Path(tmp))
        loaded = safeload.load_checked(path, trusted=keys)
        expected = local(model.predict, parts, args.partition)
        for setup, predict in (
            ("local: pipeline.predict", model.predict),
            ("local: LoadedArtifact.predict", loaded.predict),
        ):
            print(f"  {setup} ...", file=sys.stderr, flush=True)
            seconds = best(lambda p=predict: local(p, parts, args.partition), args.repeat)
            results.append({"setup": setup, "seconds": seconds, "register": None})
        for workers in (1, 2):
            print(f"  dask, {workers} worker(s) ...", file=sys.stderr, flush=True)
            got = on_cluster(workers, path, keys, parts, args.partition, args.repeat)
            if got["positives"] != expected:
                raise SystemExit(f"{workers} worker(s): {got['positives']} != {expected}")
            results.append(
                {"setup": f"safeload.dask, {workers} worker(s)", **got, "positives": None}
            )
    for r in results:
        r["rows"] = rows
        r["rows_per_s"] = rows / r["seconds"]
    print(f"| setup ({rows:,} rows x 20 features) | seconds | rows/s | gate load on workers (s) |")
    print("| --- | --- | --- | --- |")
    for r in results:
        load = "" if r["register"] is None else f"{r['register']:.2f}"
        print(f"| {r['setup']} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} | {load} |")
    write_outputs(results, args.json, args.svg, chart)


if __name__ == "__main__":
    main()
