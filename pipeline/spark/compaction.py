"""Compaction on Spark: the steps of :mod:`pipeline.compaction.job`, spread over executors.

1. driver: load the manifest, list the open arrival days (the new objects, as in one
   process);
2. executors, one task per raw object: GET, parse, quarantine bad lines, split by event
   date, events too far from their arrival held aside (:func:`read_raw_object`);
3. executors, one task per UTC day the demand plan reads (:class:`DemandPlan`): the day's
   new rows, in listing order, merged into its ``sales`` partition and uploaded over it
   (:func:`merge_partition`), and the day's sales reduced per pair and location-local day
   (:class:`LocalDays`, whose reductions compose);
4. driver: the ``daily_demand`` local days in order from those reductions (the stock
   carried from one day to the next is the one sequential step; one row per pair per day),
   then partitions registered and the manifest committed, as in one process.

A partition is still replaced by one PUT and nothing is committed before every upload has
finished, so a crash at any step leaves the curated zone readable and the manifest
unchanged, and the re-run converges to the same rows: the guarantees of the
single-process path, from the same code.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from pipeline.compaction.catalog import register_partitions
from pipeline.compaction.demand import DaySales, LocalDays
from pipeline.compaction.job import (
    CompactionReport,
    DemandPlan,
    committed,
    curated_key,
    demand_builder,
    demand_plan,
    quarantine_skipped_locations,
    sales_batches,
)
from pipeline.compaction.lateness import Lateness
from pipeline.compaction.parquet_files import RowGroupWriter, merge_partition
from pipeline.compaction.raw_objects import fetch_raw_object
from pipeline.compaction.schema import (
    DAILY_DEMAND_SCHEMA,
    DAILY_DEMAND_TABLE,
    SALES_SCHEMA,
    SALES_TABLE,
)
from pipeline.compaction.state import MAX_OBJECTS, OPEN_DAYS, find_new, load_manifest
from pipeline.compaction.store import LakeStore
from pipeline.job_protocol import Progress, null_progress
from pipeline.lake import compaction_quarantine_key
from pipeline.lake.locations import LocationDefaults, load_locations
from pipeline.spark.arrow import from_bytes, to_bytes
from pipeline.spark.session import executor_store, slices

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

#: Parsed objects: (listing index, events, quarantined, held aside, unreadable,
#: [(day, rows as Arrow IPC)]).
Parsed = tuple[int, int, int, int, int, list[tuple[date, bytes]]]
#: A written UTC day: (day, new rows, duplicates, whether new rows came in, its sales
#: reduced per local day as Arrow IPC, the latest local day of its rows).
Written = tuple[date, int, int, bool, list[tuple[date, bytes]], date | None]


def parse_object(
    raw_bucket: str, curated_bucket: str, lateness: Lateness, item: tuple[int, str]
) -> Parsed:
    """Step 2 for one raw object (an executor task), read as one process reads it."""
    index, key = item
    store = executor_store()
    parsed = fetch_raw_object(store, raw_bucket, key, lateness)
    if parsed is None:  # deleted since the listing
        return index, 0, 0, 0, 0, []
    if parsed.rejected:
        source = f"s3://{raw_bucket}/{key}"
        body = "".join(r.to_json(source) + "\n" for r in parsed.rejected)
        store.put(
            curated_bucket, compaction_quarantine_key(key), body.encode(), "application/x-ndjson"
        )
    days = [(d, to_bytes(t)) for d, t in sorted(parsed.days.items())]
    return index, parsed.rows, parsed.quarantined, parsed.held, parsed.unreadable, days


def write_day(curated_bucket: str, plan: DemandPlan, group: tuple[date, Any]) -> Written:
    """Step 3 for one UTC day (an executor task); see :data:`Written`."""
    day, items = group
    pieces = sorted((i for i in items if i is not None), key=lambda piece: piece[0])
    store = executor_store()
    sales = LocalDays(plan.locations, plan.first)
    new_rows = duplicates = 0
    with tempfile.TemporaryDirectory(prefix="compaction-day-") as tmp:
        path = Path(tmp) / "existing.parquet"
        existing = path if store.download(curated_bucket, curated_key(day), path) else None
        merged = False
        if pieces:
            tables = [from_bytes(data) for _, data in pieces]

            def new(columns: list[str] | None) -> list[Any]:
                return [t.select(columns) if columns else t for t in tables]

            out = Path(tmp) / "sales.parquet"
            result = merge_partition(existing, new, out, SALES_SCHEMA, on_rows=sales.add)
            duplicates = result.duplicates
            if result.new_rows:
                store.upload(out, curated_bucket, curated_key(day))
                new_rows, merged = result.new_rows, True
        if existing is not None and not merged:
            for batch in sales_batches(existing):
                sales.add(batch)
    reduced = [(local, to_bytes(part)) for local, part in sales.end_partition().items()]
    return day, new_rows, duplicates, bool(pieces), reduced, sales.last


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
) -> CompactionReport:
    """Compact the raw objects not compacted yet, on ``spark``; see the module doc.

    Same arguments, result and guarantees as :func:`pipeline.compaction.run_compaction`.
    """
    session = session or boto3.session.Session()
    store = LakeStore.from_session(session)
    manifest = load_manifest(store, curated_bucket)
    pending = find_new(store, raw_bucket, manifest, max_objects=max_objects)
    listing = pending.objects
    if not listing:
        return CompactionReport(raw_keys_listed=pending.listed, manifest_entries=manifest.entries)
    sc = spark.sparkContext
    progress("read raw", 0, len(listing))
    parsed = (
        sc.parallelize(list(enumerate(o.key for o in listing)), slices(sc, len(listing)))
        .map(partial(parse_object, raw_bucket, curated_bucket, lateness or Lateness()))
        .cache()
    )
    try:
        summary = parsed.map(lambda p: (p[1], p[2], p[3], p[4], [d for d, _ in p[5]])).collect()
        progress("read raw", len(listing), len(listing))
        touched = sorted({d for *_, days in summary for d in days})
        report = {
            "events_in": sum(s[0] for s in summary),
            "quarantined": sum(s[1] for s in summary),
            "held_aside": sum(s[2] for s in summary),
            "unreadable_objects": sum(s[3] for s in summary),
        }
        days: list[date] = []
        written: list[Written] = []
        plan: DemandPlan | None = None
        locations = load_locations(store, curated_bucket, location_defaults)
        skipped = quarantine_skipped_locations(store, curated_bucket, locations)
        if touched:
            plan = demand_plan(touched, manifest, locations)
            days = plan.read
            progress("write partitions", 0, len(days))
            pieces = parsed.flatMap(lambda p: [(d, (p[0], data)) for d, data in p[5]])
            every_day = sc.parallelize([(d, None) for d in days], slices(sc, len(days)))
            written = sorted(
                every_day.union(pieces)
                .groupByKey(slices(sc, len(days)))
                .map(partial(write_day, curated_bucket, plan))
                .collect()
            )
            manifest.max_event_date = plan.end
    finally:
        parsed.unpersist()
    demand_days = _write_demand(store, curated_bucket, plan, written, progress)
    progress("register partitions", 0, 1)
    # Like one process: every day that received rows is registered, new or not (a re-run
    # after a crash between the uploads and the registration registers them then).
    sales_days = [w[0] for w in written if w[3]]
    for table, registered in ((SALES_TABLE, sales_days), (DAILY_DEMAND_TABLE, demand_days)):
        if registered:
            register_partitions(
                database=database,
                table=table,
                bucket=curated_bucket,
                days=registered,
                session=session,
            )
    progress("register partitions", 1, 1)
    return committed(
        store,
        curated_bucket,
        manifest,
        pending,
        now=now,
        progress=progress,
        open_days=open_days,
        events_in=report["events_in"],
        duplicates_dropped=sum(w[2] for w in written),
        rows_written=sum(w[1] for w in written),
        partitions_written=sum(1 for w in written if w[1]),
        quarantined=report["quarantined"],
        held_aside=report["held_aside"],
        unreadable_objects=report["unreadable_objects"],
        location_rows_skipped=skipped,
        demand_days_written=len(demand_days),
    )


def _write_demand(
    store: LakeStore,
    curated_bucket: str,
    plan: DemandPlan | None,
    written: list[Written],
    progress: Progress,
) -> list[date]:
    """Step 4: each local day's demand from its reduced sales, the stock carried day to day.

    A local day's reductions are taken in UTC-day order, as one process keeps them.
    """
    if plan is None:
        return []
    parts: dict[date, list[pa.Table]] = {}
    for _, _, _, _, reduced, _ in written:
        for local, data in reduced:
            parts.setdefault(local, []).append(from_bytes(data))
    seen = [w[5] for w in written if w[5] is not None]
    days = plan.local_days(max(seen) if seen else None)
    with tempfile.TemporaryDirectory(prefix="compaction-demand-") as tmp:
        path = Path(tmp) / "previous.parquet"
        key = curated_key(plan.first - timedelta(days=1), DAILY_DEMAND_TABLE)
        previous = path if store.download(curated_bucket, key, path) else None
        builder = demand_builder(previous)
        with ThreadPoolExecutor(4, thread_name_prefix="compaction-demand") as pool:
            uploads = []
            for i, day in enumerate(days, start=1):
                rows = builder.finish(day, DaySales(parts=parts.pop(day, [])))
                out = Path(tmp) / f"demand-{day.isoformat()}.parquet"
                writer = RowGroupWriter(out, DAILY_DEMAND_SCHEMA)
                writer.write(rows)
                writer.close()
                uploads.append(
                    pool.submit(
                        store.upload, out, curated_bucket, curated_key(day, DAILY_DEMAND_TABLE)
                    )
                )
                progress("write partitions", i, len(days))
            for upload in uploads:
                upload.result()
    return days
