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
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.compaction.catalog import register_partitions
from pipeline.compaction.dedupe import split_by_event_date
from pipeline.compaction.demand import DemandBuilder
from pipeline.compaction.parquet_files import DaySpool, RowGroupWriter, conform, merge_partition
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
    from collections.abc import Callable

QUARANTINE_PREFIX = "quarantine/compaction/"

_DEMAND_INPUT = [
    "event_id",
    "event_type",
    "sku_id",
    "location_id",
    "quantity",
    "stock_on_hand",
    "event_time",
]


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
    manifest = load_manifest(store, curated_bucket)
    listing = [
        o
        for o in store.list(raw_bucket, RAW_SALES_PREFIX)
        if o.key.endswith(".json") and manifest.is_new(o)
    ]
    if not listing:
        return CompactionReport()
    with tempfile.TemporaryDirectory(prefix="compaction-") as tmp:
        work = Path(tmp)
        run = _Run(store, raw_bucket, curated_bucket, work, report)
        spool = DaySpool(work, SALES_SCHEMA)
        try:
            run.read_raw(listing, spool)
        finally:
            spool.close()
        days = spool.days
        merged = run.write_sales(spool)
        report("register partitions", 0, 1)
        register_partitions(
            database=database, table=SALES_TABLE, bucket=curated_bucket, days=days, session=session
        )
        report("register partitions", 1, 1)
        demand_days: list[date] = []
        if days:
            start = days[0]
            if manifest.max_event_date is not None:
                start = min(start, manifest.max_event_date + timedelta(days=1))
            end = max([days[-1], *([manifest.max_event_date] if manifest.max_event_date else [])])
            demand_days = run.write_demand(start, end, merged)
            register_partitions(
                database=database,
                table=DAILY_DEMAND_TABLE,
                bucket=curated_bucket,
                days=demand_days,
                session=session,
            )
            manifest.max_event_date = end
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
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def read_raw(self, listing: list[ObjectInfo], spool: DaySpool) -> None:
        total = len(listing)
        self.report("read raw", 0, total)
        for i, obj in enumerate(listing, start=1):
            data = self.store.get(self.raw_bucket, obj.key)
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

    def write_sales(self, spool: DaySpool) -> dict[date, Path]:
        """Merge every touched partition; returns the local copy of each partition's file."""
        days = spool.days
        local: dict[date, Path] = {}
        self.report("write sales", 0, len(days))
        for i, day in enumerate(days, start=1):
            key = curated_key(day)
            existing = self.work / f"existing-{day.isoformat()}.parquet"
            has_existing = self.store.download(self.curated_bucket, key, existing)
            out = self.work / f"sales-{day.isoformat()}.parquet"
            result = merge_partition(
                existing if has_existing else None, spool.path(day), out, SALES_SCHEMA
            )
            self.count("duplicates", result.duplicates)
            if result.new_rows:
                # One PUT over the partition's one object: readers see old or new, never none.
                self.store.upload(out, self.curated_bucket, key)
                self.count("rows_written", result.new_rows)
                self.count("partitions_written", 1)
                local[day] = out
                existing.unlink(missing_ok=True)
            elif has_existing:
                local[day] = existing
            spool.path(day).unlink(missing_ok=True)
            self.report("write sales", i, len(days))
        return local

    def _read(self, key: str, path: Path) -> pa.Table | None:
        if not path.exists() and not self.store.download(self.curated_bucket, key, path):
            return None
        return pq.read_table(path)

    def write_demand(self, start: date, end: date, merged: dict[date, Path]) -> list[date]:
        """Rebuild ``daily_demand`` for ``start..end`` from the curated sales partitions."""
        previous = self._read(
            curated_key(start - timedelta(days=1), DAILY_DEMAND_TABLE),
            self.work / "demand-previous.parquet",
        )
        builder = DemandBuilder.from_previous_day(
            None if previous is None else conform(previous, DAILY_DEMAND_SCHEMA)
        )
        total = (end - start).days + 1
        written: list[date] = []
        self.report("write daily demand", 0, total)
        for i in range(total):
            day = start + timedelta(days=i)
            path = merged.get(day, self.work / f"sales-read-{day.isoformat()}.parquet")
            sales = self._read(curated_key(day), path)
            sales = SALES_SCHEMA.empty_table() if sales is None else conform(sales, SALES_SCHEMA)
            out = self.work / f"demand-{day.isoformat()}.parquet"
            writer = RowGroupWriter(out, DAILY_DEMAND_SCHEMA)
            writer.write(builder.day(day, sales.select(_DEMAND_INPUT)))
            writer.close()
            self.store.upload(out, self.curated_bucket, curated_key(day, DAILY_DEMAND_TABLE))
            out.unlink()
            if day not in merged:
                path.unlink(missing_ok=True)
            written.append(day)
            self.report("write daily demand", i + 1, total)
        return written
