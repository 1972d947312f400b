"""How the manifest hashes scale: SHA-256 in 16 MiB shards on two threads vs BLAKE3, 10 MB-1 GB.

Throughput (GB/s) of each way safeload can hash one file, on a buffer in memory (the hash
alone) and through ``safeload.layout.read_fd`` on a file in the page cache (read + hash, what
a load pays), fastest of ``--repeat`` runs:

  sha256, 1 thread          whole-file SHA-256 (the ``files`` serialization)
  sha256-sharded, 2 threads 16 MiB shards, two hashed at a time (what safeload writes and reads)
  blake3, 1 thread          BLAKE3 without its own threads
  blake3, all cores         ``blake3.blake3(max_threads=AUTO)`` (``save(..., hash="blake3")``)

Usage:

    python benchmarks/bench_hash.py --svg docs/img/hash-scaling.svg
    python benchmarks/bench_hash.py --sizes 10 100 --repeat 3 --json hash.json
    python benchmarks/bench_hash.py --smoke
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import blake3
import numpy as np
from charts import save_svg, write_outputs

from safeload.layout import read_fd
from safeload.manifest import BLAKE3, SHARD_SIZE, Hashing, shard_bounds

SHA256_SHARDED = Hashing(shard_size=SHARD_SIZE)


def sha256_whole(data: memoryview) -> None:
    Hashing().hexdigest(data)


def sha256_sharded(data: memoryview) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        bounds = shard_bounds(data.nbytes, SHARD_SIZE)
        list(pool.map(lambda b: SHA256_SHARDED.hexdigest(data[b[0] : b[1]]), bounds))


def blake3_single(data: memoryview) -> None:
    blake3.blake3(data).hexdigest()


def blake3_auto(data: memoryview) -> None:
    Hashing(BLAKE3).hexdigest(data)


METHODS: dict[str, tuple[Callable[[memoryview], None], Hashing | None]] = {
    "sha256, 1 thread": (sha256_whole, Hashing()),
    "sha256-sharded, 2 threads": (sha256_sharded, SHA256_SHARDED),
    "blake3, 1 thread": (blake3_single, None),
    "blake3, all cores": (blake3_auto, Hashing(BLAKE3)),
}


def fastest(run: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def read_file(path: Path, scheme: Hashing) -> None:
    """Read and hash a file as a load does (``read_fd``: one buffer, hashed while read)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        read_fd(fd, "f", 1 << 40, scheme=scheme)
    finally:
        os.close(fd)


def measure(sizes_mb: list[int], repeat: int, workdir: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    rng = np.random.default_rng(0)
    for size in sizes_mb:
        nbytes = size * 1_000_000
        data = memoryview(rng.integers(0, 256, nbytes, dtype=np.uint8).data).cast("B")
        path = workdir / f"hash-{size}MB.bin"
        path.write_bytes(data)
        row: dict[str, object] = {"size_mb": size}
        for name, (hash_only, scheme) in METHODS.items():
            row[name] = nbytes / fastest(partial(hash_only, data), repeat) / 1e9
            if scheme is not None:
                read = partial(read_file, path, scheme)
                read()  # page cache warm
                row[f"read+{name}"] = nbytes / fastest(read, repeat) / 1e9
        path.unlink()
        rows.append(row)
        print(f"measured {size} MB", file=sys.stderr, flush=True)
    return rows


def chart(rows: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    sizes = [float(str(r["size_mb"])) for r in rows]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for name in METHODS:
        (line,) = ax.plot(sizes, [r[name] for r in rows], marker="o", label=f"{name} (hash)")
        if f"read+{name}" in rows[0]:
            ax.plot(
                sizes,
                [r[f"read+{name}"] for r in rows],
                marker="x",
                linestyle="--",
                color=line.get_color(),
                label=f"{name} (read + hash)",
            )
    ax.set_xscale("log")
    ax.set_xlabel("file size, MB")
    ax.set_ylabel("GB/s")
    ax.set_title(f"Manifest hash throughput, {os.cpu_count()} cores")
    ax.legend(fontsize=7)
    save_svg(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100, 300, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--svg", type=Path, help="also draw the throughput chart here")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.repeat = [1, 2], 1
    with tempfile.TemporaryDirectory(prefix="safeload-hash-") as work:
        rows = measure(args.sizes, args.repeat, Path(work))
    columns = [c for c in rows[0] if c != "size_mb"]
    print(f"{os.cpu_count()} cores; GB/s, fastest of {args.repeat} runs")
    print()
    print("| MB | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for r in rows:
        cells = " | ".join(f"{float(str(r[c])):.2f}" for c in columns)
        print(f"| {r['size_mb']} | {cells} |")
    write_outputs(rows, args.json, args.svg, chart)


if __name__ == "__main__":
    main()
