"""Step 4 of the gate: the types a model file names, checked before anything is deserialized.

This package's top level is the only door to step 4, for every caller (load, save, sign,
convert, inspect, ``safeload scan``) and both formats, so that none of them can disagree:

* :func:`scan_bytes` reports and never raises: whatever is wrong with the bytes is a problem
  in the :class:`ScanReport`;
* :func:`check_types` raises the refusal of that same verdict, and otherwise hands back the
  exact buffer to deserialize (and, for skops, the exact list of names skops asks to trust).

Both sort skops (a zip) from joblib/pickle once, and bound both with the caller's
:class:`ScanLimits`. The rooms behind the door:

* :mod:`~safeload.typegate.limits` and :mod:`~safeload.typegate.report`: what a scan may
  spend, and what it found;
* :mod:`~safeload.typegate.compression`: joblib's compressors, undone within limits;
* :mod:`~safeload.typegate._stream`, :mod:`~safeload.typegate._opcodes` and
  :mod:`~safeload.typegate._symbols`: the static opcode walker, its handlers and its
  symbolic values;
* :mod:`~safeload.typegate.dtypes`: numpy dtypes in the forms numpy writes (both walls);
* :mod:`~safeload.typegate.callrules`: the call rules, each with its check in every wall;
* :mod:`~safeload.typegate.skops`: skops zips, node by node;
* :mod:`~safeload.typegate.onnx`: ONNX graphs, parsed from the verified bytes (no external
  data, standard operator domains only, bounded).

Nothing here unpickles, imports a module the file names, or calls anything the file names.
"""

from __future__ import annotations

import mmap
import os
import stat
from dataclasses import dataclass, field, replace

from safeload.buffers import Buffer, byte_view
from safeload.errors import ArtifactNotFoundError, MalformedArtifactError, SafeloadError
from safeload.policy import TypePolicy, resolve_policy
from safeload.typegate._stream import scan_payload, scan_planned
from safeload.typegate.compression import decompress
from safeload.typegate.fastplan import FastPlan
from safeload.typegate.limits import Deadline, ScanLimits
from safeload.typegate.onnx import scan_onnx
from safeload.typegate.report import ScanReport, make_report
from safeload.typegate.skops import SkopsPlan, scan_skops

__all__ = [
    "ScanLimits",
    "ScanReport",
    "TypeChecked",
    "check_types",
    "scan",
    "scan_bytes",
    "scan_payload",
]

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip, or an empty one
_MIB = 1 << 20


@dataclass(frozen=True)
class TypeChecked:
    """A model file whose types all passed the policy; ``payload`` is what to deserialize."""

    format: str
    report: ScanReport
    payload: Buffer = field(repr=False)
    skops_trusted: tuple[str, ...] = ()
    #: The gate's one clock, started before the scan: deserializing and validating this file
    #: spend what is left of the same ``ScanLimits.max_seconds``.
    deadline: Deadline = field(default_factory=lambda: Deadline(ScanLimits().max_seconds))
    #: The caller's limits, for what the deserializer checks (a pack booster's blob size).
    limits: ScanLimits = field(default_factory=ScanLimits)
    #: The scan's proof that the C unpickler may load ``payload`` (``fastplan``), or ``None``.
    plan: FastPlan | None = field(default=None, repr=False)
    #: A skops file's plan (parsed schema, the list skops' audit asked for, stored spans).
    skops_plan: SkopsPlan | None = field(default=None, repr=False)


def _examine(
    data: Buffer,
    policy: TypePolicy,
    limits: ScanLimits,
    path: str | None,
    format: str | None,
    deadline: Deadline | None = None,
) -> TypeChecked:
    """The one verdict: sort the format, then scan; problems are reported, never raised."""
    view = byte_view(data)
    deadline = deadline or Deadline(limits.max_seconds)
    if format == "onnx":
        report, graph = scan_onnx(view, policy, path, limits, deadline)
        return TypeChecked("onnx", replace(report, graph=graph), view, deadline=deadline)
    is_skops = format == "skops" if format is not None else bytes(view[:4]) in _ZIP_MAGICS
    if is_skops:
        report, skops_plan = scan_skops(view, policy, path, limits, deadline)
        trusted = skops_plan.trusted if skops_plan is not None else ()
        return TypeChecked("skops", report, view, trusted, deadline, limits, skops_plan=skops_plan)
    try:
        compression, payload = decompress(view, limits=limits)
    except MalformedArtifactError as exc:
        fmt = "joblib" if bytes(view[:2]) == b"ZF" else "pickle"
        report = make_report(
            path=path, fmt=fmt, compression=None, policy=policy, problems=[str(exc)]
        )
        return TypeChecked("joblib", report, view, deadline=deadline, limits=limits)
    report, plan = scan_planned(payload, policy, limits, compression, path, deadline)
    return TypeChecked("joblib", report, payload, deadline=deadline, limits=limits, plan=plan)


def scan_bytes(
    data: Buffer,
    *,
    policy: TypePolicy | None = None,
    limits: ScanLimits | None = None,
    path: str | None = None,
    format: str | None = None,
) -> ScanReport:
    """Scan a whole file's bytes: skops (zip), compressed joblib, or a raw pickle stream.

    ``format`` is an artifact's declared format (``"joblib"``, ``"skops"`` or ``"onnx"``); a
    bare file (``None``) is recognised by its zip magic (ONNX has none: its callers go by the
    ``.onnx`` suffix). Never raises on bad input.
    """
    chosen = resolve_policy(policy)
    try:
        return _examine(data, chosen, limits or ScanLimits(), path, format).report
    except Exception as exc:  # hostile bytes must never escape as an exception
        return make_report(
            path=path,
            fmt="pickle",
            compression=None,
            policy=chosen,
            problems=[f"the file could not be read as a model ({type(exc).__name__}): refused."],
        )


def check_types(
    data: Buffer,
    policy: TypePolicy,
    *,
    format: str | None = None,
    limits: ScanLimits | None = None,
    path: str | None = None,
    deadline: Deadline | None = None,
) -> TypeChecked:
    """The verdict of :func:`scan_bytes`, raised if it is a refusal.

    Returns the buffer to deserialize: a joblib file's decompressed stream (never copied when
    raw), or the skops zip with the exact trusted list skops asks for, and the gate's clock
    (``deadline``, started here unless given) for the steps that follow.

    Raises:
        UntrustedTypeError: the file names globals outside the policy.
        MalformedArtifactError: anything else the scan could not accept.
    """
    try:
        chosen = limits or ScanLimits()
        clock = deadline or Deadline(chosen.max_seconds)
        checked = _examine(data, policy, chosen, path, format, clock)
    except SafeloadError:
        raise
    except Exception as exc:  # hostile bytes must never escape as a bare traceback
        raise MalformedArtifactError(
            f"{path or 'the model file'} could not be read as a model ({type(exc).__name__}): "
            "refused; nothing was deserialized."
        ) from exc
    checked.report.raise_if_unsafe()
    return checked


# Files this large are scanned through a read-only mapping: the scan only touches the pages
# that hold opcodes, never the array payloads it skips.
_MMAP_FROM = 64 * _MIB


def _scan_mapped(
    fd: int, name: str, policy: TypePolicy | None, limits: ScanLimits | None
) -> ScanReport:
    """Scan a large file through a read-only mapping, so array bytes are never read."""
    mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    try:
        with memoryview(mapped) as view:
            return scan_bytes(
                view, policy=policy, limits=limits, path=name, format=_by_suffix(name)
            )
    finally:
        try:
            mapped.close()
        except BufferError:  # a view is still referenced somewhere: unmapped when collected
            pass


def scan(
    path: str | os.PathLike[str],
    *,
    policy: TypePolicy | None = None,
    limits: ScanLimits | None = None,
) -> ScanReport:
    """Scan one file (``safeload.scan``): nothing in it is deserialized or imported.

    Raises:
        ArtifactNotFoundError: the path does not exist, is not a regular file, or cannot be
            read. Anything wrong with the content is reported, never raised.
    """
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise ArtifactNotFoundError(
            f"cannot open {name!r} for scanning ({exc.strerror or exc}): check the path."
        ) from exc
    try:
        return scan_descriptor(fd, name, policy=policy, limits=limits)
    finally:
        os.close(fd)


def scan_descriptor(
    fd: int,
    name: str,
    *,
    policy: TypePolicy | None = None,
    limits: ScanLimits | None = None,
) -> ScanReport:
    """Scan a file already opened (by a caller that chose how: ``O_NOFOLLOW``, ``dir_fd``).

    ``fd`` stays open; ``name`` is only shown. Raises as :func:`scan` does.
    """
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactNotFoundError(f"{name!r} is not a regular file: nothing to scan.")
        size = info.st_size
        if size >= _MMAP_FROM:
            return _scan_mapped(fd, name, policy, limits)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ArtifactNotFoundError(
            f"cannot read {name!r} for scanning ({exc.strerror or exc}): check the path."
        ) from exc
    return scan_bytes(data, policy=policy, limits=limits, path=name, format=_by_suffix(name))


def _by_suffix(name: str) -> str | None:
    """ONNX has no magic bytes: a bare ``.onnx`` file is scanned as ONNX by its name."""
    return "onnx" if name.lower().endswith(".onnx") else None
