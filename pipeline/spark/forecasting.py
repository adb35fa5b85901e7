"""The forecast job on Spark: the chunked forecaster's chunks as executor tasks.

The single-process forecaster already works through series in chunks of
``chunk_series`` (sorted by SKU and location) and shares only a few things between chunks:
the pooled weekday index (a sum of per-chunk parts), the group totals behind the global
model's SKU, location and whole-lake trends (sums over disjoint chunks), the global model
itself (trained on a sample of every chunk's rows) and the conformal quantiles of the
calibration errors. So, with the same cores:

1. Spark reads the ``daily_demand`` and ``forecasts`` Iceberg tables, only the fit window
   and the days in progress (:func:`read_since`), the demand's actuals only, and hands
   them to the chunks' stages as Arrow batches, a few partitions per core;
2. the driver collects the distinct series keys and ranks them as one process sorts them,
   and builds from them what one process builds from its matrix
   (:func:`~pipeline.forecasting.job.key_covariates`, :class:`Context`): the calendar of
   the fitted window (holidays, declared events and closures from
   ``reference/calendar/``), the group codes and the global model's plan, broadcast once;
3. executors pivot each chunk's rows into its matrix on the common calendar (closure days
   unknown, as one process reads them) and its relative prices (:mod:`.prices
   <pipeline.forecasting.prices>`, with the planned promotions the driver reads and
   broadcasts once), and send back its weekday-index parts, group totals and days with a
   price; the driver sums them in chunk order and broadcasts the pooled index and the
   group trends;
4. executors fit each chunk (:func:`fit_chunk`); with history enough for the global model
   (its covariates include the relative price when any series has one, as in one process)
   they send back its sampled training rows (the share and seed one process draws with),
   the driver trains the booster on them in chunk order and broadcasts it as its model
   text, and executors weigh it into each chunk's forecasts (:func:`blend`); with no
   training row at all (every target unknown), the blend alone, as in one process;
5. executors send back each chunk's sampled calibration errors (small: at most
   ``calibration_series`` series in all) and the driver takes the quantiles;
6. executors bound each chunk's forecasts, write its items to DynamoDB (the same batch
   writer and retries), and the archive's forecast days are replaced in the ``forecasts``
   table in one commit (``overwrite`` by the days' partitions: the latest run wins).

Both read only the actuals, the days that have ended at their location
(:class:`~pipeline.forecasting.job.FinishedDays`), and end the history at the latest day
finished everywhere. The forecasts are the single-process forecasts bit for bit;
ForecastBias is the sum of per-chunk sums (equal up to the order of a float sum).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.compaction.store import LakeStore
from pipeline.forecasting import global_model
from pipeline.forecasting.dynamo import new_run_id, utc_timestamp, write_forecasts
from pipeline.forecasting.forecaster import (
    ChunkFit,
    Context,
    ForecasterConfig,
    blend,
    calibrate,
    calibrated_series,
    calibration_sample,
    closing,
    combine,
    fit_chunk,
    pooled_sum,
    prepare,
    training_share,
)
from pipeline.forecasting.job import (
    SERIES_KEYS,
    FinishedDays,
    ForecastReport,
    bias_pct,
    bias_sums,
    forecast_frame,
    forecast_rows,
    key_covariates,
    load_calendar,
    run_moment,
)
from pipeline.forecasting.metrics import publish_forecast_bias
from pipeline.forecasting.prices import (
    load_promotions,
    planned_prices,
    price_matrix,
    relative_prices,
)
from pipeline.forecasting.series import SeriesMatrix, to_matrix
from pipeline.job_protocol import Progress, null_progress
from pipeline.lake.locations import LocationDefaults, load_locations
from pipeline.lake.tables import (
    DAILY_DEMAND,
    FORECASTS,
    ensure_table,
    iceberg_catalog,
    with_partition_columns,
)
from pipeline.spark.arrow import from_bytes, to_bytes
from pipeline.spark.session import executor_session, slices, table_name
from pipeline.spark.tables import UNSHUFFLED, committing, days_condition, ipc_frame

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark import RDD
    from pyspark.sql import SparkSession

    from pipeline.forecasting.conformal import Conformal

DEMAND_COLUMNS = [*SERIES_KEYS, "date", "units_sold", "stockout", "avg_unit_price"]
ARCHIVE_COLUMNS = [*SERIES_KEYS, "date", "forecast_val"]
_IPC = pa.schema([("data", pa.binary())])


def partition_ipc(
    finished: FinishedDays | None, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """A table's rows (given ``finished``, the actuals only) as Arrow IPC values, one per
    batch Spark hands over (a task): the form the chunks' stages take their rows in, in
    pieces of a batch's size (``spark.sql.execution.arrow.maxRecordsPerBatch``), so no
    value holds a whole partition."""
    for batch in batches:
        table = pa.Table.from_batches([batch])
        if finished is not None and table.num_rows:
            days = table.column("date").to_numpy(zero_copy_only=False)
            ids = table.column("location_id").to_numpy(zero_copy_only=False)
            table = table.filter(pa.array(finished.mask(ids, days)))
        if table.num_rows:
            yield pa.RecordBatch.from_pydict({"data": [to_bytes(table)]}, schema=_IPC)


def _first_days(data: bytes) -> tuple[dict[tuple[str, str], date], date | None]:
    """Each series' first day in one object, and the object's last day."""
    if not data:
        return {}, None
    table = from_bytes(data)
    if not table.num_rows:
        return {}, None
    first: dict[tuple[str, str], date] = {}
    columns = [table.column(k).to_pylist() for k in SERIES_KEYS]
    days = table.column("date").to_pylist()
    for key, day in zip(zip(*columns, strict=True), days, strict=True):
        if key not in first or day < first[key]:
            first[key] = day
    return first, max(days)


def _by_chunk(
    ranks: Any, chunk_series: int, tag: str, data: bytes
) -> list[tuple[int, tuple[str, bytes]]]:
    """A table's rows split by the chunk of their series (rows of unranked series dropped:
    an archived forecast of a series without demand has no actual to compare with)."""
    if not data:
        return []
    table = from_bytes(data)
    rank = ranks.value
    chunk = np.array(
        [
            rank.get(key, -1) // chunk_series if key in rank else -1
            for key in zip(*(table.column(k).to_pylist() for k in SERIES_KEYS), strict=True)
        ],
        dtype=np.int64,
    )
    return [
        (int(c), (tag, to_bytes(table.filter(pa.array(chunk == c)))))
        for c in np.unique(chunk[chunk >= 0])
    ]


class _Chunk:
    """One chunk's series: their matrix, its relative prices over the fitted window and
    horizon (and how many of its days have a price), its fit once fitted, and its bias
    sums."""

    def __init__(
        self,
        index: int,
        matrix: SeriesMatrix,
        bias: tuple[float, float],
        relative_price: Any,
        priced_days: int,
    ) -> None:
        self.index, self.matrix, self.bias = index, matrix, bias
        self.relative_price, self.priced_days = relative_price, priced_days
        self.fit: ChunkFit | None = None


@dataclass(frozen=True)
class _Window:
    """The common calendar every chunk is pivoted onto, and what its prices need."""

    start: pd.Timestamp
    end: pd.Timestamp
    #: History days before the fitted window (see :func:`prepare`).
    dropped: int
    horizon: int
    #: The planned promotions (a broadcast DataFrame).
    promotions: Any


def build_chunk(window: _Window, group: tuple[int, Any]) -> tuple[int, Any]:
    """Pivot one chunk's demand onto the common calendar, with its relative prices as one
    process computes them (from the whole history, then cut to the fitted window); its
    archive's bias sums."""
    index, pieces = group
    parts: dict[str, list[pa.Table]] = {"demand": [], "archive": []}
    for tag, data in pieces:
        parts[tag].append(from_bytes(data))
    demand = pa.concat_tables(parts["demand"]).to_pandas()
    archive = pa.concat_tables(parts["archive"]).to_pandas() if parts["archive"] else pd.DataFrame()
    matrix = to_matrix(
        demand,
        keys=SERIES_KEYS,
        value="units_sold",
        censored="stockout",
        start=window.start,
        end=window.end,
    )
    prices = price_matrix(demand, matrix, keys=SERIES_KEYS)
    relative = relative_prices(
        prices, planned_prices(window.promotions.value, matrix, window.horizon)
    )
    return index, _Chunk(
        index,
        matrix,
        bias_sums(archive, demand),
        relative[:, window.dropped :],
        int(np.isfinite(prices).sum()),
    )


def run_forecast_spark(
    *,
    spark: SparkSession,
    curated_bucket: str,
    database: str,
    forecast_table: str,
    horizon_days: int = 28,
    session: boto3.session.Session | None = None,
    now: datetime | None = None,
    as_of: date | None = None,
    progress: Progress = null_progress,
    config: ForecasterConfig | None = None,
    location_defaults: LocationDefaults | None = None,
    run_id: str | None = None,
) -> ForecastReport:
    """:func:`pipeline.forecasting.job.run_forecast` on ``spark``: same arguments, report,
    items and archive (see the module doc)."""
    session = session or boto3.session.Session()
    now = run_moment(now, as_of)
    # One id for the run, chosen on the driver: every executor's items carry it.
    run_id = run_id or new_run_id()
    generated_at = utc_timestamp(now)
    config = config or ForecasterConfig(horizon=horizon_days)
    store = LakeStore.from_session(session)
    sc = spark.sparkContext

    progress("read", 0, 1)
    locations = load_locations(store, curated_bucket, location_defaults)
    finished = FinishedDays(locations, now, as_of)
    catalog = iceberg_catalog(session)
    for spec in (DAILY_DEMAND, FORECASTS):
        ensure_table(catalog, database, curated_bucket, spec)
    demand_table = table_name(database, DAILY_DEMAND.name)
    since = read_since(now, config)
    demand = _read(spark, demand_table, DEMAND_COLUMNS, since, finished).cache()
    archive = _read(spark, table_name(database, FORECASTS.name), ARCHIVE_COLUMNS, since, None)
    found = demand.map(_first_days).collect()
    first_days: dict[tuple[str, str], date] = {}
    for firsts, _ in found:
        for key, day in firsts.items():
            first_days[key] = min(day, first_days.get(key, day))
    keys: list[tuple[str, str]] = []
    if first_days:
        # As one process: the history ends at the latest day finished at every location
        # (or the last actual, when earlier); a series starting after it has no history.
        history_end = finished.history_end({loc for _, loc in first_days})
        last = max(d for _, d in found if d is not None)
        end = min(history_end, pd.Timestamp(last))
        keys = sorted(k for k, day in first_days.items() if pd.Timestamp(day) <= end)
    progress("read", 1, 1)
    if not keys:
        demand.unpersist()
        bias = None
        if as_of is None:
            publish_forecast_bias(session.client("cloudwatch"), bias, timestamp=now)
        return ForecastReport(0, 0, horizon_days, bias, generated_at=generated_at, run_id=run_id)

    n = len(keys)
    chunks = math.ceil(n / config.chunk_series)
    ranks = sc.broadcast({key: i for i, key in enumerate(keys)})
    start = pd.Timestamp(min(first_days[k] for k in keys))
    # The driver knows every series' key, so it builds what one process builds from its
    # matrix: the calendar over the fitted window and the group codes (small beside the
    # ranks above); each executor cuts its chunk's rows out of it.
    history_days = int((end - start).days) + 1
    days = min(history_days, config.fit_days)
    context = Context.of(
        (n, days),
        history_days - days,
        config,
        key_covariates(
            pd.DataFrame(keys, columns=SERIES_KEYS),
            start,
            load_calendar(store, curated_bucket, locations),
        ),
    )
    shared = sc.broadcast(_Shared(config, context, n))
    planned = load_promotions(store, curated_bucket)
    # A malformed promotion fails on the driver, as in one process, not in a chunk's task.
    planned_prices(
        planned,
        SeriesMatrix(pd.DataFrame(columns=SERIES_KEYS), start, np.empty((0, history_days))),
        horizon_days,
    )
    promotions = sc.broadcast(planned)
    calendar = _Window(start, end, history_days - days, horizon_days, promotions)
    progress("fit", 0, chunks)
    grouped = (
        demand.flatMap(partial(_by_chunk, ranks, config.chunk_series, "demand"))
        .union(archive.flatMap(partial(_by_chunk, ranks, config.chunk_series, "archive")))
        .groupByKey(chunks)
        .map(partial(build_chunk, calendar))
        .cache()
    )
    try:
        plan, model_config = context.plan, config.global_model
        # Per chunk, in chunk order: its weekday-index parts and (for the global model)
        # its group totals and priced days, which the driver adds up as one process adds
        # its chunks'.
        parts = (
            sorted(grouped.map(partial(_shared_parts, shared)).collect(), key=lambda p: p[0])
            if chunks > 1 or plan is not None
            else []
        )
        pooled = pooled_sum([p for _, p, _, _ in parts]) if chunks > 1 else None
        fitted = grouped.map(partial(_fit, shared, pooled)).cache()
        weigh_in = None
        if plan is not None and model_config is not None:
            trends = sc.broadcast(
                global_model.group_trends(global_model.add_totals([t for _, _, t, _ in parts]))
            )
            # As one process: the price is a covariate only if some series has one.
            priced = sum(p for _, _, _, p in parts) > 0
            share = training_share(n, plan, model_config)
            rows = sorted(
                fitted.map(partial(_training_rows, shared, trends, share, priced)).collect(),
                key=lambda r: r[0],
            )
            model = global_model.train([r for _, _, r in rows], rows[0][1], model_config)
            del rows
            if model is not None:
                # The model crosses to the executors as its text, which rebuilds it exactly.
                model_text = sc.broadcast(model.to_text())
                weigh_in = partial(_blend, shared, trends, model_text, priced)
        if weigh_in is not None:
            unblended, fitted = fitted, fitted.map(weigh_in).cache()
        else:
            # As one process: planned closures forecast 0 without the global model too.
            unblended, fitted = fitted, fitted.map(partial(_close, shared)).cache()
        calibration = [x for _, x in sorted(fitted.map(_calibration).collect(), key=lambda x: x[0])]
        if unblended is not None:
            unblended.unpersist()
        bias_parts = fitted.map(lambda c: c[1].bias).collect()
        conformal = calibrate(calibration, config)
        calibrated = calibrated_series(calibration)
        progress("fit", chunks, chunks)
        bias = bias_pct(sum(f for f, _ in bias_parts), sum(a for _, a in bias_parts))
        if as_of is None:
            publish_forecast_bias(session.client("cloudwatch"), bias, timestamp=now)
        last_actual = end.date()
        progress("write", 0, chunks)
        # A backfill archives the days that have actuals now, not only before ``as_of``.
        latest_actual = latest_day(spark, demand_table, since) if as_of is not None else None
        publication = _Publication(
            conformal,
            config,
            now,
            run_id,
            forecast_table,
            latest_actual,
        )
        published = fitted.map(partial(_publish, publication)).cache()
        outcome = published.map(lambda p: (p[0], p[1], p[2])).collect()
        progress("write", chunks, chunks)
        progress("archive", 0, 1)
        forecast_days = sorted({day for _, _, days in outcome for day in days})
        if forecast_days:
            forecasts = table_name(database, FORECASTS.name)
            archived = ipc_frame(spark, published.flatMap(lambda p: p[3]), forecasts)
            # One commit: the forecast days' rows replaced (the latest run's win).
            with committing(forecasts):
                archived.writeTo(forecasts).options(**UNSHUFFLED).overwrite(
                    days_condition(forecast_days)
                )
        progress("archive", 1, 1)
        published.unpersist()
        fitted.unpersist()
    finally:
        grouped.unpersist()
        demand.unpersist()
    models: Counter[str] = Counter()
    for _, counts, _ in outcome:
        models.update(counts)
    return ForecastReport(
        series=n,
        items_written=sum(w for w, _, _ in outcome),
        horizon_days=horizon_days,
        forecast_bias_pct=bias,
        models=dict(models.most_common()),
        last_actual_date=last_actual.isoformat(),
        generated_at=generated_at,
        run_id=run_id,
        chunks=chunks,
        calibrated_series=calibrated,
        global_model=weigh_in is not None,
    )


def read_since(now: datetime, config: ForecasterConfig) -> date:
    """The first day of ``daily_demand`` (and the archive) a run reads: the fit window and
    the day or two in progress, as one process reads them (no older day is read)."""
    return (now - timedelta(days=config.fit_days + 2)).date()


def latest_day(spark: SparkSession, table: str, since: date) -> date | None:
    """The latest day of ``table`` from ``since`` on, finished or not (a backfill archives
    forecasts through it, as one process does)."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

    found = spark.table(table).where(F.col("date") >= F.lit(since)).agg(F.max("date")).collect()
    latest: date | None = found[0][0]
    return latest


def _read(
    spark: SparkSession,
    table: str,
    columns: list[str],
    since: date,
    finished: FinishedDays | None,
) -> RDD[bytes]:
    """The rows of ``table`` from ``since`` on (given ``finished``, the actuals only) as
    Arrow IPC values, a few per core. Iceberg prunes the older days' files by their
    ``date`` bounds."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

    frame = spark.table(table).where(F.col("date") >= F.lit(since)).select(*columns)
    frame = frame.repartition(slices(spark.sparkContext, spark.sparkContext.defaultParallelism))
    ipc = frame.mapInArrow(partial(partition_ipc, finished), "data binary")
    rdd: RDD[bytes] = ipc.rdd.map(lambda row: bytes(row[0]))
    return rdd


@dataclass(frozen=True)
class _Shared:
    """What every chunk's task needs besides its chunk (broadcast once)."""

    config: ForecasterConfig
    context: Context
    series: int

    def chunk(self, index: int) -> tuple[slice, Context]:
        """Chunk ``index``'s series ranks and context."""
        size = self.config.chunk_series
        ranks = slice(index * size, min((index + 1) * size, self.series))
        return ranks, self.context.chunk(ranks)

    def priced(self, index: int, chunk: _Chunk, priced: bool) -> Context:
        """Chunk ``index``'s context with its relative prices (``priced``: some series of
        every chunk has a price)."""
        context = self.chunk(index)[1]
        return replace(context, relative_price=chunk.relative_price) if priced else context

    def history(self, index: int, chunk: _Chunk) -> Any:
        """The chunk's history as one process fits it: prepared, closures censored."""
        return self.chunk(index)[1].censor(prepare(chunk.matrix.values, self.config))

    def sample(self, index: int) -> Any:
        ranks = self.chunk(index)[0]
        return calibration_sample(np.arange(ranks.start, ranks.stop), self.series, self.config)


def _shared_parts(shared: Any, item: tuple[int, _Chunk]) -> tuple[int, Any, Any, int]:
    """The chunk's weekday-index parts and, given a global model, its group totals; its
    days with a price."""
    index, chunk = item
    s: _Shared = shared.value
    y = s.history(index, chunk)
    pooled = s.config.seasonal.pooled_parts(y) if s.series > s.config.chunk_series else None
    totals = s.chunk(index)[1].group_totals(y) if s.context.plan is not None else {}
    return index, pooled, totals, chunk.priced_days


def _fit(shared: Any, pooled: Any, item: tuple[int, _Chunk]) -> tuple[int, _Chunk]:
    index, chunk = item
    s: _Shared = shared.value
    chunk.fit = fit_chunk(s.history(index, chunk), pooled, s.config, sample=s.sample(index))
    return index, chunk


def _close(shared: Any, item: tuple[int, _Chunk]) -> tuple[int, _Chunk]:
    """The chunk's fit ready to publish without the global model (see :func:`closing`)."""
    index, chunk = item
    s: _Shared = shared.value
    assert chunk.fit is not None  # noqa: S101 - fitted before
    days = s.history(index, chunk).shape[1]
    chunk.fit = closing(chunk.fit, s.chunk(index)[1].closed(days, s.config.horizon))
    return index, chunk


def _training_rows(
    shared: Any, trends: Any, share: float, priced: bool, item: tuple[int, _Chunk]
) -> tuple[int, list[str], Any]:
    """The chunk's sampled training rows of the global model, drawn as one process draws
    them (the same share, seeded by the chunk's first rank)."""
    index, chunk = item
    s: _Shared = shared.value
    assert chunk.fit is not None and s.context.plan is not None  # noqa: S101 - fitted before
    ranks = s.chunk(index)[0]
    context = s.priced(index, chunk, priced)
    model_config = s.config.global_model
    assert model_config is not None  # noqa: S101 - a plan needs one
    inputs = context.inputs(s.history(index, chunk), chunk.fit, trends.value)
    rows = global_model.training_rows(
        inputs, s.context.plan, model_config, share=share, seed=ranks.start
    )
    return index, global_model.feature_names(inputs), rows


def _blend(
    shared: Any, trends: Any, model_text: Any, priced: bool, item: tuple[int, _Chunk]
) -> tuple[int, _Chunk]:
    """The chunk's fit with the global model weighed in (see :func:`blend`)."""
    index, chunk = item
    s: _Shared = shared.value
    plan = s.context.plan
    assert chunk.fit is not None and plan is not None  # noqa: S101 - fitted before
    context = s.priced(index, chunk, priced)
    y = s.history(index, chunk)
    chunk.fit = blend(
        chunk.fit,
        context.inputs(y, chunk.fit, trends.value),
        global_model.Model.from_text(model_text.value),
        plan,
        sample=s.sample(index),
        closed=context.closed(y.shape[1], s.config.horizon),
    )
    return index, chunk


@dataclass(frozen=True)
class _Publication:
    """What step 6 needs besides the chunk."""

    conformal: Conformal
    config: ForecasterConfig
    now: datetime
    run_id: str
    table: str
    #: A backfill writes no items and archives only the days up to its last actual.
    backfill_until: date | None


def _calibration(item: tuple[int, _Chunk]) -> tuple[int, Any]:
    index, chunk = item
    assert chunk.fit is not None  # noqa: S101 - fitted by the stage before
    return index, chunk.fit.calibration


def _publish(
    publication: _Publication, item: tuple[int, _Chunk]
) -> tuple[int, dict[str, int], list[date], list[bytes]]:
    """Bound the chunk's forecasts, write its items (not for a backfill), and its archive
    rows by forecast day (the days, and their rows as Arrow IPC)."""
    _, chunk = item
    assert chunk.fit is not None  # noqa: S101 - fitted by the stage before
    result = combine([chunk.fit.forecast(publication.conformal)], publication.config)
    now = publication.now
    frame = forecast_frame(chunk.matrix, result, generated_at=now)
    written = 0
    if publication.backfill_until is None:
        written = write_forecasts(
            forecast_rows(frame),
            table_name=publication.table,
            now=now,
            run_id=publication.run_id,
            session=executor_session(),
        )
    else:
        until = pd.Timestamp(publication.backfill_until)
        frame = frame.loc[pd.to_datetime(frame["date"]) <= until]
    days = pd.to_datetime(frame["date"]).dt.date
    archive = [
        (day, pa.Table.from_pandas(rows, preserve_index=False))
        for day, rows in frame.groupby(days, sort=True)
    ]
    pieces = [to_bytes(with_partition_columns(rows, FORECASTS, day)) for day, rows in archive]
    return written, dict(Counter(result.model)), [day for day, _ in archive], pieces
