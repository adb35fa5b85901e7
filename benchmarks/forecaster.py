"""Forecaster vs statsforecast AutoETS on the M5 subset, same run, same protocol.

Prints mean RMSSE (ours, AutoETS, seasonal naive, mean of last 28), the ratios, interval
coverage and the fit time per series of both. AutoETS runs on all 944 series by default
(``n_jobs=2``: statsforecast fits the series in 2 worker processes; ~2 min on 2 idle
cores, CPU time printed too since the cores are often shared). ``--autoets-series N`` makes
a short run: AutoETS then fits N random series, its accuracy is compared on those and its
time is scaled per series. Needs the ``bench`` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.forecasting.backtest import backtest
from pipeline.forecasting.evaluate import rmsse
from pipeline.forecasting.series import to_matrix

DATA = Path(__file__).resolve().parents[1] / "../shared/data/m5_subset/m5_subset_944.parquet"
CUTOFF = pd.Timestamp("2016-04-24")
HORIZON = 28


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (statsforecast's workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def autoets(train: pd.DataFrame, ids: list[str], n_jobs: int) -> tuple[pd.DataFrame, float, float]:
    """AutoETS(season_length=7) forecasts of ``ids``, its wall and CPU seconds."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    frame = train[train["id"].isin(ids)].rename(
        columns={"id": "unique_id", "date": "ds", "sales": "y"}
    )
    model = StatsForecast(models=[AutoETS(season_length=7)], freq="D", n_jobs=n_jobs)
    started, cpu = time.perf_counter(), _cpu_seconds()
    predicted = model.forecast(df=frame, h=HORIZON)
    return predicted, time.perf_counter() - started, _cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA.resolve())
    parser.add_argument(
        "--autoets-series", type=int, default=944, help="fewer for a short run (default: all)"
    )
    parser.add_argument("--n-jobs", type=int, default=2, help="statsforecast worker processes")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"M5 subset not found at {args.data} (../shared/data/m5_subset/)")

    data = pd.read_parquet(args.data, columns=["id", "date", "sales"])
    data["date"] = pd.to_datetime(data["date"])
    started = time.perf_counter()
    result = backtest(data, cutoff=CUTOFF, horizon=HORIZON)
    total_seconds = time.perf_counter() - started
    ours = result.summary["models"]
    series = result.summary["series"]
    fit_seconds = result.summary["fit_seconds"]

    train = data[data["date"] <= CUTOFF]
    matrix = to_matrix(train, keys=["id"], value="sales", end=CUTOFF)
    all_ids = list(matrix.keys["id"])
    rng = np.random.default_rng(0)
    chosen = sorted(rng.choice(all_ids, size=min(args.autoets_series, len(all_ids)), replace=False))
    predicted, ets_seconds, ets_cpu_seconds = autoets(train, chosen, args.n_jobs)
    position = {series_id: row for row, series_id in enumerate(all_ids)}
    rows = [position[i] for i in chosen]
    days = matrix.horizon_dates(HORIZON)
    test = data[data["date"].isin(days)].pivot_table(index="id", columns="date", values="sales")
    actual = test.reindex(index=chosen, columns=days).to_numpy(dtype=float)
    ets = (
        predicted.pivot_table(index="unique_id", columns="ds", values="AutoETS")
        .reindex(index=chosen, columns=days)
        .to_numpy(dtype=float)
    )
    ours_pred = result.predictions.pivot_table(index="id", columns="date", values="forecast_val")
    ours_pred.columns = pd.to_datetime(ours_pred.columns)
    ours_sub = ours_pred.reindex(index=chosen, columns=days).to_numpy(dtype=float)
    history = matrix.values[rows]
    ets_rmsse = float(np.nanmean(rmsse(history, actual, ets)))
    ours_rmsse_sub = float(np.nanmean(rmsse(history, actual, ours_sub)))

    per_series_ours = fit_seconds / series
    per_series_ets = ets_seconds / len(chosen)
    figures = {
        "cpu_count": os.cpu_count(),
        "series": series,
        "rmsse": {name: round(score["rmsse"], 4) for name, score in ours.items()},
        "autoets_series": len(chosen),
        "rmsse_on_autoets_series": {
            "forecaster": round(ours_rmsse_sub, 4),
            "autoets": round(ets_rmsse, 4),
        },
        "ratio_vs_autoets": round(ours_rmsse_sub / ets_rmsse, 4),
        "ratio_vs_seasonal_naive": round(
            ours["forecaster"]["rmsse"] / ours["seasonal_naive"]["rmsse"], 4
        ),
        "coverage_80": round(ours["forecaster"]["coverage_80"], 4),
        "coverage_95": round(ours["forecaster"]["coverage_95"], 4),
        "pinball": round(ours["forecaster"]["pinball"], 4),
        "bias_pct": round(ours["forecaster"]["bias_pct"], 2),
        "forecaster_fit_seconds_all_series": round(fit_seconds, 2),
        "backtest_seconds_incl_scoring": round(total_seconds, 2),
        "autoets_n_jobs": args.n_jobs,
        "autoets_seconds": round(ets_seconds, 2),
        "autoets_cpu_seconds": round(ets_cpu_seconds, 2),
        "speedup_per_series": round(per_series_ets / per_series_ours, 1),
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
