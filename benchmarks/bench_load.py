"""Verified load and signed save against their peers, on models it generates itself.

For each model it writes the peer's own file (``joblib.dump``; ``skops.io.dump`` for the skops
format) and a safeload artifact, then times, each run in a fresh process with a warm page
cache (libraries imported, safeload's lazily imported modules too unless ``--cold``, and the
model to save loaded, before the clock starts), the peer
and safeload **interleaved** (run i of one, then run i of the other, the order alternating):

  joblib.load / skops.io.load(file)  vs  safeload.load(artifact)   wall time and peak RSS
  joblib.dump / skops.io.dump(model) vs  safeload.save(model)      wall time and peak RSS
  safeload.scan(file)                                               wall time (joblib)

For the KNN models (whose size is their arrays) it also saves and loads with a BLAKE3
manifest (``save(..., hash="blake3")``) interleaved with the SHA-256 default and
``joblib.dump``, and it times the CLI's start-up (``--version``, ``--help``, each verb's
``--help``). Ratios are ratios of medians. Usage:

    python benchmarks/bench_load.py                  # every case of issue 17
    python benchmarks/bench_load.py --sizes 10 100 --repeat 3 --workdir /tmp/bench
    python benchmarks/bench_load.py --json results.json   # also write every figure as JSON
    python benchmarks/bench_load.py --case forest-300 pipeline --formats skops  # a subset
    python benchmarks/bench_load.py --smoke               # tiny, for CI: checks it runs
    python benchmarks/bench_load.py --json r.json --svg docs/img/bench-load.svg  # and the chart
    python benchmarks/bench_load.py --chart-from r.json --svg out.svg  # redraw, no measuring
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
import time
from pathlib import Path
from typing import Any

CHILD = r"""
import json, sys, time
op, path, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
import joblib, numpy, sklearn, safeload  # imported before the clock starts
if fmt == "skops":
    import skops.io
if "--cold" not in sys.argv:  # safeload imports lazily: its first call would import these
    import safeload.loading, safeload.saving, safeload.validation, safeload.typegate
from safeload.keys import load_signing_key
if op in ("save", "dump"):
    model = joblib.load(path)
    key = load_signing_key(sys.argv[4])
    out = sys.argv[5]
    hash_name = sys.argv[6]
if op == "peer.load" and fmt == "skops":
    trusted = skops.io.get_untrusted_types(file=path)  # what a skops user passes, looked at
t = time.perf_counter()
if op == "peer.load":
    obj = joblib.load(path) if fmt == "joblib" else skops.io.load(path, trusted=trusted)
elif op == "safeload.load":
    obj = safeload.load(path, trusted=sys.argv[4])
elif op == "scan":
    report = safeload.scan(path)
    assert report.safe, report.problems
elif op == "dump":
    joblib.dump(model, out) if fmt == "joblib" else skops.io.dump(model, out)
elif op == "save":
    safeload.save(model, out, key=key, format=fmt, hash=hash_name)
elapsed = time.perf_counter() - t
# VmHWM, not ru_maxrss: the latter is inherited across fork+exec from the parent process.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": elapsed, "peak_rss_mib": hwm / 1024}))
"""


def make_models(
    sizes_mb: list[int], smoke: bool, only: set[str] | None = None
) -> dict[str, object]:
    """The cases of issue 17: KNN of N MB, a tiny pipeline, a forest, gradient boosting.

    ``only``: the cases to build, by name or name prefix (``knn`` is every KNN); all when None.
    """
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    models: dict[str, object] = {}
    trees = 5 if smoke else 300
    iterations = 5 if smoke else 200
    names = [f"knn-{size}MB" for size in sizes_mb]
    names += ["pipeline", f"forest-{trees}", f"hgb-{iterations}"]
    unknown = {case for case in only or () if not any(n.startswith(case) for n in names)}
    if unknown:
        raise SystemExit(f"unknown --case {sorted(unknown)}; the cases are {names}")

    def wanted(name: str) -> bool:
        return only is None or any(name.startswith(case) for case in only)

    for size in sizes_mb:
        if not wanted(f"knn-{size}MB"):
            continue
        rows = max(int(size * 1e6 / 800), 10)  # 100 float64 features = 800 bytes a row
        X = rng.normal(size=(rows, 100))
        y = rng.integers(0, 2, rows)
        models[f"knn-{size}MB"] = KNeighborsClassifier(algorithm="brute").fit(X, y)
    rng = np.random.default_rng(1)  # the same models whichever cases --case picks
    X = rng.normal(size=(2000 if smoke else 20000, 20))
    y = (X[:, 0] > 0).astype(int)
    if wanted("pipeline"):
        models["pipeline"] = make_pipeline(
            StandardScaler(), PCA(n_components=10), LogisticRegression()
        ).fit(X, y)
    y = (X[:, 0] + rng.normal(size=len(X)) > 0).astype(int)
    if wanted(f"forest-{trees}"):
        models[f"forest-{trees}"] = RandomForestClassifier(
            n_estimators=trees, random_state=0, n_jobs=-1
        ).fit(X, y)
    if wanted(f"hgb-{iterations}"):
        models[f"hgb-{iterations}"] = HistGradientBoostingClassifier(
            max_iter=iterations, early_stopping=False, random_state=0
        ).fit(X, y)
    return models


COLD: list[str] = []  # ["--cold"]: leave safeload's lazy imports inside the clock


def run_child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args, *COLD], capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def interleaved(repeat: int, **commands: list[str]) -> dict[str, list[dict[str, float]]]:
    """Run each command ``repeat`` times, round-robin, rotating which goes first each round.

    On a VM the first writer after a delete may get freshly freed (fast) pages and the next
    one pages the host must back anew: rotating spreads that over every column.
    """
    names = list(commands)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for i in range(repeat):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            runs[name].append(run_child(*commands[name]))
    return runs


def median(runs: list[dict[str, float]], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in runs)


def peer_file(work: Path, name: str, fmt: str, model: object) -> Path:
    """The peer's own file: ``joblib.dump``, or ``skops.io.dump`` for the skops format."""
    import joblib
    import skops.io

    path = work / f"{name}.{fmt}"
    if not path.exists():
        if fmt == "joblib":
            joblib.dump(model, path)
        else:
            skops.io.dump(model, path)
    return path


def measure(
    work: Path,
    keys: Path,
    name: str,
    fmt: str,
    model: object,
    repeat: int,
    hashes: bool,
    warm: bool = True,
) -> dict[str, Any]:
    """One row: load, save and scan of one model in one format against the peer."""
    import safeload

    key_file = str(keys / "bench.key")
    source = str(work / f"{name}.joblib")  # what the save children load their model from
    peer = str(peer_file(work, name, fmt, model))
    artifacts = {}
    for hash_name in ("sha256", "blake3") if hashes else ("sha256",):
        artifacts[hash_name] = work / f"{name}-{fmt}-{hash_name}"
        shutil.rmtree(artifacts[hash_name], ignore_errors=True)
        key = safeload.load_signing_key(key_file)
        safeload.save(model, artifacts[hash_name], key=key, format=fmt, hash=hash_name)
    loads = {"peer": ["peer.load", peer, fmt]}
    for hash_name, artifact in artifacts.items():
        loads[hash_name] = ["safeload.load", str(artifact), fmt, str(keys)]
    if warm:
        interleaved(1, **loads)  # warm the page cache
    load_runs = interleaved(repeat, **loads)
    saves = {"peer": ["dump", source, fmt, key_file, str(work / "out-peer"), "sha256"]}
    for hash_name in artifacts:
        saves[hash_name] = [
            "save",
            source,
            fmt,
            key_file,
            str(work / f"out-{hash_name}"),
            hash_name,
        ]
    save_runs: dict[str, list[dict[str, float]]] = {op: [] for op in saves}
    for i in range(repeat):
        ops = list(saves)
        for op in ops[i % len(ops) :] + ops[: i % len(ops)]:
            save_runs[op].append(run_child(*saves[op]))
            out = Path(saves[op][4])
            out.unlink() if out.is_file() else shutil.rmtree(out, ignore_errors=True)
    scans = [run_child("scan", peer, fmt) for _ in range(repeat)] if fmt == "joblib" else []
    model_file = artifacts["sha256"] / f"model.{fmt}"
    row: dict[str, Any] = {
        "model": name,
        "format": fmt,
        "file_mb": model_file.stat().st_size / 1e6,
        "peer_file_mb": Path(peer).stat().st_size / 1e6,
        "scan_ms": median(scans) * 1000 if scans else None,
        "runs": repeat,
    }
    for label, runs in (("load", load_runs), ("save", save_runs)):
        for who, measured in runs.items():
            row[f"{label}_{who}_s"] = median(measured)
            row[f"{label}_{who}_rss_mib"] = median(measured, "peak_rss_mib")
            row[f"{label}_{who}_runs_s"] = [r["seconds"] for r in measured]
    return row


def targets(row: dict[str, Any]) -> dict[str, float]:
    """Issue 17's target for each ratio of this row (safeload over its peer), where it sets one."""
    name, fmt = row["model"], row["format"]
    found: dict[str, float] = {}
    if fmt == "skops":
        found["load sha256"] = found["save sha256"] = 1.05
    elif name in ("forest-300", "hgb-200"):
        found["load sha256"] = 1.0
    elif name == "pipeline":  # "load <= joblib.load + 10 ms", as a ratio of this run's peer
        found["load sha256"] = (row["load_peer_s"] + 0.010) / row["load_peer_s"]
    elif name in ("knn-10MB", "knn-100MB"):
        found["load sha256"] = 1.05
    elif name == "knn-1000MB":
        found["save blake3"] = 1.10
    return found


def chart(doc: dict[str, Any], path: Path) -> None:
    """Each case's ratio to its peer, load and save, against the issue's target where it has one."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(Path(__file__).parent))
    from charts import save_svg

    bars: list[tuple[str, float, float | None]] = []
    for row in doc["rows"]:
        goal = targets(row)
        for op in ("load", "save"):
            for hash_name in ("sha256", "blake3"):
                mine = row.get(f"{op}_{hash_name}_s")
                if mine is None:
                    continue
                label = f"{row['model']} {row['format']} {op}" + (
                    " (BLAKE3)" if hash_name == "blake3" else ""
                )
                bars.append((label, mine / row[f"{op}_peer_s"], goal.get(f"{op} {hash_name}")))
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(bars) + 1.4))
    y = list(range(len(bars)))[::-1]
    colours = [
        "#9e9e9e" if goal is None else ("#2e7d32" if value <= goal else "#c62828")
        for _, value, goal in bars
    ]
    ax.barh(y, [value for _, value, _ in bars], color=colours, height=0.7)
    for yi, (_, value, goal) in zip(y, bars, strict=True):
        ax.text(value * 1.03, yi, f"{value:.2f}", va="center", fontsize=7)
        if goal is not None:
            ax.plot([goal, goal], [yi - 0.45, yi + 0.45], color="black", linewidth=1.2)
    ax.axvline(1.0, color="#616161", linewidth=0.6, linestyle=":")
    ax.set_xscale("log", base=2)  # 0.5 and 2 are as far from parity
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_yticks(y, [label for label, _, _ in bars], fontsize=7)
    ax.set_xlabel("safeload / peer (median wall time; lower is faster)")
    info = doc["machine"]
    ax.set_title(
        f"Verified load and signed save against joblib and skops ({info['date']}, "
        f"{info['cores']} cores, {doc['repeat']} runs)\n"
        "black tick: issue 17's target; green: met; red: not met; grey: no target",
        fontsize=8,
    )
    save_svg(fig, path)
    plt.close(fig)


def startup(repeat: int, verbs_too: bool = True) -> dict[str, float]:
    """Median wall time of the CLI answering ``--version``, ``--help`` and each verb's."""
    from safeload._cli.parser import build_parser

    script = Path(sys.executable).parent / "safeload"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "safeload"]
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a.choices, dict)).choices
    cases = {"--version": ["--version"], "--help": ["--help"]}
    if verbs_too:
        cases.update({f"{verb} --help": [verb, "--help"] for verb in verbs or {}})
    times: dict[str, list[float]] = {case: [] for case in cases}
    for _ in range(repeat):
        for case, args in cases.items():
            start = time.perf_counter()
            subprocess.run([*command, *args], capture_output=True, check=True)
            times[case].append(time.perf_counter() - start)
    return {case: statistics.median(values) for case, values in times.items()}


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def print_tables(rows: list[dict[str, Any]], starts: dict[str, float]) -> None:
    print(
        "| model | format | file MB | peer load s | safeload.load s | ratio | peer RSS MiB "
        "| safeload RSS MiB | ratio | peer save s | safeload.save s | ratio | save RSS ratio "
        "| scan ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        scan = f"{r['scan_ms']:.1f}" if r["scan_ms"] is not None else "-"
        print(
            f"| {r['model']} | {r['format']} | {r['file_mb']:.1f} | {r['load_peer_s']:.3f} | "
            f"{r['load_sha256_s']:.3f} | {ratio(r['load_sha256_s'], r['load_peer_s'])} | "
            f"{r['load_peer_rss_mib']:.0f} | {r['load_sha256_rss_mib']:.0f} | "
            f"{ratio(r['load_sha256_rss_mib'], r['load_peer_rss_mib'])} | "
            f"{r['save_peer_s']:.3f} | {r['save_sha256_s']:.3f} | "
            f"{ratio(r['save_sha256_s'], r['save_peer_s'])} | "
            f"{ratio(r['save_sha256_rss_mib'], r['save_peer_rss_mib'])} | {scan} |"
        )
    hashed = [r for r in rows if "save_blake3_s" in r]
    if hashed:
        print()
        print(
            "| model | joblib.dump s | save sha256 s | ratio | save blake3 s | ratio "
            "| joblib.load s | load sha256 s | ratio | load blake3 s | ratio |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in hashed:
            print(
                f"| {r['model']} | {r['save_peer_s']:.3f} | {r['save_sha256_s']:.3f} | "
                f"{ratio(r['save_sha256_s'], r['save_peer_s'])} | {r['save_blake3_s']:.3f} | "
                f"{ratio(r['save_blake3_s'], r['save_peer_s'])} | {r['load_peer_s']:.3f} | "
                f"{r['load_sha256_s']:.3f} | {ratio(r['load_sha256_s'], r['load_peer_s'])} | "
                f"{r['load_blake3_s']:.3f} | {ratio(r['load_blake3_s'], r['load_peer_s'])} |"
            )
    if starts:
        print()
        print("| command | start-up s (median) |")
        print("|---|---|")
        for case, seconds in starts.items():
            print(f"| `safeload {case}` | {seconds:.3f} |")


def machine() -> dict[str, Any]:
    import joblib
    import numpy
    import scipy
    import sklearn
    import skops

    return {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            "scikit-learn": sklearn.__version__,
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
            "joblib": joblib.__version__,
            "skops": skops.__version__,
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[10, 100, 1000], help="KNN model sizes in MB"
    )
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--formats", nargs="+", default=["joblib", "skops"])
    parser.add_argument(
        "--case",
        nargs="+",
        metavar="NAME",
        help="only these cases, by name or name prefix (knn-10MB or knn, pipeline, forest, hgb)",
    )
    parser.add_argument("--workdir")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument(
        "--svg", type=Path, help="also draw each ratio against its target (matplotlib)"
    )
    parser.add_argument(
        "--chart-from",
        type=Path,
        metavar="JSON",
        help="measure nothing: draw --svg from the figures a --json run wrote",
    )
    parser.add_argument("--no-startup", action="store_true", help="skip the CLI start-up times")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="time safeload's first call with its lazy imports (default: imported before)",
    )
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.chart_from:
        if not args.svg:
            parser.error("--chart-from needs --svg")
        chart(json.loads(args.chart_from.read_text()), args.svg)
        return
    if args.smoke:
        args.sizes, args.repeat = [1], 1
    if args.cold:
        COLD.append("--cold")

    import joblib

    import safeload

    work = Path(args.workdir or tempfile.mkdtemp(prefix="safeload-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    keys = work / "keys"
    if not (keys / "bench.key").exists():
        safeload.generate_key().save(keys / "bench")

    rows = []
    only = set(args.case) if args.case else None
    for name, model in make_models(args.sizes, args.smoke, only).items():
        joblib.dump(model, work / f"{name}.joblib")
        knn = name.startswith("knn")
        size = (work / f"{name}.joblib").stat().st_size
        for fmt in args.formats:
            if fmt == "skops" and knn and size > 200e6 and not args.smoke:
                continue  # skops copies arrays through zip entries: measured up to 100 MB
            hashes = knn and fmt == "joblib"
            rows.append(measure(work, keys, name, fmt, model, args.repeat, hashes, not args.smoke))
            print(f"measured {name} ({fmt})", file=sys.stderr, flush=True)
    if args.no_startup:
        starts = {}
    elif args.smoke:
        starts = startup(1, verbs_too=False)
    else:
        starts = startup(max(args.repeat, 5))

    info = machine()
    print(
        f"machine: {info['machine']}, {info['cores']} cores, Python {info['python']}, "
        f"{info['platform']}; {args.repeat} interleaved runs each, medians"
        + ("; safeload's lazy imports inside the clock (--cold)" if args.cold else "")
    )
    print()
    print_tables(rows, starts)
    doc = {"machine": info, "repeat": args.repeat, "cold": args.cold, "rows": rows}
    doc["startup_s"] = starts
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    if args.svg:
        chart(doc, args.svg)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
