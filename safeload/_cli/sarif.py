"""SARIF 2.1.0 logs of ``scan`` and ``verify``, for code-scanning dashboards in CI.

Built from the very dictionaries ``--json`` prints, so the two formats cannot disagree. A
finding (the file or artifact was examined and refused) is a result of level ``error`` under
a rule per kind of refusal; a path that could not be examined is no finding about it, so it
is a tool execution notification and the invocation is marked unsuccessful; an entry a scan
skipped (a symlink) is a warning notification. Clean files are listed in ``run.artifacts``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from safeload import __version__
from safeload.errors import shown

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
# The project names no home page yet; its package index page is where users find it.
INFORMATION_URI = "https://pypi.org/project/safeload/"
SRCROOT = "%SRCROOT%"

#: (id, name, exception type or None, description): one rule per kind of refusal.
RULES: tuple[tuple[str, str, str | None, str], ...] = (
    (
        "SL001",
        "untrusted-type",
        "UntrustedTypeError",
        "The model names a type outside the trusted-type policy; loading it could run code.",
    ),
    (
        "SL002",
        "malformed-model",
        "MalformedArtifactError",
        "The file or artifact is not what it claims to be: unparsable stream, odd layout, "
        "a scan limit exceeded, or an evasion.",
    ),
    (
        "SL003",
        "tampered-artifact",
        "TamperedArtifactError",
        "The artifact's files differ from its signed manifest.",
    ),
    ("SL004", "unsigned-artifact", "UnsignedArtifactError", "The artifact carries no signature."),
    (
        "SL005",
        "untrusted-signer",
        "UntrustedSignerError",
        "The artifact was signed by a key that is not in the trusted keyring.",
    ),
    (
        "SL006",
        "invalid-signature",
        "SignatureError",
        "The signature bundle is malformed or does not verify.",
    ),
    (
        "SL007",
        "broken-contract",
        "ContractError",
        "The model does not keep the promises recorded when it was saved.",
    ),
    ("SL008", "refused", None, "The input was examined and refused."),
)
#: Notifications: (id, name, description).
NOTIFICATIONS = (
    ("SL100", "not-examined", "A path could not be examined (missing, unreadable, a limit)."),
    ("SL101", "skipped-entry", "A tree entry was not scanned: a symlink or a special file."),
)
_RULE_OF_TYPE = {kind: i for i, (_, _, kind, _) in enumerate(RULES) if kind}
_FALLBACK = len(RULES) - 1
_MAX_NAME = 200


def scan_log(document: dict[str, Any], status: int) -> dict[str, Any]:
    """The SARIF log of ``safeload scan`` from its ``--json`` document."""
    results: list[dict[str, Any]] = []
    for report in document["files"]:
        where = report["path"]
        for name in report["untrusted"]:
            results.append(_type_result(where, name))
        for problem in report["problems"]:
            results.append(_result(1, where, f"{where}: {problem}"))
    notes = [_note(0, "error", e["path"], e["message"]) for e in document["errors"]]
    notes += [
        _note(1, "warning", s["path"], f"{s['path']} was not scanned: {s['reason']}")
        for s in document.get("skipped", [])
    ]
    artifacts = [
        {
            "location": _location(r["path"])["physicalLocation"]["artifactLocation"],
            "properties": {"format": r["format"], "safe": r["safe"]},
        }
        for r in document["files"]
    ]
    return _log(results, notes, artifacts, status)


def verify_log(results_in: Sequence[dict[str, Any]], status: int) -> dict[str, Any]:
    """The SARIF log of ``safeload verify`` from its per-path result dictionaries."""
    results: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    artifacts: list[dict[str, Any]] = []
    for entry in results_in:
        where = entry["path"]
        if entry["verified"]:
            artifacts.append(
                {
                    "location": _location(where)["physicalLocation"]["artifactLocation"],
                    "properties": {"verified": True, "format": entry["format"]},
                }
            )
        elif entry.get("error") == "refused":
            rule = _RULE_OF_TYPE.get(entry["type"], _FALLBACK)
            if rule == 0 and entry.get("types"):
                model = _model_file(where)
                results.extend(_type_result(model, n, entry["message"]) for n in entry["types"])
                continue
            extra = {k: entry[k] for k in ("files", "hint") if entry.get(k)}
            text = f"{where}: {entry['message']}"
            result = _result(rule, where, text, {"type": entry["type"], **extra})
            if entry.get("files"):  # tampered: point at each file that differs
                result["locations"] = [_location(os.path.join(where, f)) for f in entry["files"]]
            results.append(result)
        else:
            notes.append(_note(0, "error", where, entry["message"]))
    return _log(results, notes, artifacts, status)


def _log(
    results: list[dict[str, Any]],
    notes: list[dict[str, Any]],
    artifacts: list[dict[str, Any]],
    status: int,
) -> dict[str, Any]:
    driver = {
        "name": "safeload",
        "version": __version__,
        "informationUri": INFORMATION_URI,
        "rules": [_descriptor(rid, name, text) for rid, name, _, text in RULES],
        "notifications": [_descriptor(rid, name, text) for rid, name, text in NOTIFICATIONS],
    }
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().as_uri().rstrip("/") + "/"}},
        "invocations": [
            {
                "executionSuccessful": not any(n["level"] == "error" for n in notes),
                "exitCode": status,
                "toolExecutionNotifications": notes,
            }
        ],
        "results": results,
    }
    if artifacts:
        run["artifacts"] = artifacts
    log: dict[str, Any] = _clean({"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]})
    return log


def _clean(value: Any) -> Any:
    """Every string as valid Unicode, which strict SARIF consumers require.

    A file name that is not UTF-8 shows U+FFFD in text; its URI keeps the exact bytes.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _model_file(artifact: str) -> str:
    """The artifact's one model file, where its types are; else the artifact itself."""
    from safeload.layout import MODEL_FILES

    present = [
        os.path.join(artifact, name)
        for name in MODEL_FILES.values()
        if stat.S_ISREG(_mode(os.path.join(artifact, name)))
    ]
    return present[0] if len(present) == 1 else artifact


def _descriptor(rule_id: str, name: str, text: str) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": text},
        "defaultConfiguration": {"level": "error"},
    }


def _type_result(where: str, name: str, message: str | None = None) -> dict[str, Any]:
    name = name if len(name) <= _MAX_NAME else shown(name)
    text = (
        f"{where} names the untrusted type {name}; nothing was deserialized. Do not load it "
        f"unless you trust this exact name (then: --allow {name})."
    )
    result = _result(0, where, text, {"type": name})
    result["locations"][0]["logicalLocations"] = [{"fullyQualifiedName": name, "kind": "type"}]
    if message:
        result["properties"]["refusal"] = message
    return result


def _result(
    rule: int, where: str, text: str, properties: dict[str, Any] | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": RULES[rule][0],
        "ruleIndex": rule,
        "level": "error",
        "message": {"text": text},
        "locations": [_location(where)],
    }
    if properties:
        result["properties"] = properties
    return result


def _note(index: int, level: str, where: str, text: str) -> dict[str, Any]:
    return {
        "level": level,
        "message": {"text": text},
        "descriptor": {"id": NOTIFICATIONS[index][0], "index": index},
        "locations": [_location(where)],
    }


def _location(path: str) -> dict[str, Any]:
    return {"physicalLocation": {"artifactLocation": artifact_location(path)}}


def artifact_location(path: str) -> dict[str, str]:
    """A path as SARIF wants it: relative to the current directory when it is under it.

    Relative URIs use forward slashes, are percent-encoded, and rest on ``%SRCROOT%`` (the
    current directory, given in ``originalUriBaseIds``); a path outside it is a ``file:`` URI.
    A directory (an artifact) ends with ``/``.
    """
    absolute = Path(os.path.abspath(path))
    trailing = "/" if _is_dir(path) else ""
    try:
        relative = absolute.relative_to(Path.cwd())
    except ValueError:
        return {"uri": absolute.as_uri() + trailing}
    text = relative.as_posix()
    if text == ".":
        return {"uri": "./", "uriBaseId": SRCROOT}
    return {"uri": quote(text, errors="surrogateescape") + trailing, "uriBaseId": SRCROOT}


def _is_dir(path: str) -> bool:
    return stat.S_ISDIR(_mode(path))


def _mode(path: str) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0
