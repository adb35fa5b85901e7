"""Compaction on Spark: the same run as :mod:`pipeline.compaction.job`, into the same tables.

1. driver: load the manifest, list the open arrival days (the new objects, as in one
   process), make sure both Iceberg tables exist (:func:`~pipeline.lake.tables.ensure_table`,
   the one definition both engines use);
2. executors, one task per few raw objects (``mapInArrow``): GET, parse, quarantine bad
   lines, hold aside events too far from their arrival (:func:`fetch_raw_object`, as one
   process reads them); the typed rows enter Spark as Arrow batches, each with its object's
   listing index and its position in the object;
3. Spark: the new rows de-duplicated by ``event_id`` within their event day (the first in
   listing then line order wins) and against the existing rows of the touched days (an
   anti-join on ``event_id``: the existing row wins), then appended to ``sales`` in one
   commit, which writes new data files only;
4. executors, one task per UTC day the demand plan reads (:class:`DemandPlan`): the day's
   rows, read back from ``sales`` (the run's own commit included), reduced per pair and
   location-local day (:class:`LocalDays`, whose reductions compose); the driver builds the
   local days in order from those reductions (the stock carried from one day to the next
   is the one sequential step), and replaces the rebuilt days of ``daily_demand`` in one
   commit (``overwrite`` by the days' partition filter: delete and append together);
5. driver: the manifest committed last (:func:`committed`), as in one process.

A crash at any step leaves each table at its last snapshot and the manifest unchanged. The
re-run reads the same raw objects: its anti-join finds the rows an earlier attempt appended
(nothing is appended twice) and it rebuilds the same demand days from the same rows, so it
converges to the rows one uncrashed run writes.

Rows cross into Python twice, both as Arrow batches: once parsed (step 2: reading raw
NDJSON with Spark's own reader would need the S3A connector, its jars and a second S3
client configuration, and would bypass the contract's parser and its quarantine reasons),
and once as the demand's input columns of the days read (step 4: the stock carry and the
local days are :mod:`pipeline.compaction.demand`'s, so both engines build the same rows).
De-duplication, the anti-join and every table write stay in the JVM.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.compaction.demand import DEMAND_INPUT, DaySales, DemandBuilder, LocalDays
from pipeline.compaction.discovery import discover, raw_queue, released_on_failure, settle
from pipeline.compaction.job import (
    CompactionReport,
    DemandPlan,
    committed,
    demand_plan,
    history_of,
    quarantine_skipped_locations,
)
from pipeline.compaction.lateness import Lateness
from pipeline.compaction.raw_objects import fetch_raw_object
from pipeline.compaction.state import MAX_OBJECTS, OPEN_DAYS, Manifest, Pending, load_manifest
from pipeline.compaction.store import LakeStore
from pipeline.job_protocol import Progress, null_progress
from pipeline.lake import compaction_quarantine_key
from pipeline.lake.locations import LocationDefaults, load_locations
from pipeline.lake.tables import (
    DAILY_DEMAND,
    DEMAND_HISTORY,
    PARTITION_COLUMNS,
    SALES,
    days_filter,
    ensure_table,
    iceberg_catalog,
    with_partition_columns,
)
from pipeline.spark.arrow import collect_arrow, from_bytes, to_bytes
from pipeline.spark.session import executor_store, settled_worker, slices, table_name
from pipeline.spark.tables import UNSHUFFLED, committing, days_condition, ipc_frame

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyiceberg.catalog import Catalog
    from pyspark.sql import DataFrame, SparkSession

    from pipeline.compaction.queue import RawQueue
    from pipeline.lake.locations import LocationDefaults

#: A parsed row's listing index and its position among its object's rows of that day.
OBJECT, LINE = "_object", "_line"
#: Per raw object, one row with no event: its counts (events, quarantined, held, unreadable).
COUNTS: Final = ("_events", "_quarantined", "_held", "_unreadable")
#: Step 4's output: per UTC day one row with its latest local day, then one per local day
#: with that day's sales reduced (Arrow IPC).
REDUCED: Final = "utc_day date, last date, local_day date, data binary"
#: Rows per Arrow IPC value sent from the driver to the tasks that write them.
BATCH_ROWS: Final = 65536
#: The snapshot property that tags a run's append to ``sales``.
RUN_PROPERTY: Final = "fmcg.compaction-run"
#: The partition columns of a row, as a filter matches them.
DAY_KEY: Final = list(PARTITION_COLUMNS)


def run_compaction_spark(
    *,
    spark: SparkSession,
    raw_bucket: str,
    curated_bucket: str,
    database: str,
    session: boto3.session.Session | None = None,
    now: datetime | None = None,
    progress: Progress = null_progress,
    location_defaults: LocationDefaults | None = None,
    max_objects: int = MAX_OBJECTS,
    open_days: int = OPEN_DAYS,
    lateness: Lateness | None = None,
    raw_queue_url: str | None = None,
    sqs_client: Any = None,
) -> CompactionReport:
    """Compact the raw objects not compacted yet, on ``spark``; see the module doc.

    Same arguments, result and guarantees as :func:`pipeline.compaction.run_compaction`
    (its backfill excepted: one process does that, bounded by what it is given).
    """
    session = session or boto3.session.Session()
    store = LakeStore.from_session(session)
    manifest = load_manifest(store, curated_bucket)
    queue = raw_queue(session, raw_queue_url, sqs_client)
    pending = discover(store, raw_bucket, manifest, queue=queue, max_objects=max_objects)
    if not pending.objects:
        settle(queue, pending)  # messages that named no raw object
        return CompactionReport(
            raw_keys_listed=pending.listed,
            manifest_entries=manifest.entries,
            queue_messages=len(pending.receipts),
            queue_messages_ignored=pending.ignored,
        )
    with released_on_failure(queue, pending):
        return _compact(
            spark,
            store,
            session,
            manifest,
            pending,
            queue=queue,
            raw_bucket=raw_bucket,
            curated_bucket=curated_bucket,
            database=database,
            now=now,
            progress=progress,
            location_defaults=location_defaults,
            open_days=open_days,
            lateness=lateness,
        )


def _compact(
    spark: SparkSession,
    store: LakeStore,
    session: boto3.session.Session,
    manifest: Manifest,
    pending: Pending,
    *,
    queue: RawQueue | None,
    raw_bucket: str,
    curated_bucket: str,
    database: str,
    now: datetime | None,
    progress: Progress,
    location_defaults: LocationDefaults | None,
    open_days: int,
    lateness: Lateness | None,
) -> CompactionReport:
    """The run once its raw objects are known (the messages are released if it fails)."""
    listing = pending.objects
    catalog = iceberg_catalog(session)
    for spec in (SALES, DAILY_DEMAND):
        ensure_table(catalog, database, curated_bucket, spec)
    sales_table = table_name(database, SALES.name)
    sales_schema = spark.table(sales_table).schema

    progress("read raw", 0, len(listing))
    parsed = _parsed(
        spark,
        sales_schema,
        raw_bucket=raw_bucket,
        curated_bucket=curated_bucket,
        lateness=lateness,
        listing=listing,
    ).cache()
    try:
        counts, touched = _counts_and_days(parsed)
        progress("read raw", len(listing), len(listing))
        rows = parsed.where(parsed[OBJECT].isNotNull() & parsed["event_id"].isNotNull())
        locations = load_locations(store, curated_bucket, location_defaults)
        skipped = quarantine_skipped_locations(store, curated_bucket, locations)
        written = {"rows_written": 0, "duplicates_dropped": 0, "partitions_written": 0}
        demand_days: list[date] = []
        plan = demand_plan(touched, manifest, locations) if touched else None
        # Spark writes a table's data files inside the action that commits them: the
        # step of the files has no work of its own, the commits report as one process's do.
        if plan is not None:
            progress("write partitions", 0, 1)
            progress("write partitions", 1, 1)
        progress("commit tables", 0, 2)
        if plan is not None:
            added = _append_sales(spark, rows, touched, catalog=catalog, database=database)
            written = {
                "rows_written": added.rows,
                "duplicates_dropped": counts["_events"] - added.rows,
                "partitions_written": added.partitions,
            }
        progress("commit tables", 1, 2)
        if plan is not None:
            demand_days = _replace_demand(spark, database, plan)
            manifest.max_event_date = plan.end
        progress("commit tables", 2, 2)
    finally:
        parsed.unpersist()
    return committed(
        store,
        curated_bucket,
        manifest,
        pending,
        now=now,
        progress=progress,
        open_days=open_days,
        queue=queue,
        events_in=counts["_events"],
        quarantined=counts["_quarantined"],
        held_aside=counts["_held"],
        unreadable_objects=counts["_unreadable"],
        location_rows_skipped=skipped,
        demand_days_written=len(demand_days),
        rows_written=written["rows_written"],
        duplicates_dropped=written["duplicates_dropped"],
        partitions_written=written["partitions_written"],
    )


def _parsed(
    spark: SparkSession,
    sales_schema: Any,
    *,
    raw_bucket: str,
    curated_bucket: str,
    lateness: Lateness | None,
    listing: list[Any],
) -> DataFrame:
    """Step 2: every raw object's typed rows (and one row of counts per object)."""
    from pyspark.sql.types import IntegerType, LongType, StructField, StructType

    out = StructType(
        [
            *sales_schema.fields,
            StructField(OBJECT, IntegerType()),
            StructField(LINE, LongType()),
            *(StructField(name, LongType()) for name in COUNTS),
        ]
    )
    sc = spark.sparkContext
    keys = sc.parallelize(list(enumerate(o.key for o in listing)), slices(sc, len(listing)))
    frame = spark.createDataFrame(keys, "index int, key string")
    parse = partial(parse_objects, raw_bucket, curated_bucket, lateness or Lateness(), out)
    return frame.mapInArrow(parse, out)


def parse_objects(
    raw_bucket: str,
    curated_bucket: str,
    lateness: Lateness,
    out: Any,
    batches: Iterator[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """Step 2 for a few raw objects (an executor task), read as one process reads them."""
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(out)
    store = executor_store()
    settled_worker()
    for batch in batches:
        for index, key in zip(
            batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True
        ):
            parsed = fetch_raw_object(store, raw_bucket, key, lateness)
            if parsed is None:  # deleted since the listing
                continue
            if parsed.rejected:
                source = f"s3://{raw_bucket}/{key}"
                body = "".join(r.to_json(source) + "\n" for r in parsed.rejected)
                store.put(
                    curated_bucket,
                    compaction_quarantine_key(key),
                    body.encode(),
                    "application/x-ndjson",
                )
            numbers = (parsed.rows, parsed.quarantined, parsed.held, parsed.unreadable)
            counts = {name: [n] for name, n in zip(COUNTS, numbers, strict=True)}
            values = {f.name: [None] for f in schema} | {OBJECT: [index]} | counts
            yield pa.RecordBatch.from_pydict(values, schema=schema)
            for day, rows in sorted(parsed.days.items()):
                table = with_partition_columns(rows, SALES, day)
                n = table.num_rows
                table = table.append_column(OBJECT, pa.array(np.full(n, index, np.int32)))
                table = table.append_column(LINE, pa.array(np.arange(n, dtype=np.int64)))
                for name in COUNTS:
                    table = table.append_column(name, pa.nulls(n, pa.int64()))
                yield from table.cast(schema).to_batches()


def _counts_and_days(parsed: DataFrame) -> tuple[dict[str, int], list[date]]:
    """The objects' counts added up, and the UTC event days of their rows (one small job)."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

    found = parsed.groupBy(*DAY_KEY).agg(*(F.sum(name).alias(name) for name in COUNTS)).collect()
    counts = {name: sum(int(r[name] or 0) for r in found) for name in COUNTS}
    days = [date(int(r["year"]), int(r["month"]), int(r["day"])) for r in found if r["year"]]
    return counts, sorted(days)


@dataclass(frozen=True)
class Added:
    """What an append committed (from its snapshot's summary)."""

    rows: int
    partitions: int


def _append_sales(
    spark: SparkSession, rows: DataFrame, touched: list[date], *, catalog: Catalog, database: str
) -> Added:
    """Step 3: the new rows, first occurrence per day and ``event_id``, that the touched days
    of ``table`` do not hold yet, appended in one commit (tagged with a run id, whose
    snapshot summary says what it added: no count before the write)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

    table = table_name(database, SALES.name)
    first = Window.partitionBy(*DAY_KEY, "event_id").orderBy(OBJECT, LINE)
    candidates = rows.withColumn("_rank", F.row_number().over(first)).where(F.col("_rank") == 1)
    existing = spark.table(table).where(days_filter(touched)).select(*DAY_KEY, "event_id")
    fresh = candidates.join(existing, [*DAY_KEY, "event_id"], "left_anti")
    run_id = uuid.uuid4().hex
    writer = fresh.select(*spark.table(table).columns).writeTo(table).options(**UNSHUFFLED)
    with committing(table):
        writer.option(f"snapshot-property.{RUN_PROPERTY}", run_id).append()
    for snapshot in catalog.load_table((database, SALES.name)).snapshots()[::-1]:
        summary = snapshot.summary
        if summary is not None and summary.get(RUN_PROPERTY) == run_id:
            return Added(
                int(summary.get("added-records") or 0),
                int(summary.get("changed-partition-count") or 0),
            )
    return Added(0, 0)  # Spark commits nothing when there is nothing to append


def _replace_demand(spark: SparkSession, database: str, plan: DemandPlan) -> list[date]:
    """Step 4: the plan's local days of ``daily_demand`` rebuilt from ``sales`` and replaced
    in one commit; the days written."""
    sales = spark.table(table_name(database, SALES.name)).where(days_filter(plan.read))
    utc_days = len(plan.read)
    reduced = (
        sales.select(*DEMAND_INPUT, *DAY_KEY)
        .repartition(slices(spark.sparkContext, utc_days), *DAY_KEY)
        .mapInArrow(
            partial(reduce_days, plan), "utc_day date, last date, local_day date, data binary"
        )
    )
    parts: dict[date, list[tuple[date, pa.Table]]] = {}
    seen: list[date] = []
    for row in reduced.collect():
        if row["last"] is not None:
            seen.append(row["last"])
        if row["data"] is not None:
            parts.setdefault(row["local_day"], []).append((row["utc_day"], from_bytes(row["data"])))
    days = plan.local_days(max(seen) if seen else None)
    demand = table_name(database, DAILY_DEMAND.name)
    previous = spark.table(demand).where(days_filter([plan.first - timedelta(days=1)]))
    builder = DemandBuilder.from_previous_day(collect_arrow(previous))
    history = _imported_history(spark, database, plan.first)
    built = []
    for day in days:
        # A local day's reductions in UTC-day order, as one process keeps them.
        pieces = [t for _, t in sorted(parts.pop(day, []), key=lambda p: p[0])]
        rows = builder.finish(day, DaySales(parts=pieces), history_of(history, day))
        built.append(with_partition_columns(rows, DAILY_DEMAND, day))
    if built:
        rows = pa.concat_tables(built)
        pieces = [to_bytes(pa.Table.from_batches([b])) for b in rows.to_batches(BATCH_ROWS)]
        sc = spark.sparkContext
        frame = ipc_frame(spark, sc.parallelize(pieces, slices(sc, len(pieces))), demand)
        with committing(demand):
            frame.writeTo(demand).options(**UNSHUFFLED).overwrite(days_condition(days))
    return days


def _imported_history(spark: SparkSession, database: str, first: date) -> pa.Table | None:
    """The imported history (``demand_history``) from ``first`` on, as the single engine
    reads it; ``None`` before a first import created the table."""
    from pyspark.errors import AnalysisException

    try:
        frame = spark.table(table_name(database, DEMAND_HISTORY.name))
    except AnalysisException:
        return None
    return collect_arrow(frame.where(f"date >= DATE '{first.isoformat()}'"))


def reduce_days(plan: DemandPlan, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Step 4 for a few UTC days (an executor task): each day's sales reduced per local day.

    Rows are taken in ``event_id`` order, whatever order the scan gave them in, so a sum's
    order (and its last bit) does not depend on the files' layout.
    """
    settled_worker()
    tables = [pa.Table.from_batches([b]) for b in batches if b.num_rows]
    if not tables:
        return
    rows = pa.concat_tables(tables)
    keys = pc.binary_join_element_wise(*(rows.column(c) for c in DAY_KEY), "-")
    for key in sorted(pc.unique(keys).to_pylist()):
        day = date.fromisoformat(key)
        part = rows.filter(pc.equal(keys, key)).sort_by("event_id").select(DEMAND_INPUT)
        local = LocalDays(plan.locations, plan.first)
        local.add(part)
        reduced = local.end_partition()
        yield pa.RecordBatch.from_pydict(
            {
                "utc_day": [day] * (1 + len(reduced)),
                "last": [local.last, *([None] * len(reduced))],
                "local_day": [None, *reduced],
                "data": [None, *(to_bytes(t) for t in reduced.values())],
            },
            schema=pa.schema(
                [
                    ("utc_day", pa.date32()),
                    ("last", pa.date32()),
                    ("local_day", pa.date32()),
                    ("data", pa.binary()),
                ]
            ),
        )
