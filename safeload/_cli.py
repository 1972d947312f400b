"""The ``safeload`` command: argument parsing and printing only; the library does the work.

Exit status: 0 verified or clean, 1 refused or findings, 2 usage or I/O error.
Human output is a table (rich); ``--json`` prints one stable JSON document on stdout.
Keys never appear in output; passphrases come from a prompt or an environment variable.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from safeload.errors import KeyFileError, OperationalError, RefusedError, SafeloadError

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2
JSON_SCHEMA_VERSION = 1

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


# --- helpers --------------------------------------------------------------------------------


def _passphrase(args: argparse.Namespace, *, confirm: bool = False) -> str | None:
    """From ``--passphrase-env VAR`` or, with ``--prompt``, from the terminal; never argv."""
    if getattr(args, "passphrase_env", None):
        value = os.environ.get(args.passphrase_env)
        if value is None:
            raise OperationalError(f"environment variable {args.passphrase_env} is not set")
        return value
    if getattr(args, "prompt", False):
        first = getpass.getpass("Passphrase: ")
        if confirm and getpass.getpass("Repeat passphrase: ") != first:
            raise OperationalError("the passphrases differ")
        return first
    return None


def _signing_key(args: argparse.Namespace) -> Any:
    from safeload.keys import load_signing_key

    try:
        return load_signing_key(args.key, _passphrase(args))
    except KeyFileError as exc:
        if "passphrase is required" in str(exc) and sys.stdin.isatty():
            return load_signing_key(args.key, getpass.getpass(f"Passphrase for {args.key}: "))
        raise


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on a terminal for large files; nothing when piped or for --json."""
    if not enabled or not _err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    bars: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=_err,
        transient=True,
    ) as progress:

        def update(name: str, done: int, total: int) -> None:
            if total < (64 << 20):
                return
            if name not in bars:
                bars[name] = progress.add_task(f"hashing {name}", total=total)
            progress.update(bars[name], completed=done)

        yield update


def _print_json(payload: dict[str, Any]) -> None:
    print(json.dumps({"schema": JSON_SCHEMA_VERSION, **payload}, indent=2, sort_keys=True))


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _verdict(ok: bool, yes: str = "OK", no: str = "REFUSED") -> str:
    return f"[bold green]{yes}[/]" if ok else f"[bold red]{no}[/]"


# --- verbs ----------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    from safeload.keys import generate_key

    key = generate_key()
    private = key.save(args.stem, passphrase=_passphrase(args, confirm=True))
    public = Path(str(args.stem) + ".pub")
    if args.json:
        _print_json({"private_key": str(private), "public_key": str(public), "hint": key.hint})
    else:
        _out.print(f"private key  {private}  (mode 0600: keep it secret, never commit it)")
        _out.print(f"public key   {public}  (copy it into the keys/ folder of whoever loads)")
        _out.print(f"key hint     {key.hint}")
    return EXIT_OK


def cmd_sign(args: argparse.Namespace) -> int:
    from safeload.saving import pack_model_file, sign_directory

    key = _signing_key(args)
    source = Path(args.path)
    if source.is_dir():
        out = sign_directory(source, key=key, policy=args.allow or None)
    elif source.is_file():
        if args.out is None:
            raise OperationalError("give --out DIR: the signed artifact directory to create")
        out = pack_model_file(
            source,
            args.out,
            key=key,
            name=args.name,
            version=args.version,
            policy=args.allow or None,
        )
    else:
        raise OperationalError(f"{source} does not exist")
    if args.json:
        _print_json({"artifact": str(out), "signer": key.hint})
    else:
        _out.print(f"signed {out} (signer {key.hint[:16]})")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from safeload.loading import verify_artifact

    with _progress(not args.json) as progress:
        verified = verify_artifact(
            args.path, trusted=args.trusted, policy=args.allow or None, progress=progress
        )
    meta = verified.metadata
    signer = verified.statement.signer_name or verified.statement.signer_hint[:16]
    if args.json:
        _print_json(
            {
                "path": verified.path,
                "verified": True,
                "signer": verified.statement.signer_hint,
                "signer_name": verified.statement.signer_name,
                "name": meta.get("name"),
                "version": meta.get("version"),
                "format": verified.format,
                "files": verified.statement.manifest.files(),
                "types": list(verified.scan.globals),
            }
        )
    else:
        _out.print(
            f"{_verdict(True)}  {escape(verified.path)}: "
            f"{escape(str(meta.get('name')))} {escape(str(meta.get('version')))} "
            f"({verified.format}), signed by {signer}, "
            f"{len(verified.statement.manifest.files())} files match, "
            f"{len(verified.scan.globals)} types all trusted"
        )
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from safeload.inspecting import inspect

    with _progress(not args.json) as progress:
        report = inspect(
            args.path, trusted=args.trusted, policy=args.allow or None, progress=progress
        )
    if args.json:
        _print_json(report.to_dict())
    else:
        _print_inspect(report)
    return {"verified": EXIT_OK, "refused": EXIT_REFUSED}.get(report.verdict, EXIT_ERROR)


def _print_inspect(report: Any) -> None:
    _out.print(f"[bold]{escape(report.path)}[/]")
    signer = report.signer_hint[:16] if report.signer_hint else "none"
    if report.signer_name:
        signer += f" ({report.signer_name})"
    trusted = {True: "trusted", False: "NOT trusted", None: "not checked"}[report.signer_trusted]
    valid = {True: "valid", False: "INVALID", None: "not checked"}[report.signature_valid]
    _out.print(f"signer     {signer}, {trusted}, signature {valid}")
    files = Table(title="files", title_justify="left")
    for column in ("file", "size", "sha256", "matches signed"):
        files.add_column(column)
    for entry in report.files:
        files.add_row(
            escape(entry.name),
            _size(entry.size),
            entry.digests[0][:16]
            + (f" +{len(entry.digests) - 1} shards" if len(entry.digests) > 1 else ""),
            "yes" if entry.matches else ("not signed" if entry.signed_digests is None else "NO"),
        )
    for name in report.missing_files:
        files.add_row(name, "-", "-", "MISSING")
    _out.print(files)
    meta = report.metadata or {}
    if meta:
        table = Table(
            title="metadata" + ("" if report.metadata_verified else " (unverified)"),
            title_justify="left",
            show_header=False,
        )
        table.add_column("field")
        table.add_column("value")
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
        _out.print(table)
    scan = report.scan or {}
    if scan:
        types = Table(title="types the model names", title_justify="left")
        types.add_column("type")
        types.add_column("policy")
        untrusted = set(scan.get("untrusted", []))
        for name in scan.get("globals", []):
            types.add_row(escape(name), "[red]NOT allowed[/]" if name in untrusted else "allowed")
        _out.print(types)
    ok = report.verdict == "verified"
    _out.print(f"verdict    {_verdict(ok, 'VERIFIED', report.verdict.upper())}")
    for reason in report.reasons:
        _out.print(f"  - {escape(reason)}")


def cmd_scan(args: argparse.Namespace) -> int:
    from safeload.typegate import ScanReport, scan

    reports: list[ScanReport] = []
    errors: list[dict[str, str]] = []
    for path in args.paths:
        try:
            reports.append(scan(path, policy=args.allow or None))
        except OperationalError as exc:
            errors.append({"path": str(path), "message": str(exc)})
            _err.print(f"safeload: error: {exc}", markup=False)
    status = EXIT_ERROR if errors else EXIT_OK
    if status == EXIT_OK and any(not r.safe for r in reports):
        status = EXIT_REFUSED
    if args.json:
        _print_json(
            {
                "safe": status == EXIT_OK,
                "files": [r.to_dict() for r in reports],
                "errors": errors,
            }
        )
        return status
    table = Table()
    for column in ("file", "format", "types", "verdict", "untrusted types / problems"):
        table.add_column(column)
    for r in reports:
        fmt = r.format + (f" ({r.compression})" if r.compression else "")
        findings = escape("\n".join(list(r.untrusted) + list(r.problems)))
        table.add_row(
            escape(str(r.path)),
            fmt,
            str(len(r.globals)),
            _verdict(r.safe, "clean", "UNSAFE"),
            findings,
        )
    _out.print(table)
    return status


def cmd_convert(args: argparse.Namespace) -> int:
    from safeload.convert import convert

    if args.to != "skops":
        raise OperationalError("only --to skops is supported")
    key = _signing_key(args)
    out = convert(
        args.src, args.dst, key=key, name=args.name, version=args.version, policy=args.allow or None
    )
    if args.json:
        _print_json({"artifact": str(out), "format": "skops", "signer": key.hint})
    else:
        _out.print(f"converted {args.src} -> {out} (skops, signed, predictions match)")
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    from safeload.store import Store

    store = Store(args.root)
    if not store.root.is_dir():
        raise OperationalError(f"{store.root} is not a folder")
    names = [args.name] if args.name else store.names()
    listing = {name: store.versions(name) for name in names}
    if args.json:
        _print_json(
            {
                "root": str(store.root),
                "models": [
                    {"name": n, "versions": v, "latest": v[-1] if v else None}
                    for n, v in listing.items()
                ],
            }
        )
        return EXIT_OK
    table = Table()
    for column in ("model", "versions (oldest first)", "latest"):
        table.add_column(column)
    for name, versions in listing.items():
        table.add_row(escape(name), escape(", ".join(versions)), versions[-1] if versions else "-")
    _out.print(table)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from safeload.demo import run_demo

    return EXIT_OK if run_demo(lambda line: _out.print(line, markup=False)) else EXIT_REFUSED


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for documentation and tests."""
    parser = argparse.ArgumentParser(
        prog="safeload",
        description="Sign, verify and safely load scikit-learn models.",
        epilog="exit status: 0 verified/clean, 1 refused/findings, 2 usage or I/O error",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, *, allow: bool = True, key: bool = False) -> None:
        p.add_argument("--json", action="store_true", help="print one JSON document")
        if allow:
            p.add_argument(
                "--allow",
                action="append",
                metavar="MODULE:NAME",
                help="also trust this exact type (repeatable)",
            )
        if key:
            p.add_argument("--key", required=True, help="private key file (STEM.key)")
        if key or p.prog.endswith("keygen"):
            p.add_argument(
                "--passphrase-env", metavar="VAR", help="read the key's passphrase from $VAR"
            )
            p.add_argument("--prompt", action="store_true", help="prompt for the passphrase")

    p = sub.add_parser("keygen", help="create an Ed25519 key pair STEM.key / STEM.pub")
    p.add_argument("stem")
    common(p, allow=False)
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("sign", help="sign an artifact directory, or pack a joblib file into one")
    p.add_argument("path", help="unsigned artifact directory, or a joblib model file")
    p.add_argument("--out", help="artifact directory to create (when PATH is a file)")
    p.add_argument("--name")
    p.add_argument("--version")
    common(p, key=True)
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("verify", help="run the whole gate without deserializing")
    p.add_argument("path")
    p.add_argument("--trusted", required=True, help="folder of trusted *.pub keys")
    common(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("inspect", help="show signer, files, metadata and types; no loading")
    p.add_argument("path")
    p.add_argument("--trusted", help="folder of trusted *.pub keys")
    common(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("scan", help="statically scan pickle, joblib or skops files")
    p.add_argument("paths", nargs="+")
    common(p)
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("convert", help="convert a joblib file into a signed skops artifact")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--to", default="skops", choices=["skops"])
    p.add_argument("--name")
    p.add_argument("--version")
    common(p, key=True)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("ls", help="list the models and versions of a store folder")
    p.add_argument("root")
    p.add_argument("name", nargs="?")
    common(p, allow=False)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("demo", help="train, sign, load, and watch three attacks being refused")
    p.set_defaults(func=cmd_demo, json=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code) if isinstance(exc.code, int) else EXIT_ERROR
    try:
        return int(args.func(args))
    except RefusedError as exc:
        _report_error(args, exc, "refused")
        return EXIT_REFUSED
    except SafeloadError as exc:
        _report_error(args, exc, "error")
        return EXIT_ERROR
    except (ValueError, TypeError, OSError) as exc:
        _report_error(args, exc, "error")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _report_error(args: argparse.Namespace, exc: Exception, kind: str) -> None:
    if getattr(args, "json", False):
        detail: dict[str, Any] = {"error": kind, "type": type(exc).__name__, "message": str(exc)}
        for attr in ("types", "files", "hint"):
            value = getattr(exc, attr, None)
            if value:
                detail[attr] = list(value) if isinstance(value, tuple) else value
        _print_json(detail)
    else:
        _err.print(f"safeload: {kind}: {exc}", markup=False)
