"""The README's quickstart is what CI runs; keep it well-formed."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_readme_quickstart_has_two_self_contained_commands() -> None:
    module = runpy.run_path(str(ROOT / ".ci" / "quickstart.py"))
    main, test = module["quickstart_commands"]((ROOT / "README.md").read_text())
    assert main.startswith("pip install") and "safeload demo" in main
    assert test.startswith("pip install") and "pytest" in test
    assert "quickstart.py test" in (ROOT / ".ci" / "run").read_text()
