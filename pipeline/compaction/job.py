"""The compaction run: raw NDJSON (arrival date) to curated Parquet (event date).

Steps, in this order (each one safe to repeat; the manifest PUT at the end commits):

1. load the manifest and list the raw zone; the new objects are those not in it;
2. per raw object: parse, enforce types, quarantine bad lines (a deterministic key per raw
   object, so a re-run overwrites the same quarantine object), spool rows per event date;
3. per touched ``sales`` partition: merge the existing file with the new rows (de-duplicated
   by ``event_id``) into a local file, upload it over the partition's single object;
4. register the partitions in the Glue catalog;
5. recompute ``daily_demand`` from the first touched day through the last event date;
6. commit the manifest.

S3 round trips overlap the CPU work without changing that order where it matters: raw GETs
run a few MiB ahead of the parser, partition uploads and catalog registration run in the
background, and every one of them has finished (or raised) before the manifest commits.
"""

from __future__ import annotations

import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.compaction.catalog import register_partitions
from pipeline.compaction.dedupe import split_by_event_date
from pipeline.compaction.demand import DEMAND_INPUT, DemandBuilder
from pipeline.compaction.parquet_files import (
    ROW_GROUP_ROWS,
    DaySpool,
    RowGroupWriter,
    conform,
    merge_partition,
)
from pipeline.compaction.parse import parse_raw_object
from pipeline.compaction.schema import (
    DAILY_DEMAND_SCHEMA,
    DAILY_DEMAND_TABLE,
    PART_FILE,
    SALES_SCHEMA,
    SALES_TABLE,
)
from pipeline.compaction.state import load_manifest, save_manifest
from pipeline.compaction.store import LakeStore, ObjectInfo
from pipeline.lake import RAW_SALES_PREFIX, curated_partition_prefix

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

QUARANTINE_PREFIX = "quarantine/compaction/"

#: S3 calls in flight at once (raw GETs ahead of the parser, partition uploads behind it).
IO_THREADS: Final = 4
#: Raw bytes fetched ahead of the parser: enough to hide a GET's latency, small enough that
#: memory still follows one raw object (at least one object is always fetched).
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

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def curated_key(day: date, table: str = SALES_TABLE) -> str:
    """The single object that holds one day partition of a curated table."""
    return curated_partition_prefix(day, table) + PART_FILE


def quarantine_key(raw_key: str) -> str:
    """Where the rejected lines of one raw object go (deterministic: re-runs overwrite)."""
    return QUARANTINE_PREFIX + raw_key.removesuffix(".json") + ".ndjson"


def _noop(step: str, done: int, total: int) -> None:
    return None


def run_compaction(
    *,
    raw_bucket: str,
    curated_bucket: str,
    database: str,
    session: boto3.session.Session | None = None,
    now: datetime | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> CompactionReport:
    """Compact the raw objects not compacted yet into the curated zone; see the module doc.

    Re-running with no new raw data changes nothing. A failure at any point (a raised
    :class:`~pipeline.errors.TransientError`, a killed process) leaves the curated zone
    readable and the manifest uncommitted; the next run converges to the same data.
    """
    session = session or boto3.session.Session()
    store = LakeStore.from_session(session)
    report = progress or _noop
    with ThreadPoolExecutor(1, thread_name_prefix="compaction-list") as lister:
        # Two independent round trips: the raw listing runs while the manifest loads.
        raw_listing = lister.submit(store.list, raw_bucket, RAW_SALES_PREFIX)
        manifest = load_manifest(store, curated_bucket)
        listing = [
            o for o in raw_listing.result() if o.key.endswith(".json") and manifest.is_new(o)
        ]
    if not listing:
        return CompactionReport()
    with (
        tempfile.TemporaryDirectory(prefix="compaction-") as tmp,
        # Inside the directory's block: a failure waits for uploads before files go away.
        ThreadPoolExecutor(IO_THREADS, thread_name_prefix="compaction-io") as pool,
        # One thread: awswrangler makes a Glue client from the session per call, and client
        # creation from one boto3 session is not safe from two threads at once.
        ThreadPoolExecutor(1, thread_name_prefix="compaction-catalog") as catalog,
    ):
        work = Path(tmp)
        run = _Run(store, raw_bucket, curated_bucket, work, report, pool)
        run.prefetch_listings()
        spool = DaySpool(work, SALES_SCHEMA)
        try:
            run.read_raw(listing, spool)
        finally:
            spool.close()
        days = spool.days
        merged = run.write_sales(spool)
        report("register partitions", 0, 1)
        # Registration overlaps the demand rebuild; both finish before the manifest commits.
        registered = [
            catalog.submit(
                register_partitions,
                database=database,
                table=SALES_TABLE,
                bucket=curated_bucket,
                days=days,
                session=session,
            )
        ]
        report("register partitions", 1, 1)
        demand_days: list[date] = []
        if days:
            start = days[0]
            if manifest.max_event_date is not None:
                start = min(start, manifest.max_event_date + timedelta(days=1))
            end = max([days[-1], *([manifest.max_event_date] if manifest.max_event_date else [])])
            demand_days = run.write_demand(start, end, merged)
            registered.append(
                catalog.submit(
                    register_partitions,
                    database=database,
                    table=DAILY_DEMAND_TABLE,
                    bucket=curated_bucket,
                    days=demand_days,
                    session=session,
                )
            )
            manifest.max_event_date = end
        for registration in registered:
            registration.result()
        report("commit", 0, 1)
        manifest.objects.update({o.key: o.etag for o in listing})
        manifest.compacted_at = (now or datetime.now(UTC)).isoformat()
        save_manifest(store, curated_bucket, manifest)
        report("commit", 1, 1)
    return CompactionReport(
        raw_objects=len(listing),
        bytes_in=sum(o.size for o in listing),
        events_in=run.counts.get("events_in", 0),
        duplicates_dropped=run.counts.get("duplicates", 0),
        rows_written=run.counts.get("rows_written", 0),
        partitions_written=run.counts.get("partitions_written", 0),
        quarantined=run.counts.get("quarantined", 0),
        demand_days_written=len(demand_days),
    )


@dataclass
class _Run:
    """The state of one run: where things go, what was counted, whom to tell."""

    store: LakeStore
    raw_bucket: str
    curated_bucket: str
    work: Path
    report: Callable[[str, int, int], None]
    pool: ThreadPoolExecutor
    counts: dict[str, int] = field(default_factory=dict)
    listings: dict[str, Future[set[str]]] = field(default_factory=dict)

    def count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def _fetched(self, listing: list[ObjectInfo]) -> Iterator[tuple[ObjectInfo, bytes | None]]:
        """The raw objects in listing order, GETs running ahead up to ``PREFETCH_BYTES``."""
        pending: deque[tuple[ObjectInfo, Future[bytes | None]]] = deque()
        ahead = 0
        for obj in listing:
            while pending and ahead + obj.size > PREFETCH_BYTES:
                done, future = pending.popleft()
                ahead -= done.size
                yield done, future.result()
            pending.append((obj, self.pool.submit(self.store.get, self.raw_bucket, obj.key)))
            ahead += obj.size
        while pending:
            done, future = pending.popleft()
            yield done, future.result()

    def read_raw(self, listing: list[ObjectInfo], spool: DaySpool) -> None:
        total = len(listing)
        self.report("read raw", 0, total)
        for i, (obj, data) in enumerate(self._fetched(listing), start=1):
            if data is not None:  # None: deleted since the listing, nothing to compact
                parsed = parse_raw_object(data)
                del data
                if parsed.rejected:
                    source = f"s3://{self.raw_bucket}/{obj.key}"
                    body = "".join(r.to_json(source) + "\n" for r in parsed.rejected)
                    self.store.put(
                        self.curated_bucket,
                        quarantine_key(obj.key),
                        body.encode(),
                        "application/x-ndjson",
                    )
                    self.count("quarantined", len(parsed.rejected))
                self.count("events_in", parsed.table.num_rows)
                for day, rows in split_by_event_date(parsed.table).items():
                    spool.append(day, rows)
            self.report("read raw", i, total)

    def prefetch_listings(self) -> None:
        """Start listing the curated tables while the raw data is read."""
        for table in (SALES_TABLE, DAILY_DEMAND_TABLE):
            self.listings[table] = self.pool.submit(self._keys, table)

    def _keys(self, table: str) -> set[str]:
        return {o.key for o in self.store.list(self.curated_bucket, f"{table}/")}

    def _exists(self, table: str, key: str) -> bool:
        """Whether the curated object exists (one LIST per table instead of a HEAD per day).

        The listing is from the start of the run: the job is the only writer, and it only
        looks up partitions it has not written in this run.
        """
        if table not in self.listings:
            self.listings[table] = self.pool.submit(self._keys, table)
        return key in self.listings[table].result()

    def _download(self, table: str, key: str, path: Path) -> bool:
        return self._exists(table, key) and self.store.download(self.curated_bucket, key, path)

    def write_sales(self, spool: DaySpool) -> dict[date, Path]:
        """Merge every touched partition; returns the local copy of each partition's file.

        Merges run one at a time (memory follows one partition); uploads overlap the next
        merge, and all of them have finished when this returns.
        """
        days = spool.days
        local: dict[date, Path] = {}
        uploads: list[Future[None]] = []
        self.report("write sales", 0, len(days))
        for i, day in enumerate(days, start=1):
            key = curated_key(day)
            existing = self.work / f"existing-{day.isoformat()}.parquet"
            has_existing = self._download(SALES_TABLE, key, existing)
            out = self.work / f"sales-{day.isoformat()}.parquet"
            result = merge_partition(
                existing if has_existing else None,
                partial(spool.batches, day),
                out,
                SALES_SCHEMA,
            )
            self.count("duplicates", result.duplicates)
            if result.new_rows:
                # One PUT over the partition's one object: readers see old or new, never none.
                uploads.append(self.pool.submit(self.store.upload, out, self.curated_bucket, key))
                self.count("rows_written", result.new_rows)
                self.count("partitions_written", 1)
                local[day] = out
                existing.unlink(missing_ok=True)
            elif has_existing:
                local[day] = existing
            spool.discard(day)
            self.report("write sales", i, len(days))
        for upload in uploads:
            upload.result()
        return local

    def write_demand(self, start: date, end: date, merged: dict[date, Path]) -> list[date]:
        """Rebuild ``daily_demand`` for ``start..end`` from the curated sales partitions."""
        previous_path = self.work / "demand-previous.parquet"
        previous_key = curated_key(start - timedelta(days=1), DAILY_DEMAND_TABLE)
        builder = DemandBuilder.from_previous_day(
            conform(pq.read_table(previous_path), DAILY_DEMAND_SCHEMA)
            if self._download(DAILY_DEMAND_TABLE, previous_key, previous_path)
            else None
        )
        total = (end - start).days + 1
        written: list[date] = []
        uploads: list[Future[None]] = []
        self.report("write daily demand", 0, total)
        for i in range(total):
            day = start + timedelta(days=i)
            path = merged.get(day, self.work / f"sales-read-{day.isoformat()}.parquet")
            found = day in merged or self._download(SALES_TABLE, curated_key(day), path)
            out = self.work / f"demand-{day.isoformat()}.parquet"
            writer = RowGroupWriter(out, DAILY_DEMAND_SCHEMA)
            writer.write(builder.day_from_batches(day, _sales_batches(path) if found else []))
            writer.close()
            key = curated_key(day, DAILY_DEMAND_TABLE)
            uploads.append(self.pool.submit(self._upload_and_remove, out, key))
            if day not in merged:
                path.unlink(missing_ok=True)
            written.append(day)
            self.report("write daily demand", i + 1, total)
        for upload in uploads:
            upload.result()
        return written

    def _upload_and_remove(self, path: Path, key: str) -> None:
        self.store.upload(path, self.curated_bucket, key)
        path.unlink()


def _sales_batches(path: Path) -> Iterator[pa.Table]:
    """The demand's columns of a sales partition, row group by row group.

    Older partitions may lack a column added to the contract since: it reads as nulls.
    """
    file = pq.ParquetFile(path)
    present = [c for c in DEMAND_INPUT if c in file.schema_arrow.names]
    demand_schema = pa.schema([SALES_SCHEMA.field(c) for c in DEMAND_INPUT])
    for batch in file.iter_batches(batch_size=ROW_GROUP_ROWS, columns=present):
        yield conform(batch, demand_schema)
