"""Backtest on any long table in the M5 subset's layout (columns id, date, sales).

The M5 protocol: train on every day up to and including the cutoff (default: the last
``horizon`` days are held out), forecast ``horizon`` days, score against them. Optional
columns give the forecaster what the pipeline gives it: the series' location
(``location_id``, or M5's ``store_id``) for its calendar, its SKU (``sku_id``, or M5's
``item_id``) for the SKU's trend across locations, and its prices:

- ``price``, the day's selling price, is read on the history's days as the job reads
  ``daily_demand.avg_unit_price`` (missing: no sale that day, the shelf price unchanged);
- on the horizon's days, the planned prices are those of the rows with ``promotion`` = 1
  when the data has a ``promotion`` column (the job: the planned promotions of
  ``reference/promotions/``), else every ``price`` given for a horizon day (shelf prices
  known in advance, as M5's are). A horizon day without a planned price is at the regular
  price. ``promotion`` on a history day is not read: the job knows past promotions only
  by their price.

Both paths then make the same covariate (:func:`pipeline.forecasting.prices.price_covariate`).

The table is read in batches straight into the series x day matrices (two passes over the
file: which series and days there are, then the values), never as one long frame, so a
backtest of the 30,490 M5-sized series fits in memory as the job does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.errors import TerminalError
from pipeline.forecasting.evaluate import coverage_by_third, score
from pipeline.forecasting.forecaster import ForecasterConfig, forecast
from pipeline.forecasting.job import key_covariates
from pipeline.forecasting.models import seasonal_naive
from pipeline.forecasting.prices import relative_prices

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from pipeline.forecasting.calendar import CalendarSpec

Matrix = npt.NDArray[np.float64]

INTERVAL_LEVEL = 0.8
REQUIRED_COLUMNS = ("id", "date", "sales")
#: Optional columns, each with the name M5 gives it.
LOCATION_COLUMNS = ("location_id", "store_id")
SKU_COLUMNS = ("sku_id", "item_id")
PRICE_COLUMN = "price"
PROMOTION_COLUMN = "promotion"
#: Rows per batch read (a table in memory is cut into batches of this many too).
BATCH_ROWS = 1 << 20
#: Series whose relative prices are computed at once (their temporaries set the peak).
PRICE_CHUNK = 2048
#: A row without a date (days since 1970-01-01 otherwise).
NO_DAY = -(2**62)


@dataclass(frozen=True)
class Backtest:
    """Scores per model (JSON-ready) and the forecaster's predictions per series and day."""

    summary: dict[str, Any]
    predictions: pd.DataFrame


@dataclass(frozen=True)
class BacktestData:
    """A backtest's input, read lazily: a Parquet file or dataset, or a table in memory."""

    batches: Callable[[list[str]], Iterator[pa.RecordBatch]]
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Inputs:
    """The matrices a backtest works on, series sorted by id (as ``to_matrix`` sorts them).

    ``history`` ``(series, days)`` from ``start`` through the cutoff (NaN before a series'
    first row), ``actual`` the horizon's sales ``(series, horizon)`` (NaN: no row), and
    ``relative_price`` the job's price covariate (``None``: no series has a price) over
    the history's days from ``fitted_from`` on (the days the forecaster fits) and the
    horizon's.
    """

    keys: pd.DataFrame
    start: pd.Timestamp
    cutoff: pd.Timestamp
    history: Matrix
    actual: Matrix
    relative_price: Matrix | None
    priced_series: int
    planned_days: int
    fitted_from: int = 0

    def horizon_dates(self) -> pd.DatetimeIndex:
        return pd.date_range(
            self.cutoff + pd.Timedelta(days=1), periods=self.actual.shape[1], freq="D"
        )


def backtest(
    data: pd.DataFrame | BacktestData,
    *,
    cutoff: pd.Timestamp | str | None = None,
    horizon: int = 28,
    calendar: CalendarSpec | None = None,
    config: ForecasterConfig | None = None,
    prices: bool = True,
) -> Backtest:
    """Score the forecaster and the baselines (seasonal naive, mean of the last 28 days).

    ``prices=False`` ignores the ``price`` and ``promotion`` columns (for comparison)."""
    source = data if isinstance(data, BacktestData) else from_frame(data)
    config = config or ForecasterConfig(horizon=horizon)
    started = time.perf_counter()
    inputs = read_inputs(
        source, cutoff=cutoff, horizon=horizon, prices=prices, fit_days=config.fit_days
    )
    history, actual = inputs.history, inputs.actual
    # The forecaster fits the last ``fit_days`` only: given just those (and the covariates
    # from their first day), it forecasts exactly what it would from the whole history.
    fitted = inputs.fitted_from
    covariates = key_covariates(
        inputs.keys, inputs.start + pd.Timedelta(days=fitted), calendar, inputs.relative_price
    )
    result = forecast(history[:, fitted:], config, covariates)
    seconds = time.perf_counter() - started
    del covariates  # the relative prices: series x days
    # The mean of the known values of the last 28 days (0 without one), held flat.
    last = history[:, -28:]
    known = np.isfinite(last).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.where(known > 0, np.nansum(last, axis=1) / known, 0.0)
    mean_28 = np.repeat(level[:, None], horizon, axis=1)
    models = {
        "forecaster": score(history, actual, result.point, result.intervals),
        "seasonal_naive": score(history, actual, seasonal_naive(history, horizon)),
        "mean_28": score(history, actual, mean_28),
    }
    lower, upper = result.bounds(INTERVAL_LEVEL)
    lower_95, upper_95 = result.bounds(0.95)
    ids = np.repeat(inputs.keys["id"].to_numpy(), horizon)
    predictions = pd.DataFrame(
        {
            "id": ids,
            "date": np.tile(inputs.horizon_dates().date, len(inputs.keys)),
            "forecast_val": result.point.ravel(),
            "confidence_lower": lower.ravel(),
            "confidence_upper": upper.ravel(),
            "lower_95": lower_95.ravel(),
            "upper_95": upper_95.ravel(),
        }
    )
    summary = {
        "cutoff": inputs.cutoff.date().isoformat(),
        "horizon_days": horizon,
        "series": len(inputs.keys),
        "prices": {
            "used": inputs.relative_price is not None,
            "series_with_a_price": inputs.priced_series,
            "planned_series_days": inputs.planned_days,
        },
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


def from_frame(data: pd.DataFrame) -> BacktestData:
    """A table in memory as backtest input."""
    missing = [c for c in REQUIRED_COLUMNS if c not in data.columns]
    if missing:
        raise TerminalError(f"backtest data lacks columns: {', '.join(missing)}")
    columns = tuple(c for c in data.columns if isinstance(c, str))

    def batches(names: list[str]) -> Iterator[pa.RecordBatch]:
        for first in range(0, max(len(data), 1), BATCH_ROWS):
            part = data.iloc[first : first + BATCH_ROWS][names]
            yield from pa.Table.from_pandas(part, preserve_index=False).to_batches()

    return BacktestData(batches, columns)


def read_backtest_data(path: Path | str) -> BacktestData:
    """The Parquet file or dataset at ``path``, read lazily (only the columns the backtest
    needs, ``id`` dictionary-encoded)."""
    try:
        dataset = ds.dataset(
            path,
            format=ds.ParquetFileFormat(
                read_options=ds.ParquetReadOptions(dictionary_columns=["id"])
            ),
        )
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise _unreadable(path, e) from e
    columns = tuple(dataset.schema.names)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise TerminalError(f"backtest data lacks columns: {', '.join(missing)}")

    def batches(names: list[str]) -> Iterator[pa.RecordBatch]:
        try:
            # Little read-ahead: the batches in flight, not the table, set the memory.
            yield from dataset.to_batches(
                columns=names, batch_size=BATCH_ROWS, batch_readahead=1, fragment_readahead=1
            )
        except (OSError, ValueError) as e:
            raise _unreadable(path, e) from e

    return BacktestData(batches, columns)


def _unreadable(path: Path | str, e: Exception) -> TerminalError:
    first = str(e).split("\n", 1)[0]
    # The dataset's own preamble says nothing the rest does not.
    first = first[first.find("Could not open") :] if "Could not open" in first else first
    return TerminalError(
        f"cannot read {path} as Parquet with columns {', '.join(REQUIRED_COLUMNS)}: {first}"
    )


class _Ids:
    """Codes of the series ids in the order first seen, across batches."""

    def __init__(self) -> None:
        self.codes: dict[Any, int] = {}

    def encode(self, column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64]:
        """Each row's code (-1: no id)."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if not pa.types.is_dictionary(column.type):
            column = pc.dictionary_encode(column)
        size = len(column.dictionary)
        indices = np.asarray(
            column.indices.fill_null(size).to_numpy(zero_copy_only=False), dtype=np.int64
        )
        # A batch of a Parquet row group shares its dictionary: only the values its rows
        # hold get a code, so that every code has rows.
        used = np.unique(indices[indices < size])
        lookup = np.full(size + 1, -1, dtype=np.int64)
        values = column.dictionary.take(pa.array(used)).to_pylist()
        lookup[used] = [self.codes.setdefault(v, len(self.codes)) for v in values]
        return lookup[indices]


def _days(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """Days since 1970-01-01 of a date column (``NO_DAY``: none)."""
    if pa.types.is_timestamp(column.type) or pa.types.is_date64(column.type):
        column = column.cast(pa.date32())
    if pa.types.is_date32(column.type):
        days = column.cast(pa.int32()).cast(pa.int64()).fill_null(NO_DAY)
        return np.asarray(days.to_numpy(zero_copy_only=False), dtype=np.int64)
    try:
        dates = pd.to_datetime(pd.Series(column.to_pandas()))
    except (ValueError, TypeError) as e:
        raise TerminalError(f"backtest column date must hold dates: {e}") from e
    values = dates.to_numpy().astype("datetime64[D]")
    return np.where(np.isnat(values), NO_DAY, values.astype(np.int64))


def _numbers(batch: pa.RecordBatch, name: str) -> npt.NDArray[np.float64]:
    """A numeric column as float64 (NaN: null); a column of anything else is refused."""
    column = batch.column(name)
    kind = column.type
    if not (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    ):
        text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        raise TerminalError(
            f"backtest column {name} must be numeric, not {'text' if text else kind}"
        )
    return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _row(batch: pa.RecordBatch, days: npt.NDArray[np.int64], at: int) -> str:
    day = np.datetime64(int(days[at]), "D")
    return f"id {batch.column('id')[at].as_py()} on {day}"


def _check_prices(
    batch: pa.RecordBatch,
    days: npt.NDArray[np.int64],
    price: npt.NDArray[np.float64],
    promotion: npt.NDArray[np.float64] | None,
) -> None:
    """A price is positive where given; a promotion is 0 or 1 and, when 1, has a price."""
    bad = ~np.isnan(price) & ~(np.isfinite(price) & (price > 0))
    if bad.any():
        at = int(np.argmax(bad))
        raise TerminalError(
            f"backtest column price must be positive where given: {price[at]} "
            f"({_row(batch, days, at)})"
        )
    if promotion is None:
        return
    bad = ~np.isnan(promotion) & (promotion != 0) & (promotion != 1)
    if bad.any():
        at = int(np.argmax(bad))
        raise TerminalError(
            f"backtest column promotion must be 0 or 1: {promotion[at]:g} ({_row(batch, days, at)})"
        )
    unpriced = (promotion == 1) & np.isnan(price)
    if unpriced.any():
        at = int(np.argmax(unpriced))
        raise TerminalError(
            f"a promotion needs its price: promotion 1 without a price ({_row(batch, days, at)})"
        )


def read_inputs(
    source: BacktestData,
    *,
    cutoff: pd.Timestamp | str | None,
    horizon: int,
    prices: bool = True,
    fit_days: int | None = None,
) -> Inputs:
    """The backtest's matrices from ``source`` in two passes over its batches (the relative
    prices of the last ``fit_days`` history days only, given ``fit_days``)."""
    location = next((c for c in LOCATION_COLUMNS if c in source.columns), None)
    sku = next((c for c in SKU_COLUMNS if c in source.columns), None)
    named = {k: c for k, c in (("sku_id", sku), ("location_id", location)) if c}
    has_price = prices and PRICE_COLUMN in source.columns
    has_promotion = prices and PROMOTION_COLUMN in source.columns
    if has_promotion and not has_price:
        raise TerminalError(
            "backtest column promotion needs a price column: a promotion's price is its "
            "planned price"
        )

    # Pass 1: the series, each one's first day and first SKU and location, the last day.
    ids = _Ids()
    first = np.zeros(0, dtype=np.int64)
    attributes: dict[str, list[Any]] = {k: [] for k in named}
    last_day: int | None = None
    for batch in source.batches(["id", "date", *named.values()]):
        codes, days = ids.encode(batch.column("id")), _days(batch.column("date"))
        if len(ids.codes) > len(first):  # each new series' attributes from its first row
            known = len(first)
            first = np.concatenate([first, np.full(len(ids.codes) - known, -NO_DAY)])
            new, at = np.unique(codes, return_index=True)
            at = pa.array(at[new >= known])
            for key, column in named.items():
                attributes[key].extend(batch.column(column).take(at).to_pylist())
        ok = (codes >= 0) & (days != NO_DAY)
        if ok.any():
            np.minimum.at(first, codes[ok], days[ok])
            top = int(days[ok].max())
            last_day = top if last_day is None else max(last_day, top)
    if last_day is None:
        raise TerminalError("backtest data has no rows")
    end = pd.Timestamp(np.datetime64(last_day, "D"))
    cut = pd.Timestamp(cutoff) if cutoff is not None else end - pd.Timedelta(days=horizon)
    cut_day = int(np.datetime64(cut.date(), "D").astype(np.int64))
    trained = np.flatnonzero(first <= cut_day)
    if not len(trained):
        raise TerminalError(f"no training data on or before {cut.date()}")
    names = np.empty(len(ids.codes), dtype=object)
    names[list(ids.codes.values())] = list(ids.codes.keys())
    order = trained[pd.Series(names[trained]).argsort(kind="stable").to_numpy()]
    row_of = np.full(len(ids.codes), -1, dtype=np.int64)
    row_of[order] = np.arange(len(order))
    start_day = int(first[order].min())
    days_total = cut_day - start_day + 1
    n = len(order)

    fitted_from = max(days_total - fit_days, 0) if fit_days is not None else 0

    # Pass 2: the values.
    history = np.zeros((n, days_total))
    sums = np.zeros((n, horizon))
    seen = np.zeros((n, horizon), dtype=bool)
    price = np.full((n, days_total + horizon), np.nan) if has_price else None
    planned = np.zeros((n, horizon), dtype=bool) if has_promotion else None
    value_columns = [PRICE_COLUMN] * has_price + [PROMOTION_COLUMN] * has_promotion
    for batch in source.batches(["id", "date", "sales", *value_columns]):
        codes = ids.encode(batch.column("id"))
        rows = np.where(codes >= 0, row_of[np.maximum(codes, 0)], -1)
        days = _days(batch.column("date"))
        offset = days - start_day
        sales = _numbers(batch, "sales")
        kept = (rows >= 0) & (offset >= 0) & (offset < days_total + horizon)
        past = kept & (offset < days_total)
        history[rows[past], offset[past]] = sales[past]
        ahead = kept & ~past
        step = offset[ahead] - days_total
        np.add.at(sums, (rows[ahead], step), np.nan_to_num(sales[ahead]))
        seen[rows[ahead], step] = True
        if price is not None:
            cost = _numbers(batch, PRICE_COLUMN)
            promotion = _numbers(batch, PROMOTION_COLUMN) if planned is not None else None
            _check_prices(batch, days, cost, promotion)
            given = kept & ~np.isnan(cost)
            price[rows[given], offset[given]] = cost[given]
            if planned is not None and promotion is not None:
                on = ahead & (promotion == 1)
                planned[rows[on], offset[on] - days_total] = True
    launch = first[order] - start_day
    for s in range(0, n, PRICE_CHUNK):  # in chunks: the mask is series x days
        rows_ = slice(s, min(s + PRICE_CHUNK, n))
        history[rows_][np.arange(days_total)[None, :] < launch[rows_, None]] = np.nan
    actual = np.where(seen, sums, np.nan)
    del sums, seen

    relative, priced, planned_days = None, 0, 0
    if price is not None:
        ahead_prices = price[:, days_total:]
        if planned is not None:
            ahead_prices[~planned] = np.nan
        planned_days = int(np.isfinite(ahead_prices).sum())
        priced = int(np.isfinite(price[:, :days_total]).any(axis=1).sum())
        relative = relative_prices_chunked(price, days_total, fitted_from)
        del price
    pa.default_memory_pool().release_unused()  # the batches' buffers, back to the system
    keys = pd.DataFrame({"id": pd.Series(names[order].tolist())})
    for key, values in attributes.items():
        keys[key] = pd.Series(np.asarray(values, dtype=object)[order].tolist())
    return Inputs(
        keys=keys,
        start=pd.Timestamp(np.datetime64(start_day, "D")),
        cutoff=pd.Timestamp(np.datetime64(cut_day, "D")),
        history=history,
        actual=actual,
        relative_price=relative,
        priced_series=priced,
        planned_days=planned_days,
        fitted_from=fitted_from,
    )


def relative_prices_chunked(price: Matrix, days: int, kept_from: int = 0) -> Matrix | None:
    """:func:`~pipeline.forecasting.prices.price_covariate` of the history's prices
    ``price[:, :days]`` and the planned ones ``price[:, days:]`` (NaN: none): the relative
    prices from day ``kept_from`` on, ``None`` when no series has a price; computed in
    chunks of series (each series' relative price is its own), so that their temporaries
    stay small."""
    if not np.isfinite(price[:, :days]).any():
        return None
    out = np.empty((price.shape[0], price.shape[1] - kept_from))
    for s in range(0, price.shape[0], PRICE_CHUNK):
        rows = slice(s, min(s + PRICE_CHUNK, price.shape[0]))
        out[rows] = relative_prices(price[rows, :days], price[rows, days:])[:, kept_from:]
    return out
