"""``ls`` and ``demo``: what a store holds, and the guided tour."""

from __future__ import annotations

import argparse
from pathlib import Path

from safeload._cli import output
from safeload._cli.output import escape
from safeload.errors import ArtifactNotFoundError, OperationalError

EXIT_OK, EXIT_REFUSED = 0, 1


def cmd_ls(args: argparse.Namespace) -> int:
    from safeload.store import Store

    store = Store(args.root)
    if isinstance(store.root, Path) and not store.root.is_dir():
        raise OperationalError(f"{store.root} is not a folder")
    names = store.names()
    if args.name is not None and args.name not in names:
        found = ", ".join(names[:20]) or "none"
        raise ArtifactNotFoundError(f"no model {args.name!r} in {store.root} (models: {found})")
    if args.name is not None:
        names = [args.name]
    listing = {name: store.versions(name) for name in names}
    if args.json:
        output.print_json(
            {
                "root": str(store.root),
                "models": [
                    {"name": n, "versions": v, "latest": v[-1] if v else None}
                    for n, v in listing.items()
                ],
            }
        )
        return EXIT_OK
    table = output.table(("model", "versions (oldest first)", "latest"))
    for name, versions in listing.items():
        table.add_row(escape(name), escape(", ".join(versions)), versions[-1] if versions else "-")
    output.out().print(table)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from safeload.demo import run_demo

    ok = run_demo(lambda line: output.out().print(line, markup=False), keep=args.keep)
    return EXIT_OK if ok else EXIT_REFUSED
