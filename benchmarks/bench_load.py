"""Verified load, save and scan against plain joblib, on models it generates itself.

For each model and size it writes a plain ``joblib.dump`` file and a safeload artifact (joblib
and skops formats), then times, each in a fresh process with a warm page cache (libraries
imported before the clock starts):

  joblib.load(file)  vs  safeload.load(artifact)       wall time and peak RSS
  joblib.dump(model) vs  safeload.save(model)          wall time
  safeload.scan(file)                                   wall time

and prints a markdown table of medians (plus the ratio of the fastest runs, which is less
sensitive to a VM's page-cache and memory noise). Usage:

    python benchmarks/bench_load.py                  # 10 MB, 100 MB, 1 GB KNN + 300-tree forest
    python benchmarks/bench_load.py --sizes 10 100 --repeat 3 --workdir /tmp/bench
    python benchmarks/bench_load.py --smoke               # tiny, for CI: checks it runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
op, path, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
import joblib, numpy, sklearn, safeload  # imported before the clock starts
from safeload.keys import load_signing_key
key = None
if op in ("save", "dump"):
    model = joblib.load(path)
    key = load_signing_key(sys.argv[4])
    out = sys.argv[5]
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if op == "joblib.load":
    obj = joblib.load(path)
elif op == "safeload.load":
    obj = safeload.load(path, trusted=sys.argv[4])
elif op == "scan":
    report = safeload.scan(path)
    assert report.safe, report.problems
elif op == "dump":
    joblib.dump(model, out)
elif op == "save":
    safeload.save(model, out, key=key, format=fmt)
elapsed = time.perf_counter() - t
# VmHWM, not ru_maxrss: the latter is inherited across fork+exec from the parent process.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": elapsed, "peak_rss_mib": hwm / 1024}))
"""


def make_models(sizes_mb: list[int], smoke: bool) -> dict[str, object]:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    models: dict[str, object] = {}
    for size in sizes_mb:
        rows = max(int(size * 1e6 / 800), 10)  # 100 float64 features = 800 bytes a row
        X = rng.normal(size=(rows, 100))
        y = rng.integers(0, 2, rows)
        models[f"knn-{size}MB"] = KNeighborsClassifier(algorithm="brute").fit(X, y)
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = rng.normal(size=(2000 if smoke else 20000, 20))
    y = (X[:, 0] > 0).astype(int)
    models["pipeline"] = make_pipeline(
        StandardScaler(), PCA(n_components=10), LogisticRegression()
    ).fit(X, y)
    y = (X[:, 0] + rng.normal(size=len(X)) > 0).astype(int)
    trees = 5 if smoke else 300
    models[f"forest-{trees}"] = RandomForestClassifier(
        n_estimators=trees, random_state=0, n_jobs=-1
    ).fit(X, y)
    return models


def run_child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10, 100, 1000], help="KNN model sizes in MB"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--formats", nargs="+", default=["joblib", "skops"])
    parser.add_argument("--workdir")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.repeat = [1], 1

    import joblib

    import safeload

    work = Path(args.workdir or tempfile.mkdtemp(prefix="safeload-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    keys = work / "keys"
    if not (keys / "bench.key").exists():
        safeload.generate_key().save(keys / "bench")
    key = safeload.load_signing_key(keys / "bench.key")

    rows = []
    for name, model in make_models(args.sizes, args.smoke).items():
        plain = work / f"{name}.joblib"
        joblib.dump(model, plain)
        size = plain.stat().st_size
        for fmt in args.formats:
            if fmt == "skops" and name.startswith("knn") and size > 200e6 and not args.smoke:
                continue  # skops copies arrays through zip entries: measured up to 100 MB
            artifact = work / f"{name}-{fmt}"
            if artifact.exists():
                shutil.rmtree(artifact)
            safeload.save(model, artifact, key=key, format=fmt)
            for _ in range(2):  # warm the page cache
                run_child("joblib.load", str(plain), fmt)
                run_child("safeload.load", str(artifact), fmt, str(keys))
            jl = [run_child("joblib.load", str(plain), fmt) for _ in range(args.repeat)]
            sl = [
                run_child("safeload.load", str(artifact), fmt, str(keys))
                for _ in range(args.repeat)
            ]
            dumps, saves = [], []
            for i in range(args.repeat):
                out_d, out_s = work / f"dump-{i}.joblib", work / f"save-{i}"
                key_file = str(keys / "bench.key")
                # Alternate which goes first: on a VM, the first writer after a delete may get
                # the freshly freed (fast) pages and the second ones the host must back anew.
                for op in ("dump", "save") if i % 2 == 0 else ("save", "dump"):
                    runs, out = (dumps, out_d) if op == "dump" else (saves, out_s)
                    runs.append(run_child(op, str(plain), fmt, key_file, str(out)))
                out_d.unlink(missing_ok=True)
                shutil.rmtree(out_s, ignore_errors=True)
            scans = (
                [run_child("scan", str(plain), fmt) for _ in range(args.repeat)]
                if fmt == "joblib"
                else []
            )
            model_file = artifact / ("model.skops" if fmt == "skops" else "model.joblib")
            rows.append(
                {
                    "model": name,
                    "format": fmt,
                    "file_mb": model_file.stat().st_size / 1e6,
                    "load_min_ratio": min(r["seconds"] for r in sl) / min(r["seconds"] for r in jl),
                    "save_min_ratio": min(r["seconds"] for r in saves)
                    / min(r["seconds"] for r in dumps),
                    "joblib_load_s": median(jl, "seconds"),
                    "safeload_load_s": median(sl, "seconds"),
                    "joblib_rss": median(jl, "peak_rss_mib"),
                    "safeload_rss": median(sl, "peak_rss_mib"),
                    "dump_s": median(dumps, "seconds"),
                    "save_s": median(saves, "seconds"),
                    "scan_ms": median(scans, "seconds") * 1000 if scans else None,
                }
            )

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}"
    )
    print()
    print(
        "| model | format | file MB | joblib.load s | safeload.load s | ratio | min ratio "
        "| joblib RSS MiB | safeload RSS MiB | ratio | joblib.dump s | safeload.save s | ratio "
        "| min ratio | scan ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        scan = f"{r['scan_ms']:.1f}" if r["scan_ms"] is not None else "-"
        print(
            f"| {r['model']} | {r['format']} | {r['file_mb']:.1f} | {r['joblib_load_s']:.3f} | "
            f"{r['safeload_load_s']:.3f} | {r['safeload_load_s'] / r['joblib_load_s']:.2f} | "
            f"{r['load_min_ratio']:.2f} | {r['joblib_rss']:.0f} | {r['safeload_rss']:.0f} | "
            f"{r['safeload_rss'] / r['joblib_rss']:.2f} | {r['dump_s']:.3f} | {r['save_s']:.3f} | "
            f"{r['save_s'] / r['dump_s']:.2f} | {r['save_min_ratio']:.2f} | {scan} |"
        )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
