"""The drift chart of the retrain-or-reload guide: a month of daily batches against one model.

A churn model is trained and saved with ``training_data`` (the guide's example), then scored
on 30 daily batches of 1,500 rows: ``income`` stays put, the customers' ``age`` creeps up from
day 10, and from day 20 a new ``enterprise`` plan appears. Each day's
``LoadedArtifact.check_drift`` gives the PSI per feature; the chart draws them against the
``watch`` and ``shifted`` thresholds, so the reader sees where the alarm would fire.

Usage:

    python benchmarks/chart_drift.py --svg docs/img/drift-report.svg
    python benchmarks/chart_drift.py --smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from charts import save_svg, write_outputs
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import safeload
from safeload.drift import THRESHOLDS


def churn(n: int, seed: int, age_shift: float = 0.0, enterprise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plans = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]).astype(object)
    plans[rng.random(n) < enterprise] = "enterprise"
    return pd.DataFrame(
        {
            "age": (rng.integers(18, 80, n) + age_shift).astype(int),
            "income": rng.normal(50_000, 10_000, n).round(2),
            "plan": plans,
        }
    )


def daily_reports(days: int, rows: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        X = churn(5000, 0)
        X["plan"] = X["plan"].astype("category")
        y = (X["income"] > 50_000) & (X["age"] < 50)
        model = make_pipeline(
            make_column_transformer(
                (OneHotEncoder(handle_unknown="ignore"), ["plan"]), remainder=StandardScaler()
            ),
            LogisticRegression(max_iter=500),
        ).fit(X, y)
        key = safeload.generate_key()
        key.save(Path(folder) / "keys" / "trainer")
        path = safeload.save(model, Path(folder) / "churn" / "1.0.0", key=key, training_data=X)
        artifact = safeload.load_checked(path, trusted=Path(folder) / "keys")
        out = []
        for day in range(1, days + 1):
            shift = max(0, day - 10) * 1.0
            share = 0.02 * max(0, day - 19)
            report = artifact.check_drift(churn(rows, day, shift, share))
            out.append(
                {
                    "day": day,
                    "verdict": report.verdict,
                    "psi": {f.name: f.psi for f in report.features},
                    "out_of_range": {
                        f.name: f.out_of_range
                        for f in report.features
                        if f.out_of_range is not None
                    },
                    "unseen": {f.name: f.unseen for f in report.features if f.unseen is not None},
                }
            )
        return out


def chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    days = [r["day"] for r in rows]
    for feature, style in (("age", "-o"), ("income", "-s"), ("plan", "-^")):
        top.plot(days, [r["psi"][feature] for r in rows], style, markersize=3, label=feature)
    bottom.plot(days, [r["out_of_range"]["age"] for r in rows], "-o", markersize=3,
                label="age: share out of the training range")  # fmt: skip
    bottom.plot(days, [r["unseen"]["plan"] for r in rows], "-^", markersize=3, color="C2",
                label="plan: share of unseen categories")  # fmt: skip
    first = next((r["day"] for r in rows if r["verdict"] == "shifted"), None)
    for ax, measure, label in ((top, "psi", "PSI"), (bottom, "unseen", "share")):
        watch, shifted = THRESHOLDS[measure]
        ax.axhline(watch, color="#d4a017", linestyle="--", linewidth=1, label=f"watch ({watch})")
        ax.axhline(shifted, color="#c0392b", linestyle="--", linewidth=1,
                   label=f"shifted ({shifted})")  # fmt: skip
        if first is not None:
            ax.axvline(first, color="#c0392b", linewidth=0.8, alpha=0.5)
        ax.set_ylabel(label)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    if first is not None:
        top.annotate(f"verdict shifted from day {first}", (first, THRESHOLDS["psi"][1]),
                     xytext=(4, 8), textcoords="offset points", color="#c0392b")  # fmt: skip
    top.set_yscale("symlog", linthresh=0.1)
    top.set_ylim(bottom=0)
    top.set_title("check_drift day by day: age creeps up from day 10, a new plan from day 20")
    bottom.set_xlabel("day (1,500 rows scored each day)")
    save_svg(fig, path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, help="write the chart here")
    parser.add_argument("--json", type=Path, help="write the daily figures here")
    parser.add_argument("--smoke", action="store_true", help="5 small days, no chart unless --svg")
    args = parser.parse_args(argv)
    rows = daily_reports(5, 300) if args.smoke else daily_reports(30, 1500)
    for row in rows:
        psi = ", ".join(f"{k} {v:.3f}" for k, v in row["psi"].items())
        print(f"day {row['day']:2d}  {row['verdict']:8s} {psi}", file=sys.stderr)
    write_outputs(rows, args.json, args.svg, chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
