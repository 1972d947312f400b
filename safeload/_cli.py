"""The ``safeload`` command: argument parsing and printing only; the library does the work.

Exit status: 0 verified or clean, 1 refused or findings, 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safeload.errors import OperationalError, RefusedError, SafeloadError

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def _passphrase(env_var: str | None, *, confirm: bool = False) -> str | None:
    """Passphrases come from an environment variable or a prompt, never from argv."""
    if env_var:
        value = os.environ.get(env_var)
        if value is None:
            raise OperationalError(f"environment variable {env_var} is not set")
        return value
    return None


def _prompted_passphrase(args: argparse.Namespace) -> str | None:
    if args.passphrase_env:
        return _passphrase(args.passphrase_env)
    if getattr(args, "prompt", False):
        first = getpass.getpass("Passphrase: ")
        if getattr(args, "confirm", False) and getpass.getpass("Again: ") != first:
            raise OperationalError("the passphrases differ")
        return first
    return None


def _emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, sort_keys=True))
    else:
        for line in lines:
            print(line)


def cmd_keygen(args: argparse.Namespace) -> int:
    from safeload.keys import generate_key

    args.confirm = True
    key = generate_key()
    private = key.save(args.stem, passphrase=_prompted_passphrase(args))
    _emit(
        args,
        {
            "private_key": str(private),
            "public_key": str(Path(str(args.stem) + ".pub")),
            "hint": key.hint,
        },
        [
            f"private key: {private} (mode 0600; keep it secret, never commit it)",
            f"public key:  {args.stem}.pub (copy it to the keys/ folder of whoever loads)",
            f"key hint:    {key.hint}",
        ],
    )
    return EXIT_OK


def cmd_sign(args: argparse.Namespace) -> int:
    from safeload.keys import load_signing_key
    from safeload.saving import pack_model_file

    key = load_signing_key(args.key, _prompted_passphrase(args))
    source = Path(args.path)
    if not source.is_file():
        raise OperationalError(f"{source} is not a model file")
    if args.out is None:
        raise OperationalError("give --out DIR: the signed artifact directory to create")
    out = pack_model_file(
        source, args.out, key=key, name=args.name, version=args.version, policy=args.allow or None
    )
    _emit(
        args,
        {"artifact": str(out), "signer": key.hint},
        [f"signed artifact written to {out} (signer {key.hint[:16]}…)"],
    )
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from safeload.loading import verify_artifact

    verified = verify_artifact(args.path, trusted=args.trusted, policy=args.allow or None)
    meta = verified.metadata
    signer = verified.statement.signer_name or verified.statement.signer_hint[:16]
    _emit(
        args,
        {
            "path": verified.path,
            "verified": True,
            "signer": verified.statement.signer_hint,
            "name": meta.get("name"),
            "version": meta.get("version"),
            "format": verified.format,
            "globals": list(verified.scan.globals),
        },
        [
            f"OK  {verified.path}: {meta.get('name')} {meta.get('version')} ({verified.format}), "
            f"signed by {signer}, {len(verified.statement.resources)} files match, "
            f"{len(verified.scan.globals)} types all trusted"
        ],
    )
    return EXIT_OK


def cmd_scan(args: argparse.Namespace) -> int:
    from safeload.scanning import scan

    reports = []
    status = EXIT_OK
    lines: list[str] = []
    for path in args.paths:
        report = scan(path, policy=args.allow or None)
        reports.append(report.to_dict())
        if not report.safe:
            status = EXIT_REFUSED
        verdict = "clean" if report.safe else "UNSAFE"
        lines.append(
            f"{verdict:<7} {path} ({report.format}"
            f"{', ' + report.compression if report.compression else ''}): "
            f"{len(report.globals)} types"
        )
        lines.extend(f"        untrusted type: {t}" for t in report.untrusted)
        lines.extend(f"        problem: {p}" for p in report.problems)
    _emit(args, {"files": reports, "safe": status == EXIT_OK}, lines)
    return status


def cmd_convert(args: argparse.Namespace) -> int:
    from safeload.convert import convert
    from safeload.keys import load_signing_key

    if args.to != "skops":
        raise OperationalError("only --to skops is supported")
    key = load_signing_key(args.key, _prompted_passphrase(args))
    out = convert(
        args.src, args.dst, key=key, name=args.name, version=args.version, policy=args.allow or None
    )
    _emit(
        args,
        {"artifact": str(out), "format": "skops", "signer": key.hint},
        [f"converted {args.src} to a signed skops artifact at {out}; predictions match"],
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from safeload.demo import run_demo

    return EXIT_OK if run_demo(print) else EXIT_REFUSED


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for documentation and tests."""
    parser = argparse.ArgumentParser(
        prog="safeload", description="Sign, verify and safely load scikit-learn models."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_allow(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--allow",
            action="append",
            metavar="MODULE:NAME",
            help="also trust this exact type (repeatable)",
        )

    p = sub.add_parser("keygen", help="create an Ed25519 key pair STEM.key / STEM.pub")
    p.add_argument("stem")
    p.add_argument("--passphrase-env", metavar="VAR", help="encrypt with the passphrase in $VAR")
    p.add_argument("--prompt", action="store_true", help="prompt for a passphrase")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("sign", help="scan a joblib model file and pack it into a signed artifact")
    p.add_argument("path")
    p.add_argument("--key", required=True)
    p.add_argument("--out", help="artifact directory to create")
    p.add_argument("--name")
    p.add_argument("--version")
    p.add_argument("--passphrase-env", metavar="VAR")
    p.add_argument("--prompt", action="store_true")
    p.add_argument("--json", action="store_true")
    with_allow(p)
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("verify", help="run the load gate without deserializing")
    p.add_argument("path")
    p.add_argument("--trusted", required=True, help="folder of trusted *.pub keys")
    p.add_argument("--json", action="store_true")
    with_allow(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("scan", help="statically scan pickle/joblib/skops files")
    p.add_argument("paths", nargs="+")
    p.add_argument("--json", action="store_true")
    with_allow(p)
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("convert", help="convert a joblib file into a signed skops artifact")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--to", default="skops", choices=["skops"])
    p.add_argument("--key", required=True)
    p.add_argument("--name")
    p.add_argument("--version")
    p.add_argument("--passphrase-env", metavar="VAR")
    p.add_argument("--prompt", action="store_true")
    p.add_argument("--json", action="store_true")
    with_allow(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("demo", help="train, sign, load, and watch attacks being refused")
    p.set_defaults(func=cmd_demo)
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
    except (ValueError, TypeError) as exc:
        _report_error(args, exc, "error")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _report_error(args: argparse.Namespace, exc: Exception, kind: str) -> None:
    if getattr(args, "json", False):
        detail: dict[str, Any] = {"error": kind, "type": type(exc).__name__, "message": str(exc)}
        for attr in ("types", "files", "hint"):
            if getattr(exc, attr, None):
                value = getattr(exc, attr)
                detail[attr] = list(value) if isinstance(value, tuple) else value
        print(json.dumps(detail, indent=2, sort_keys=True))
    else:
        print(f"safeload: {kind}: {exc}", file=sys.stderr)
