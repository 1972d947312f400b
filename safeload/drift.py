"""Is today's data still like the training data? A report per feature and a verdict.

The training statistics come from the signed ``safeload.json`` (:mod:`safeload.datastats`);
a batch is counted into the same bins (:class:`DriftAccumulator`, which ``safeload serve`` keeps
running over every input it scores) and compared feature by feature:

* numeric: the population stability index (PSI) over the recorded decile bins, and the share
  of values outside the training ``[min, max]`` (infinities and non-numbers included);
* categorical: when every training category was recorded (no more distinct values than
  :data:`~safeload.datastats.TOP_CATEGORIES`), the share of values never seen in training (a
  few of them named) and the PSI over the known categories' shares; otherwise the PSI over the
  recorded top categories plus one bin for all others (unseen values cannot be told apart);
* both: the rise in the share of missing values; a recorded column absent from the batch.

Each measure has two thresholds (:data:`THRESHOLDS`): below the first is ``stable``, from the
first ``watch``, from the second ``shifted``; a feature takes its worst measure and the report
its worst feature. A missing column is ``shifted``. With fewer than :data:`MIN_ROWS` rows
counted the distributions are too noisy to call a shift: they give at most ``watch``.
Work is bounded: a batch of more than :data:`MAX_BATCH_ROWS` rows is read through a seeded
uniform sample of that many rows.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from safeload import datastats
from safeload.errors import DriftError, OperationalError, shown
from safeload.lineage import columns_of, is_frame, is_sparse

STABLE, WATCH, SHIFTED = "stable", "watch", "shifted"
_ORDER = {STABLE: 0, WATCH: 1, SHIFTED: 2}
THRESHOLDS: Mapping[str, tuple[float, float]] = {
    "psi": (0.1, 0.25),
    "out_of_range": (0.05, 0.2),
    "unseen": (0.05, 0.2),
    "missing_increase": (0.05, 0.2),
}
"""Per measure: (watch from, shifted from). The PSI ones are the customary 0.1 and 0.25."""
EPSILON = 1e-4
"""The share given to an empty bin in the PSI (either side), so that it stays finite."""
MIN_ROWS = 100
MAX_BATCH_ROWS = 1_000_000
MAX_UNSEEN_SHOWN = 10


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """sum((a - e) * ln(a / e)) over bins of shares, each share at least :data:`EPSILON`."""
    e = np.maximum(expected / max(float(expected.sum()), 1.0), EPSILON)
    a = np.maximum(actual / max(float(actual.sum()), 1.0), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def _grade(measure: str, value: float | None) -> str:
    if value is None:
        return STABLE
    watch, shifted = THRESHOLDS[measure]
    return SHIFTED if value >= shifted else WATCH if value >= watch else STABLE


@dataclass
class FeatureDrift:
    """One feature of a :class:`DriftReport`: its measures (None where not applicable)."""

    name: str
    kind: str
    verdict: str
    rows: int = 0
    psi: float | None = None
    out_of_range: float | None = None
    missing: float | None = None
    missing_increase: float | None = None
    unseen: float | None = None
    unseen_values: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (part of ``DriftReport.to_dict``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "verdict": self.verdict,
            "rows": self.rows,
            "psi": self.psi,
            "out_of_range": self.out_of_range,
            "missing": self.missing,
            "missing_increase": self.missing_increase,
            "unseen": self.unseen,
            "unseen_values": list(self.unseen_values),
            "reasons": list(self.reasons),
        }


@dataclass
class DriftReport:
    """What :meth:`LoadedArtifact.check_drift` returns: a verdict and a report per feature.

    ``verdict`` is ``stable``, ``watch`` or ``shifted`` (module :mod:`safeload.drift` says how
    it is reached); ``missing_columns`` are recorded features the data lacks; ``unchecked``
    counts columns with no recorded statistics (beyond the recorded bound, or of another kind).
    """

    verdict: str
    rows: int
    features: list[FeatureDrift]
    missing_columns: list[str] = field(default_factory=list)
    unchecked: int = 0
    sampled: bool = False

    @property
    def shifted_features(self) -> list[str]:
        """Names of the features whose verdict is ``shifted`` (missing columns included)."""
        return [f.name for f in self.features if f.verdict == SHIFTED]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, stable keys (``safeload drift --json`` and the serve route)."""
        return {
            "verdict": self.verdict,
            "rows": self.rows,
            "sampled": self.sampled,
            "shifted_features": self.shifted_features,
            "missing_columns": list(self.missing_columns),
            "unchecked": self.unchecked,
            "thresholds": {k: list(v) for k, v in THRESHOLDS.items()},
            "min_rows": MIN_ROWS,
            "features": [f.to_dict() for f in self.features],
        }


class _Numeric:
    """Counts of one numeric feature: per recorded bin, missing, out of range."""

    def __init__(self, stats: Mapping[str, Any]) -> None:
        self.stats = stats
        quantiles = stats.get("quantiles")
        self.edges = datastats.bin_edges(quantiles) if quantiles else None
        self.bins = np.zeros(0 if self.edges is None else len(self.edges) + 1, dtype=np.int64)
        self.rows = self.missing = self.outside = 0

    def add(self, column: Any, rows: np.ndarray | None) -> None:
        values, _ = datastats.numeric_values(column, rows)
        nan = np.isnan(values)
        self.rows += len(values)
        self.missing += int(nan.sum())
        present = values[~nan]
        low, high = self.stats.get("min"), self.stats.get("max")
        if low is not None and high is not None:
            self.outside += int(np.sum((present < low) | (present > high) | ~np.isfinite(present)))
        if self.edges is not None:
            finite = present[np.isfinite(present)]
            counted = np.bincount(datastats.bin_index(self.edges, finite), minlength=len(self.bins))
            self.bins += counted[: len(self.bins)]

    def report(self, name: str) -> FeatureDrift:
        result = _common(name, datastats.NUMERIC, self.stats, self.rows, self.missing)
        present = self.rows - self.missing
        if present and self.stats.get("min") is not None:
            result.out_of_range = self.outside / present
        if self.edges is not None and present:
            result.psi = psi(np.asarray(self.stats["bin_counts"], dtype=float), self.bins)
        return _judge(result, ("psi", "out_of_range"))


class _Categorical:
    """Counts of one categorical feature: per recorded top category, the others, unseen."""

    def __init__(self, stats: Mapping[str, Any]) -> None:
        self.stats = stats
        self.known = {str(text): i for i, (text, _) in enumerate(stats["top"])}
        # Every training category is known only if none was left out of the top list.
        self.complete = int(stats.get("other", 0)) == 0
        self.counts = np.zeros(len(self.known) + 1, dtype=np.int64)
        self.rows = self.missing = self.unseen = 0
        self.unseen_values: dict[str, None] = {}

    def add(self, column: Any, rows: np.ndarray | None) -> None:
        counts, missing = datastats.category_counts(column, rows)
        self.rows += missing + sum(counts.values())
        self.missing += missing
        other = len(self.known)
        for text, count in counts.items():
            index = self.known.get(text, other)
            self.counts[index] += count
            if index == other and self.complete:
                self.unseen += count
                if len(self.unseen_values) < MAX_UNSEEN_SHOWN:
                    self.unseen_values[text] = None

    def report(self, name: str) -> FeatureDrift:
        result = _common(name, datastats.CATEGORICAL, self.stats, self.rows, self.missing)
        present = self.rows - self.missing
        if present:
            expected = [count for _, count in self.stats["top"]] + [self.stats.get("other", 0)]
            # With every training category known, values never seen are the unseen measure's,
            # not a PSI bin's: the PSI compares the known categories' shares among themselves.
            bins = len(expected) - 1 if self.complete else len(expected)
            result.psi = psi(np.asarray(expected[:bins], dtype=float), self.counts[:bins])
            if self.complete:
                result.unseen = self.unseen / present
                result.unseen_values = list(self.unseen_values)
        return _judge(result, ("psi", "unseen"))


def _common(
    name: str, kind: str, stats: Mapping[str, Any], rows: int, missing: int
) -> FeatureDrift:
    result = FeatureDrift(name, kind, STABLE, rows=rows)
    if rows:
        result.missing = missing / rows
        trained = int(stats.get("count", 0)) + int(stats.get("missing", 0))
        before = int(stats.get("missing", 0)) / trained if trained else 0.0
        result.missing_increase = max(0.0, result.missing - before)
    return result


def _judge(result: FeatureDrift, measures: tuple[str, ...]) -> FeatureDrift:
    """The feature's verdict: its worst measure, at most ``watch`` on too few rows."""
    worst = STABLE
    for measure in (*measures, "missing_increase"):
        value = getattr(result, measure)
        grade = _grade(measure, value)
        if grade != STABLE:
            result.reasons.append(f"{measure.replace('_', ' ')} {value:.3f}: {grade}")
        worst = max(worst, grade, key=_ORDER.__getitem__)
    if worst == SHIFTED and result.rows < MIN_ROWS:
        result.reasons.append(f"only {result.rows} rows: at most watch below {MIN_ROWS}")
        worst = WATCH
    result.verdict = worst
    return result


class DriftAccumulator:
    """Running counts of the batches seen against one artifact's training statistics.

    Bounded whatever the traffic: a fixed set of counters per recorded feature and at most
    :data:`MAX_UNSEEN_SHOWN` unseen values kept per feature. Thread-safe.
    """

    def __init__(self, stats: Mapping[str, Any]) -> None:
        self._lock = threading.Lock()
        self.rows = 0
        self.sampled = False
        self.missing_columns: dict[str, None] = {}
        self.unchecked = int(stats.get("unrecorded_columns", 0))
        self._features: dict[str, _Numeric | _Categorical] = {}
        self._order: list[str] = []
        for feature in stats.get("features", []):
            kind = feature.get("kind")
            if kind == datastats.NUMERIC:
                self._features[feature["name"]] = _Numeric(feature)
            elif kind == datastats.CATEGORICAL:
                self._features[feature["name"]] = _Categorical(feature)
            else:
                self.unchecked += 1
                continue
            self._order.append(feature["name"])

    def add(self, data: Any) -> None:
        """Count a batch (a DataFrame, or an array matched to the features by position)."""
        if is_sparse(data):
            raise OperationalError("drift is not measured on sparse input")
        rows, columns = columns_of(data)
        by_name = dict(columns) if is_frame(data) else None
        sample = datastats.sample_rows(rows, MAX_BATCH_ROWS)
        with self._lock:
            self.rows += rows if sample is None else len(sample)
            self.sampled = self.sampled or sample is not None
            for position, name in enumerate(self._order):
                if by_name is not None:
                    column = by_name.get(name)
                else:
                    column = columns[position][1] if position < len(columns) else None
                if column is None:
                    self.missing_columns[name] = None
                    continue
                self._features[name].add(column, sample)

    def report(self) -> DriftReport:
        """The report over everything counted so far."""
        with self._lock:
            missing = list(self.missing_columns)
            features = []
            for name in self._order:
                if name in self.missing_columns:
                    lost = FeatureDrift(name, self._features[name].stats["kind"], SHIFTED)
                    lost.reasons.append("column missing from the data")
                    features.append(lost)
                else:
                    features.append(self._features[name].report(name))
            rows, sampled, unchecked = self.rows, self.sampled, self.unchecked
        verdict = max((f.verdict for f in features), key=_ORDER.__getitem__, default=STABLE)
        if rows == 0 and verdict == STABLE:
            verdict = WATCH  # nothing counted yet: no evidence either way
        return DriftReport(verdict, rows, features, missing, unchecked, sampled)


def training_stats_of(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    """The recorded statistics, or an error saying how to record them."""
    stats = metadata.get("training_stats")
    if not isinstance(stats, Mapping):
        raise OperationalError(
            "this artifact records no training statistics: re-save the model with "
            "safeload.save(..., training_data=X_train) to measure drift against it"
        )
    return stats


def check_drift(
    metadata: Mapping[str, Any], data: Any, *, raise_on_shift: bool = False
) -> DriftReport:
    """Compare ``data`` with the statistics of verified ``metadata``; see the module docstring.

    Raises:
        DriftError: ``raise_on_shift`` and the verdict is ``shifted`` (``.report`` holds it).
        OperationalError: the artifact records no training statistics.
    """
    accumulator = DriftAccumulator(training_stats_of(metadata))
    accumulator.add(data)
    report = accumulator.report()
    if raise_on_shift and report.verdict == SHIFTED:
        raise DriftError(
            f"the data has shifted from the training data in {len(report.shifted_features)} "
            f"feature(s): {shown(report.shifted_features)}; check the inputs, or retrain",
            report=report,
        )
    return report
