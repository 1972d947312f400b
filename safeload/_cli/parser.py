"""The argument parser: every verb, its options, and the function that runs it."""

from __future__ import annotations

import argparse

from safeload import __version__
from safeload._cli import checking, drift, listing, scanning, serving, signing, tree

FORMATS = ("table", "json", "sarif")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 3600, not {text}")
    return value


def _natural(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _common(p: argparse.ArgumentParser, *, allow: bool = True, key: bool = False) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document")
    if allow:
        p.add_argument(
            "--allow",
            action="append",
            metavar="MODULE:NAME",
            help="also trust this exact type (repeatable); names that reach code or the OS "
            "are refused",
        )
        p.add_argument(
            "--policy",
            metavar="FILE",
            help="trusted-type policy file (TOML), instead of $SAFELOAD_POLICY",
        )
        p.add_argument(
            "--unsafe-allow",
            action="append",
            metavar="MODULE:NAME",
            help="trust a name that lets a file run code or reach the OS; warns (repeatable)",
        )
        p.add_argument(
            "--pack",
            action="append",
            metavar="NAME",
            help="also trust an opt-in pack: lightgbm, xgboost or catboost (repeatable)",
        )
    if key:
        p.add_argument("--key", required=True, help="private key file (STEM.key)")
    if key or p.prog.endswith("keygen"):
        p.add_argument(
            "--passphrase-env", metavar="VAR", help="read the key's passphrase from $VAR"
        )
        p.add_argument("--prompt", action="store_true", help="prompt for the passphrase")


def _format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="table (default), json (as --json), or sarif (SARIF 2.1.0 for code scanning)",
    )
    p.set_defaults(verb_parser=p)


def resolve_format(args: argparse.Namespace) -> None:
    """Settle ``args.format`` from ``--format`` and ``--json``; a disagreement is a usage error.

    Raises:
        SystemExit: 2, after printing the verb's usage, when the two disagree.
    """
    chosen = getattr(args, "format", None)
    as_json = getattr(args, "json", False)
    if chosen is not None and as_json and chosen != "json":
        args.verb_parser.error(f"--json and --format {chosen} disagree: give one of them")
    args.format = chosen or ("json" if as_json else "table")
    args.json = args.format == "json"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for documentation and tests."""
    parser = argparse.ArgumentParser(
        prog="safeload",
        description="Sign, verify and safely load scikit-learn models.",
        epilog="exit status: 0 verified/clean, 1 refused/findings, 2 usage or I/O error",
    )
    parser.add_argument("--version", action="version", version=f"safeload {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("keygen", help="create a key pair STEM.key / STEM.pub (Ed25519 default)")
    p.add_argument("stem")
    p.add_argument(
        "--algorithm",
        choices=("ed25519", "ecdsa-p256"),
        default="ed25519",
        help="ecdsa-p256: artifacts also verify with OpenSSF model_signing (default ed25519)",
    )
    _common(p, allow=False)
    p.set_defaults(func=signing.cmd_keygen)

    p = sub.add_parser("sign", help="sign an artifact directory, or pack a joblib file into one")
    p.add_argument("path", help="unsigned artifact directory, or a joblib model file")
    p.add_argument("--out", help="artifact directory to create (when PATH is a file)")
    p.add_argument("--name")
    p.add_argument("--version")
    p.add_argument(
        "--add", action="store_true", help="add a signature to an already signed artifact"
    )
    p.add_argument(
        "--trusted", help="keys folder whose trust.toml must allow this key (refuses retired)"
    )
    _hash(p)
    _common(p, key=True)
    p.set_defaults(func=signing.cmd_sign)

    p = sub.add_parser("verify", help="run the whole gate without deserializing")
    p.add_argument("paths", nargs="+", metavar="path")
    p.add_argument("--trusted", required=True, help="folder of trusted *.pub keys")
    p.add_argument(
        "--model-signing",
        action="store_true",
        help="PATH is a model folder signed by OpenSSF model_signing (one model file, no "
        "safeload.json)",
    )
    p.add_argument(
        "--signature",
        metavar="FILE",
        help="with --model-signing: its bundle, when not PATH/model.sig (one PATH only)",
    )
    _common(p)
    _format(p)
    p.set_defaults(func=checking.cmd_verify)

    p = sub.add_parser("inspect", help="show signer, files, metadata and types; no loading")
    p.add_argument("path")
    p.add_argument("--trusted", help="folder of trusted *.pub keys")
    _common(p)
    p.set_defaults(func=checking.cmd_inspect)

    p = sub.add_parser(
        "scan", help="statically scan pickle, joblib or skops files, or the model files of trees"
    )
    p.add_argument(
        "paths", nargs="+", metavar="path", help="a file, a directory to walk, or an object URL"
    )
    p.add_argument(
        "--include",
        action="append",
        metavar="GLOB",
        help="in directories, also scan files whose relative path or name matches (repeatable)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        metavar="GLOB",
        help="in directories, skip files and directories that match; wins over --include",
    )
    p.add_argument(
        "--max-files",
        type=_positive,
        default=tree.MAX_ENTRIES,
        metavar="N",
        help=f"entries the walk may list in all, or exit 2 (default {tree.MAX_ENTRIES:,})",
    )
    p.add_argument(
        "--max-depth",
        type=_natural,
        default=tree.MAX_DEPTH,
        metavar="N",
        help=f"directory levels below each directory given, or exit 2 (default {tree.MAX_DEPTH})",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="scan on this Dask cluster's workers (extra [dask]); they open the files listed here",
    )
    _common(p)
    _format(p)
    p.set_defaults(func=scanning.cmd_scan)

    p = sub.add_parser("convert", help="convert a joblib file into a signed skops or ONNX artifact")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument(
        "--to",
        default="skops",
        choices=["skops", "onnx"],
        help="the artifact's format (default skops; onnx needs the [onnx] extra)",
    )
    p.add_argument("--name")
    p.add_argument("--version")
    p.add_argument(
        "--sample",
        metavar="FILE",
        help="input rows (CSV or Parquet) to compare predictions on and to record",
    )
    p.add_argument(
        "--sample-rows",
        type=int,
        default=signing.SAMPLE_ROWS,
        metavar="N",
        help=f"rows of --sample to use (default {signing.SAMPLE_ROWS})",
    )
    _hash(p)
    _common(p, key=True)
    p.set_defaults(func=signing.cmd_convert)

    p = sub.add_parser("ls", help="list the models and versions of a store folder")
    p.add_argument("root")
    p.add_argument("name", nargs="?")
    _common(p, allow=False)
    p.set_defaults(func=listing.cmd_ls)

    _drift(sub)
    _serve(sub)

    p = sub.add_parser("demo", help="train, sign, load, and watch three attacks being refused")
    p.add_argument("--keep", metavar="DIR", help="make the files in DIR and keep them")
    p.set_defaults(func=listing.cmd_demo, json=False)
    return parser


def _drift(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "drift", help="compare a CSV or Parquet file with a model's signed training statistics"
    )
    p.add_argument("artifact", help="artifact directory (verified, never deserialized)")
    p.add_argument("data", help="today's data: a .csv or .parquet file with the model's columns")
    p.add_argument("--trusted", required=True, help="folder of trusted *.pub keys")
    p.add_argument(
        "--max-rows",
        type=_positive,
        default=drift.MAX_ROWS,
        metavar="N",
        help=f"read at most the first N rows of DATA (default {drift.MAX_ROWS:,})",
    )
    _common(p)
    p.set_defaults(func=drift.cmd_drift)


def _serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve the models of a store over HTTP, each through the gate")
    p.add_argument("models", help="store folder or URL (MODELS/NAME/VERSION/)")
    p.add_argument("--trusted", required=True, help="folder of trusted *.pub keys")
    p.add_argument("--policy", metavar="FILE", help="trusted-type policy file (TOML)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_natural, default=8000, help="port (default 8000)")
    p.add_argument(
        "--state", metavar="FILE", help="rollback record (default MODELS/.safeload-state.json)"
    )
    p.add_argument(
        "--pin",
        action="append",
        type=serving.pin,
        metavar="NAME=VERSION",
        help="serve this version of NAME instead of the newest (repeatable)",
    )
    p.add_argument(
        "--versions",
        choices=("warn", "strict", "ignore"),
        default="warn",
        help="another scikit-learn version than the saved one: warn (default), strict refuses",
    )
    p.add_argument(
        "--max-body",
        type=_positive,
        default=1024 * 1024,
        metavar="BYTES",
        help="largest request body (default 1048576; larger: 413)",
    )
    p.add_argument(
        "--max-rows",
        type=_positive,
        default=10_000,
        metavar="N",
        help="most rows per request (default 10000; more: 413)",
    )
    p.add_argument(
        "--body-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="longest a request head, then its body, may take to arrive (default 30; a late "
        "body is a 408, a late head closes the connection)",
    )
    p.add_argument(
        "--max-connections",
        type=_positive,
        default=256,
        metavar="N",
        help="most open connections (default 256; beyond: 503 at once)",
    )
    p.add_argument(
        "--admin-token-env",
        metavar="VAR",
        help="enable the reload routes, bound to the bearer token in $VAR (16+ characters)",
    )
    p.set_defaults(func=serving.cmd_serve, json=False)


def _hash(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hash",
        choices=["sha256", "blake3"],
        help="manifest hash: sha256 (default) or blake3 (faster on large files; needs the "
        "safeload[blake3] extra)",
    )
