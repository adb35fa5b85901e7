"""The batch forecast job: curated daily demand -> forecasts -> DynamoDB + curated archive.

Also computes ForecastBias (percent, past archived forecasts vs the actuals that have
arrived since) and puts it into CloudWatch (``FMCG/Business``, :mod:`.metrics`).

Only a finished day is an actual: ``daily_demand`` holds each location's local calendar
days, including the day in progress, and a day counts once it has ended at its location
(:class:`FinishedDays`). The history ends at the latest day finished at every location.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from pipeline.compaction.store import LakeStore
from pipeline.errors import ConfigurationError, TerminalError
from pipeline.forecasting.calendar import CalendarSpec, DayRule, Place
from pipeline.forecasting.dynamo import (
    ForecastRow,
    new_run_id,
    publish_backfill,
    utc_timestamp,
    write_forecasts,
)
from pipeline.forecasting.forecaster import Covariates, ForecasterConfig, forecast
from pipeline.forecasting.metrics import publish_forecast_bias
from pipeline.forecasting.prices import (
    load_promotions,
    planned_prices,
    price_covariate,
    price_matrix,
)
from pipeline.forecasting.series import SeriesMatrix, to_matrix
from pipeline.job_protocol import Progress, null_progress
from pipeline.lake.locations import LocationDefaults, Locations, load_locations
from pipeline.lake.reference import reference_objects
from pipeline.lake.tables import (
    DAILY_DEMAND,
    FORECASTS,
    FORECASTS_TABLE,
    TableSpec,
    days_filter,
    ensure_table,
    iceberg_catalog,
    read_rows,
    translated,
    with_partition_columns,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    import boto3

    from pipeline.forecasting.forecaster import Forecast

Matrix = npt.NDArray[np.float64]
#: Declared events and closures (see :mod:`pipeline.forecasting.calendar`).
CALENDAR_PREFIX = "reference/calendar/"
INTERVAL_LEVEL = 0.8
SERIES_KEYS = ["sku_id", "location_id"]


@dataclass(frozen=True)
class ForecastReport:
    """What one run did."""

    series: int
    items_written: int
    horizon_days: int
    forecast_bias_pct: float | None
    models: dict[str, int] = field(default_factory=dict)
    interval_level: float = INTERVAL_LEVEL
    last_actual_date: str | None = None
    generated_at: str = ""
    #: The id every item of this run carries (``run_id``), with ``generated_at``.
    run_id: str = ""
    #: Chunks of ``chunk_series`` series fitted (Spark: one task each), series whose
    #: errors calibrated the intervals (all, up to ``calibration_series``, else a sample),
    #: and whether the global model was weighed in (enough history for its plan).
    chunks: int = 0
    calibrated_series: int = 0
    global_model: bool = False
    #: A backfill run with ``publish``: its items left alone because the table held a
    #: forecast made for a later moment (:func:`~.dynamo.publish_backfill`).
    items_kept_newer: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FinishedDays:
    """Which days of ``daily_demand`` are actuals: those that have ended at their location.

    Day ``D`` at location ``L`` has ended when ``now`` is at or past the midnight after
    ``D`` in ``L``'s zone, that is when ``D`` is before ``L``'s day in progress at ``now``.
    A backfill ``as_of`` sees every location's days before ``as_of`` (and no later ones),
    as a run would once that day had begun everywhere.
    """

    locations: Locations
    now: datetime
    as_of: date | None = None

    def first_unfinished(self, location_id: str) -> date:
        """The location's first day that is not an actual yet."""
        if self.as_of is not None:
            return self.as_of
        return self.locations.today(location_id, self.now)

    def mask(self, location_ids: Any, dates: Any) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Per row, whether its day (``dates``) has ended at its location."""
        ids = pd.Series(np.asarray(location_ids, dtype=object))
        cut = {loc: np.datetime64(self.first_unfinished(loc), "D") for loc in ids.unique().tolist()}
        days = pd.to_datetime(pd.Series(np.asarray(dates))).to_numpy().astype("datetime64[D]")
        return days < ids.map(cut).to_numpy().astype("datetime64[D]")

    def actuals(self, demand: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``demand`` whose day has ended at their location."""
        if demand.empty:
            return demand
        return demand.loc[self.mask(demand["location_id"], demand["date"])]

    def history_end(self, location_ids: Iterable[str]) -> pd.Timestamp:
        """The latest day that has ended at every one of ``location_ids``."""
        first = min(self.first_unfinished(loc) for loc in set(location_ids))
        return pd.Timestamp(first - timedelta(days=1))

    def history(self, actuals: pd.DataFrame) -> tuple[pd.DataFrame, pd.Timestamp | None]:
        """The actuals through the latest day finished at every location, and that day
        (or the last actual's, when earlier)."""
        end = self.history_end(actuals["location_id"].unique().tolist())
        days = pd.to_datetime(actuals["date"])
        history = actuals.loc[days <= end]
        return history, min(end, days.max())


def _session(session: boto3.session.Session | None) -> boto3.session.Session:
    if session is not None:
        return session
    import boto3

    return boto3.session.Session()


#: pandas types of the table columns, as the forecaster has always read them (nullable).
PANDAS_TYPES: dict[pa.DataType, Any] = {
    pa.string(): pd.StringDtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def read_table(
    session: boto3.session.Session, database: str, spec: TableSpec, since: date | None = None
) -> pd.DataFrame:
    """A curated table's rows (from ``since`` on, by its day column; file statistics prune
    the older days), without the partition columns; an empty frame before its first run."""
    row_filter = f"{spec.day_column} >= '{since.isoformat()}'" if since is not None else "true"
    columns = tuple(spec.columns.names)
    rows = read_rows(iceberg_catalog(session), database, spec, row_filter, columns)
    if rows.num_rows == 0:
        return pd.DataFrame()
    frame: pd.DataFrame = rows.to_pandas(types_mapper=PANDAS_TYPES.get)
    return frame


def bias_sums(archive: pd.DataFrame, demand: pd.DataFrame) -> tuple[float, float]:
    """(sum forecast, sum actual) over archived forecasts whose day now has an actual
    (censored stockout days excluded: their actual is not demand). ``demand`` holds the
    actuals only (:meth:`FinishedDays.actuals`): a day still in progress is no actual.
    Sums of disjoint sets of series add up, so a distributed run sums them per chunk."""
    if archive.empty or demand.empty:
        return 0.0, 0.0
    actual = demand.loc[~demand["stockout"].fillna(False).astype(bool)]
    actual = actual.assign(date=pd.to_datetime(actual["date"]))[
        [*SERIES_KEYS, "date", "units_sold"]
    ]
    past = archive.assign(date=pd.to_datetime(archive["date"]))
    joined = past.merge(actual, on=[*SERIES_KEYS, "date"], how="inner")
    return float(joined["forecast_val"].sum()), float(joined["units_sold"].sum())


def bias_pct(forecast_sum: float, actual_sum: float) -> float | None:
    """``100 * (sum forecast - sum actual) / sum actual``; ``None`` when nothing has an
    actual yet or the actuals sum to 0."""
    if actual_sum == 0:
        return None
    return 100.0 * (forecast_sum - actual_sum) / actual_sum


def forecast_bias_pct(archive: pd.DataFrame, demand: pd.DataFrame) -> float | None:
    """ForecastBias in percent of the archive against the demand (see :func:`bias_sums`)."""
    return bias_pct(*bias_sums(archive, demand))


def forecast_frame(
    matrix: SeriesMatrix, result: Forecast, *, generated_at: datetime, level: float = INTERVAL_LEVEL
) -> pd.DataFrame:
    """The archive/table rows: one per series and horizon day."""
    n, horizon = result.point.shape
    lower, upper = result.bounds(level)
    lower_95, upper_95 = result.bounds(0.95)
    keys = matrix.keys.loc[matrix.keys.index.repeat(horizon)].reset_index(drop=True)
    return keys.assign(
        date=np.tile(matrix.horizon_dates(horizon).date, n),
        forecast_val=result.point.ravel(),
        confidence_lower=lower.ravel(),
        confidence_upper=upper.ravel(),
        lower_95=lower_95.ravel(),
        upper_95=upper_95.ravel(),
        model=np.repeat(np.asarray(result.model, dtype=object), horizon),
        generated_at=pd.Timestamp(generated_at).tz_convert("UTC").tz_localize(None),
    )


def archive_forecasts(
    frame: pd.DataFrame,
    *,
    curated_bucket: str,
    database: str,
    session: boto3.session.Session,
) -> None:
    """Write forecasts to the ``forecasts`` table (partitioned by forecast day), replacing
    the rows of the days they cover in one commit: a re-run replaces its own rows instead
    of adding more, and each day keeps the latest forecast made for it."""
    if frame.empty:
        return
    catalog = iceberg_catalog(session)
    table = ensure_table(catalog, database, curated_bucket, FORECASTS)
    rows = pa.Table.from_pandas(frame, preserve_index=False)
    days = sorted(set(frame["date"]))
    name = f"{database}.{FORECASTS_TABLE}"
    with translated(f"archive forecasts to {name}", name):
        transaction = table.transaction()
        with warnings.catch_warnings():
            # The first forecast of a day has nothing to replace: PyIceberg warns, it is fine.
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            transaction.delete(days_filter(days))
        transaction.append(with_partition_columns(rows, FORECASTS))
        transaction.commit_transaction()


def forecast_rows(frame: pd.DataFrame) -> list[ForecastRow]:
    return [
        ForecastRow(
            str(sku), str(loc), day, float(val), float(lo), float(hi), float(lo95), float(hi95)
        )
        for sku, loc, day, val, lo, hi, lo95, hi95 in zip(
            frame["sku_id"],
            frame["location_id"],
            frame["date"],
            frame["forecast_val"],
            frame["confidence_lower"],
            frame["confidence_upper"],
            frame["lower_95"],
            frame["upper_95"],
            strict=True,
        )
    ]


def load_calendar(store: LakeStore, curated_bucket: str, locations: Locations) -> CalendarSpec:
    """The declared events and closures (``s3://<curated>/reference/calendar/*.yaml``, in
    key order; none without one) at the places of the locations table."""
    events: list[DayRule] = []
    closures: list[DayRule] = []
    suffixes = (".yaml", ".yml", ".json")
    for source, _, data in reference_objects(store, curated_bucket, CALENDAR_PREFIX, suffixes):
        try:
            declared = CalendarSpec.read(data.decode())
        except (TerminalError, UnicodeDecodeError) as e:
            raise ConfigurationError(f"{source}: {e}") from e
        events += declared.events
        closures += declared.closures
    return CalendarSpec(
        default=Place(locations.defaults.country, locations.defaults.subdivision),
        places={loc: Place(row.country, row.subdivision) for loc, row in locations.rows.items()},
        events=tuple(events),
        closures=tuple(closures),
    )


def series_covariates(
    matrix: SeriesMatrix, calendar: CalendarSpec, relative_price: Matrix | None = None
) -> Covariates:
    """The calendar at each series' location, the SKU, location and whole-lake groups and
    the relative price (:mod:`.prices`)."""
    return key_covariates(matrix.keys, matrix.start, calendar, relative_price)


def key_covariates(
    keys: pd.DataFrame,
    start: pd.Timestamp,
    calendar: CalendarSpec | None,
    relative_price: Matrix | None = None,
) -> Covariates:
    """:func:`series_covariates` of the series ``keys`` (sorted as the matrix sorts them)
    whose history starts on ``start``: all a distributed run's driver knows of them. A
    backtest's keys may lack ``sku_id`` or ``location_id``: that grouping is left out (and
    every series is at the default location)."""
    groups = {"all": np.zeros(len(keys), dtype=np.int64)}
    for group, column in (("sku", "sku_id"), ("location", "location_id")):
        if column in keys.columns:
            groups[group] = pd.factorize(keys[column])[0].astype(np.int64)
    locations = (
        keys["location_id"].astype(str).tolist()
        if "location_id" in keys.columns
        else ["default"] * len(keys)
    )
    return Covariates(
        start=start,
        relative_price=relative_price,
        locations=locations,
        calendar=calendar,
        groups=groups,
    )


def job_price_covariate(
    history: pd.DataFrame, matrix: SeriesMatrix, promotions: pd.DataFrame, horizon: int
) -> Matrix | None:
    """The relative prices of ``matrix``'s series from the history's ``avg_unit_price`` and
    the planned ``promotions`` (:func:`~pipeline.forecasting.prices.price_covariate`)."""
    prices = price_matrix(history, matrix, keys=SERIES_KEYS)
    return price_covariate(prices, planned_prices(promotions, matrix, horizon))


def run_moment(now: datetime | None, as_of: date | None) -> datetime:
    """When a run happens: ``now`` (UTC when naive), else a backfill's midnight UTC or the
    wall clock."""
    if now is None:
        now = datetime.combine(as_of, time(), UTC) if as_of else datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def run_forecast(
    *,
    curated_bucket: str,
    database: str,
    forecast_table: str,
    horizon_days: int = 28,
    session: boto3.session.Session | None = None,
    now: datetime | None = None,
    as_of: date | None = None,
    progress: Progress | None = None,
    config: ForecasterConfig | None = None,
    location_defaults: LocationDefaults | None = None,
    run_id: str | None = None,
    publish: bool = False,
) -> ForecastReport:
    """Forecast every SKU x location in the curated daily demand table and publish it.

    Every item of the run carries ``run_id`` (a new id when none is given; the Glue job
    passes its ``JOB_RUN_ID``) and ``generated_at``, the run's ``now`` in UTC.

    Only days that have ended at their location at ``now`` are actuals (the history and
    ForecastBias alike; zones from the locations table or ``location_defaults``, see
    :class:`FinishedDays`); the history ends at the latest day finished everywhere.

    ``as_of`` backfills: the run sees only the actuals before that day and forecasts from it,
    as a run on that day would have (``now`` defaults to its midnight UTC), so ForecastBias
    can be measured on a new deployment without waiting a forecast horizon. A backfill only
    archives its forecasts for days that already have actuals (never replacing a newer
    forecast of a day still to come) and writes nothing to DynamoDB, unless ``publish``:
    then its forecasts of every horizon day go to the forecast table too, readable through
    the API, except where the table holds a forecast made for a later moment
    (:func:`~pipeline.forecasting.dynamo.publish_backfill`; their TTL counts from the wall
    clock). ``publish`` without ``as_of`` is refused: a regular run always writes.
    """
    if publish and as_of is None:
        raise ConfigurationError("publish applies to a backfill (as_of) only: a run publishes")
    session = _session(session)
    now = run_moment(now, as_of)
    run_id = run_id or new_run_id()
    generated_at = utc_timestamp(now)
    report_progress = progress or null_progress

    report_progress("read", 0, 1)
    store = LakeStore.from_session(session)
    locations = load_locations(store, curated_bucket, location_defaults)
    finished = FinishedDays(locations, now, as_of)
    # The fit window and the day or two in progress: no older day is read.
    fit_days = (config or ForecasterConfig(horizon=horizon_days)).fit_days
    since = (now - timedelta(days=fit_days + 2)).date()
    demand = read_table(session, database, DAILY_DEMAND, since)
    archive = read_table(session, database, FORECASTS, since)
    actual_days = pd.to_datetime(demand["date"]) if not demand.empty else pd.Series()
    demand = finished.actuals(demand)
    report_progress("read", 1, 1)
    bias = forecast_bias_pct(archive, demand)
    if as_of is None:  # a backfill replays the past; CloudWatch takes no datum that old
        publish_forecast_bias(session.client("cloudwatch"), bias, timestamp=now)
    history, end = finished.history(demand) if not demand.empty else (demand, None)
    if history.empty:
        return ForecastReport(0, 0, horizon_days, bias, generated_at=generated_at, run_id=run_id)

    report_progress("fit", 0, 1)
    matrix = to_matrix(history, keys=SERIES_KEYS, value="units_sold", censored="stockout", end=end)
    calendar = load_calendar(store, curated_bucket, locations)
    relative = job_price_covariate(
        history, matrix, load_promotions(store, curated_bucket), horizon_days
    )
    result = forecast(
        matrix.values,
        config or ForecasterConfig(horizon=horizon_days),
        series_covariates(matrix, calendar, relative),
    )
    frame = forecast_frame(matrix, result, generated_at=now)
    report_progress("fit", 1, 1)

    kept = 0
    if as_of is None:
        written = write_forecasts(
            forecast_rows(frame),
            table_name=forecast_table,
            now=now,
            run_id=run_id,
            session=session,
            progress=lambda done, total: report_progress("write", done, total),
        )
    else:
        written = kept = 0
        if publish:
            written, kept = publish_backfill(
                forecast_rows(frame),
                table_name=forecast_table,
                now=now,
                run_id=run_id,
                session=session,
                progress=lambda done, total: report_progress("write", done, total),
            )
        frame = frame.loc[pd.to_datetime(frame["date"]) <= actual_days.max()]
    report_progress("archive", 0, 1)
    if not frame.empty:
        archive_forecasts(frame, curated_bucket=curated_bucket, database=database, session=session)
    report_progress("archive", 1, 1)
    return ForecastReport(
        series=len(matrix.keys),
        items_written=written,
        horizon_days=horizon_days,
        forecast_bias_pct=bias,
        models=dict(Counter(result.model).most_common()),
        last_actual_date=matrix.dates[-1].date().isoformat(),
        generated_at=generated_at,
        run_id=run_id,
        chunks=result.chunks,
        calibrated_series=result.calibrated_series,
        global_model=result.global_model,
        items_kept_newer=kept,
    )
