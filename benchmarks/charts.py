"""What every benchmark chart shares: written as an SVG that is the same bytes for the same data.

matplotlib stamps the date into an SVG's metadata; without it, re-drawing a chart with the same
figures leaves the committed file unchanged, so a diff of docs/img/ shows only real changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_svg(fig: Any, path: Path) -> None:
    """Lay the figure out and write it to ``path`` (folders made), without a date stamp."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Date": None})
