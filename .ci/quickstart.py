"""Print one of the README's two Quickstart commands ("main" or "test")."""

import re
import sys
from pathlib import Path


def quickstart_commands(readme: str) -> list[str]:
    """The commands of the first fenced block under ## Quickstart."""
    section = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S)
    if block is None:
        raise SystemExit("README: no fenced block under ## Quickstart")
    commands = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    if len(commands) != 2:
        raise SystemExit(f"README Quickstart must hold exactly two commands, found {commands}")
    return commands


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "test"
    main, test = quickstart_commands((Path(__file__).parent.parent / "README.md").read_text())
    print(main if which == "main" else test)
