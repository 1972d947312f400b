"""Policy files: the names a deployment trusts, written once instead of on every call.

A policy file is TOML (``docs/policy.md`` is its reference)::

    # safeload trusted-type policy
    [types]
    "mylib.features:RatioFeatures" = "our own transformer, reviewed in PR 123"
    "mylib.features:clip01" = { call = false, why = "kept as a parameter, never called" }

    [safe_to_call]
    "mylib.features:clip01" = "elementwise clip, bounded cost; FunctionTransformer calls it"

A top-level ``packs = ["lightgbm"]`` adds opt-in packs (:meth:`TypePolicy.with_packs`).

It is the caller's configuration, never part of an artifact: it is read from the path a
caller passes (``policy="policy.toml"``, :meth:`TypePolicy.from_file`, the CLI's
``--policy``) or from ``$SAFELOAD_POLICY`` when the caller passes none, and always sits on top
of the default policy. Parsing is strict, because a typo in a trust file must not silently
trust something else or nothing: unknown tables and keys, names not in exact
``module:qualname`` form, wrong value types, duplicates, files over
:data:`MAX_POLICY_BYTES` or :data:`MAX_POLICY_ENTRIES` are all a
:class:`~safeload.errors.PolicyFileError` naming the file, the line and the key. A door to
code or the OS (:mod:`safeload.unsafenames`) needs ``unsafe = true`` on its entry.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import threading
from collections.abc import Callable, Mapping
from typing import NamedTuple, NoReturn

from safeload._packs import PACKS
from safeload.errors import PolicyFileError, UnsafePolicyError
from safeload.typenames import TypeName, parse_type_name
from safeload.unsafenames import unsafe_message, unsafe_reason

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: A policy file larger than this is refused before it is read (a list of names is small).
MAX_POLICY_BYTES = 1 << 20
#: At most this many entries over all tables (the default policy itself has under 500).
MAX_POLICY_ENTRIES = 10_000

_TABLES = ("types", "safe_to_call")
_ENTRY_KEYS = {"types": {"why", "call", "unsafe"}, "safe_to_call": {"why", "unsafe"}}


class PolicyEntries(NamedTuple):
    """What a policy file adds to the default policy (``TypePolicy``'s fields, file part)."""

    names: frozenset[TypeName]
    callables: frozenset[TypeName]
    unsafe: frozenset[TypeName]
    safe_to_call: frozenset[TypeName]
    packs: tuple[str, ...] = ()


_cache: dict[str, tuple[tuple[int, ...], PolicyEntries]] = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 16


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_policy_file(path: str | os.PathLike[str], *, source: str | None = None) -> PolicyEntries:
    """The file's entries, checked; cached while the file is unchanged.

    ``TypePolicy.from_file`` and ``resolve_policy`` put them on top of the default policy.

    ``source`` says where the path came from (``$SAFELOAD_POLICY``) for messages. The file is
    stat-ed on every call and re-read when its identity, size or times change, so a server
    that edits its policy file picks the change up at the next load.
    """
    where = f"{source}={os.fspath(path)}" if source else os.fspath(path)
    key = os.path.abspath(path)
    try:
        before = _identity(os.stat(key))
    except OSError as exc:
        raise PolicyFileError(_cannot_read(where, path, exc)) from exc
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] == before:
        return hit[1]
    identity, text = _read(key, where, path)
    entries = parse_policy(text, where)
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[key] = (identity, entries)
    return entries


def _cannot_read(where: str, path: str | os.PathLike[str], exc: OSError) -> str:
    hint = ""
    if isinstance(path, str) and ":" in path and not os.path.exists(path):
        hint = " (a single name? pass a list: policy=['module:qualname'])"
    return f"cannot read the policy file {where}: {exc.strerror or exc}{hint}"


def _read(key: str, where: str, path: str | os.PathLike[str]) -> tuple[tuple[int, ...], str]:
    """The file's text, refusing anything but a small regular file nobody else may write."""
    try:
        # O_NONBLOCK: opening a FIFO must not hang; it is then refused as not a regular file.
        fd = os.open(key, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise PolicyFileError(_cannot_read(where, path, exc)) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PolicyFileError(f"the policy file {where} is not a regular file")
        if os.name == "posix" and st.st_mode & stat.S_IWOTH:
            raise PolicyFileError(
                f"the policy file {where} is writable by every user, who could trust any "
                "name: chmod o-w it"
            )
        if st.st_size > MAX_POLICY_BYTES:
            raise PolicyFileError(
                f"the policy file {where} is {st.st_size} bytes, over the limit of "
                f"{MAX_POLICY_BYTES}: a policy lists names, it is never that big"
            )
        data = _read_at_most(fd, MAX_POLICY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_POLICY_BYTES:  # it grew while being read
        raise PolicyFileError(f"the policy file {where} is over {MAX_POLICY_BYTES} bytes")
    try:
        return _identity(st), data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyFileError(f"the policy file {where} is not UTF-8: {exc.reason}") from exc


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 16, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _line_of(text: str, key: str) -> str:
    """``line N: `` for the first line that spells ``key`` as a key or table, or nothing.

    tomllib keeps no positions; a key is found again in the text (quoted or bare, before
    ``=``, ``]`` or ``.``), which is exact for every file a person writes.
    """
    spelled = re.compile(rf"""(^|[\[\s.,{{])(["']?){re.escape(key)}\2\s*[=\].]""")
    for number, line in enumerate(text.splitlines(), start=1):
        if spelled.search(line):
            return f"line {number}: "
    return ""


class _Entry(NamedTuple):
    """One parsed entry: the name, and what the file says about it."""

    name: TypeName
    call: bool
    unsafe: bool


def _entry(table: str, key: str, value: object, fail: Callable[[str], NoReturn]) -> _Entry:
    if key != key.strip() or ":" not in key:
        fail(f"write names exactly as 'module:qualname' (with the colon, no spaces), not {key!r}")
    try:
        name = parse_type_name(key)
    except ValueError as exc:
        fail(str(exc))
    if isinstance(value, str):
        return _Entry(name, table == "types", False)
    if not isinstance(value, dict):
        fail(
            "the value must be a string (why it is trusted) or an inline table, "
            f"not a {_kind(value)}"
        )
    unknown = sorted(set(value) - _ENTRY_KEYS[table])
    if unknown:
        fail(
            f"unknown key(s) {unknown}; an entry of [{table}] may set {sorted(_ENTRY_KEYS[table])}"
        )
    for flag, kind in (("why", str), ("call", bool), ("unsafe", bool)):
        if flag in value and not isinstance(value[flag], kind):
            fail(f"`{flag}` must be a {kind.__name__}, not a {_kind(value[flag])}")
    return _Entry(name, table == "types" and value.get("call", True), value.get("unsafe", False))


def _kind(value: object) -> str:
    return {dict: "table", list: "array", bool: "boolean", str: "string"}.get(
        type(value), type(value).__name__
    )


def parse_policy(text: str, where: str = "<policy>") -> PolicyEntries:
    """The entries of a policy file's ``text`` (``where`` names it in messages)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(f"the policy file {where} is not valid TOML: {exc}") from exc
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise PolicyFileError(
            f"the policy file {where} nests arrays or inline tables too deeply: a policy "
            "file is two flat tables and a list of packs"
        ) from None
    unknown = sorted(set(document) - set(_TABLES) - {"packs"})
    if unknown:
        raise PolicyFileError(
            f"the policy file {where}: {_line_of(text, unknown[0]) or ''}unknown key or table "
            f"{unknown[0]!r}; a policy file has only the tables {list(_TABLES)} and `packs`"
        )
    packs = _packs(document.get("packs", []), text, where)
    entries: dict[str, list[_Entry]] = {}
    count = 0
    for table in _TABLES:
        body = document.get(table, {})
        if not isinstance(body, Mapping):
            raise PolicyFileError(f"the policy file {where}: `{table}` must be a table")
        count += len(body)
        if count > MAX_POLICY_ENTRIES:
            raise PolicyFileError(
                f"the policy file {where} has over {MAX_POLICY_ENTRIES} entries: a policy "
                "lists the few names you reviewed"
            )
        entries[table] = [_parse_entry(text, where, table, k, v) for k, v in body.items()]
    return _build(entries, text, where)._replace(packs=packs)


def _packs(value: object, text: str, where: str) -> tuple[str, ...]:
    """``packs = ["lightgbm", ...]``: known pack names, each once."""
    if type(value) is not list or not all(type(v) is str for v in value):
        raise PolicyFileError(
            f"the policy file {where}: {_line_of(text, 'packs')}`packs` must be an array of "
            f"pack names, from {sorted(PACKS)}"
        )
    unknown = sorted(set(value) - set(PACKS))
    if unknown or len(set(value)) != len(value):
        raise PolicyFileError(
            f"the policy file {where}: {_line_of(text, 'packs')}`packs` names "
            f"{unknown or 'a pack twice'}; the packs are {sorted(PACKS)}"
        )
    return tuple(value)


def _parse_entry(text: str, where: str, table: str, key: str, value: object) -> _Entry:
    def fail(problem: str) -> NoReturn:
        raise PolicyFileError(
            f"the policy file {where}: {_line_of(text, key)}[{table}] {key!r}: {problem}"
        )

    return _entry(table, key, value, fail)


def _build(entries: dict[str, list[_Entry]], text: str, where: str) -> PolicyEntries:
    names: set[TypeName] = set()
    callables: set[TypeName] = set()
    unsafe: set[TypeName] = set()
    for table, listed in entries.items():
        for entry in listed:  # keys are exact and TOML keys unique: no name comes twice
            key = f"{entry.name[0]}:{entry.name[1]}"
            why = unsafe_reason(*entry.name)
            if why is not None and not entry.unsafe:
                raise UnsafePolicyError(
                    f"the policy file {where}: {_line_of(text, key)}[{table}] {key!r}: "
                    + unsafe_message(entry.name, why),
                    types=[key],
                )
            if why is not None:
                unsafe.add(entry.name)
            names.add(entry.name)
            if entry.call:
                callables.add(entry.name)
    safe = frozenset(e.name for e in entries.get("safe_to_call", []))
    return PolicyEntries(frozenset(names), frozenset(callables), frozenset(unsafe), safe)
