"""Run a crafted model's prediction in a throwaway child, to show what validation prevents.

The child loads the model with plain ``joblib.load`` (no gate), caps its address space at
4 GiB and calls one method on a small input; a crash, a ``MemoryError`` or a hang past the
timeout all mean the crafted values are dangerous. Never predict with a crafted model in the
test process itself.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import joblib

SURVIVED = b"survived"


def predict_in_child(
    model: Any, tmp_path: Path, call: str, data: str, *, timeout: float = 20.0
) -> str:
    """The child's fate: ``"survived"``, ``"hung"``, ``"crashed (signal N)"`` or ``"raised"``.

    ``call`` is the method (``"transform"``), ``data`` a Python expression for its input.
    """
    path = tmp_path / "crafted.joblib"
    joblib.dump(model, path)
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        import joblib, numpy as np
        model = joblib.load({str(path)!r})
        out = model.{call}({data})
        if hasattr(out, "toarray"):
            out = out.toarray()
        np.asarray(out).sum()
        sys.stdout.write("survived")
    """)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return "hung"
    if proc.returncode < 0:
        return f"crashed (signal {-proc.returncode})"
    if SURVIVED in proc.stdout:
        return "survived"
    last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
    return f"raised {last[0] if last else ''}"
