"""``ls`` and ``demo``: what a store holds, and the guided tour."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from safeload import strictjson
from safeload._cli import output
from safeload._cli.output import escape
from safeload.errors import ArtifactNotFoundError, OperationalError, SafeloadError

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
    digests = {
        name: [_data_digest(store.path(name, v)) for v in versions]
        for name, versions in listing.items()
    }
    if args.json:
        output.print_json(
            {
                "root": str(store.root),
                "models": [
                    {
                        "name": n,
                        "versions": v,
                        "latest": v[-1] if v else None,
                        # a local store's claims only: a remote listing reads no file
                        **(
                            {"data_sha256": dict(zip(v, digests[n], strict=True))}
                            if isinstance(store.root, Path)
                            else {}
                        ),
                    }
                    for n, v in listing.items()
                ],
            }
        )
        return EXIT_OK
    table = output.table(("model", "versions (oldest first)", "latest", "training data"))
    for name, versions in listing.items():
        table.add_row(
            escape(name),
            escape(", ".join(versions)),
            versions[-1] if versions else "-",
            ", ".join((d or "-")[:DIGEST_SHOWN] for d in digests[name]),
        )
    output.out().print(table)
    return EXIT_OK


DIGEST_SHOWN = 12
_MAX_METADATA = 16 << 20  # layout.ReadLimits' default for safeload.json
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _data_digest(path: object) -> str | None:
    """The training data digest a local artifact's ``safeload.json`` claims, or None.

    Unverified, as everything ``ls`` shows: a listing, not a verdict. Read bounded, by
    descriptor without following a symlink; anything odd is simply not shown. Remote
    stores show none (one request per version is not what a listing should cost).
    """
    from safeload.layout import METADATA_FILE, read_fd

    if not isinstance(path, Path):
        return None
    try:
        fd = os.open(path / METADATA_FILE, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        data, _ = read_fd(fd, METADATA_FILE, _MAX_METADATA, hashing=False)
        doc = strictjson.loads(data, METADATA_FILE)
    except (SafeloadError, OSError):
        return None
    finally:
        os.close(fd)
    lineage = doc.get("lineage") if isinstance(doc, dict) else None
    found = lineage.get("data") if isinstance(lineage, dict) else None
    digest = found.get("sha256") if isinstance(found, dict) else None
    return digest if isinstance(digest, str) and _SHA256.fullmatch(digest) else None


def cmd_demo(args: argparse.Namespace) -> int:
    from safeload.demo import run_demo

    ok = run_demo(lambda line: output.out().print(line, markup=False), keep=args.keep)
    return EXIT_OK if ok else EXIT_REFUSED
