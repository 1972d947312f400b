"""``scan``: the static type scan of any pickle, joblib or skops file, signed or not."""

from __future__ import annotations

import argparse
from typing import Any

from safeload._cli import args as cli_args
from safeload._cli import output
from safeload._cli.output import escape
from safeload.errors import OperationalError

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def cmd_scan(args: argparse.Namespace) -> int:
    from safeload.typegate import ScanReport, scan

    reports: list[ScanReport] = []
    errors: list[dict[str, str]] = []
    policy = cli_args.policy(args)
    for path in args.paths:
        try:
            reports.append(scan(path, policy=policy))
        except OperationalError as exc:
            errors.append({"path": str(path), "message": str(exc)})
            if not args.json:
                output.err().print(f"safeload: error: {exc}", markup=False)
    status = EXIT_ERROR if errors else EXIT_OK
    if status == EXIT_OK and any(not r.safe for r in reports):
        status = EXIT_REFUSED
    if args.json:
        output.print_json(
            {"safe": status == EXIT_OK, "files": [r.to_dict() for r in reports], "errors": errors}
        )
    elif reports:
        output.out().print(_table(reports))
    return status


def _table(reports: list[Any]) -> Any:
    table = output.table(("file", "format", "types", "verdict", "untrusted types / problems"))
    for r in reports:
        fmt = r.format + (f" ({r.compression})" if r.compression else "")
        findings = escape("\n".join(list(r.untrusted) + list(r.problems)))
        table.add_row(
            escape(str(r.path)),
            fmt,
            str(len(r.globals)),
            output.verdict(r.safe, "clean", "UNSAFE"),
            findings,
        )
    return table
