"""Printing for the CLI: tables that never cut a path or a verdict, JSON documents, progress.

Consoles are made on first use, so ``--version`` and ``--help`` never import rich. Without a
terminal (CI logs, ``| cat``) rich would wrap tables to 80 columns and shorten cells with an
ellipsis; here the width is unbounded off a terminal and every column folds instead of cutting,
so two long paths, one clean and one UNSAFE, always read in full.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

JSON_SCHEMA_VERSION = 1
_UNBOUNDED = 1 << 16


def _console(stderr: bool) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(
        file=stream,
        highlight=False,
        soft_wrap=True,
        width=None if terminal else _UNBOUNDED,
        force_terminal=None if terminal else False,
    )


@cache
def out() -> Console:
    """The console for results (stdout)."""
    return _console(stderr=False)


@cache
def err() -> Console:
    """The console for errors and progress (stderr)."""
    return _console(stderr=True)


def escape(text: str) -> str:
    """Text from a file or a path, shown literally (never as rich markup)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def table(columns: Sequence[str], *, title: str | None = None, header: bool = True) -> Table:
    """A table whose cells fold rather than being cut with an ellipsis."""
    from rich.table import Table

    grid = Table(title=title, title_justify="left", show_header=header)
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def print_json(payload: dict[str, Any]) -> None:
    """One JSON document on stdout, with the schema version every document carries."""
    print(json.dumps({"schema": JSON_SCHEMA_VERSION, **payload}, indent=2, sort_keys=True))


def print_sarif(log: dict[str, Any]) -> None:
    """A SARIF log on stdout: no ``schema`` key, the SARIF schema allows none of its own."""
    print(json.dumps(log, indent=2, sort_keys=True))


def size(n: int) -> str:
    """A byte count for people."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def verdict(ok: bool, yes: str = "OK", no: str = "REFUSED") -> str:
    """A verdict word, coloured on a terminal."""
    return f"[bold green]{yes}[/]" if ok else f"[bold red]{no}[/]"


@contextmanager
def progress(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress bar on a terminal for large files; nothing when piped or for --json."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    bars: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=err(),
        transient=True,
    ) as bar:

        def update(name: str, done: int, total: int) -> None:
            if total < (64 << 20):
                return
            if name not in bars:
                bars[name] = bar.add_task(f"hashing {name}", total=total)
            bar.update(bars[name], completed=done)

        yield update


@contextmanager
def counter(enabled: bool) -> Iterator[Any]:
    """A rich ``Progress`` on a terminal for walking and scanning trees, else ``None``."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err(),
        transient=True,
    ) as bar:
        yield bar
