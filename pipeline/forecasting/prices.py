"""Relative price: what a promotion looks like to the forecaster.

A price means little on its own (a 2.99 yoghurt and a 29.99 wine); a price *cut* moves
demand. So the covariate is the day's mean selling price over the series' regular price,
the highest price of the last ``REGULAR_WINDOW`` days (a promotion lowers the price for a
while and the regular one comes back; the highest recent price is the shelf price). A day
without a sale has no selling price: the shelf price is taken to be unchanged since the
last sale. Future days are at the regular price unless a planned promotion says otherwise.

Planned promotions (``s3://<curated>/reference/promotions/*.csv`` or ``.parquet``, optional)
have the columns ``sku_id``, ``location_id`` (empty: every location), ``start_date``,
``end_date`` (inclusive) and ``unit_price``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipeline.errors import ConfigurationError
from pipeline.lake.reference import read_table, reference_objects

if TYPE_CHECKING:
    from pipeline.forecasting.series import SeriesMatrix
    from pipeline.lake.reference import ObjectReader

Matrix = npt.NDArray[np.float64]

REGULAR_WINDOW = 28
PROMOTIONS_PREFIX = "reference/promotions/"
PROMOTION_COLUMNS = ("sku_id", "location_id", "start_date", "end_date", "unit_price")


def price_matrix(
    frame: pd.DataFrame, matrix: SeriesMatrix, *, keys: list[str], price: str = "avg_unit_price"
) -> Matrix:
    """The ``price`` column of ``frame`` on ``matrix``'s series x days (NaN: no sale)."""
    out = np.full(matrix.values.shape, np.nan)
    if price not in frame.columns or frame.empty:
        return out
    data = frame[[*keys, "date", price]].dropna(subset=[price])
    row = pd.MultiIndex.from_frame(matrix.keys[keys]).get_indexer(
        pd.MultiIndex.from_frame(data[keys])
    )
    column = (pd.to_datetime(data["date"]) - matrix.start).dt.days.to_numpy()
    days = matrix.values.shape[1]
    inside = (row >= 0) & (column >= 0) & (column < days)
    out[row[inside], column[inside]] = data[price].to_numpy(dtype=np.float64)[inside]
    return out


def relative_prices(prices: Matrix, planned: Matrix) -> Matrix:
    """Price over regular price, ``(series, days + horizon)``, from the history's selling
    prices ``(series, days)`` and the planned prices of the horizon ``(series, horizon)``
    (NaN: no promotion planned, the regular price)."""
    filled = pd.DataFrame(prices.T).ffill().to_numpy().T
    regular = pd.DataFrame(filled.T).rolling(REGULAR_WINDOW, min_periods=1).max().to_numpy().T
    with np.errstate(invalid="ignore", divide="ignore"):
        history = filled / regular
        future = np.where(np.isfinite(planned), planned / regular[:, -1:], 1.0)
    # A series that never had a price has no regular price either: unknown throughout.
    future = np.where(np.isfinite(regular[:, -1:]), future, np.nan)
    return np.asarray(np.concatenate([history, future], axis=1), dtype=np.float64)


def price_covariate(prices: Matrix, planned: Matrix) -> Matrix | None:
    """The relative prices the forecaster is given (:func:`relative_prices` of the history's
    selling prices and the horizon's planned ones), ``None`` when no series has a price:
    what the forecast job and ``fmcg forecast backtest`` pass alike."""
    if not np.isfinite(prices).any():
        return None
    return relative_prices(prices, planned)


def load_promotions(store: ObjectReader, curated_bucket: str) -> pd.DataFrame:
    """Every planned promotion under ``reference/promotions/`` (key order; none without)."""
    frames = [
        read_table(
            source, key, data, strings=("sku_id", "location_id"), what="planned promotions"
        ).to_pandas()
        for source, key, data in reference_objects(
            store, curated_bucket, PROMOTIONS_PREFIX, (".csv", ".parquet")
        )
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def planned_prices(promotions: pd.DataFrame, matrix: SeriesMatrix, horizon: int) -> Matrix:
    """The planned prices of ``matrix``'s series over the ``horizon`` days after it
    (NaN: none planned). A promotion without a location applies at every location."""
    out = np.full((matrix.values.shape[0], horizon), np.nan)
    if promotions.empty:
        return out
    missing = [c for c in PROMOTION_COLUMNS if c not in promotions.columns]
    if missing:
        raise ConfigurationError(
            f"planned promotions lack columns: {', '.join(missing)} "
            f"(expected {', '.join(PROMOTION_COLUMNS)})"
        )
    days = matrix.horizon_dates(horizon)
    sku = matrix.keys["sku_id"].astype(str).to_numpy()
    location = matrix.keys["location_id"].astype(str).to_numpy()
    for record in promotions[list(PROMOTION_COLUMNS)].to_dict("records"):
        start, end = pd.Timestamp(record["start_date"]), pd.Timestamp(record["end_date"])
        price = float(record["unit_price"])
        if not (np.isfinite(price) and price > 0) or end < start:
            raise ConfigurationError(
                f"planned promotion of {record['sku_id']} from {start.date()} to "
                f"{end.date()}: needs a positive unit_price and end_date on or after start_date"
            )
        series = sku == str(record["sku_id"])
        if isinstance(record["location_id"], str) and record["location_id"]:
            series &= location == record["location_id"]
        on = (days >= start) & (days <= end)
        out[np.ix_(series, on)] = price
    return out
