"""The documentation site: it builds strictly and offline, and it names only things that exist.

``mkdocs build --strict`` fails on any warning: a broken link or anchor, a page missing from
the nav, a docstring mkdocstrings cannot render. The other tests keep the prose honest: every
test the threat model cites exists, every CLI verb and option is documented, every public name
has an API entry, and the Quickstart's Python runs against the real package.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import safeload
from safeload._cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
# A proxy that refuses every connection: anything the build tried to fetch would fail.
OFFLINE = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_mkdocs_build_strict_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **OFFLINE, "NO_MKDOCS_2_WARNING": "1"},
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < 60, f"the docs build took {elapsed:.0f} s"
    for page in ("index.html", "threat-model/index.html", "cli/index.html", "format/index.html"):
        assert (site / page).is_file(), page
    # The API reference was generated from the docstrings, not left empty.
    api = _text(site / "api" / "loading" / "index.html")
    assert 'id="safeload.load"' in api and "Verify an artifact and return the bare model" in api


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(_text(path))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test")
    }


def test_every_cited_test_exists() -> None:
    cited = {
        (match[0], match[1])
        for page in PAGES
        for match in re.findall(r"tests/([\w/]+\.py)::(\w+)", _text(page))
    }
    assert cited, "the threat model cites no tests"
    missing = []
    for file_name, function in sorted(cited):
        path = ROOT / "tests" / file_name
        if not path.is_file() or function not in _test_functions(path):
            missing.append(f"tests/{file_name}::{function}")
    assert not missing, f"the docs cite tests that do not exist: {missing}"


def test_cli_reference_covers_every_verb_and_option() -> None:
    page = _text(DOCS / "cli.md")
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a.choices, dict)).choices
    assert isinstance(verbs, dict)
    undocumented = []
    for verb, sub in verbs.items():
        if f"## {verb}\n" not in page:
            undocumented.append(f"section ## {verb}")
        for action in sub._actions:
            undocumented += [
                f"{verb} {option}"
                for option in action.option_strings
                if option.startswith("--") and option != "--help" and option not in page
            ]
    assert not undocumented, f"docs/cli.md does not document: {undocumented}"


def test_api_reference_covers_every_public_name() -> None:
    api = "\n".join(_text(p) for p in sorted((DOCS / "api").glob("*.md")))
    errors = _text(DOCS / "api" / "errors.md")
    missing = [
        name
        for name in safeload.__all__
        if name != "__version__"
        and f"::: safeload.{name}\n" not in api
        and not (name.endswith("Error") and f"- {name}\n" in errors)
    ]
    assert not missing, f"no API reference entry for: {missing}"


def test_nav_lists_every_page() -> None:
    config = _text(ROOT / "mkdocs.yml")
    listed = set(re.findall(r":\s+([\w/.-]+\.md)\s*$", config, re.M))
    pages = {p.relative_to(DOCS).as_posix() for p in PAGES}
    assert pages == listed, f"not in nav: {pages - listed}; missing files: {listed - pages}"


@pytest.mark.skipif(
    shutil.which("safeload", path=str(Path(sys.executable).parent)) is None,
    reason="the safeload console script is not installed next to this Python",
)
def test_quickstart_runs(tmp_path: Path) -> None:
    """The Quickstart's commands and Python, in order, in an empty folder."""
    page = _text(DOCS / "quickstart.md")
    script = Path(sys.executable).parent / "safeload"
    keygen = subprocess.run(
        [str(script), "keygen", "secrets/trainer"], cwd=tmp_path, capture_output=True, text=True
    )
    assert keygen.returncode == 0, keygen.stderr
    (tmp_path / "keys").mkdir()
    shutil.copy(tmp_path / "secrets" / "trainer.pub", tmp_path / "keys")
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    assert len(blocks) == 2, "the Quickstart should hold a training and a serving block"
    for block in blocks:
        done = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    assert "Pipeline [0]" in done.stdout
    verify = subprocess.run(
        [str(script), "verify", "models/iris/1.0.0", "--trusted", "keys/"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0 and verify.stdout.startswith("OK"), verify.stdout
    with (tmp_path / "models" / "iris" / "1.0.0" / "model.joblib").open("ab") as model:
        model.write(b"x")
    refused = subprocess.run(
        [str(script), "verify", "models/iris/1.0.0", "--trusted", "keys/"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() in page, refused.stderr


def test_production_examples_serve_with_the_schema_checked_load() -> None:
    """README, Quickstart and the serving guides lead to load_checked, never the bare model."""
    readme = _text(ROOT / "README.md")
    production = readme.split("## Production", 1)[1].split("##", 1)[0]
    assert "safeload.load_checked(" in production and "safeload.load(" not in production
    quickstart = _text(DOCS / "quickstart.md")
    serving = re.findall(r"```python\n(.*?)```", quickstart, re.S)[-1]
    assert "safeload.load_checked(" in serving
    for guide in ("web-service.md", "batch-job.md"):
        text = _text(DOCS / "guides" / guide)
        assert "load_checked(" in text and ".load(" not in text, guide
    assert "load_checked" in (safeload.load.__doc__ or "")
