"""Compaction: raw NDJSON by arrival date to curated Parquet by event date, plus daily demand.

Design (what readers see, and why a crash never hurts them)
-----------------------------------------------------------
Every day partition of a curated table is exactly **one** Parquet object with a fixed name,
``<table>/year=YYYY/month=MM/day=DD/part-00000.parquet``. A run builds the merged partition
(existing rows + new de-duplicated rows) in a local file first and then replaces the object
with a single PUT. S3 is strongly consistent and a PUT is atomic per object, so every
reader - Athena through partition projection, the Glue catalog's partitions, awswrangler,
the local DuckDB engine reading the same prefixes - sees either the old partition or the
new one: never an empty partition, never a half-written file, never the old and new files
side by side (which is what "write new name, then delete old" would show for a moment:
every row twice). Nothing is ever deleted. A partition that grows beyond one object's
comfortable size would get a fixed set of ``event_id``-hash buckets, each its own object:
every bucket is self-consistent, so a mix of old and new buckets is still neither missing
nor duplicating rows.

Incremental without Glue bookmarks: ``_state/compaction/manifest.json`` lists the raw
objects compacted (key and ETag) of the arrival days still open, a watermark below which
every arrival day is closed and compacted, and the last event date; it is written last and
is the commit point (:mod:`pipeline.compaction.state`: its size and each run's listing are
bounded by the open window, not the lake's age). After a crash, the next run picks up the
same raw objects again; de-duplication against what the partition already holds (the
existing row wins, among new rows the first in raw-key and line order wins) makes it
converge to exactly the data a crash-free run would have written. Daily demand is a pure
function of the curated sales, by each location's local calendar day, recomputed from the
first touched day (or the day after the last known event date; a day earlier when a
location is off UTC, since a local day spans two UTC partitions) through the latest local
day, so a late event fixes its day and the stock carried forward after it; a day's demand
is reduced from the rows as its merged partition is written (one pass; the neighbouring
partitions a local day needs are read from the curated zone).

Memory follows one raw object (plus a few MiB fetched ahead) and one partition's
``event_id`` column: new rows are buffered per event date up to one row group and spooled
to local Parquet beyond it, merged partitions and the demand rebuild stream row groups.
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
