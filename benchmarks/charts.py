"""What every benchmark chart shares: written as an SVG that is the same bytes for the same data.

matplotlib stamps the date into an SVG's metadata; without it, re-drawing a chart with the same
figures leaves the committed file unchanged, so a diff of docs/img/ shows only real changes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def save_svg(fig: Any, path: Path) -> None:
    """Lay the figure out and write it to ``path`` (folders made), without a date stamp."""
    import matplotlib

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Element ids are random unless salted: a fixed salt makes them follow the data alone.
    with matplotlib.rc_context({"svg.hashsalt": "safeload"}):
        fig.savefig(path, metadata={"Date": None})


def write_outputs(
    rows: Any, json_path: Path | None, svg_path: Path | None, chart: Callable[[Any, Path], None]
) -> None:
    """Keep the figures as JSON and draw their chart, when asked to."""
    if json_path:
        json_path.write_text(json.dumps(rows, indent=2) + "\n")
    if svg_path:
        chart(rows, svg_path)
        print(f"chart written to {svg_path}", file=sys.stderr)
