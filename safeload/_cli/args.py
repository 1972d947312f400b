"""What the verbs read from their arguments: passphrases, the signing key, the type policy."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from safeload.errors import KeyFileError, OperationalError


def passphrase(args: argparse.Namespace, *, confirm: bool = False) -> str | None:
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


def signing_key(args: argparse.Namespace) -> Any:
    """The private key of ``--key``; prompts on a terminal when it is encrypted."""
    from safeload.keys import load_signing_key

    try:
        return load_signing_key(args.key, passphrase(args))
    except KeyFileError as exc:
        if exc.reason != "passphrase":
            raise
        if sys.stdin.isatty():
            return load_signing_key(args.key, getpass.getpass(f"Passphrase for {args.key}: "))
        raise KeyFileError(
            f"{args.key} is encrypted: pass --passphrase-env VAR (VAR holds the passphrase) "
            "or --prompt on a terminal"
        ) from exc


def policy(args: argparse.Namespace) -> Any:
    """The policy ``--policy``, ``--allow``, ``--unsafe-allow``, ``--pack`` ask for, once a run.

    None when none is given, so that the library reads ``$SAFELOAD_POLICY`` (or the default).
    Built before any file is looked at: a bad name or file is the command's error, not a
    finding about each path.
    """
    if not hasattr(args, "resolved_policy"):
        from safeload.policy import cli_policy

        args.resolved_policy = cli_policy(
            getattr(args, "allow", None),
            getattr(args, "unsafe_allow", None),
            getattr(args, "policy", None),
            getattr(args, "pack", None),
        )
    return args.resolved_policy
