"""The status page at ``GET /``: the served and refused models with their provenance, as HTML.

Everything shown comes from signed metadata or refusal messages, and a signature says who made
a file, not that its strings are harmless: a metric name or a config value may hold markup.
Every value goes through :func:`html.escape` (quotes too) and nothing else reaches the page;
the response also carries a Content-Security-Policy that allows no script and no external
resource at all, so the page needs no network and an escape slip cannot run code.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;
color:#1d1d1f;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:0}
.model{background:#fff;border:1px solid #ddd;border-left:6px solid #2e7d32;border-radius:6px;
padding:1rem;margin:1rem 0}
.model.refused{border-left-color:#c62828}
.verdict{font-weight:600;text-transform:uppercase;font-size:.8rem;margin-left:.5rem}
.served .verdict{color:#2e7d32}.refused .verdict{color:#c62828}
table{border-collapse:collapse;margin:.5rem 0}
th,td{text-align:left;padding:.15rem .8rem .15rem 0;vertical-align:top}
th{color:#555;font-weight:500}
code,pre{font:12px ui-monospace,monospace;white-space:pre-wrap;word-break:break-word}
.muted{color:#666}
"""


def _e(value: Any) -> str:
    """Any value as inert text: strings as they are, everything else as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return html.escape(text, quote=True)


def _rows(pairs: Iterable[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)


def _model(doc: dict[str, Any]) -> str:
    served = doc["verdict"] == "served"
    title = f"{_e(doc['name'])} <span class='muted'>{_e(doc.get('version') or '')}</span>"
    parts = [
        f"<section class='model {'served' if served else 'refused'}' "
        f"data-model='{_e(doc['name'])}' data-verdict='{_e(doc['verdict'])}'>",
        f"<h2>{title}<span class='verdict'>{_e(doc['verdict'])}</span></h2>",
    ]
    refused = doc.get("refused")
    if refused:
        parts.append(
            "<p class='reason'>Last load refused"
            f" (version {_e(refused.get('version'))}, {_e(refused.get('at'))}): "
            f"<code>{_e(refused.get('reason'))}</code></p>"
        )
    if served:
        signers = ", ".join(
            f"{s.get('name') or ''} ({s.get('hint')})".strip() for s in doc.get("signers", [])
        )
        schema = doc.get("schema") or {}
        columns = [f"{c.get('name')}: {c.get('dtype')}" for c in schema.get("columns") or []]
        parts.append(
            "<table>"
            + _rows(
                [
                    ("signed by", signers),
                    ("created", doc.get("created_at")),
                    ("loaded", doc.get("loaded_at")),
                    ("estimator", doc.get("estimator")),
                    ("format", doc.get("format")),
                    ("routes", ", ".join(doc.get("methods") or [])),
                    ("input", ", ".join(columns) or f"{schema.get('n_features_in')} features"),
                ]
            )
            + "</table>"
        )
        for label, key in (("metrics", "metrics"), ("config", "config"), ("libraries", "versions")):
            values = doc.get(key) or {}
            if values:
                parts.append(f"<h3>{_e(label)}</h3><table>{_rows(sorted(values.items()))}</table>")
    parts.append("</section>")
    return "".join(parts)


def render(models: list[dict[str, Any]], *, ready: bool) -> str:
    """The whole page; ``models`` are the provenance documents of ``GET /v1/models``."""
    served = sum(1 for m in models if m["verdict"] == "served")
    body = "".join(_model(m) for m in models) or "<p>No models in the store.</p>"
    status = "ready" if ready else "not ready: no model passed the gate"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>safeload serve</title><style>{_CSS}</style></head><body>"
        "<h1>safeload serve</h1>"
        f"<p class='muted' id='summary'>{served} of {len(models)} model(s) served; "
        f"{_e(status)}. Each was verified and loaded through the whole gate; the refused ones "
        "are not served. JSON: <code>/v1/models</code>.</p>"
        f"{body}</body></html>"
    )
