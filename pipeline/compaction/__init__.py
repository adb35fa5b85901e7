"""Compaction: raw NDJSON by arrival date to the curated Iceberg tables, plus daily demand.

Design (what readers see, and why a crash never hurts them)
-----------------------------------------------------------
``sales`` and ``daily_demand`` are Apache Iceberg tables in the Glue catalog
(:mod:`pipeline.lake.tables`), partitioned by ``year``/``month``/``day``. A run appends
what is new and rewrites nothing it did not change: each touched day gets **one new data
file** holding the rows whose ``event_id`` the day's current files lack (the existing files
are only read, their ``event_id`` column); each ``daily_demand`` day the run rebuilds is
replaced (its old files leave the snapshot, one new file enters it). Nothing is visible
before the table's **commit**, one per table per run, which swaps the catalog's pointer to
the new metadata: readers (Athena, Spark, DuckDB over PyIceberg's plan, the forecaster)
see the table before the run or after it, never a half-written day, never a row twice.

Incremental without Glue bookmarks: a run finds the new raw objects from the raw bucket's
S3 event notifications, drained from an SQS queue (:mod:`pipeline.compaction.discovery`:
its cost follows the new objects), or by listing the open arrival days (the sweep).
``_state/compaction/manifest.json`` holds the last event date (and, for the listing, the
compacted objects of the open days and a watermark); it is written last and is the run's
commit point (:mod:`pipeline.compaction.state`), and the queue's messages are deleted only
after it. After a crash (before, between or after the two table commits) the next run picks
up the same raw objects again;
de-duplication against what the table already holds (the existing row wins, among new
rows the first in raw-key and line order wins) makes it converge to exactly the data a
crash-free run would have written. Daily demand is a pure function of the curated sales,
by each location's local calendar day, recomputed from the first touched day (or the day
after the last known event date; a day earlier when a location is off UTC, since a local
day spans two UTC partitions) through the latest local day, so a late event fixes its day
and the stock carried forward after it.

Memory follows one raw object (plus a few MiB fetched ahead) and one partition's
``event_id`` column: new rows are buffered per event date up to one row group and spooled
to local Parquet beyond it, the new files and the demand rebuild stream row groups.
"""

from typing import TYPE_CHECKING, Any

from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA, SALES_SCHEMA

if TYPE_CHECKING:
    from pipeline.compaction.job import CompactionReport, run_compaction

__all__ = [
    "DAILY_DEMAND_SCHEMA",
    "SALES_SCHEMA",
    "CompactionReport",
    "run_compaction",
]


def __getattr__(name: str) -> Any:
    # The job is imported on first use: pipeline.lake.tables needs only the schemas, and
    # the job imports pipeline.lake.tables.
    if name in ("CompactionReport", "run_compaction"):
        from pipeline.compaction import job

        return getattr(job, name)
    raise AttributeError(name)
