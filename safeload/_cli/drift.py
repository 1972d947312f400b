"""``drift``: today's data against the training statistics signed with a model.

The statistics are read only from an artifact that passed gate steps 1 to 4 (signature, every
file's digest, the type scan); nothing is deserialized: the model is not needed to measure
drift. Exit status 0 for ``stable`` or ``watch``, 1 for ``shifted`` (or a refused artifact,
as for every verb), 2 for a usage or input error.
"""

from __future__ import annotations

import argparse

from safeload._cli import args as cli_args
from safeload._cli import output
from safeload._cli.output import escape
from safeload._cli.tables import read_table

EXIT_OK, EXIT_SHIFTED = 0, 1
MAX_ROWS = 1_000_000


def cmd_drift(args: argparse.Namespace) -> int:
    from safeload.drift import SHIFTED, check_drift
    from safeload.loading import verify_artifact

    policy = cli_args.policy(args)
    data, cut = read_table(args.data, args.max_rows)
    verified = verify_artifact(args.artifact, trusted=args.trusted, policy=policy)
    report = check_drift(verified.metadata, data)
    status = EXIT_SHIFTED if report.verdict == SHIFTED else EXIT_OK
    meta = verified.metadata
    if args.json:
        output.print_json(
            {
                "path": verified.path,
                "name": meta.get("name"),
                "version": meta.get("version"),
                "data": args.data,
                "rows_cut_at": args.max_rows if cut else None,
                **report.to_dict(),
            }
        )
        return status
    out = output.out()
    if cut:
        output.err().print(
            f"safeload: note: only the first {args.max_rows} rows of {args.data} were read "
            "(--max-rows)",
            markup=False,
        )
    grid = output.table(
        ("feature", "kind", "verdict", "PSI", "out of range", "missing", "unseen", "why"),
        title=f"{meta.get('name')} {meta.get('version')} against {args.data} ({report.rows} rows)",
    )
    for feature in report.features:
        grid.add_row(
            escape(feature.name),
            feature.kind,
            _verdict(feature.verdict),
            _number(feature.psi),
            _share(feature.out_of_range),
            _share(feature.missing),
            _share(feature.unseen)
            + (f" ({escape(', '.join(feature.unseen_values))})" if feature.unseen_values else ""),
            escape("; ".join(feature.reasons)),
        )
    out.print(grid)
    if report.unchecked:
        out.print(f"{report.unchecked} column(s) have no recorded statistics and were not checked")
    out.print(f"verdict    {_verdict(report.verdict)}")
    return status


def _verdict(verdict: str) -> str:
    colour = {"stable": "green", "watch": "yellow"}.get(verdict, "red")
    return f"[bold {colour}]{verdict.upper()}[/]"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
