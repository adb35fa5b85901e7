"""The forecaster's intervals on data they were not calibrated on: new vs previous calibration.

Backtests the forecaster (``pipeline.forecasting.backtest.backtest``, as ``fmcg forecast
backtest`` runs it) on two real datasets and scores its 80 % and 95 % intervals: coverage
overall and in each third of series by mean sales, the scaled pinball loss at their
quantiles (``evaluate.score``), and RMSSE of the point forecast.

* M5 subset (944 series): the standard cutoff 2016-04-24 and the three 28-day windows
  before it, with ``benchmarks/m5_calendar.yaml``.
* 1C "Predict Future Sales" subset (very intermittent daily shop x item sales): every
  series densified from its first day to the data's last (a day without a row sold 0),
  the series with a year of history and 100 sale days before the cutoff (the README's
  "sensible" ones), at several 28-day cutoffs; no calendar.

Both calibrations are scored on the same fit: the run uses the default
(``interval_method="adaptive"``) and keeps the calibration errors it was given, from which
the previous calibration (``"binned"``) is fitted too; the point forecast is the same.
PFS runs first (``--pfs-cutoffs``, ``--m5-cutoffs`` choose the windows); the JSON is
rewritten after every window. ``--quick`` runs one window of each. Data missing: that
dataset is skipped.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import Figure, add_arguments, write_json

from pipeline.forecasting import forecaster
from pipeline.forecasting.backtest import backtest
from pipeline.forecasting.calendar import CalendarSpec
from pipeline.forecasting.conformal import Conformal
from pipeline.forecasting.evaluate import coverage_by_third, score
from pipeline.forecasting.series import to_matrix

ROOT = Path(__file__).resolve().parents[1]
M5 = ROOT / "../shared/data/m5_subset/m5_subset_944.parquet"
PFS = ROOT / "../shared/data/predict_future_sales_1c/predict_future_sales_1c_subset.parquet"
CALENDAR = ROOT / "benchmarks/m5_calendar.yaml"
M5_CUTOFF = pd.Timestamp("2016-04-24")
PFS_CUTOFFS = ("2015-09-02", "2015-06-10", "2015-03-18", "2014-12-03")
HORIZON = 28
LEVELS = (0.8, 0.95)


def read_pfs(path: Path) -> pd.DataFrame:
    """The PFS rows summed per (series, day), densified with zeros to the data's last day."""
    raw = pd.read_parquet(path, columns=["id", "item_id", "store_id", "date", "sales"])
    raw["date"] = pd.to_datetime(raw["date"])
    sales = raw.groupby(["id", "date"])["sales"].sum()
    first = raw.groupby("id")["date"].min()
    end = raw["date"].max()
    days = ((end - first).dt.days + 1).to_numpy()
    ids = np.repeat(first.index.to_numpy(), days)
    offsets = np.arange(days.sum()) - np.repeat(np.cumsum(days) - days, days)
    dates = np.repeat(first.to_numpy(), days) + pd.to_timedelta(offsets, unit="D")
    dense = pd.DataFrame({"id": ids, "date": dates})
    index = pd.MultiIndex.from_frame(dense)
    dense["sales"] = sales.reindex(index).fillna(0.0).to_numpy()
    keys = raw.drop_duplicates("id").set_index("id")[["item_id", "store_id"]]
    return dense.join(keys, on="id")


def sensible(data: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """The series with at least a year since their first day and 100 sale days by
    ``cutoff``."""
    seen = data[data["date"] <= cutoff]
    stats = seen.groupby("id").agg(first=("date", "min"), sold=("sales", lambda s: (s > 0).sum()))
    keep = stats.index[((cutoff - stats["first"]).dt.days >= 365) & (stats["sold"] >= 100)]
    return data[data["id"].isin(keep)]


def _scores(history: Any, actual: Any, point: Any, intervals: dict[float, Any]) -> dict[str, Any]:
    s = score(history, actual, point, intervals)
    return {
        "coverage_80": round(float(s.coverage_80 or 0), 4),
        "coverage_95": round(float(s.coverage_95 or 0), 4),
        "coverage_by_third_of_mean_sales": coverage_by_third(history, actual, intervals),
        "pinball_80": round(float(s.pinball_80 or 0), 4),
        "pinball_95": round(float(s.pinball_95 or 0), 4),
        "pinball": round(float(s.pinball or 0), 4),
        "rmsse": round(s.rmsse, 4),
    }


def window(
    data: pd.DataFrame, cutoff: pd.Timestamp, calendar: CalendarSpec | None
) -> dict[str, Any]:
    """Both calibrations scored on the 28 days after ``cutoff``."""
    kept: list[Any] = []
    calibrate = forecaster.calibrate

    def keeping(parts: Any, config: Any) -> Any:
        kept[:] = [parts]
        return calibrate(parts, config)

    forecaster.calibrate = keeping  # the run's calibration errors, to fit "binned" on too
    try:
        started = time.perf_counter()
        result = backtest(data, cutoff=cutoff, horizon=HORIZON, calendar=calendar)
        seconds = time.perf_counter() - started
    finally:
        forecaster.calibrate = calibrate
    train = data[data["date"] <= cutoff]
    matrix = to_matrix(train, keys=["id"], value="sales", end=cutoff)
    days = matrix.horizon_dates(HORIZON)
    actual = (
        data[data["date"].isin(days)]
        .pivot_table(index="id", columns="date", values="sales", aggfunc="sum")
        .reindex(index=matrix.keys["id"], columns=days)
        .to_numpy(dtype=float)
    )
    shape = actual.shape
    p = result.predictions
    point = p["forecast_val"].to_numpy().reshape(shape)
    adaptive = {
        0.8: (
            p["confidence_lower"].to_numpy().reshape(shape),
            p["confidence_upper"].to_numpy().reshape(shape),
        ),
        0.95: (p["lower_95"].to_numpy().reshape(shape), p["upper_95"].to_numpy().reshape(shape)),
    }
    parts = kept[0]
    table = Conformal.fit(
        np.concatenate([x[0] for x in parts]),
        np.concatenate([x[1] for x in parts]),
        LEVELS,
        method="binned",
    )
    # Planned closures are published as 0 / 0 / 0 whatever the calibration.
    closed = (point == 0) & (adaptive[0.95][1] == 0)
    binned = {
        level: (np.where(closed, 0.0, lo), np.where(closed, 0.0, hi))
        for level, (lo, hi) in table.intervals(point).items()
    }
    new = _scores(matrix.values, actual, point, adaptive)
    return {
        "cutoff": cutoff.date().isoformat(),
        "series": shape[0],
        "adaptive": new,
        "binned": _scores(matrix.values, actual, point, binned),
        "rmsse_summary": round(result.summary["models"]["forecaster"]["rmsse"], 4),
        "backtest_seconds": round(seconds, 1),
    }


def _line(name: str, w: dict[str, Any]) -> str:
    def fmt(s: dict[str, Any]) -> str:
        thirds = s["coverage_by_third_of_mean_sales"]
        return (
            f"80 % {100 * s['coverage_80']:.1f} "
            f"[{'/'.join(f'{100 * c:.1f}' for c in thirds['80'])}]  "
            f"95 % {100 * s['coverage_95']:.1f} "
            f"[{'/'.join(f'{100 * c:.1f}' for c in thirds['95'])}]  "
            f"pinball {s['pinball_80']:.4f}/{s['pinball_95']:.4f}"
        )

    return (
        f"{name} {w['cutoff']} ({w['series']} series, RMSSE {w['adaptive']['rmsse']:.4f})\n"
        f"  binned   {fmt(w['binned'])}\n  adaptive {fmt(w['adaptive'])}"
    )


def _figures(
    name: str, windows: list[dict[str, Any]], overall: float, third: float
) -> list[Figure]:
    figures = []
    for w in windows:
        for level in ("80", "95"):
            nominal = int(level) / 100
            for method in ("adaptive", "binned"):
                s = w[method]
                goal = f"{nominal - overall:.2f}..{nominal + overall:.2f}"
                figures.append(
                    Figure(
                        f"{name} {w['cutoff']} {level} % coverage, {method}",
                        s[f"coverage_{level}"],
                        goal=goal if method == "adaptive" else None,
                    )
                )
            if third:
                for k, c in enumerate(w["adaptive"]["coverage_by_third_of_mean_sales"][level]):
                    figures.append(
                        Figure(
                            f"{name} {w['cutoff']} {level} % coverage, third {k + 1}, adaptive",
                            c,
                            goal=f"{nominal - third:.2f}..{nominal + third:.2f}",
                        )
                    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--m5", type=Path, default=M5.resolve())
    parser.add_argument("--pfs", type=Path, default=PFS.resolve())
    parser.add_argument(
        "--m5-cutoffs",
        nargs="*",
        default=[(M5_CUTOFF - pd.Timedelta(days=HORIZON * k)).date().isoformat() for k in range(4)],
    )
    parser.add_argument("--pfs-cutoffs", nargs="*", default=list(PFS_CUTOFFS))
    add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.m5_cutoffs, args.pfs_cutoffs = args.m5_cutoffs[:1], args.pfs_cutoffs[:1]

    details: dict[str, Any] = {"m5": [], "pfs": []}

    def record() -> dict[str, Any]:
        # Written after every window: a run cut short keeps what it measured.
        figures = _figures("M5", details["m5"], 0.02, 0.04) + _figures(
            "PFS", details["pfs"], 0.03, 0.0
        )
        return write_json(
            args.json, "interval_calibration", figures, quick=args.quick, details=details
        )

    datasets = []
    if args.pfs.is_file():
        datasets.append(("pfs", args.pfs, args.pfs_cutoffs))
    else:
        print(f"PFS subset not found at {args.pfs}: skipped")
    if args.m5.is_file():
        datasets.append(("m5", args.m5, args.m5_cutoffs))
    else:
        print(f"M5 subset not found at {args.m5}: skipped")
    for name, path, cutoffs in datasets:
        if name == "m5":
            data = pd.read_parquet(path, columns=["id", "date", "sales", "store_id", "item_id"])
            data["date"] = pd.to_datetime(data["date"])
            calendar: CalendarSpec | None = CalendarSpec.read(CALENDAR.read_text())
        else:
            data, calendar = read_pfs(path), None
        for cutoff in cutoffs:
            cut = pd.Timestamp(cutoff)
            w = window(data if name == "m5" else sensible(data, cut), cut, calendar)
            print(_line(name.upper(), w), flush=True)
            details[name].append(w)
            latest = record()
    if args.json is None and datasets:
        print(json.dumps(latest["figures"], indent=1))


if __name__ == "__main__":
    main()
