"""Which files ``safeload scan DIR`` looks at: a bounded walk that never follows a symlink.

The walk and the scan open every directory and file relative to its parent's descriptor with
``O_NOFOLLOW``, so a symlink inside a tree is never entered or read, even one put there while
the scan runs: it is listed as skipped, since a model behind it was not checked. The walk is
bounded (entries listed, directory depth); reaching a bound is an error, never a silent
truncation, because a scan that stopped early would call an unchecked tree clean.

It lives next to the CLI because its selection (default extensions, globs) is the scan
command's policy, not a library promise; it prints nothing, so it is tested on its own.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from safeload.errors import OperationalError

#: Extensions of the files Python models are saved to with pickle, joblib, dill or skops.
MODEL_SUFFIXES = (".pkl", ".pickle", ".p", ".joblib", ".sav", ".dill", ".skops", ".onnx")
#: joblib picks its compressor from these (``model.joblib.gz``, ``model.pkl.xz``).
COMPRESSION_SUFFIXES = (".z", ".gz", ".bz2", ".xz", ".lzma", ".lz4")
MAX_ENTRIES = 100_000
MAX_DEPTH = 64

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_DIR_FLAGS = os.O_RDONLY | _DIRECTORY | _NOFOLLOW
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Found:
    """A regular file to scan: ``path`` to show, ``root`` and ``parts`` to reopen it safely."""

    path: str
    root: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Skipped:
    """An entry the walk did not scan and did not exclude (a symlink, a FIFO, a socket)."""

    path: str
    reason: str


@dataclass
class Tree:
    """What one walk listed: files to scan, entries skipped, directories it could not read."""

    files: list[Found] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    listed: int = 0


def is_model_name(name: str) -> bool:
    """Whether a file name is one models are saved under (case-insensitive)."""
    lower = name.lower()
    stem, dot, last = lower.rpartition(".")
    if not dot or not stem:
        return False
    if "." + last in COMPRESSION_SUFFIXES:
        return is_model_name(stem)
    return "." + last in MODEL_SUFFIXES


def matches(patterns: Sequence[str], rel: str, name: str) -> bool:
    """Whether a glob matches the path relative to the walked directory, or the name alone."""
    return any(fnmatchcase(rel, p) or fnmatchcase(name, p) for p in patterns)


def walk(
    root: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_entries: int = MAX_ENTRIES,
    max_depth: int = MAX_DEPTH,
    listed: Callable[[int], None] | None = None,
) -> Tree:
    """List the files under ``root`` to scan, in name order, never following a symlink.

    A regular file is selected when its name is a model name or matches ``include``, unless
    ``exclude`` matches it; an excluded directory is not entered. ``listed`` is called with
    the running count of entries, every 1,000.

    Raises:
        OperationalError: ``root`` is a symlink or cannot be opened as a directory, or the
            tree has more than ``max_entries`` entries or directories deeper than
            ``max_depth`` levels below ``root``.
    """
    tree = Tree()
    fd = open_directory(root)
    try:
        _walk_dir(fd, root, (), tree, include, exclude, max_entries, max_depth, listed)
    finally:
        os.close(fd)
    return tree


def _open_named(path: str, flags: int, what: str) -> int:
    """Open a path given on the command line; a symlink there is refused, never followed."""
    if _is_symlink(path):
        raise OperationalError(f"{path} is a symlink; safeload scans no symlinks, give the {what}")
    try:
        return os.open(path.rstrip(os.sep) or path, flags)
    except OSError as exc:
        raise OperationalError(
            f"cannot open {path!r} for scanning ({exc.strerror or exc}): check the path."
        ) from exc


def open_directory(root: str) -> int:
    """A descriptor of ``root``; a symlink is refused like every symlink the library meets."""
    return _open_named(root, _DIR_FLAGS, "real directory")


def open_found(found: Found) -> int:
    """Reopen a listed file from its root, one component at a time, never through a symlink.

    Raises:
        OperationalError: a component is now a symlink or cannot be opened.
    """
    fd = open_directory(found.root)
    try:
        for part in found.parts[:-1]:
            child = _open_at(part, fd, _DIR_FLAGS, found.path)
            os.close(fd)
            fd = child
        return _open_at(found.parts[-1], fd, _FILE_FLAGS, found.path)
    finally:
        os.close(fd)


def open_file(path: str) -> int:
    """Open a file named on the command line; a symlink there is refused, never followed.

    Raises:
        OperationalError: ``path`` is a symlink or cannot be opened.
    """
    return _open_named(path, _FILE_FLAGS, "real path")


def is_directory(path: str) -> bool:
    """Whether ``path`` itself (not a symlink's target) is a directory."""
    return stat.S_ISDIR(_lmode(path))


def _is_symlink(path: str) -> bool:
    return stat.S_ISLNK(_lmode(path))


def _lmode(path: str) -> int:
    """The mode of the last component itself, even when written ``link/``.

    A trailing slash would make the system resolve a symlink to the directory it names; the
    check is on the name without it, as ``pathlib`` (and so the library's artifact checks)
    sees it.
    """
    try:
        return os.lstat(path.rstrip(os.sep) or path).st_mode
    except OSError:
        return 0  # opening it reports the error


def _open_at(name: str, dir_fd: int, flags: int, shown: str) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        raise OperationalError(
            f"cannot open {shown} ({exc.strerror or exc}); symlinks are never followed, "
            "and the tree may have changed during the scan"
        ) from exc


def _shown(root: str, parts: tuple[str, ...]) -> str:
    """How a path under ``root`` is shown: joined to it, without a leading ``./``."""
    if parts and root in (".", "./"):
        return os.path.join(*parts)
    return os.path.join(root, *parts)


def _walk_dir(
    fd: int,
    root: str,
    parts: tuple[str, ...],
    tree: Tree,
    include: Sequence[str],
    exclude: Sequence[str],
    max_entries: int,
    max_depth: int,
    listed: Callable[[int], None] | None,
) -> None:
    here = _shown(root, parts)
    entries: list[os.DirEntry[str]] = []
    try:
        with os.scandir(fd) as it:
            for entry in it:  # counted as read: one huge directory is bounded too
                tree.listed += 1
                if tree.listed > max_entries:
                    raise OperationalError(
                        f"{root} holds more than {max_entries} entries: nothing under it was "
                        "scanned, since the listing would be incomplete; raise --max-files or "
                        "--exclude what is not models"
                    )
                if listed is not None and tree.listed % 1000 == 0:
                    listed(tree.listed)
                entries.append(entry)
    except OSError as exc:
        tree.errors.append((here, f"cannot list {here} ({exc.strerror or exc})"))
        return
    entries.sort(key=lambda e: e.name)
    subdirs: list[str] = []
    for entry in entries:
        rel = "/".join((*parts, entry.name))
        path = _shown(root, (*parts, entry.name))
        if matches(exclude, rel, entry.name):
            continue
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as exc:
            tree.errors.append((path, f"cannot stat {path} ({exc.strerror or exc})"))
            continue
        if stat.S_ISDIR(mode):
            subdirs.append(entry.name)
        elif stat.S_ISREG(mode):
            if is_model_name(entry.name) or matches(include, rel, entry.name):
                tree.files.append(Found(path, root, (*parts, entry.name)))
        elif stat.S_ISLNK(mode):
            tree.skipped.append(Skipped(path, "symbolic link, not followed"))
        else:
            tree.skipped.append(Skipped(path, "not a regular file"))
    for name in subdirs:
        if len(parts) + 1 > max_depth:
            raise OperationalError(
                f"{os.path.join(here, name)} is more than {max_depth} directories below {root}: "
                "nothing under it was scanned; raise --max-depth or --exclude it"
            )
        try:
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            path = os.path.join(here, name)
            tree.errors.append((path, f"cannot open {path} ({exc.strerror or exc})"))
            continue
        try:
            _walk_dir(
                child, root, (*parts, name), tree, include, exclude, max_entries, max_depth, listed
            )
        finally:
            os.close(child)
