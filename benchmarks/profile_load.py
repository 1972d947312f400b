"""Where a verified load spends its time, step by step, against its peer on the same model.

For each signed artifact given, inside one process (libraries imported and pages warm, the GC
paused as the gate pauses it), the fastest of ``--repeat`` runs of: the whole
``safeload.load``; steps 1 to 4 (read, hash, signature, scan); the scan alone; deserializing
(restricted unpickler, or skops' loader); structural validation; and the peer on the same
file (``joblib.load`` of the artifact's model file, or ``skops.io.load`` with
``get_untrusted_types``). ``--profile N`` then prints cProfile's top N of one whole load.
Fresh-process ratios are ``benchmarks/bench_load.py``'s job; this says where the time goes.

    python benchmarks/profile_load.py ART_DIR [ART_DIR ...] --keys KEYS_DIR [--profile 30]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time
from collections.abc import Callable
from pathlib import Path


def fastest(step: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def profile_one(path: Path, keys: str, repeat: int, top: int) -> None:
    """Print one artifact's step times (and cProfile's top ``top`` of a whole load)."""
    import joblib
    import skops.io

    import safeload
    from safeload import _unpickle
    from safeload.loading import verify_artifact
    from safeload.options import resolve_options
    from safeload.typegate import check_types
    from safeload.validation import validate_model

    opts = resolve_options(None)
    model_file = next(
        p for p in path.iterdir() if p.name.startswith("model.") and p.suffix != ".sig"
    )
    verified = verify_artifact(path, trusted=keys)
    checked = verified.checked
    model = _unpickle.deserialize_checked(checked, opts.types)

    def peer() -> object:
        if verified.format == "skops":
            trusted = skops.io.get_untrusted_types(file=model_file)
            return skops.io.load(model_file, trusted=trusted)
        return joblib.load(model_file)

    steps: dict[str, Callable[[], object]] = {
        "load": lambda: safeload.load(path, trusted=keys),
        "steps 1-4": lambda: verify_artifact(path, trusted=keys),
        "scan": lambda: check_types(
            checked.payload, opts.types, format=verified.format, limits=opts.scan_limits
        ),
        "deserialize": lambda: _unpickle.deserialize_checked(checked, opts.types),
        "validate": lambda: validate_model(model, limits=opts.scan_limits),
        "peer": peer,
    }
    times = {name: fastest(step, repeat) for name, step in steps.items()}
    shown = "  ".join(f"{name} {ms:.1f}" for name, ms in times.items())
    print(f"{path.name}: {shown} ms (load/peer {times['load'] / times['peer']:.2f})")
    if top:
        profiler = cProfile.Profile()
        profiler.enable()
        safeload.load(path, trusted=keys)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", nargs="+", type=Path)
    parser.add_argument("--keys", required=True, help="folder of trusted *.pub keys")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N")
    args = parser.parse_args()
    gc.disable()
    try:
        for path in args.artifacts:
            profile_one(path, args.keys, args.repeat, args.profile)
    finally:
        gc.enable()


if __name__ == "__main__":
    main()
