"""The compaction run: raw NDJSON (arrival date) to the curated Iceberg tables (event date).

Steps, in this order (each one safe to repeat; the manifest PUT at the end commits the run):

1. load the manifest and find the new raw objects, at most ``max_objects`` of them, oldest
   first (:mod:`pipeline.compaction.discovery`): the notifications waiting in the raw zone's
   event queue, or, without a queue (the sweep), the keys after the manifest's watermark
   that it does not hold (:mod:`pipeline.compaction.state`);
2. per raw object: parse, enforce types, quarantine bad lines (a deterministic key per raw
   object, so a re-run overwrites the same quarantine object), spool rows per event date;
3. one pass over the days from the first touched day (or the day after the last known
   event date) through the last event date, planned once against the ``sales`` table: a
   touched day's rows that its current data files lack (by ``event_id``) become one new
   data file; the ``daily_demand`` day is reduced from the day's existing and new rows as
   they stream by and written as a new data file of its own;
4. once every file is uploaded, commit ``sales`` (the new files appended) and then
   ``daily_demand`` (the rebuilt days' old files replaced by the new ones), one commit each;
5. commit the manifest; then delete the queue messages the run took (a run that fails
   before hands them back: the next one reads the same objects again).

Worker threads overlap S3 round trips and the GIL-free Arrow work with the main thread
without changing that order where it matters: raw objects are fetched and parsed a few MiB
ahead of the spool, a day's data files downloaded a few days ahead of the merge, and each
written file is closed (its last row group encoded) and uploaded behind it while the main
thread goes on to the day's demand. Every one of them has finished (or raised) before the
table commits and the manifest commit.
"""

from __future__ import annotations

import json
import tempfile
import uuid
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import boto3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.compaction.demand import DEMAND_INPUT, DemandBuilder, LocalDays
from pipeline.compaction.discovery import discover, raw_queue, released_on_failure, settle
from pipeline.compaction.lateness import Lateness, held_records
from pipeline.compaction.parquet_files import (
    DaySpool,
    RowGroupWriter,
    conform,
    read_batch_rows,
    write_new_rows,
)
from pipeline.compaction.raw_objects import RawRows, fetch_raw_object, read_raw_object
from pipeline.compaction.schema import (
    DAILY_DEMAND_SCHEMA,
    DAILY_DEMAND_TABLE,
    SALES_SCHEMA,
    SALES_TABLE,
)
from pipeline.compaction.state import (
    MAX_OBJECTS,
    OPEN_DAYS,
    Manifest,
    Pending,
    commit_run,
    load_manifest,
)
from pipeline.compaction.store import LakeStore, ObjectInfo
from pipeline.errors import TransientError
from pipeline.job_protocol import Progress, null_progress
from pipeline.lake import COMPACTION_QUARANTINE_PREFIX, compaction_quarantine_key
from pipeline.lake.adopt import refuse_unadopted
from pipeline.lake.locations import LocationDefaults, Locations, load_locations
from pipeline.lake.tables import (
    DAILY_DEMAND,
    DEMAND_HISTORY,
    SALES,
    TableSpec,
    data_key,
    day_filter,
    days_filter,
    ensure_table,
    iceberg_catalog,
    load_table,
    planned_files,
    translated,
    with_partition_columns,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from pyiceberg.table import Table

    from pipeline.compaction.queue import RawQueue

INVALID_LOCATION_ROW: Final = "invalid_location_row"
#: S3 calls in flight at once (raw GETs ahead of the parser, partition uploads behind it).
IO_THREADS: Final = 4
#: Raw bytes fetched and parsed ahead of the spool: enough to keep every core parsing, small
#: enough that memory still follows a few raw objects (at least one is always fetched).
PREFETCH_BYTES: Final = 8 << 20


@dataclass(frozen=True)
class CompactionReport:
    """What one run did."""

    raw_objects: int = 0
    bytes_in: int = 0
    events_in: int = 0
    duplicates_dropped: int = 0
    rows_written: int = 0
    partitions_written: int = 0
    quarantined: int = 0
    demand_days_written: int = 0
    #: New raw objects left for the next runs (a run takes at most ``max_objects``).
    raw_objects_waiting: int = 0
    #: Raw keys the run listed (the open window's, not the lake's; none from the queue).
    raw_keys_listed: int = 0
    #: Messages the run took from the raw zone's event queue, and those that named no raw
    #: object (S3's test event, an unknown body): ignored, deleted with the others.
    queue_messages: int = 0
    queue_messages_ignored: int = 0
    #: Compacted objects the manifest holds after the run (bounded by the open window).
    manifest_entries: int = 0
    #: Events held aside as ``too_late`` or ``future`` (:mod:`pipeline.compaction.lateness`).
    held_aside: int = 0
    #: Raw objects the job may not read, quarantined (:mod:`pipeline.compaction.raw_objects`).
    unreadable_objects: int = 0
    #: Rows of the locations table skipped as unusable (those locations took the defaults).
    location_rows_skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def open_tables(
    session: boto3.session.Session, store: LakeStore, database: str, curated_bucket: str
) -> dict[str, Table]:
    """The run's tables (``sales``, ``daily_demand``), created on the first run; a lake
    with Hive-layout history not adopted yet is refused (:mod:`pipeline.lake.adopt`)."""
    catalog = iceberg_catalog(session)
    tables = {}
    for spec in (SALES, DAILY_DEMAND):
        table = ensure_table(catalog, database, curated_bucket, spec)
        refuse_unadopted(store, curated_bucket, table, spec)
        tables[spec.name] = table
    # Imported history, laid over the days the run rebuilds (none before a first import).
    history = load_table(catalog, database, DEMAND_HISTORY)
    if history is not None:
        tables[DEMAND_HISTORY.name] = history
    return tables


def run_compaction(
    *,
    raw_bucket: str,
    curated_bucket: str,
    database: str,
    session: boto3.session.Session | None = None,
    now: datetime | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    location_defaults: LocationDefaults | None = None,
    max_objects: int = MAX_OBJECTS,
    open_days: int = OPEN_DAYS,
    lateness: Lateness | None = None,
    backfill: Sequence[str] = (),
    raw_queue_url: str | None = None,
    sqs_client: Any = None,
) -> CompactionReport:
    """Compact the raw objects not compacted yet into the curated zone; see the module doc.

    At most ``max_objects`` raw objects per run, oldest arrival first; an arrival day
    closes ``open_days`` after the newest (:mod:`pipeline.compaction.state`). Events
    further from their arrival than ``lateness`` allows (default :class:`Lateness`) are
    held aside in the compaction quarantine (:mod:`pipeline.compaction.lateness`).

    ``backfill``: compaction quarantine keys (curated bucket) whose held-aside events to
    merge instead, whatever their lateness; the manifest is neither read nor written, and
    ``daily_demand`` is rebuilt for the days around those events only (the stock they
    leave is not carried past them).

    ``raw_queue_url``: the raw zone's event queue, which the run drains instead of listing
    (through ``sqs_client``, by default one from ``session``); its messages are deleted once
    the run has committed (:mod:`pipeline.compaction.discovery`).

    Daily demand is by each location's calendar day: its zone from the curated bucket's
    locations table, else ``location_defaults`` (:mod:`pipeline.lake.locations`).

    Re-running with no new raw data changes nothing. A failure at any point (a raised
    :class:`~pipeline.errors.TransientError`, a killed process) leaves the curated zone
    readable and the manifest uncommitted; the next run converges to the same data.
    """
    session = session or boto3.session.Session()
    store = LakeStore.from_session(session)
    report_progress = progress or null_progress
    queue = None
    if backfill:
        manifest = Manifest()
        pending = Pending([store.head(curated_bucket, key) for key in backfill])
    else:
        manifest = load_manifest(store, curated_bucket)
        queue = raw_queue(session, raw_queue_url, sqs_client)
        pending = discover(store, raw_bucket, manifest, queue=queue, max_objects=max_objects)
    listing = pending.objects
    if not listing:
        settle(queue, pending)  # messages that named no raw object
        return CompactionReport(
            raw_keys_listed=pending.listed,
            manifest_entries=manifest.entries,
            queue_messages=len(pending.receipts),
            queue_messages_ignored=pending.ignored,
        )
    with (
        released_on_failure(queue, pending),
        tempfile.TemporaryDirectory(prefix="compaction-") as tmp,
        # Inside the directory's block: a failure waits for uploads before files go away.
        ThreadPoolExecutor(IO_THREADS, thread_name_prefix="compaction-io") as pool,
    ):
        # Started now, needed after the raw read (loading Glue's service model into the
        # session and the tables' metadata take a few round trips).
        tables = pool.submit(open_tables, session, store, database, curated_bucket)
        run = _Run(
            store,
            raw_bucket,
            curated_bucket,
            Path(tmp),
            report_progress,
            pool,
            tables,
            lateness=lateness or Lateness(),
            backfill=bool(backfill),
        )
        locations = pool.submit(load_locations, store, curated_bucket, location_defaults)
        spool = DaySpool(run.work, SALES_SCHEMA)
        try:
            run.read_raw(listing, spool)
        finally:
            spool.close()
        touched = spool.days
        skipped = quarantine_skipped_locations(store, curated_bucket, locations.result())
        demand_days: list[date] = []
        if touched and backfill:
            for plan in backfill_plans(touched, locations.result()):
                demand_days += run.write_days(spool, plan)
        elif touched:
            plan = demand_plan(touched, manifest, locations.result())
            demand_days = run.write_days(spool, plan)
            manifest.max_event_date = plan.end
        run.commit_tables(demand_days)
        counts = {
            "events_in": run.counts.get("events_in", 0),
            "duplicates_dropped": run.counts.get("duplicates", 0),
            "rows_written": run.counts.get("rows_written", 0),
            "partitions_written": run.counts.get("partitions_written", 0),
            "quarantined": run.counts.get("quarantined", 0),
            "held_aside": run.counts.get("held_aside", 0),
            "unreadable_objects": run.counts.get("unreadable", 0),
            "location_rows_skipped": skipped,
            "demand_days_written": len(demand_days),
        }
        if backfill:
            return CompactionReport(
                raw_objects=len(listing), bytes_in=sum(o.size for o in listing), **counts
            )
        report = committed(
            store,
            curated_bucket,
            manifest,
            pending,
            now=now,
            open_days=open_days,
            progress=report_progress,
            queue=queue,
            **counts,
        )
    return report


def committed(
    store: LakeStore,
    curated_bucket: str,
    manifest: Manifest,
    pending: Pending,
    *,
    now: datetime | None,
    progress: Progress,
    open_days: int = OPEN_DAYS,
    queue: RawQueue | None = None,
    **counts: int,
) -> CompactionReport:
    """Commit the run (the manifest takes ``pending.objects`` as compacted, or the queue's
    messages are deleted once it is durable) and say what it did: the last step of either
    engine."""
    commit_run(
        store,
        curated_bucket,
        manifest,
        pending,
        compacted_at=now or datetime.now(UTC),
        open_days=open_days,
        progress=progress,
    )
    settle(queue, pending)
    listing = pending.objects
    return CompactionReport(
        raw_objects=len(listing),
        bytes_in=sum(o.size for o in listing),
        raw_objects_waiting=pending.left,
        raw_keys_listed=pending.listed,
        manifest_entries=manifest.entries,
        queue_messages=len(pending.receipts),
        queue_messages_ignored=pending.ignored,
        **counts,
    )


def demand_range(touched: list[date], manifest: Manifest) -> tuple[date, date]:
    """The days whose demand changes: from the first touched day (or the day after the last
    known event date, whose stock now carries further) through the last event date."""
    start, end = touched[0], touched[-1]
    if manifest.max_event_date is not None:
        start = min(start, manifest.max_event_date + timedelta(days=1))
        end = max(end, manifest.max_event_date)
    return start, end


@dataclass(frozen=True)
class DemandPlan:
    """Which sales partitions (UTC days) a run reads and which local days it rebuilds.

    A location's calendar day spans the UTC days around it (``spill`` of them each side:
    0 when every location keeps UTC, else 1), so the rebuild starts ``spill`` days before
    the first UTC day whose demand changes, and reads ``spill`` more days before that for
    the rows of zones ahead of UTC. Local day ``d`` is complete once UTC day
    ``d + spill`` is read. With every location at UTC this is exactly the UTC plan.
    """

    locations: Locations
    #: The first local day to rebuild.
    first: date
    #: The last UTC day with sales (the manifest's last event date after the run).
    end: date
    spill: int

    @property
    def read(self) -> list[date]:
        """The UTC sales partitions to read, in order."""
        start = self.first - timedelta(days=self.spill)
        return [start + timedelta(days=i) for i in range((self.end - start).days + 1)]

    def complete_through(self, utc_day: date) -> date:
        """The last local day complete once ``utc_day`` has been read."""
        return utc_day - timedelta(days=self.spill)

    def local_days(self, last: date | None) -> list[date]:
        """The local days to rebuild, through ``last`` (the latest local day of any sale
        read, which the run always reaches: it reads through the last UTC day)."""
        last = self.end if last is None else last
        return [self.first + timedelta(days=i) for i in range((last - self.first).days + 1)]


#: Where a run puts the locations table's skipped rows (rewritten by every run that has any).
LOCATIONS_QUARANTINE_KEY: Final = COMPACTION_QUARANTINE_PREFIX + "reference/locations.ndjson"


def quarantine_skipped_locations(store: LakeStore, bucket: str, locations: Locations) -> int:
    """Write the locations table's skipped rows, each with its reason, to the compaction
    quarantine (one object, replaced by each run); how many there were."""
    if locations.skipped:
        body = "".join(
            json.dumps({"source": "reference/locations/", "reason": INVALID_LOCATION_ROW,
                        "detail": detail}, separators=(",", ":")) + "\n"
            for detail in locations.skipped
        )  # fmt: skip
        store.put(bucket, LOCATIONS_QUARANTINE_KEY, body.encode(), "application/x-ndjson")
    return len(locations.skipped)


def backfill_plans(touched: list[date], locations: Locations) -> list[DemandPlan]:
    """One plan per run of neighbouring touched days: a backfill rebuilds the days around
    what it was given (an event of 2000-01-02 rebuilds three days, not 26 years)."""
    spill = 0 if locations.all_utc else 1
    groups: list[list[date]] = []
    for day in touched:
        if groups and (day - groups[-1][-1]).days <= 1 + 2 * spill:
            groups[-1].append(day)
        else:
            groups.append([day])
    return [DemandPlan(locations, g[0] - timedelta(days=spill), g[-1], spill) for g in groups]


def demand_plan(touched: list[date], manifest: Manifest, locations: Locations) -> DemandPlan:
    """The :class:`DemandPlan` of a run that touched the UTC days ``touched``."""
    start, end = demand_range(touched, manifest)
    spill = 0 if locations.all_utc else 1
    return DemandPlan(locations, start - timedelta(days=spill), end, spill)


@dataclass
class _Run:
    """The state of one run: where things go, what was counted, whom to tell."""

    store: LakeStore
    raw_bucket: str
    curated_bucket: str
    work: Path
    report_progress: Callable[[str, int, int], None]
    pool: ThreadPoolExecutor
    #: The run's tables by name (opened while the raw objects are read).
    tables: Future[dict[str, Table]]
    #: What a scheduled run holds aside; ``None`` in a backfill (everything is merged).
    lateness: Lateness | None = None
    #: A backfill reads held-aside events from compaction quarantine objects (curated).
    backfill: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    uploads: dict[str, list[Future[None]]] = field(default_factory=dict)
    #: The data files the run wrote, by table (``s3://`` URIs), committed at its end.
    added: dict[str, list[str]] = field(default_factory=dict)
    #: Names the run's data files: a crashed run's files are never a later run's.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def table(self, spec: TableSpec) -> Table:
        return self.tables.result()[spec.name]

    def _parsed(self, obj: ObjectInfo) -> RawRows | None:
        """GET and parse one raw object (``None``: deleted since the listing)."""
        if self.backfill:
            data = self.store.get(self.curated_bucket, obj.key)
            return None if data is None else read_raw_object(held_records(data), obj.key, None)
        return fetch_raw_object(self.store, self.raw_bucket, obj.key, self.lateness)

    def _fetched(self, listing: list[ObjectInfo]) -> Iterator[tuple[ObjectInfo, RawRows | None]]:
        """The raw objects in listing order, parsed, running ahead up to ``PREFETCH_BYTES``.

        Each worker GETs and parses one object: ``read_json`` and the compute kernels
        release the GIL, so objects parse on every core while the main thread spools.
        """
        pending: deque[tuple[ObjectInfo, Future[RawRows | None]]] = deque()
        ahead = 0
        for obj in listing:
            while pending and ahead + obj.size > PREFETCH_BYTES:
                done, future = pending.popleft()
                ahead -= done.size
                yield done, future.result()
            pending.append((obj, self.pool.submit(self._parsed, obj)))
            ahead += obj.size
        while pending:
            done, future = pending.popleft()
            yield done, future.result()

    def read_raw(self, listing: list[ObjectInfo], spool: DaySpool) -> None:
        total = len(listing)
        quarantined: list[Future[None]] = []
        self.report_progress("read raw", 0, total)
        for i, (obj, parsed) in enumerate(self._fetched(listing), start=1):
            if parsed is not None:
                if parsed.rejected and not self.backfill:
                    source = f"s3://{self.raw_bucket}/{obj.key}"
                    body = "".join(r.to_json(source) + "\n" for r in parsed.rejected)
                    quarantined.append(
                        self.pool.submit(
                            self.store.put,
                            self.curated_bucket,
                            compaction_quarantine_key(obj.key),
                            body.encode(),
                            "application/x-ndjson",
                        )
                    )
                self.count("quarantined", parsed.quarantined)
                self.count("held_aside", parsed.held)
                self.count("unreadable", parsed.unreadable)
                self.count("events_in", parsed.rows)
                for day, rows in parsed.days.items():
                    spool.append(day, rows)
            self.report_progress("read raw", i, total)
        for put in quarantined:
            put.result()

    def _download_all(self, uris: list[str], day: date) -> list[Path]:
        """A partition's data files as local files, in the given order."""
        paths = []
        for n, uri in enumerate(uris):
            path = self.work / f"existing-{day.isoformat()}-{n}.parquet"
            bucket, key = uri.removeprefix("s3://").split("/", 1)
            if not self.store.download(bucket, key, path):
                # Only maintenance removes a snapshot's files, and never a current one's.
                raise TransientError(f"data file {uri} vanished during the run")
            paths.append(path)
        return paths

    def _existing(self, days: list[date], files: dict[date, list[str]]) -> Iterator[list[Path]]:
        """Each day's current ``sales`` data files as local files, in order, downloads
        running up to ``IO_THREADS`` days ahead."""
        pending: deque[Future[list[Path]]] = deque()
        for day in days:
            pending.append(self.pool.submit(self._download_all, files.get(day, []), day))
            if len(pending) > IO_THREADS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def _previous_demand(self, day: date) -> pa.Table:
        """The ``daily_demand`` rows of ``day`` (the stock carried into the rebuild)."""
        table = self.table(DAILY_DEMAND)
        with translated(f"read {DAILY_DEMAND_TABLE} of {day}", table.name()[-1]):
            rows = table.scan(row_filter=day_filter(day)).to_arrow()
        return rows

    def _history(self, first: date) -> pa.Table | None:
        """The imported history from ``first`` on (``None``: nothing was ever imported)."""
        table = self.tables.result().get(DEMAND_HISTORY.name)
        if table is None:
            return None
        with translated(f"read {DEMAND_HISTORY.name}", table.name()[-1]):
            return table.scan(row_filter=f"date >= '{first.isoformat()}'").to_arrow()

    def write_days(self, spool: DaySpool, plan: DemandPlan) -> list[date]:
        """Write the touched days' new ``sales`` rows and the ``daily_demand`` the plan
        rebuilds, as new data files of the tables (committed by :meth:`commit_tables`).

        One UTC day at a time (memory follows one partition): its existing rows (read from
        the table's current data files, never rewritten) and its new rows are routed to
        their local days; a local day's demand is written once every UTC day it spans has
        been read. Uploads overlap the next day; all of them have been submitted on return.
        """
        days = plan.read
        # A backfill writes several plans from one spool: each merges the days it reads.
        touched = set(spool.days) & set(days)
        files = planned_files(self.table(SALES), days)
        previous = self.pool.submit(self._previous_demand, plan.first - timedelta(days=1))
        history = self.pool.submit(self._history, plan.first)
        builder: DemandBuilder | None = None
        local = LocalDays(plan.locations, plan.first)
        written: list[date] = []
        self.report_progress("write partitions", 0, len(days))
        for i, (day, existing) in enumerate(zip(days, self._existing(days, files), strict=True)):
            for path in existing:
                for batch in sales_batches(path):
                    local.add(batch)
            if day in touched:
                self._merge(day, spool, existing, local)
                spool.discard(day)
            for path in existing:
                path.unlink()
            local.end_partition()
            if builder is None:
                builder = demand_builder(previous.result())
            complete = plan.complete_through(day)
            while (next_day := plan.first + timedelta(days=len(written))) <= complete:
                rows = builder.finish(next_day, local.take(next_day), history_of(history, next_day))
                self._write_demand(next_day, rows)
                written.append(next_day)
            self.report_progress("write partitions", i + 1, len(days))
        assert builder is not None  # noqa: S101 - the plan reads at least one day
        for day in plan.local_days(local.last)[len(written) :]:
            self._write_demand(day, builder.finish(day, local.take(day), history_of(history, day)))
            written.append(day)
        return written

    def _merge(self, day: date, spool: DaySpool, existing: list[Path], sales: LocalDays) -> None:
        """Write the day's rows that the partition lacks as a new data file."""
        out = self.work / f"sales-{day.isoformat()}.parquet"
        result = write_new_rows(
            existing,
            partial(spool.batches, day),
            out,
            SALES.schema,
            prepare=partial(with_partition_columns, spec=SALES, day=day),
            on_rows=sales.add,
            finish=partial(self._finish, SALES_TABLE, data_key(SALES_TABLE, day, self.run_id)),
        )
        self.count("duplicates", result.duplicates)
        if result.new_rows:
            self.count("rows_written", result.new_rows)
            self.count("partitions_written", 1)

    def _write_demand(self, day: date, rows: pa.Table) -> None:
        out = self.work / f"demand-{day.isoformat()}.parquet"
        writer = RowGroupWriter(out, DAILY_DEMAND.schema)
        writer.write(with_partition_columns(rows, DAILY_DEMAND, day))
        self._finish(DAILY_DEMAND_TABLE, data_key(DAILY_DEMAND_TABLE, day, self.run_id), writer)

    def _finish(self, table: str, key: str, writer: RowGroupWriter) -> None:
        """Close the file and upload it as a data file of ``table``, off the main thread.

        Closing encodes the last row group (most of a small day's work), which overlaps
        the day's demand. Readers do not see the file before the table's commit.
        """
        futures = self.uploads.setdefault(table, [])
        if len(futures) >= 2:
            # Memory: at most two of a table's last row groups wait for their close.
            futures[-2].result()
        futures.append(self.pool.submit(self._close_and_upload, writer, key))
        self.added.setdefault(table, []).append(f"s3://{self.curated_bucket}/{key}")

    def _close_and_upload(self, writer: RowGroupWriter, key: str) -> None:
        writer.close()
        self.store.upload(writer.path, self.curated_bucket, key)
        writer.path.unlink()

    def commit_tables(self, demand_days: list[date]) -> None:
        """Commit each table once, after every data file is uploaded: ``sales`` appends the
        run's files; ``daily_demand`` replaces the rebuilt days (their old files leave the
        snapshot, the new ones enter it) in one transaction.

        A crash before a commit leaves that table at its last snapshot (the uploaded files
        are orphans for maintenance); the re-run finds the same new rows and converges.
        """
        self.report_progress("commit tables", 0, 2)
        for futures in self.uploads.values():
            for future in futures:
                future.result()
        sales_files = self.added.get(SALES_TABLE, [])
        if sales_files:
            commit(self.table(SALES), sales_files)
        self.report_progress("commit tables", 1, 2)
        if demand_days:
            commit(
                self.table(DAILY_DEMAND), self.added[DAILY_DEMAND_TABLE], days_filter(demand_days)
            )
        self.report_progress("commit tables", 2, 2)


def commit(table: Table, files: list[str], replace: str | None = None) -> None:
    """One commit of ``table``: delete the rows ``replace`` selects (whole partitions: the
    old files leave the snapshot, nothing is rewritten) and add ``files``."""
    with translated(f"commit {'.'.join(table.name())}", ".".join(table.name())):
        transaction = table.transaction()
        if replace is not None:
            with warnings.catch_warnings():
                # A first build of a day has nothing to replace: PyIceberg warns, it is fine.
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                transaction.delete(replace)
        # Fresh names (the run id): no need to scan the table for a file added twice.
        transaction.add_files(files, check_duplicate_files=False)
        transaction.commit_transaction()


def history_of(history: Future[pa.Table | None] | pa.Table | None, day: date) -> pa.Table | None:
    """The imported history rows of ``day`` (``None``: none at all)."""
    rows = history.result() if isinstance(history, Future) else history
    if rows is None or rows.num_rows == 0:
        return None
    return rows.filter(pc.equal(rows.column("date"), pa.scalar(day, pa.date32())))


def demand_builder(previous: pa.Table) -> DemandBuilder:
    """A demand builder carrying the stock of the day before the first day to build."""
    return DemandBuilder.from_previous_day(conform(previous, DAILY_DEMAND_SCHEMA))


def sales_batches(path: Path) -> Iterator[pa.Table]:
    """The demand's columns of a sales partition, row group by row group.

    Older partitions may lack a column added to the contract since: it reads as nulls.
    """
    file = pq.ParquetFile(path)
    present = [c for c in DEMAND_INPUT if c in file.schema_arrow.names]
    demand_schema = pa.schema([SALES_SCHEMA.field(c) for c in DEMAND_INPUT])
    for batch in file.iter_batches(batch_size=read_batch_rows(), columns=present):
        yield conform(batch, demand_schema)
