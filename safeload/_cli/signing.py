"""``keygen``, ``sign`` and ``convert``: the verbs that make keys and signed artifacts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safeload._cli import args as cli_args
from safeload._cli import output
from safeload.errors import OperationalError

if TYPE_CHECKING:
    from safeload.remote import Url

EXIT_OK = 0
SAMPLE_ROWS = 100


def cmd_keygen(args: argparse.Namespace) -> int:
    from safeload.keys import generate_key

    key = generate_key(args.algorithm)
    private = key.save(args.stem, passphrase=cli_args.passphrase(args, confirm=True))
    public = Path(str(args.stem) + ".pub")
    if args.json:
        output.print_json(
            {
                "private_key": str(private),
                "public_key": str(public),
                "hint": key.hint,
                "algorithm": key.algorithm,
            }
        )
    else:
        out = output.out()
        out.print(f"private key  {private}  (mode 0600: keep it secret, never commit it)")
        out.print(f"public key   {public}  (copy it into the keys/ folder of whoever loads)")
        out.print(f"key hint     {key.hint}  ({key.algorithm})")
    return EXIT_OK


def cmd_sign(args: argparse.Namespace) -> int:
    from safeload.keys import Keyring
    from safeload.remote import is_url
    from safeload.saving import pack_model_file, sign_directory

    key = cli_args.signing_key(args)
    source = Path(args.path)
    if args.trusted is not None:
        Keyring.from_dir(args.trusted).check_signer(key)
    if args.add:
        return _cosign(args, key, source)
    out: Path | Url
    if is_url(args.path) or source.is_dir():
        out = sign_directory(args.path, key=key, policy=cli_args.policy(args), hash=hash_of(args))
    elif source.is_file():
        if args.out is None:
            raise OperationalError("give --out DIR: the signed artifact directory to create")
        out = pack_model_file(
            source,
            args.out,
            key=key,
            name=args.name,
            version=args.version,
            policy=cli_args.policy(args),
            hash=hash_of(args),
        )
    else:
        raise OperationalError(f"{source} does not exist")
    if args.json:
        output.print_json({"artifact": str(out), "signer": key.hint})
    else:
        output.out().print(f"signed {out} (signer {key.hint[:16]})", markup=False)
    return EXIT_OK


def _cosign(args: argparse.Namespace, key: Any, source: Path) -> int:
    from safeload.cosigning import cosign

    if not source.is_dir():
        raise OperationalError(f"--add needs a signed artifact directory; {source} is not one")
    if args.out or args.name or args.version or args.hash:
        raise OperationalError(
            "--add signs the artifact as it is: do not give --out, --name, --version or --hash"
        )
    if (source / "MLmodel").is_file():  # an MLflow model: both of its bundles
        from safeload.mlflow import cosign_model_dir

        out = cosign_model_dir(source, key, trusted=args.trusted, policy=cli_args.policy(args))
    else:
        out = cosign(source, key, trusted=args.trusted, policy=cli_args.policy(args))
    if args.json:
        output.print_json({"artifact": str(out), "signer": key.hint, "added": True})
    else:
        output.out().print(f"added a signature to {out} (signer {key.hint[:16]})", markup=False)
    return EXIT_OK


def hash_of(args: argparse.Namespace) -> str:
    """The ``--hash`` given, or the default manifest hash (SHA-256)."""
    return str(args.hash or "sha256")


def read_sample(path: str, rows: int = SAMPLE_ROWS) -> Any:
    """The first ``rows`` rows of a CSV or Parquet file, as a DataFrame (needs pandas)."""
    from safeload._cli.tables import read_table

    frame, _ = read_table(path, rows, what="--sample ")
    if len(frame) == 0:
        raise OperationalError(f"--sample {path} holds no rows")
    return frame


def cmd_convert(args: argparse.Namespace) -> int:
    from safeload.convert import convert

    if args.to not in ("skops", "onnx"):
        raise OperationalError("--to takes skops or onnx")
    sample = None if args.sample is None else read_sample(args.sample, args.sample_rows)
    key = cli_args.signing_key(args)
    out = convert(
        args.src,
        args.dst,
        key=key,
        name=args.name,
        version=args.version,
        policy=cli_args.policy(args),
        sample=sample,
        hash=hash_of(args),
        to=args.to,
    )
    if args.json:
        output.print_json({"artifact": str(out), "format": args.to, "signer": key.hint})
    else:
        output.out().print(
            f"converted {args.src} -> {out} ({args.to}, signed, predictions match)", markup=False
        )
    return EXIT_OK
