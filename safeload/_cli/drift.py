"""``drift``: today's data against the training statistics signed with a model.

The statistics are read only from an artifact that passed gate steps 1 to 4 (signature, every
file's digest, the type scan); nothing is deserialized: the model is not needed to measure
drift. Exit status 0 for ``stable`` or ``watch``, 1 for ``shifted`` (or a refused artifact,
as for every verb), 2 for a usage or input error.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from safeload._cli import args as cli_args
from safeload._cli import output
from safeload._cli.output import escape
from safeload.errors import OperationalError

EXIT_OK, EXIT_SHIFTED = 0, 1
MAX_ROWS = 1_000_000
_BATCH = 65_536


def read_table(path: str, max_rows: int) -> tuple[Any, bool]:
    """The first ``max_rows`` rows of a CSV or Parquet file, and whether there were more."""
    try:
        import pandas as pd
    except ImportError as exc:
        raise OperationalError("safeload drift needs pandas: pip install pandas") from exc
    source = Path(path)
    if not source.is_file():
        raise OperationalError(f"{source}: no such file")
    suffix = source.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(source, nrows=max_rows + 1)
            return frame.iloc[:max_rows], len(frame) > max_rows
        if suffix in (".parquet", ".pq"):
            pq: Any = importlib.import_module("pyarrow.parquet")
            batches, read = [], 0
            with pq.ParquetFile(source) as parquet:
                for batch in parquet.iter_batches(batch_size=min(_BATCH, max_rows + 1)):
                    batches.append(batch)
                    read += batch.num_rows
                    if read > max_rows:
                        break
                schema = parquet.schema_arrow
            pa: Any = importlib.import_module("pyarrow")
            table = pa.Table.from_batches(batches, schema=schema)
            return table.slice(0, max_rows).to_pandas(), read > max_rows
    except ImportError as exc:
        raise OperationalError("reading Parquet needs pyarrow: pip install pyarrow") from exc
    except (ValueError, OSError) as exc:
        raise OperationalError(f"{source} cannot be read: {exc}") from exc
    raise OperationalError(f"{source}: give a .csv or .parquet file")


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
