"""Run a crafted model's method in a child process, to show what it does without validation.

A model that validation refuses may crash the interpreter when used, so it is never called in
the test process: it is pickled to a file, and a child (address space capped, timed out)
loads it with plain joblib and calls the method. The verdict is ``"crash"`` (killed by a
signal or aborted), ``"hang"``, ``"error: <type>"`` (a Python exception) or ``"ok"``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import joblib

_CHILD = textwrap.dedent("""
    import resource, sys, warnings
    import joblib
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    warnings.simplefilter("ignore")
    model, X, method = joblib.load(sys.argv[1])
    try:
        getattr(model, method)(X)
    except Exception as exc:
        print("error:", type(exc).__name__)
    else:
        print("ok")
""")


def run_crafted(model: Any, X: Any, method: str, tmp_path: Path, timeout: float = 120) -> str:
    """The verdict of ``model.<method>(X)`` in a capped child process."""
    path = tmp_path / "crafted.joblib"
    joblib.dump((model, X, method), path)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "hang"
    if proc.returncode != 0:
        return "crash"
    return proc.stdout.strip() or "crash"
