"""``scan``: the static type scan of pickle, joblib and skops files, or of whole trees."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from safeload._cli import args as cli_args
from safeload._cli import output, tree
from safeload._cli.output import escape
from safeload.errors import OperationalError, SafeloadError

EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def cmd_scan(args: argparse.Namespace) -> int:
    from safeload.typegate import ScanReport
    from safeload.typegate import scan_descriptor as scan_fd

    reports: list[ScanReport] = []
    errors: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    empty: list[str] = []
    policy = cli_args.policy(args)
    budget = args.max_files
    people = args.format == "table"

    def error(path: str, message: str) -> None:
        errors.append({"path": path, "message": message})
        if people:
            output.err().print(f"safeload: error: {message}", markup=False)

    # With --scheduler, files are listed here and opened and scanned by the cluster's workers.
    jobs: list[tuple[str, Callable[[Any], int] | None, Any]] = []

    def scan_one(path: str, opener: Callable[[Any], int], arg: Any) -> None:
        if args.scheduler:
            jobs.append((path, opener, arg))
            return
        try:
            fd = opener(arg)
            try:
                reports.append(scan_fd(fd, path, policy=policy))
            finally:
                os.close(fd)
        except OperationalError as exc:
            error(path, str(exc))

    def scan_url(url: str) -> None:
        from safeload.remote import read_object
        from safeload.typegate import ScanLimits, scan_bytes

        if args.scheduler:  # the workers read it themselves
            jobs.append((url, None, url))
            return
        try:
            bound = ScanLimits().max_decompressed_bytes
            data = read_object(url, bound)  # credentials and endpoint: the environment
            reports.append(scan_bytes(data, policy=policy, path=url))
        except SafeloadError as exc:
            error(url, str(exc))

    from safeload.remote import is_url

    with _progress(people) as bar:
        for path in args.paths:
            if is_url(path):
                scan_url(path)
                continue
            if not tree.is_directory(path):
                scan_one(path, tree.open_file, path)
                continue
            try:
                found = tree.walk(
                    path,
                    include=args.include or (),
                    exclude=args.exclude or (),
                    max_entries=budget,
                    max_depth=args.max_depth,
                    listed=bar.listed(path),
                )
            except OperationalError as exc:
                error(path, str(exc))
                continue
            budget -= found.listed
            for where, message in found.errors:
                error(where, message)
            for entry in found.skipped:
                skipped.append({"path": entry.path, "reason": entry.reason})
                if people:
                    output.err().print(
                        f"safeload: skipped {entry.path}: {entry.reason}", markup=False
                    )
            if not found.files:
                empty.append(path)
            step = bar.scanning(path, len(found.files))
            for item in found.files:
                scan_one(item.path, tree.open_found, item)
                step()
    for result in _on_cluster(args.scheduler, jobs, policy) if jobs else ():
        if isinstance(result, ScanReport):
            reports.append(result)
        else:
            error(result.path, result.message)
    status = EXIT_ERROR if errors else EXIT_OK
    if status == EXIT_OK and any(not r.safe for r in reports):
        status = EXIT_REFUSED
    document = {
        "safe": status == EXIT_OK,
        "files": [r.to_dict() for r in reports],
        "errors": errors,
        "skipped": skipped,
    }
    if args.format == "json":
        output.print_json(document)
    elif args.format == "sarif":
        from safeload._cli.sarif import scan_log

        output.print_sarif(scan_log(document, status))
    else:
        if reports:
            output.out().print(_table(reports))
        for path in empty:
            output.err().print(
                f"safeload: note: no model files under {path} (see --include)", markup=False
            )
    return status


def _on_cluster(address: str, jobs: list[Any], policy: Any) -> list[Any]:
    """Scan the listed files on the workers of the Dask scheduler at ``address``."""
    try:
        import distributed

        from safeload import dask as sdask
    except ImportError as exc:
        raise OperationalError(f"--scheduler needs the dask extra: {exc}") from exc
    try:
        client = distributed.Client(  # type: ignore[no-untyped-call]
            address, timeout=10, set_as_default=False
        )
    except (OSError, TimeoutError) as exc:
        raise OperationalError(f"cannot reach the Dask scheduler {address}: {exc}") from exc
    with client:
        return sdask.scan_jobs(jobs, client=client, policy=policy)


class _Bar:
    """Progress for trees on a terminal: entries listed, then files scanned."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._listing: Any = None

    def listed(self, path: str) -> Callable[[int], None] | None:
        if self._progress is None:
            return None
        task = self._listing = self._progress.add_task(f"listing {path}", total=None)

        def update(count: int) -> None:
            self._progress.update(task, completed=count, description=f"listing {path}: {count}")

        return update

    def scanning(self, path: str, total: int) -> Callable[[], None]:
        if self._progress is None:
            return lambda: None
        if self._listing is not None:  # the listing is over: its bar goes
            self._progress.remove_task(self._listing)
            self._listing = None
        if total < 2:
            return lambda: None
        task = self._progress.add_task(f"scanning {path}", total=total)
        return lambda: self._progress.update(task, advance=1)


@contextmanager
def _progress(enabled: bool) -> Iterator[_Bar]:
    with output.counter(enabled) as progress:
        yield _Bar(progress)


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
