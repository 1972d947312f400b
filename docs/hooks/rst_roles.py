"""MkDocs hook: render the Sphinx roles that safeload's docstrings use.

The docstrings are Google style but cross-reference with Sphinx roles (:class:`Keyring`,
:func:`load_artifact`, :mod:`safeload.layout`) and introduce examples with ``Training::``.
mkdocstrings renders those literally; this hook turns each role into an optional autorefs
link (plain code when the target is not documented) and drops the second colon of ``::``.
It touches rendered HTML only, never the package.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(
    r":(?:class|func|meth|mod|data|attr|exc|obj|const):<code>(?P<tilde>~?)(?P<target>[\w.]+)(?P<call>\(\))?</code>"
)
_LITERAL_INTRO = re.compile(r"::</p>")


def _identifier(target: str) -> str:
    return target if target.startswith("safeload") else f"safeload.{target}"


def _link(match: re.Match[str]) -> str:
    target = match["target"]
    title = target.rsplit(".", 1)[-1] if match["tilde"] else target
    title += match["call"] or ""
    return f'<autoref optional identifier="{_identifier(target)}"><code>{title}</code></autoref>'


def on_page_content(html: str, **kwargs: Any) -> str:
    """Rewrite roles into optional cross-references; autorefs resolves them later."""
    return _LITERAL_INTRO.sub(":</p>", _ROLE.sub(_link, html))
