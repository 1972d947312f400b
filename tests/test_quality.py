"""The package stays typed (mypy strict) and lint-clean (ruff), as CI checks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def test_ruff_clean() -> None:
    result = subprocess.run(
        [_tool("ruff"), "check", "safeload", "tests", "benchmarks", ".ci"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_clean() -> None:
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the house: small modules, no import circle, optional integrations stay optional ---------

PACKAGE = Path(__file__).resolve().parents[1] / "safeload"
#: Generated data, not code: exempt from the size bound.
GENERATED = {"_default_types.py"}
MAX_LINES = 850


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = PACKAGE.parent / dotted.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _runtime_imports(path: Path) -> set[str]:
    """The safeload modules ``path`` imports, at import time or lazily inside a function (a lazy
    import hides a circle, it does not remove it); not those under ``TYPE_CHECKING``.
    ``from pkg import submodule`` imports the submodule, not pkg's names."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    found: set[str] = set()
    for child in ast.walk(tree):
        if id(child) in typing_only:
            continue
        if isinstance(child, ast.ImportFrom) and (child.module or "").startswith("safeload"):
            names = [f"{child.module}.{a.name}" for a in child.names]
            found.update(n for n in names if _is_module(n))
            if not all(_is_module(n) for n in names):
                found.add(str(child.module))
        elif isinstance(child, ast.Import):
            found.update(a.name for a in child.names if a.name.startswith("safeload"))
    return found


def test_no_source_module_is_too_large() -> None:
    sizes = {
        _module_name(p): len(p.read_text(encoding="utf-8").splitlines())
        for p in PACKAGE.rglob("*.py")
        if p.name not in GENERATED
    }
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_no_import_circle() -> None:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: {m for m in _runtime_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ importing its own submodules is how a door works, not a circle.
    for name in graph:
        graph[name] = (
            {m for m in graph[name] if not name.startswith(m + ".")} if "." in name else graph[name]
        )
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        assert node not in visiting, "import circle: " + " -> ".join([*visiting, node])
        visiting.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        visiting.pop()
        done.add(node)

    for name in sorted(graph):
        visit(name)


def test_import_safeload_pulls_in_no_optional_integration() -> None:
    code = (
        "import sys, safeload\n"
        "heavy = {'fsspec', 's3fs', 'boto3', 'mlflow', 'fastapi', 'uvicorn', 'dask', 'onnx',"
        " 'onnxruntime', 'skl2onnx', 'pandas', 'model_signing', 'sigstore', 'lightgbm',"
        " 'xgboost', 'catboost'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
