"""The ``safeload`` command: argument parsing and printing only; the library does the work.

Exit status: 0 verified or clean, 1 refused or findings, 2 usage or I/O error.
Human output is a table (rich); ``--json`` prints one stable JSON document on stdout.
Keys never appear in output; passphrases come from a prompt or an environment variable.
Every verb imports what it needs when it runs, so ``--version`` and ``--help`` answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from safeload._cli import output
from safeload._cli.checking import EXIT_ERROR, EXIT_REFUSED, error_document, message_of
from safeload._cli.parser import build_parser, resolve_format
from safeload.errors import RefusedError, SafeloadError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        resolve_format(args)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code) if isinstance(exc.code, int) else EXIT_ERROR
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args))
    except BrokenPipeError:  # the reader went away (``| head``): nothing more to say
        _silence_stdout()
        return EXIT_ERROR
    except RefusedError as exc:
        _report_error(args, exc, "refused")
        return EXIT_REFUSED
    except SafeloadError as exc:
        _report_error(args, exc, "error")
        return EXIT_ERROR
    except (ValueError, TypeError, OSError) as exc:
        _report_error(args, exc, "error")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Warnings (an unsafe policy, an unsigned load) as one line, like every other message."""
    output.err().print(f"safeload: warning: {message}", markup=False)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's exit-time flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _report_error(args: argparse.Namespace, exc: Exception, kind: str) -> None:
    if getattr(args, "json", False):
        output.print_json(error_document(exc, kind))
    else:
        output.err().print(f"safeload: {kind}: {message_of(exc)}", markup=False)
