"""``verify`` and ``inspect``: the gate without deserializing, for people and for CI."""

from __future__ import annotations

import argparse
import json
from typing import Any

from safeload._cli import args as cli_args
from safeload._cli import output
from safeload._cli.output import escape
from safeload.errors import (
    OperationalError,
    RefusedError,
    UntrustedSignerError,
    UntrustedTypeError,
    untrusted_types_message,
)

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def verify_one(path: str, args: argparse.Namespace) -> dict[str, Any]:
    """One path through the gate: the ``--json`` document of a verified or a refused artifact."""
    from safeload.loading import verify_artifact

    if getattr(args, "model_signing", False):
        return _verify_model_signing(path, args)
    try:
        with output.progress(args.format == "table") as progress:
            verified = verify_artifact(
                path, trusted=args.trusted, policy=cli_args.policy(args), progress=progress
            )
    except RefusedError as exc:
        return {"path": path, "verified": False, **error_document(exc, "refused")}
    except OperationalError as exc:
        return {"path": path, "verified": False, **error_document(exc, "error")}
    meta = verified.metadata
    return {
        "path": verified.path,
        "verified": True,
        "signer": verified.statement.signer_hint,
        "signer_name": verified.statement.signer_name,
        "name": meta.get("name"),
        "version": meta.get("version"),
        "format": verified.format,
        "files": verified.statement.manifest.files(),
        "types": list(verified.scan.globals),
        "signatures": [c.to_dict() for c in verified.statement.signatures],
    }


def _verify_model_signing(path: str, args: argparse.Namespace) -> dict[str, Any]:
    """``verify --model-signing``: a folder signed by OpenSSF model_signing, no safeload.json."""
    from safeload.interop import verify_model_signing

    try:
        with output.progress(args.format == "table") as progress:
            verified = verify_model_signing(
                path,
                trusted=args.trusted,
                signature=args.signature,
                policy=cli_args.policy(args),
                progress=progress,
            )
    except RefusedError as exc:
        return {"path": path, "verified": False, **error_document(exc, "refused")}
    except OperationalError as exc:
        return {"path": path, "verified": False, **error_document(exc, "error")}
    return {
        "path": verified.path,
        "verified": True,
        "signer": verified.statement.signer_hint,
        "signer_name": verified.statement.signer_name,
        "name": verified.subject,
        "version": None,
        "format": verified.format,
        "files": verified.statement.manifest.files(),
        "types": list(verified.scan.globals),
        "signatures": [c.to_dict() for c in verified.statement.signatures],
        "signed_by": "model_signing",
        "signature_file": verified.signature_path,
    }


CLI_HOW_TO_TRUST = (
    "pass --allow MODULE:NAME for each name you trust (or list them in a --policy file)"
)


def message_of(exc: Exception) -> str:
    """The error's message, with advice given as command-line options rather than Python."""
    if isinstance(exc, UntrustedTypeError):
        return untrusted_types_message(
            exc.types, exc.where, saving=exc.saving, how_to_trust=CLI_HOW_TO_TRUST
        )
    return str(exc)


def error_document(exc: Exception, kind: str) -> dict[str, Any]:
    """The documented error fields: ``error``, ``type``, ``message`` and the details it carries."""
    detail: dict[str, Any] = {"error": kind, "type": type(exc).__name__, "message": message_of(exc)}
    for attr in ("types", "files", "hint", "missing"):
        value = getattr(exc, attr, None)
        if value:
            detail[attr] = list(value) if isinstance(value, tuple) else value
    if isinstance(exc, UntrustedSignerError) and exc.signatures:
        detail["found"], detail["needed"] = exc.found, exc.needed
        detail["signatures"] = [{"hint": h, "name": n, "status": s} for h, n, s in exc.signatures]
    return detail


def status_of(results: list[dict[str, Any]]) -> int:
    """2 if any path could not be checked, else 1 if any was refused, else 0."""
    if any(r.get("error") == "error" for r in results):
        return EXIT_ERROR
    return EXIT_OK if all(r["verified"] for r in results) else EXIT_REFUSED


def cmd_verify(args: argparse.Namespace) -> int:
    cli_args.policy(args)  # a bad --policy/--allow is the command's error, before any path
    if args.signature is not None and not (args.model_signing and len(args.paths) == 1):
        raise OperationalError(
            "--signature names the bundle of one model_signing folder: give --model-signing "
            "and a single PATH"
        )
    results = [verify_one(path, args) for path in args.paths]
    status = status_of(results)
    if args.format == "sarif":
        from safeload._cli.sarif import verify_log

        output.print_sarif(verify_log(results, status))
        return status
    if args.json:
        if len(results) == 1 and not results[0]["verified"]:
            output.print_json({k: v for k, v in results[0].items() if k not in ("verified",)})
        else:
            single = results[0] if len(results) == 1 else {}
            output.print_json({**single, "verified": status == EXIT_OK, "artifacts": results})
        return status
    for result in results:
        _print_verified(result, named=len(results) > 1)
    return status


def _print_verified(result: dict[str, Any], *, named: bool) -> None:
    path = escape(result["path"])
    if not result["verified"]:
        # With several paths, each refusal says which artifact it is about.
        where = f"{result['path']}: " if named else ""
        output.err().print(f"safeload: {result['error']}: {where}{result['message']}", markup=False)
        return
    signers = [s["name"] or s["hint"][:16] for s in result["signatures"] if s["status"] == "valid"]
    signer = ", ".join(signers) or result["signer_name"] or result["signer"][:16]
    version = "" if result["version"] is None else f" {escape(str(result['version']))}"
    kind = " by model_signing, no metadata" if result.get("signed_by") == "model_signing" else ""
    checked = (
        "graph checked"
        if result["format"] == "onnx"
        else f"{len(result['types'])} types all trusted"
    )
    output.out().print(
        f"{output.verdict(True)}  {path}: "
        f"{escape(str(result['name']))}{version} "
        f"({result['format']}{kind}), signed by {escape(signer)}, "
        f"{len(result['files'])} files match, {checked}"
    )


def cmd_inspect(args: argparse.Namespace) -> int:
    from safeload.inspecting import inspect

    with output.progress(not args.json) as progress:
        report = inspect(
            args.path, trusted=args.trusted, policy=cli_args.policy(args), progress=progress
        )
    if report.verdict == "error":
        # Nothing was examined: the error alone, as every verb reports one.
        message = "; ".join(report.reasons)
        if args.json:
            output.print_json(
                {
                    "error": "error",
                    "type": report.error_type or "OperationalError",
                    "message": message,
                }
            )
        else:
            output.err().print(f"safeload: error: {message}", markup=False)
        return EXIT_ERROR
    if args.json:
        output.print_json(report.to_dict())
    else:
        _print_inspect(report)
    return EXIT_OK if report.verdict == "verified" else EXIT_REFUSED


_STATUS = {
    "valid": "valid",
    "unknown": "unknown key",
    "invalid": "[red]INVALID[/]",
    "revoked": "[red]REVOKED[/]",
    "expired": "EXPIRED",
    "duplicate": "duplicate (counted once)",
    "unchecked": "not checked",
}


def _print_inspect(report: Any) -> None:
    out = output.out()
    out.print(f"[bold]{escape(report.path)}[/]")
    signer = report.signer_hint[:16] if report.signer_hint else "none"
    if report.signer_name:
        signer += f" ({report.signer_name})"
    trusted = {True: "trusted", False: "NOT trusted", None: "not checked"}[report.signer_trusted]
    valid = {True: "valid", False: "INVALID", None: "not checked"}[report.signature_valid]
    algorithms = {s.algorithm for s in report.signatures if s.algorithm}
    if len(algorithms) == 1:
        signer += f", {algorithms.pop()}"
    out.print(f"signer     {escape(signer)}, {trusted}, signature {valid}")
    if len(report.signatures) > 1 or any(s.status != "valid" for s in report.signatures):
        for check in report.signatures:
            who = check.hint[:16] + (f" ({check.name})" if check.name else "")
            status = _STATUS.get(check.status, check.status)
            key = f", {check.algorithm} key" if check.algorithm else ""
            out.print(f"signature  {escape(who)}: {status}{key}")
    # the manifest's algorithm (sha256, sha256-sharded-N, blake3): one per artifact
    digest = report.files[0].algorithm.split("-")[0] if report.files else "digest"
    files = output.table(("file", "size", digest, "matches signed"), title="files")
    for entry in report.files:
        files.add_row(
            escape(entry.name),
            output.size(entry.size),
            entry.digests[0][:16]
            + (f" +{len(entry.digests) - 1} shards" if len(entry.digests) > 1 else ""),
            "yes" if entry.matches else ("not signed" if entry.signed_digests is None else "NO"),
        )
    for name in report.missing_files:
        files.add_row(escape(name), "-", "-", "MISSING")
    out.print(files)
    meta = report.metadata or {}
    if meta:
        title = "metadata" + ("" if report.metadata_verified else " (unverified)")
        table = output.table(("field", "value"), title=title, header=False)
        schema = meta.get("schema") or {}
        rows = [
            ("name", meta.get("name")),
            ("version", meta.get("version")),
            ("created", meta.get("created_at")),
            ("format", meta.get("format")),
            ("estimator", meta.get("estimator")),
            ("features", schema.get("n_features_in")),
            ("columns", ", ".join(schema.get("feature_names") or []) or None),
            ("metrics", json.dumps(meta.get("metrics")) if meta.get("metrics") else None),
            ("versions", ", ".join(f"{k} {v}" for k, v in (meta.get("versions") or {}).items())),
            ("sample", "recorded" if meta.get("sample") else None),
        ]
        for field_name, value in rows:
            if value not in (None, ""):
                table.add_row(field_name, escape(str(value)))
        out.print(table)
    scan = report.scan or {}
    if scan.get("graph"):
        _print_graph(scan["graph"])
    elif scan:
        types = output.table(("type", "policy"), title="types the model names")
        untrusted = set(scan.get("untrusted", []))
        for name in scan.get("globals", []):
            types.add_row(escape(name), "[red]NOT allowed[/]" if name in untrusted else "allowed")
        out.print(types)
    ok = report.verdict == "verified"
    out.print(f"verdict    {output.verdict(ok, 'VERIFIED', report.verdict.upper())}")
    for reason in report.reasons:
        out.print(f"  - {escape(reason)}")


def _print_graph(graph: dict[str, Any]) -> None:
    """An ONNX artifact's graph: opsets, then each input and output with type and shape."""
    out = output.out()
    opsets = ", ".join(f"{domain} {version}" for domain, version in graph["opset"].items())
    out.print(
        f"onnx       opset {escape(opsets)}; {graph['nodes']} nodes; {escape(graph['producer'])}"
    )
    table = output.table(("", "name", "type", "shape"), title="graph inputs and outputs")
    for kind in ("inputs", "outputs"):
        for value in graph[kind]:
            shape = value["shape"]
            dims = (
                "-"
                if shape is None
                else "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
            )
            table.add_row(kind[:-1], escape(value["name"]), escape(value["type"]), escape(dims))
    out.print(table)
