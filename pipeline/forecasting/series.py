"""Long tables <-> the series x day matrix the models work on.

Demand on a stockout day is censored (the shelf was empty; demand is unknown, not zero),
so those cells become NaN and no model state learns from them. Days without a row after a
series' first day are zero sales; days before it are NaN (not launched yet).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SeriesMatrix:
    """``values[i, t]``: demand of series ``keys[i]`` on ``start + t`` days (NaN = unknown)."""

    keys: pd.DataFrame
    start: pd.Timestamp
    values: Matrix

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.values.shape[1], freq="D")

    def horizon_dates(self, horizon: int) -> pd.DatetimeIndex:
        return pd.date_range(self.dates[-1] + pd.Timedelta(days=1), periods=horizon, freq="D")


def to_matrix(
    frame: pd.DataFrame,
    *,
    keys: list[str],
    value: str,
    date: str = "date",
    censored: str | None = None,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> SeriesMatrix:
    """Pivot a long table (one row per series and day) into a :class:`SeriesMatrix`.

    The days run from ``start`` (default: the first in ``frame``) through ``end`` (default:
    the last), so that chunks of one dataset pivoted apart share one calendar."""
    data = frame[[*keys, date, value] + ([censored] if censored else [])].copy()
    data[date] = pd.to_datetime(data[date])
    data[value] = data[value].astype("float64")
    if censored:
        data.loc[data[censored].fillna(False).astype(bool), value] = np.nan
    first = data[date].min() if start is None else start
    last = data[date].max() if end is None else end
    grouped = data.groupby(keys, sort=True, observed=True)
    series = grouped.ngroup().to_numpy()
    key_frame = grouped.size().reset_index()[keys]
    days = int((last - first).days) + 1
    column = (data[date] - first).dt.days.to_numpy()
    inside = column < days
    values = np.zeros((len(key_frame), days))
    values[series[inside], column[inside]] = data[value].to_numpy()[inside]
    launch = np.full(len(key_frame), days)
    np.minimum.at(launch, series, column)
    values[np.arange(days)[None, :] < launch[:, None]] = np.nan
    return SeriesMatrix(keys=key_frame, start=pd.Timestamp(first), values=values)
