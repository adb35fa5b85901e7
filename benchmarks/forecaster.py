"""Forecaster vs statsforecast AutoETS and seasonal naive on the M5 subset, four windows.

The M5 protocol at the standard cutoff (train through 2016-04-24, score the next 28 days)
and at the three 28-day windows before it, every model run on the same windows in the same
run. Per window: mean RMSSE and MASE, bias, the scaled pinball loss at the 80 % and 95 %
intervals' quantiles, and their coverage overall and by thirds of series ranked by mean
sales; the forecaster's RMSSE as a ratio to AutoETS's. The forecaster runs exactly as the
Glue job does (same code and settings), with the M5 stores' states and SNAP days declared in
``benchmarks/m5_calendar.yaml`` as a retailer would declare its own.

AutoETS (season_length=7, its own 80 % / 95 % intervals) fits every series of each window
with ``n_jobs=2`` (about 2.5 min per window on 2 idle cores; CPU time printed too, as the
cores are often shared); a series too short for it takes seasonal naive, as statsforecast's
``fallback_model`` does. ``--windows 1`` (or ``--quick``) makes a short run. Needs the
``bench`` extra: pip install -e '.[bench]'.

With the subset's prices (``m5_subset_944_prices.parquet``, joined on id and date as the
backtest's ``price`` column; M5's shelf prices are known in advance, so every horizon day's
price is a planned price), the forecaster runs twice per window, with and without them
(``fmcg forecast backtest`` and ``--no-prices``), so the two are compared on the same
windows in the same run. ``--no-autoets`` leaves AutoETS out (a quick with/without run).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import Figure, add_arguments, write_json

from pipeline.forecasting.backtest import backtest
from pipeline.forecasting.calendar import CalendarSpec
from pipeline.forecasting.evaluate import coverage_by_third, score
from pipeline.forecasting.models import seasonal_naive
from pipeline.forecasting.series import to_matrix

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "../shared/data/m5_subset/m5_subset_944.parquet"
PRICES = ROOT / "../shared/data/m5_subset/m5_subset_944_prices.parquet"
CALENDAR = ROOT / "benchmarks/m5_calendar.yaml"
CUTOFF = pd.Timestamp("2016-04-24")
HORIZON = 28


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (statsforecast's workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def autoets(train: pd.DataFrame, n_jobs: int) -> tuple[pd.DataFrame, float, float]:
    """AutoETS(season_length=7) forecasts with 80/95 % intervals, wall and CPU seconds."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, SeasonalNaive

    frame = train[["id", "date", "sales"]].rename(
        columns={"id": "unique_id", "date": "ds", "sales": "y"}
    )
    model = StatsForecast(
        models=[AutoETS(season_length=7)],
        freq="D",
        n_jobs=n_jobs,
        fallback_model=SeasonalNaive(season_length=7),
    )
    started, cpu = time.perf_counter(), _cpu_seconds()
    predicted = model.forecast(df=frame, h=HORIZON, level=[80, 95])
    return predicted, time.perf_counter() - started, _cpu_seconds() - cpu


def _wide(frame: pd.DataFrame, column: str, ids: pd.Index, days: pd.DatetimeIndex) -> Any:
    table = frame.pivot_table(index="unique_id", columns="ds", values=column)
    return table.reindex(index=ids, columns=days).to_numpy(dtype=float)


def _filled(values: Any, fallback: Any) -> Any:
    return np.where(np.isfinite(values), values, fallback)


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def _point(predictions: pd.DataFrame, ids: pd.Index, days: pd.DatetimeIndex) -> Any:
    frame = predictions.rename(columns={"id": "unique_id", "date": "ds"})
    frame["ds"] = pd.to_datetime(frame["ds"])
    return _wide(frame, "forecast_val", ids, days)


def window(  # noqa: PLR0914 (one window's every model and figure)
    data: pd.DataFrame,
    cutoff: pd.Timestamp,
    calendar: CalendarSpec,
    n_jobs: int | None,
    cached: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every model scored on the 28 days after ``cutoff`` (AutoETS unless ``n_jobs`` is
    None: then its ``cached`` scores of an earlier run, if any); the forecaster with the
    data's prices (when it has them) and without."""
    started = time.perf_counter()
    result = backtest(data, cutoff=cutoff, horizon=HORIZON, calendar=calendar)
    backtest_seconds = time.perf_counter() - started
    priced = "price" in data.columns
    unpriced = (
        backtest(data, cutoff=cutoff, horizon=HORIZON, calendar=calendar, prices=False)
        if priced
        else None
    )
    train = data[data["date"] <= cutoff]
    matrix = to_matrix(train, keys=["id"], value="sales", end=cutoff)
    ids = pd.Index(matrix.keys["id"])
    days = matrix.horizon_dates(HORIZON)
    history = matrix.values
    actual = (
        data[data["date"].isin(days)]
        .pivot_table(index="id", columns="date", values="sales")
        .reindex(index=ids, columns=days)
        .to_numpy(dtype=float)
    )
    predictions = result.predictions.rename(columns={"id": "unique_id", "date": "ds"})
    predictions["ds"] = pd.to_datetime(predictions["ds"])
    ours = {
        0.8: (
            _wide(predictions, "confidence_lower", ids, days),
            _wide(predictions, "confidence_upper", ids, days),
        ),
        0.95: (
            _wide(predictions, "lower_95", ids, days),
            _wide(predictions, "upper_95", ids, days),
        ),
    }
    point = _wide(predictions, "forecast_val", ids, days)
    naive = seasonal_naive(history, HORIZON)
    scores = {
        "forecaster": score(history, actual, point, ours).as_dict(),
        "seasonal_naive": score(history, actual, naive).as_dict(),
    }
    if unpriced is not None:
        without = _point(unpriced.predictions, ids, days)
        scores["forecaster_without_prices"] = score(history, actual, without).as_dict()
    coverage = {"forecaster": coverage_by_third(history, actual, ours)}
    timing: dict[str, float] = {}
    if n_jobs is not None:
        predicted, ets_seconds, ets_cpu = autoets(train, n_jobs)
        # A series with less than a week of history gets NaN from statsforecast: it takes
        # seasonal naive (and a zero-width interval), so both are scored on the same series.
        ets = _filled(_wide(predicted, "AutoETS", ids, days), naive)
        ets_intervals = {
            level / 100: (
                _filled(np.maximum(_wide(predicted, f"AutoETS-lo-{level}", ids, days), 0.0), naive),
                _filled(_wide(predicted, f"AutoETS-hi-{level}", ids, days), naive),
            )
            for level in (80, 95)
        }
        scores["autoets"] = score(history, actual, ets, ets_intervals).as_dict()
        coverage["autoets"] = coverage_by_third(history, actual, ets_intervals)
        timing = {
            "autoets_seconds": round(ets_seconds, 2),
            "autoets_cpu_seconds": round(ets_cpu, 2),
        }
    elif cached is not None:
        scores["autoets"] = cached
    ratios = {
        f"{name}_rmsse_vs_autoets": round(
            float(scores[name]["rmsse"] or 0) / float(scores["autoets"]["rmsse"] or 1), 4
        )
        for name in ("forecaster", "forecaster_without_prices")
        if name in scores and "autoets" in scores
    }
    return {
        "cutoff": cutoff.date().isoformat(),
        "series": len(ids),
        "prices": result.summary["prices"],
        "models": {name: _rounded(s) for name, s in scores.items()},
        "rmsse_ratio_vs_autoets": ratios.get("forecaster_rmsse_vs_autoets"),
        **ratios,
        "coverage_by_third_of_mean_sales": coverage,
        "forecaster_fit_seconds": result.summary["fit_seconds"],
        # The price costs a second booster: the same backtest without it, for the ratio.
        "forecaster_without_prices_fit_seconds": unpriced and unpriced.summary["fit_seconds"],
        "backtest_seconds_incl_scoring": round(backtest_seconds, 2),
        **timing,
        "chosen_models": result.summary["chosen_models"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DATA.resolve())
    parser.add_argument("--windows", type=int, default=4, help="1 = the standard cutoff only")
    parser.add_argument("--n-jobs", type=int, default=2, help="statsforecast worker processes")
    parser.add_argument(
        "--prices",
        type=Path,
        default=PRICES.resolve(),
        help="the subset's daily prices (id, date, sell_price); without the file, no prices",
    )
    parser.add_argument("--no-autoets", action="store_true", help="leave AutoETS out")
    parser.add_argument(
        "--autoets-from",
        type=Path,
        help="with --no-autoets: AutoETS's scores per window from this earlier result JSON "
        "(same windows and series; the ratios then compare runs, not one run)",
    )
    add_arguments(parser)
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"M5 subset not found at {args.data} (../shared/data/m5_subset/)")

    data = pd.read_parquet(args.data, columns=["id", "date", "sales", "store_id", "item_id"])
    data["date"] = pd.to_datetime(data["date"])
    if args.prices.is_file():
        prices = pd.read_parquet(args.prices, columns=["id", "date", "sell_price"])
        prices["date"] = pd.to_datetime(prices["date"])
        data = data.merge(
            prices.rename(columns={"sell_price": "price"}), on=["id", "date"], how="left"
        )
    else:
        print(f"no prices at {args.prices}: the forecaster runs without them")
    calendar = CalendarSpec.read(CALENDAR.read_text())
    n_jobs = None if args.no_autoets else args.n_jobs
    cached: dict[str, Any] = {}
    if args.no_autoets and args.autoets_from:
        earlier_run = json.loads(args.autoets_from.read_text())
        cached = {
            w["cutoff"]: w["models"]["autoets"]
            for w in earlier_run["details"]["windows"]
            if "autoets" in w["models"]
        }
    cutoffs = [CUTOFF - pd.Timedelta(days=HORIZON * k) for k in range(args.windows)]
    windows = [
        window(data, c, calendar, n_jobs, cached.get(c.date().isoformat()))
        for c in cutoffs[: 1 if args.quick else None]
    ]
    first = windows[0]
    figures = []
    for name, label in (("forecaster", ""), ("forecaster_without_prices", ", without prices")):
        if name not in first["models"]:
            continue
        if "autoets" in first["models"]:
            earlier = [w[f"{name}_rmsse_vs_autoets"] for w in windows[1:]]
            figures += [
                Figure(
                    f"RMSSE at the standard cutoff{label}",
                    first["models"][name]["rmsse"],
                    baseline=first["models"]["autoets"]["rmsse"],
                    goal="<= 0.98",
                    note="ratio: forecaster / AutoETS, same run, same series",
                ),
                Figure(
                    f"RMSSE / AutoETS, mean of the three earlier windows{label}",
                    round(float(np.mean(earlier)), 4) if earlier else float("nan"),
                    "x",
                    goal="<= 0.985",
                ),
            ]
        for w in windows:
            figures.append(Figure(f"{w['cutoff']} RMSSE{label}", w["models"][name]["rmsse"]))
    figures.append(
        Figure(
            "backtest seconds at the standard cutoff (features and training included)",
            first["forecaster_fit_seconds"],
            "s",
            goal="<= 20",
        )
    )
    for w in windows:
        for level in ("80", "95"):
            for k, third in enumerate(w["coverage_by_third_of_mean_sales"]["forecaster"][level]):
                figures.append(
                    Figure(f"{w['cutoff']} {level} % coverage, third {k + 1} by mean sales", third)
                )
    details: dict[str, Any] = {"windows": windows}
    if cached:
        details["autoets_cached_from"] = {
            "file": str(args.autoets_from),
            "measured_at": earlier_run.get("measured_at"),
        }
    record = write_json(args.json, "forecaster", figures, details=details)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
