"""What a file of N bytes can cost the gate before a verdict: the worst streams per byte.

The threat model promises bounded time. ``ScanLimits.max_seconds`` (one deadline for scan,
deserialization and validation) caps it absolutely; this script measures the slope below that
cap, for streams built to be as costly per byte as the policy lets them be, next to real models:

* ``1-byte opcodes``: ``NONE POP`` repeated, the most opcodes a byte can hold;
* ``memo churn``: ``EMPTY_LIST MEMOIZE POP``, one memo entry per 3 bytes;
* ``list items``: ``APPENDS`` of single-byte items, the most objects per byte;
* ``int dict keys``: ``SETITEMS`` of distinct ints, hashing and collision bookkeeping;
* a random forest and a large-vocabulary text pipeline, as ``joblib.dump`` writes them.

For each: the scan (``check_types``), the restricted unpickler, structural validation and, for
reference, plain ``pickle.loads``/``joblib.load``, fastest of ``--repeat`` runs, as seconds and
as microseconds per KiB. With ``--svg PATH`` it also draws the per-KiB figures (matplotlib).

    python benchmarks/bench_cost_bounds.py --svg docs/img/cost-bounds.svg
    python benchmarks/bench_cost_bounds.py --smoke
"""

from __future__ import annotations

import argparse
import io
import pickle
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib

import safeload
from safeload import _unpickle
from safeload.typegate import check_types
from safeload.validation import validate_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gate_steps import fastest, forest, text_pipeline
from charts import save_svg

_PROTO = b"\x80\x04"


def dense_ops(size: int) -> bytes:
    return _PROTO + b"N0" * (size // 2) + b"N."


def memo_churn(size: int) -> bytes:
    return _PROTO + b"]\x940" * (size // 3) + b"N."


# Items come in batches of 1000 per MARK, as pickle itself writes them (and the stack limit wants).
_BATCH = 1000


def list_items(size: int) -> bytes:
    batches = max(1, size // (_BATCH + 2))
    return _PROTO + b"]" + (b"(" + b"N" * _BATCH + b"e") * batches + b"."


def int_keys(size: int) -> bytes:
    batches = max(1, size // (6 * _BATCH + 2))
    body = b"".join(
        b"("
        + b"".join(b"J" + struct.pack("<i", k * _BATCH + i) + b"N" for i in range(_BATCH))
        + b"u"
        for k in range(batches)
    )
    return _PROTO + b"}" + body + b"."


def joblib_bytes(model: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def measure(name: str, data: bytes, repeat: int, plain: Callable[[], object]) -> dict[str, Any]:
    policy = safeload.TypePolicy.default()
    print(f"  {name}: {len(data) / 2**20:.1f} MiB ...", file=sys.stderr, flush=True)
    checked = check_types(data, policy)
    model = _unpickle.unpickle_verified(checked.payload, policy)
    return {
        "name": name,
        "bytes": len(data),
        "scan": fastest(lambda: check_types(data, policy), repeat),
        "unpickle": fastest(lambda: _unpickle.unpickle_verified(checked.payload, policy), repeat),
        "validate": fastest(lambda: validate_model(model), repeat),
        "plain": fastest(plain, repeat),
    }


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    steps = ["scan", "unpickle", "validate", "plain"]
    labels = ["scan", "restricted unpickle", "validate", "plain pickle/joblib load"]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.2
    for k, (step, label) in enumerate(zip(steps, labels, strict=True)):
        xs = [i + (k - 1.5) * width for i in range(len(rows))]
        ax.bar(xs, [r[step] / r["bytes"] * 2**10 * 1e6 for r in rows], width, label=label)
    ax.set_xticks(range(len(rows)), [r["name"] for r in rows], fontsize=8)
    ax.set_ylabel("microseconds per KiB")
    ax.set_title("Gate cost per byte: worst-case streams and real models")
    ax.legend(fontsize=8)
    save_svg(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, one run each")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mib", type=float, default=8.0, help="size of the crafted streams")
    parser.add_argument("--svg", type=Path, help="also draw the per-KiB chart here")
    args = parser.parse_args()
    repeat = 1 if args.smoke else args.repeat
    size = 4096 if args.smoke else int(args.mib * 2**20)
    crafted = {
        "1-byte opcodes": dense_ops(size),
        "memo churn": memo_churn(size),
        "list items": list_items(size),
        "int dict keys": int_keys(size),
    }
    rows = [measure(n, d, repeat, lambda d=d: pickle.loads(d)) for n, d in crafted.items()]
    models = {
        "random forest": forest(5 if args.smoke else 300),
        "text vocabulary": text_pipeline(3_000 if args.smoke else 300_000),
    }
    for name, model in models.items():
        data = joblib_bytes(model)
        rows.append(measure(name, data, repeat, lambda d=data: joblib.load(io.BytesIO(d))))
    print(
        "| stream | MiB | scan (s) | unpickle (s) | validate (s) | plain load (s) |"
        " gate us/KiB | plain us/KiB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        gate = r["scan"] + r["unpickle"] + r["validate"]
        kib = r["bytes"] / 2**10
        print(
            f"| {r['name']} | {r['bytes'] / 2**20:.1f} | {r['scan']:.3f} | {r['unpickle']:.3f} | "
            f"{r['validate']:.3f} | {r['plain']:.3f} | {gate / kib * 1e6:.0f} | "
            f"{r['plain'] / kib * 1e6:.0f} |"
        )
    if args.svg:
        chart(rows, args.svg)
        print(f"chart written to {args.svg}", file=sys.stderr)


if __name__ == "__main__":
    main()
