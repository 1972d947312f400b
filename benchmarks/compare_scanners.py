"""Compare safeload's static scan with fickling, picklescan and modelscan on one corpus.

The corpus is written to a directory: every attack of ``tests/attacks/corpus.py`` (hostile
pickle/joblib files; nothing here ever loads them), the benign look-alikes of the same module,
and legitimate scikit-learn models dumped with joblib in every compression joblib offers. Each
tool then judges every file, one command per file, exactly as a user would run it:

    safeload (API)       safeload.scan(path)                      in this process
    safeload (CLI)       safeload scan FILE --json                exit 0 clean, 1 refused
    fickling             fickling --check-safety --json-output J FILE    severity in J
    picklescan           picklescan --path FILE                   summary and exit code
    picklescan --strict  picklescan --path FILE --strict          (default-deny mode)
    modelscan            modelscan -p FILE -r json -o J           issues / errors in J

and ``docs/comparison.md`` gets the results. A verdict is ``flagged`` (the tool reports the
file unsafe), ``clean`` (it reports nothing) or ``error`` (it could not analyse the file: a
crash, a parse error, a timeout, or a file it skipped). Errors are counted apart: a CI gate that
rejects on any non-zero exit turns them into refusals, which is listed too.

The other tools are not safeload dependencies. Install them in a separate virtualenv and point
``--tools-bin`` at its ``bin`` folder (a tool that is not found is skipped):

    python3 -m venv /tmp/vcmp
    /tmp/vcmp/bin/pip install fickling picklescan modelscan typing_extensions
    python benchmarks/compare_scanners.py --tools-bin /tmp/vcmp/bin

Run it with the project's own interpreter (safeload, scikit-learn, joblib and lz4 installed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import joblib  # noqa: E402
import numpy as np  # noqa: E402
from charts import save_svg  # noqa: E402

import safeload  # noqa: E402
from tests.attacks.corpus import ATTACKS, BENIGN, CATEGORIES, INFO  # noqa: E402

COMPRESSIONS: tuple[tuple[str, Any], ...] = (
    ("none", 0),
    ("zlib", ("zlib", 3)),
    ("gzip", ("gzip", 3)),
    ("bz2", ("bz2", 3)),
    ("lzma", ("lzma", 3)),
    ("xz", ("xz", 3)),
    ("lz4", ("lz4", 3)),
)


# --- the corpus ---------------------------------------------------------------------------


def legitimate_models() -> dict[str, Any]:
    """At least ten fitted estimators and pipelines, the way people ship them."""
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, random_state=0)
    Xc = X.copy()
    Xc[:, 0] = np.digitize(X[:, 0], [-1.0, 0.0, 1.0])  # a categorical column
    column = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), [0]), ("num", StandardScaler(), [1, 2, 3])]
    )
    models: dict[str, Any] = {
        "logreg_pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        "random_forest": RandomForestClassifier(n_estimators=20, random_state=0),
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=20, random_state=0),
        "gradient_boosting": GradientBoostingClassifier(n_estimators=20, random_state=0),
        "decision_tree": DecisionTreeClassifier(random_state=0),
        "kneighbors": KNeighborsClassifier(),
        "column_transformer_pipeline": make_pipeline(column, LogisticRegression(max_iter=500)),
        "svc_pipeline": make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)),
        "kmeans": KMeans(n_clusters=3, n_init=3, random_state=0),
        "pca_pipeline": make_pipeline(PCA(n_components=3), LogisticRegression(max_iter=500)),
        "mlp": MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in models.items():
            model.fit(Xc if name == "column_transformer_pipeline" else X, y)
    return models


@dataclass
class Sample:
    """One corpus file and what it is."""

    path: Path
    kind: str  # "attack" | "benign" | "legit"
    name: str
    category: str


def write_corpus(out: Path) -> list[Sample]:
    """Write every corpus file under ``out``; return them in a stable order."""
    samples: list[Sample] = []
    markers = out / "markers"
    for kind in ("attacks", "benign", "legit", "markers"):
        (out / kind).mkdir(parents=True, exist_ok=True)
    for name in sorted(ATTACKS):
        path = out / "attacks" / f"{name}.joblib"
        path.write_bytes(ATTACKS[name](markers / name))
        samples.append(Sample(path, "attack", name, INFO[name].category))
    for name in sorted(BENIGN):
        path = out / "benign" / f"{name}.joblib"
        path.write_bytes(BENIGN[name](markers / name))
        samples.append(Sample(path, "benign", name, "benign"))
    for name, model in legitimate_models().items():
        for label, compress in COMPRESSIONS:
            path = out / "legit" / f"{name}-{label}.joblib"
            joblib.dump(model, path, compress=compress)
            samples.append(Sample(path, "legit", f"{name}-{label}", label))
    return samples


# --- the tools ----------------------------------------------------------------------------


@dataclass
class Verdict:
    """One tool's judgement of one file."""

    outcome: str  # "flagged" | "clean" | "error"
    seconds: float
    detail: str = ""


@dataclass
class Tool:
    """A scanner and how to run it on one file."""

    name: str
    command: str  # shown in the report
    run: Callable[[Path, Path], Verdict]  # (file, scratch dir) -> verdict
    version: str
    results: dict[str, Verdict] = field(default_factory=dict)


def _run(argv: list[str], timeout: float) -> tuple[int | None, str, float]:
    started = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timeout", time.monotonic() - started
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def _interpreter_of(exe: str) -> str | None:
    """The Python that runs a console script (from its shebang)."""
    try:
        first = Path(exe).read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return None
    return first[2:].strip() if first.startswith("#!") else None


def _dist_version(exe: str, dist: str) -> str:
    python = _interpreter_of(exe) or sys.executable
    code, out, _ = _run(
        [python, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"], 60
    )
    return out.strip() if code == 0 else "unknown"


def safeload_api(timeout: float) -> Tool:
    del timeout

    def run(path: Path, scratch: Path) -> Verdict:
        del scratch
        started = time.monotonic()
        try:
            report = safeload.scan(path)
        except Exception as exc:  # a scan must never raise: count it as an error
            return Verdict("error", time.monotonic() - started, f"{type(exc).__name__}: {exc}")
        seconds = time.monotonic() - started
        detail = ", ".join(report.untrusted[:3]) or (
            report.problems[0][:160] if report.problems else ""
        )
        return Verdict("clean" if report.safe else "flagged", seconds, detail)

    return Tool("safeload (API)", "safeload.scan(path)", run, safeload.__version__)


def safeload_cli(exe: str, timeout: float) -> Tool:
    def run(path: Path, scratch: Path) -> Verdict:
        del scratch
        code, out, seconds = _run([exe, "scan", str(path), "--json"], timeout)
        if code is None:
            return Verdict("error", seconds, "timeout")
        try:
            doc = json.loads(out[out.index("{") :] if "{" in out else out)
            safe = bool(doc["safe"])
        except (ValueError, KeyError, TypeError):
            return Verdict("error", seconds, _last_line(out))
        if code not in (0, 1):
            return Verdict("error", seconds, _last_line(out))
        return Verdict("clean" if safe else "flagged", seconds)

    return Tool("safeload (CLI)", "safeload scan FILE --json", run, safeload.__version__)


def fickling_tool(exe: str, timeout: float) -> Tool:
    def run(path: Path, scratch: Path) -> Verdict:
        report = scratch / f"{path.name}.fickling.json"
        report.unlink(missing_ok=True)
        code, out, seconds = _run(
            [exe, "--check-safety", "--json-output", str(report), str(path)], timeout
        )
        if code is None:
            return Verdict("error", seconds, "timeout")
        if not report.exists():
            return Verdict("error", seconds, f"exit {code}: {_last_line(out)}")
        try:
            severity = str(json.loads(report.read_text())["severity"])
        except (ValueError, KeyError, TypeError):
            return Verdict("error", seconds, f"exit {code}: unreadable report")
        return Verdict("clean" if severity == "LIKELY_SAFE" else "flagged", seconds, severity)

    return Tool(
        "fickling",
        "fickling --check-safety --json-output REPORT FILE",
        run,
        _dist_version(exe, "fickling"),
    )


def picklescan_tool(exe: str, timeout: float, strict: bool) -> Tool:
    def run(path: Path, scratch: Path) -> Verdict:
        del scratch
        argv = [exe, "--path", str(path)] + (["--strict"] if strict else [])
        code, out, seconds = _run(argv, timeout)
        if code is None:
            return Verdict("error", seconds, "timeout")
        infected = 0
        for line in out.splitlines():
            if line.startswith("Infected files:"):
                infected = int(line.split(":")[1])
        if infected:  # exit 2 with infected files: dangerous globals found, then a parse error
            return Verdict("flagged", seconds)
        if code == 0:
            return Verdict("clean", seconds)
        return Verdict("error", seconds, f"exit {code}: {_last_line(out)}")

    name = "picklescan --strict" if strict else "picklescan"
    command = "picklescan --path FILE" + (" --strict" if strict else "")
    return Tool(name, command, run, _dist_version(exe, "picklescan"))


def modelscan_tool(exe: str, timeout: float) -> Tool:
    def run(path: Path, scratch: Path) -> Verdict:
        report = scratch / f"{path.name}.modelscan.json"
        report.unlink(missing_ok=True)
        argv = [exe, "-p", str(path), "-r", "json", "-o", str(report)]
        code, out, seconds = _run(argv, timeout)
        if code is None:
            return Verdict("error", seconds, "timeout")
        try:
            doc = json.loads(report.read_text())
        except (OSError, ValueError):
            return Verdict("error", seconds, f"exit {code}: {_last_line(out)}")
        if doc.get("issues"):
            return Verdict("flagged", seconds, str(doc["issues"][0].get("description", ""))[:160])
        if doc.get("errors"):
            return Verdict("error", seconds, str(doc["errors"][0].get("description", ""))[:160])
        if not doc.get("summary", {}).get("scanned", {}).get("total_scanned"):
            return Verdict("error", seconds, "skipped (not scanned)")
        return Verdict("clean", seconds)

    return Tool(
        "modelscan", "modelscan -p FILE -r json -o REPORT", run, _dist_version(exe, "modelscan")
    )


def find_tools(bin_dirs: list[str], timeout: float) -> tuple[list[Tool], list[str]]:
    """Every tool that is installed, and the names of those that are not."""
    search = os.pathsep.join(
        [*bin_dirs, str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    )

    def which(name: str) -> str | None:
        return shutil.which(name, path=search)

    tools = [safeload_api(timeout)]
    missing = []
    if exe := which("safeload"):
        tools.append(safeload_cli(exe, timeout))
    else:
        missing.append("safeload (CLI)")
    if exe := which("fickling"):
        tools.append(fickling_tool(exe, timeout))
    else:
        missing.append("fickling")
    if exe := which("picklescan"):
        tools.append(picklescan_tool(exe, timeout, strict=False))
        tools.append(picklescan_tool(exe, timeout, strict=True))
    else:
        missing += ["picklescan", "picklescan --strict"]
    if exe := which("modelscan"):
        tools.append(modelscan_tool(exe, timeout))
    else:
        missing.append("modelscan")
    return tools, missing


def startup_seconds(tool: Tool, scratch: Path) -> float:
    """Median time to judge a 2-byte pickle (``None``): the per-file fixed cost of a tool."""
    tiny = scratch / "tiny.pkl"
    tiny.write_bytes(b"N.")
    return statistics.median(tool.run(tiny, scratch).seconds for _ in range(3))


# --- the report ---------------------------------------------------------------------------


def _count(tool: Tool, samples: list[Sample], outcome: str) -> int:
    return sum(tool.results[s.name].outcome == outcome for s in samples)


def render(
    tools: list[Tool],
    missing: list[str],
    samples: list[Sample],
    startup: dict[str, float],
    elapsed: dict[str, float],
) -> str:
    attacks = [s for s in samples if s.kind == "attack"]
    legit = [s for s in samples if s.kind == "legit"]
    benign = [s for s in samples if s.kind == "benign"]
    lines = [
        "# safeload's scanner compared with fickling, picklescan and modelscan",
        "",
        "Generated by `benchmarks/compare_scanners.py` (do not edit by hand; re-run it). Every",
        "file is judged by each tool on its own, one command per file, as a user would run it.",
        "",
        f"* Corpus: **{len(attacks)} attacks** (`tests/attacks/corpus.py`, {len(CATEGORIES)} "
        f"categories), **{len(legit)} legitimate models** ({len(legit) // len(COMPRESSIONS)} "
        f"scikit-learn estimators and pipelines x {len(COMPRESSIONS)} joblib compressions: "
        f"{', '.join(c for c, _ in COMPRESSIONS)}), and **{len(benign)} benign look-alikes** "
        "(models holding data that spells a pickle payload).",
        "* Verdicts: **flagged** = the tool reports the file unsafe; **error** = it could not "
        "analyse the file (crash, parse error, timeout, or skipped); **clean** = it reported "
        "nothing. *Gate* counts an attack as stopped when the tool flagged it **or** errored, "
        "i.e. when a CI step that rejects on any non-zero exit would have refused it.",
        f"* Environment: Python {platform.python_version()} on {platform.system()} "
        f"{platform.machine()}, scikit-learn {_version('scikit-learn')}, numpy "
        f"{_version('numpy')}, joblib {_version('joblib')}.",
        "",
        "## Results",
        "",
        "| tool | version | attacks flagged | attacks errored | attacks missed | gate: attacks "
        "stopped | legit models flagged | legit models errored | gate: legit refused | "
        "look-alikes refused | total time | of which bombs | per-file fixed cost |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    n_a, n_l, n_b = len(attacks), len(legit), len(benign)
    for tool in tools:
        flagged = _count(tool, attacks, "flagged")
        errored = _count(tool, attacks, "error")
        missed = _count(tool, attacks, "clean")
        legit_flagged = _count(tool, legit, "flagged")
        legit_errored = _count(tool, legit, "error")
        bomb_time = sum(tool.results[s.name].seconds for s in attacks if s.category == "bomb")
        lines.append(
            f"| {tool.name} | {tool.version} | {flagged}/{n_a} | {errored}/{n_a} | {missed}/{n_a} "
            f"| {flagged + errored}/{n_a} | {legit_flagged}/{n_l} | {legit_errored}/{n_l} | "
            f"{legit_flagged + legit_errored}/{n_l} | "
            f"{_count(tool, benign, 'flagged') + _count(tool, benign, 'error')}/{n_b} | "
            f"{elapsed[tool.name]:.1f} s | {bomb_time:.1f} s | {startup[tool.name]:.2f} s |"
        )
    if missing:
        lines += ["", f"Not installed, skipped: {', '.join(missing)}."]
    lines += [
        "",
        f"![Attacks stopped and legitimate files refused, per tool]({CHART_NAME})",
        "",
        "Total time is the sum of the per-file wall-clock times over all "
        f"{len(samples)} files, run one after the other; the fixed cost is the median time "
        "to judge a 2-byte pickle (interpreter start-up and imports, for the command-line "
        "tools); *of which bombs* is the time spent on the resource-bomb files (safeload "
        "decompresses the 1 GiB zlib bomb up to its ratio limit before refusing it). "
        "Look-alikes are refused when flagged or errored (both are false alarms).",
        "",
        "Categories: **direct** stdlib callables that run code or reach the OS (`os.system`, "
        "`exec`, `subprocess`, `runpy`, `timeit`, `cProfile`, `bdb`, ...) at protocols 0-5; "
        "**reexport** the same reached through numpy/sklearn/joblib modules that re-export "
        "them (`sklearn.os.system`, `numpy.testing._private.utils.runstring`, ...); "
        "**nested** a payload deserialized by a nested `pickle.loads`/`joblib.load`/"
        "`numpy.load`/`marshal.loads`; **gadget** higher-order tricks (`operator.attrgetter`, "
        "`functools.partial`, `copyreg._reconstructor`, `type(...)`, `CodeType`, "
        "`numpy.frompyfunc`, a `FunctionTransformer` holding `os.system`, ...); **opcode** "
        "scanner evasion (memoised or escaped `STACK_GLOBAL` strings, `INST`/`OBJ`/`EXT*`, "
        "`NEWOBJ_EX`, `BUILD` `__setstate__` injection, py2 name mapping, bytes after `STOP`, "
        "protocol-header mismatch, ...); **joblib** container tricks (payload after an array, "
        "object and structured dtypes, legacy wrappers and `ZF` container, crafted shapes); "
        "**memory** a numpy dtype whose pickled flags hide an object field, so raw bytes "
        "become object pointers (memory corruption from default-policy names only); "
        "**compression** every joblib compressor and multi-member streams; **file-write** "
        "`open`/`pathlib`/`numpy.savetxt`/`shutil`/`logging` writes; **bomb** decompression, "
        "hash-complexity, deep-recursion, huge-declared-size and allowed-name memory bombs.",
        "",
        "## Attacks flagged, by category",
        "",
        "| category | attacks | " + " | ".join(t.name for t in tools) + " |",
        "| --- | --- | " + " | ".join("---" for _ in tools) + " |",
    ]
    for category in CATEGORIES:
        group = [s for s in attacks if s.category == category]
        cells = [f"{_count(t, group, 'flagged')} (+{_count(t, group, 'error')} err)" for t in tools]
        lines.append(f"| {category} | {len(group)} | " + " | ".join(cells) + " |")
    lines += ["", "## What each tool misses", ""]
    for tool in tools:
        missed_list = [s for s in attacks if tool.results[s.name].outcome == "clean"]
        errored_list = [s for s in attacks if tool.results[s.name].outcome == "error"]
        lines.append(f"### {tool.name}")
        lines.append("")
        if not missed_list and not errored_list:
            lines.append("Flags every attack.")
        for label, group in (("Missed (reported clean)", missed_list), ("Errored", errored_list)):
            if not group:
                continue
            by_cat: dict[str, list[str]] = {}
            for s in group:
                by_cat.setdefault(s.category, []).append(s.name)
            lines.append(f"{label}, {len(group)}:")
            lines.append("")
            for category, names in by_cat.items():
                lines.append(f"* {category}: " + ", ".join(f"`{n}`" for n in names))
            lines.append("")
        false_alarms = [s for s in legit + benign if tool.results[s.name].outcome != "clean"]
        if false_alarms:
            shown = ", ".join(
                f"`{s.name}` ({tool.results[s.name].outcome})" for s in false_alarms[:12]
            )
            more = f" and {len(false_alarms) - 12} more" if len(false_alarms) > 12 else ""
            lines.append(f"Legitimate or look-alike files not passed: {shown}{more}.")
        else:
            lines.append("Passes every legitimate model and look-alike.")
        lines.append("")
    lines += [
        "## Commands and versions",
        "",
        "| tool | version | command (one run per file) | how the verdict is read |",
        "| --- | --- | --- | --- |",
    ]
    readings = {
        "safeload (API)": "`report.safe` (untrusted types or problems: flagged)",
        "safeload (CLI)": '`"safe"` in the JSON; exit 0 clean, 1 refused, anything else error',
        "fickling": "`severity` in the JSON report: `LIKELY_SAFE` clean, any other flagged; no "
        "report written (crash, parse error) error",
        "picklescan": "`Infected files: N` in the summary (N > 0 flagged, even when the exit "
        "is 2 because a parse error followed); else exit 0 clean, exit 2 error",
        "picklescan --strict": "as picklescan; `--strict` promotes every global that is not on "
        "its safe list to dangerous (default-deny)",
        "modelscan": "`issues` in the JSON report flagged; else `errors` (or nothing scanned) "
        "error; else clean",
    }
    for tool in tools:
        lines.append(f"| {tool.name} | {tool.version} | `{tool.command}` | {readings[tool.name]} |")
    lines += [
        "",
        "Reproduce: `python3 -m venv /tmp/vcmp && /tmp/vcmp/bin/pip install fickling picklescan "
        "modelscan typing_extensions`, then `python benchmarks/compare_scanners.py --tools-bin "
        "/tmp/vcmp/bin` from the project's environment. The hostile files are only ever read "
        "by the scanners; nothing in this benchmark unpickles them.",
        "",
    ]
    return "\n".join(lines)


CHART_NAME = "img/comparison.svg"


def draw_chart(verdicts: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    """Bars per tool from the verdicts (the ``--json`` document): what a CI gate would do."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    def share(tool: str, kind: str, outcomes: tuple[str, ...]) -> float:
        rows = [v for v in verdicts[tool].values() if v["kind"] == kind]
        return 100.0 * sum(v["outcome"] in outcomes for v in rows) / max(1, len(rows))

    tools = list(verdicts)
    bars = [
        ("attacks flagged", "attack", ("flagged",)),
        ("attacks stopped (flagged or errored)", "attack", ("flagged", "error")),
        ("legitimate models refused", "legit", ("flagged", "error")),
        ("look-alikes refused", "benign", ("flagged", "error")),
    ]
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.75 * len(tools)))
    height = 0.8 / len(bars)
    for k, (label, kind, outcomes) in enumerate(bars):
        ys = [i + (k - (len(bars) - 1) / 2) * height for i in range(len(tools))]
        ax.barh(ys, [share(t, kind, outcomes) for t in tools], height, label=label)
    ax.set_yticks(range(len(tools)), tools)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the files of each kind")
    ax.set_title("Scanners on one corpus: attacks stopped, legitimate files refused")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    save_svg(fig, path)


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tools-bin",
        action="append",
        default=[],
        metavar="DIR",
        help="a bin folder holding fickling/picklescan/modelscan (repeatable)",
    )
    parser.add_argument("--corpus", type=Path, help="where to write the corpus (default: temp)")
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "comparison.md")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per file and tool")
    parser.add_argument("--json", type=Path, help="also write every verdict as JSON here")
    parser.add_argument(
        "--redraw", type=Path, metavar="JSON", help="only redraw the chart from a --json file"
    )
    args = parser.parse_args(argv)
    chart = args.report.parent / CHART_NAME
    if args.redraw:
        draw_chart(json.loads(args.redraw.read_text()), chart)
        print(f"wrote {chart}", file=sys.stderr)
        return 0

    with contextlib.ExitStack() as stack:
        corpus = args.corpus or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        samples = write_corpus(corpus)
        tools, missing = find_tools(args.tools_bin, args.timeout)
        print(
            f"{len(samples)} files in {corpus}; tools: {', '.join(t.name for t in tools)}"
            + (f"; missing: {', '.join(missing)}" if missing else ""),
            file=sys.stderr,
        )
        startup: dict[str, float] = {}
        elapsed: dict[str, float] = {}
        for tool in tools:
            startup[tool.name] = startup_seconds(tool, scratch)
            for sample in samples:
                with contextlib.redirect_stdout(io.StringIO()):
                    tool.results[sample.name] = tool.run(sample.path, scratch)
            elapsed[tool.name] = sum(v.seconds for v in tool.results.values())
            print(f"  {tool.name}: {elapsed[tool.name]:.1f} s", file=sys.stderr)
        args.report.write_text(render(tools, missing, samples, startup, elapsed))
        print(f"wrote {args.report}", file=sys.stderr)
        if args.json:
            doc = {
                t.name: {
                    s.name: {"kind": s.kind, "category": s.category, **vars(t.results[s.name])}
                    for s in samples
                }
                for t in tools
            }
            args.json.write_text(json.dumps(doc, indent=1, sort_keys=True))
        try:
            draw_chart(
                {
                    t.name: {
                        s.name: {"kind": s.kind, "outcome": t.results[s.name].outcome}
                        for s in samples
                    }
                    for t in tools
                },
                chart,
            )
            print(f"wrote {chart}", file=sys.stderr)
        except ImportError:
            print("matplotlib is not installed: the chart was not redrawn", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
