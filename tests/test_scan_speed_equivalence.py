"""The scanner's inline fast paths decide exactly what the scanner decided before them.

Over real models at protocols 0-5 and 3,000 seeded broken variants of them (see
``tests/scan_equivalence.py``), every verdict, problem, name and fast-path position must match
the golden digests recorded with the scanner before its main loop ran opcodes inline.
"""

from __future__ import annotations

import json

from tests import scan_equivalence as eq


def test_scan_reports_match_the_scanner_before_the_fast_paths() -> None:
    golden = json.loads(eq.FIXTURE.read_text())
    streams = eq.bases()
    assert sorted(streams) == sorted(golden["bases"])
    # The recorded streams are the ones the digests were computed from.
    assert {k: eq.fingerprint(data) for k, data in streams.items()} == golden["bases"]
    differ = []
    total = 0
    for key, data in streams.items():
        expected = golden["digests"][key].split()
        cases = [("base", data), *eq.variants(key, data)]
        assert len(cases) == len(expected)
        for i, ((kind, variant), want) in enumerate(zip(cases, expected, strict=True)):
            total += 1
            if eq.digest(variant) != want:
                differ.append(f"{key} #{i} ({kind})")
    assert total == 3060
    assert not differ, f"{len(differ)} scan report(s) changed: {differ[:10]}"


def test_the_variants_reach_far_into_the_scanner() -> None:
    """The golden set is not 3,000 copies of one refusal: safe, unsafe, and many kinds of each."""
    golden = json.loads(eq.FIXTURE.read_text())
    found = [d for line in golden["digests"].values() for d in line.split()]
    assert len(set(found)) > 1500
    data = eq.bases()["forest-joblib-4"]
    from safeload.policy import TypePolicy
    from safeload.typegate import scan_payload

    verdicts = [
        scan_payload(v, policy=TypePolicy.default()).safe
        for _, v in eq.variants("forest-joblib-4", data)
    ]
    assert any(verdicts) and not all(verdicts)
