"""Backtest on any long table in the M5 subset's layout (columns id, date, sales).

The M5 protocol: train on every day up to and including the cutoff (default: the last
``horizon`` days are held out), forecast ``horizon`` days, score against them. Optional
columns give the forecaster what the pipeline gives it: the series' location
(``location_id``, or M5's ``store_id``) for its calendar, and its SKU (``sku_id``, or M5's
``item_id``) for the SKU's trend across locations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.errors import TerminalError
from pipeline.forecasting.evaluate import coverage_by_third, score
from pipeline.forecasting.forecaster import Covariates, ForecasterConfig, forecast
from pipeline.forecasting.job import key_covariates
from pipeline.forecasting.models import moving_average_paths, seasonal_naive
from pipeline.forecasting.series import to_matrix

if TYPE_CHECKING:
    from pipeline.forecasting.calendar import CalendarSpec

INTERVAL_LEVEL = 0.8
REQUIRED_COLUMNS = ("id", "date", "sales")
#: Optional columns, each with the name M5 gives it.
LOCATION_COLUMNS = ("location_id", "store_id")
SKU_COLUMNS = ("sku_id", "item_id")


@dataclass(frozen=True)
class Backtest:
    """Scores per model (JSON-ready) and the forecaster's predictions per series and day."""

    summary: dict[str, Any]
    predictions: pd.DataFrame


def backtest(
    data: pd.DataFrame,
    *,
    cutoff: pd.Timestamp | str | None = None,
    horizon: int = 28,
    calendar: CalendarSpec | None = None,
    config: ForecasterConfig | None = None,
) -> Backtest:
    """Score the forecaster and the baselines (seasonal naive, mean of the last 28 days)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in data.columns]
    if missing:
        raise TerminalError(f"backtest data lacks columns: {', '.join(missing)}")
    frame = data[list(REQUIRED_COLUMNS)].assign(date=pd.to_datetime(data["date"]))
    end = frame["date"].max()
    cut = pd.Timestamp(cutoff) if cutoff is not None else end - pd.Timedelta(days=horizon)
    train = frame[frame["date"] <= cut]
    if train.empty:
        raise TerminalError(f"no training data on or before {cut.date()}")
    matrix = to_matrix(train, keys=["id"], value="sales", end=cut)
    days = matrix.horizon_dates(horizon)
    test = frame[frame["date"].isin(days)].pivot_table(
        index="id", columns="date", values="sales", aggfunc="sum"
    )
    actual = test.reindex(index=matrix.keys["id"], columns=days).to_numpy(dtype=np.float64)
    history = matrix.values

    started = time.perf_counter()
    covariates = series_covariates(data, matrix.keys["id"], matrix.start, calendar)
    result = forecast(history, config or ForecasterConfig(horizon=horizon), covariates)
    seconds = time.perf_counter() - started
    mean_28 = np.repeat(moving_average_paths(history, [28])[0][:, -1:], horizon, axis=1)
    models = {
        "forecaster": score(history, actual, result.point, result.intervals),
        "seasonal_naive": score(history, actual, seasonal_naive(history, horizon)),
        "mean_28": score(history, actual, mean_28),
    }
    lower, upper = result.bounds(INTERVAL_LEVEL)
    lower_95, upper_95 = result.bounds(0.95)
    ids = np.repeat(matrix.keys["id"].to_numpy(), horizon)
    predictions = pd.DataFrame(
        {
            "id": ids,
            "date": np.tile(days.date, len(matrix.keys)),
            "forecast_val": result.point.ravel(),
            "confidence_lower": lower.ravel(),
            "confidence_upper": upper.ravel(),
            "lower_95": lower_95.ravel(),
            "upper_95": upper_95.ravel(),
        }
    )
    summary = {
        "cutoff": cut.date().isoformat(),
        "horizon_days": horizon,
        "series": len(matrix.keys),
        "interval": {
            "confidence_lower_upper_level": INTERVAL_LEVEL,
            "levels_scored": list(result.intervals),
            "method": "rolling-origin conformal, per bin of forecast level",
        },
        "coverage_by_third_of_mean_sales": coverage_by_third(history, actual, result.intervals),
        "fit_seconds": round(seconds, 3),
        "models": {name: s.as_dict() for name, s in models.items()},
        "chosen_models": pd.Series(result.model).value_counts().to_dict(),
    }
    return Backtest(summary=summary, predictions=predictions)


def series_covariates(
    data: pd.DataFrame, ids: pd.Series, start: pd.Timestamp, calendar: CalendarSpec | None
) -> Covariates:
    """The covariates of the series ``ids`` from the optional columns of ``data``, as the
    forecast job makes them (:func:`pipeline.forecasting.job.key_covariates`)."""
    first = data.drop_duplicates("id").set_index("id").reindex(ids)
    keys = pd.DataFrame(index=range(len(ids)))
    for name, columns in (("sku_id", SKU_COLUMNS), ("location_id", LOCATION_COLUMNS)):
        column = next((c for c in columns if c in data.columns), None)
        if column:
            keys[name] = first[column].to_numpy()
    return key_covariates(keys, start, calendar)


def read_backtest_data(path: Path | str) -> pd.DataFrame:
    """Read the Parquet file or dataset (only the columns the backtest needs)."""
    try:
        columns = pq.read_schema(path).names if Path(path).is_file() else []
    except (OSError, ValueError):
        columns = []  # pandas below says what is wrong with the file
    optional = [c for c in (*LOCATION_COLUMNS, *SKU_COLUMNS) if c in columns]
    try:
        return pd.read_parquet(path, columns=[*REQUIRED_COLUMNS, *optional])
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        first = str(e).split("\n", 1)[0]
        raise TerminalError(
            f"cannot read {path} as Parquet with columns {', '.join(REQUIRED_COLUMNS)}: {first}"
        ) from e
