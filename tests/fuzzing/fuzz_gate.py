"""Coverage-guided fuzzing of the gate's byte-facing steps with atheris.

Each input is a model file. ``scan_bytes`` must never raise. Only when the scan accepts the
bytes do they go on, as in ``safeload.loading``: ``check_types`` -> ``deserialize_checked``
(the restricted unpickler, or skops for a zip) -> ``validate_model``. Each of those may refuse
with a :class:`~safeload.SafeloadError`; anything else (another exception, a native crash, a
hang past ``-timeout``, memory past ``-rss_limit_mb``) is a finding, which libFuzzer reports and
saves as ``crash-*``/``timeout-*``/``oom-*``.

Run: ``python -m tests.fuzzing.fuzz_gate CORPUS_DIR -max_total_time=60`` (the corpus is seeded
with real small artifacts from :mod:`tests.fuzzing.seeds` if empty); ``tests/test_fuzzing.py``
does this for a bounded time in CI.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["safeload"]):
    from safeload import _unpickle
    from safeload.errors import SafeloadError
    from safeload.policy import TypePolicy
    from safeload.typegate import check_types, scan_bytes
    from safeload.validation import validate_model

POLICY = TypePolicy.default()
# Self-test only (tests/test_fuzzing.py): fail on the first input the scan accepts, to show a
# failure is reported ("exception": a stray Python error; "segfault": a native crash).
CANARY = os.environ.get("SAFELOAD_FUZZ_CANARY", "")


def test_one_input(data: bytes) -> None:
    """One model file through the gate: a clean verdict or a SafeloadError, nothing else."""
    report = scan_bytes(data, policy=POLICY)  # documented never to raise
    if not report.safe:
        return
    if CANARY == "exception":
        raise RuntimeError("canary: a stray exception must be reported")
    if CANARY == "segfault":
        ctypes.string_at(0)
    try:
        checked = check_types(data, POLICY)  # the same verdict, now with its payload
        model = _unpickle.deserialize_checked(checked, POLICY)
        validate_model(model, deadline=checked.deadline)
    except SafeloadError:
        return


def main() -> None:
    """libFuzzer's command line; an empty (or missing) first corpus directory gets the seeds."""
    corpora = [a for a in sys.argv[1:] if not a.startswith("-")]
    if corpora and Path(corpora[0]).is_dir() and not any(Path(corpora[0]).iterdir()):
        from tests.fuzzing.seeds import write_seeds

        write_seeds(Path(corpora[0]))
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
