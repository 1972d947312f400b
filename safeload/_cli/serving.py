"""``serve``: load every model of a store through the gate, report, then answer HTTP.

FastAPI and uvicorn are imported here, when the verb runs, never by ``import safeload`` or
``safeload --help``.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

from safeload._cli import args as cli_args
from safeload._cli import output
from safeload.errors import OperationalError

EXIT_OK = 0
MIN_TOKEN = 16


def pin(text: str) -> tuple[str, str]:
    """``NAME=VERSION`` of ``--pin``."""
    name, sep, version = text.partition("=")
    if not sep or not name or not version:
        raise argparse.ArgumentTypeError(f"expected NAME=VERSION, not {text!r}")
    return name, version


def admin_token(variable: str | None) -> str | None:
    """The token of ``--admin-token-env VAR``: unset, empty or short refuses to start."""
    if variable is None:
        return None
    token = os.environ.get(variable)
    if token is None:
        raise OperationalError(f"--admin-token-env: environment variable {variable} is not set")
    if len(token) < MIN_TOKEN:
        raise OperationalError(
            f"--admin-token-env: the token in {variable} is shorter than {MIN_TOKEN} "
            "characters; use a long random one (python -c 'import secrets; "
            "print(secrets.token_urlsafe())')"
        )
    return token


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from safeload.serve.app import Limits, create_app, run
    except ImportError as exc:
        raise OperationalError(
            f"safeload serve needs the [serve] extra ({exc.name} is missing): "
            "pip install 'safeload[serve]'"
        ) from exc
    from safeload.keys import Keyring
    from safeload.serve.registry import ModelRegistry
    from safeload.store import Store

    token = admin_token(args.admin_token_env)
    # A SIGHUP while the models load would end the process (the default action): the reload it
    # asks for is what start-up does anyway. The app handles SIGHUP once it runs.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    store = Store(args.models, state=args.state)
    if isinstance(store.root, Path) and not store.root.is_dir():
        raise OperationalError(f"{store.root} is not a folder")
    registry = ModelRegistry(
        store,
        trusted=Keyring.from_dir(args.trusted),
        policy=cli_args.policy(args),
        pins=dict(args.pin or []),
        versions=args.versions,
    )
    err = output.err()
    for entry in registry.load_all():
        if entry.served is not None:
            err.print(
                f"safeload serve: serving {entry.name} {entry.version} "
                f"(signed by {entry.served.signer})",
                markup=False,
                soft_wrap=True,
            )
        else:
            err.print(
                f"safeload serve: refused {entry.name} {entry.refused_version}, not served: "
                f"{entry.refused}",
                markup=False,
                soft_wrap=True,
            )
    if not registry.served():
        err.print(
            "safeload serve: no model passed the gate: serving none (/readyz answers 503)",
            markup=False,
            soft_wrap=True,
        )
    app = create_app(
        registry, limits=Limits(args.max_body, args.max_rows, args.body_timeout), admin_token=token
    )
    run(
        app,
        host=args.host,
        port=args.port,
        head_timeout=args.body_timeout,
        max_connections=args.max_connections,
    )
    return EXIT_OK
