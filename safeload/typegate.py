"""Step 4 of the gate for both formats: the types a model file names, checked before loading.

One function decides, for joblib/pickle bytes (decompressed by magic, then the static opcode
scan) and for skops zips (zip limits, then every node type), whether the file may be
deserialized, and returns the exact buffer (and, for skops, the exact trusted list) to
deserialize. Saving, signing, converting and loading all call it, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from safeload.compression import decompress
from safeload.policy import TypePolicy
from safeload.scanning import ScanLimits, ScanReport, scan_payload
from safeload.skopsscan import ZIP_MAGIC, scan_skops

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True)
class TypeChecked:
    """A model file whose types all passed the policy; ``payload`` is what to deserialize."""

    format: str
    report: ScanReport
    payload: Buffer = field(repr=False)
    skops_trusted: tuple[str, ...] = ()


def check_types(
    data: Buffer,
    policy: TypePolicy,
    *,
    format: str | None = None,
    limits: ScanLimits | None = None,
    path: str | None = None,
) -> TypeChecked:
    """Scan ``data`` and raise the refusal if any type is untrusted or anything is unsure.

    ``format`` is the artifact's declared format; a bare file (``None``) is recognised by its
    zip magic. The payload of a joblib file is its decompressed stream, never copied when raw.
    """
    limits = limits or ScanLimits()
    is_skops = format == "skops" if format is not None else bytes(data[:4]) == ZIP_MAGIC
    if is_skops:
        report, trusted = scan_skops(data, policy, path, limits)
        report.raise_if_unsafe()
        return TypeChecked("skops", report, data, tuple(trusted))
    compression, payload = decompress(data, limits=limits)
    report = scan_payload(payload, policy=policy, limits=limits, compression=compression, path=path)
    report.raise_if_unsafe()
    return TypeChecked("joblib", report, payload)
