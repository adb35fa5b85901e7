"""The history import on Spark: the same run as :mod:`pipeline.history.importer`, into the
same tables, with the same quarantine and the same report.

1. driver: list the source's files (:func:`~pipeline.history.source.open_source`), make
   sure both tables exist (:func:`~pipeline.history.importer.open_tables`), load the
   locations;
2. executors, one task per few source files (``mapInArrow``): each file read and checked
   as one process reads it (:func:`~pipeline.history.source.batches`,
   :func:`~pipeline.history.mapping.validate`), so row numbers, reasons and details are one
   implementation; a task yields the good rows, the refused rows as quarantine lines (in
   file order) and a count of the rows it read;
3. Spark: the first row of each SKU x location x day in source order (file, then row)
   kept, the later ones refused as ``duplicate_row``; the pairs the stream owns on each day
   (``sales`` of the imported range, each event on its location's local day, on
   executors); a day of ``demand_history`` changes when one of its imported rows is not
   in the table as it is (a null-safe anti-join on every column), and of those days a day
   of ``daily_demand`` when one of its history rows (the pairs without streamed events, as
   :func:`~pipeline.compaction.demand.history_demand` makes them) is not;
4. driver: the quarantine object written (or removed: nothing refused); then each table's
   changed days replaced in one commit (``overwritePartitions``: a changed day always has
   rows, so the written rows name exactly the days to replace; an ``overwrite`` by a
   condition would need one term per day, thousands for a long history),
   ``daily_demand`` first, then ``demand_history``, as one process commits them.

The guarantees are the single engine's: a day written only when its rows change (a
re-import commits no snapshot), a crash before a commit leaves the table as it was, one
between the two leaves ``demand_history`` as it was so the re-run writes both again, and
streamed events win per SKU x location x day. Cost follows the imported days: the rows of
those days in both tables and the ``sales`` rows of the imported range. A file is one
task: a folder of files spreads over the executors, a single file is read by one.
"""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import partial, reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import boto3
import pyarrow as pa
from pyarrow import fs

from pipeline.compaction.demand import history_demand, local_dates
from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA, DEMAND_HISTORY_SCHEMA
from pipeline.compaction.store import LakeStore
from pipeline.errors import InvalidInputError, TransientError
from pipeline.history.importer import (
    ImportReport,
    duplicate_refusal,
    open_tables,
    quarantine_key,
)
from pipeline.history.mapping import DUPLICATE_ROW, HISTORY_ROWS, MALFORMED_ROW, Refused, validate
from pipeline.history.source import Source, SourceFile, batches, open_source
from pipeline.job_protocol import Progress, null_progress
from pipeline.lake.locations import load_locations
from pipeline.lake.tables import (
    DAILY_DEMAND,
    DEMAND_HISTORY,
    PARTITION_COLUMNS,
    SALES,
    TableSpec,
    iceberg_catalog,
    load_table,
)
from pipeline.spark.session import executor_session, slices, table_name
from pipeline.spark.tables import committing

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from pyspark.sql import Column, DataFrame, SparkSession

    from pipeline.history.mapping import ColumnMapping
    from pipeline.history.source import Format
    from pipeline.lake.locations import LocationDefaults, Locations

#: What a row of step 2 is (its ``_kind``).
GOOD, REFUSED, COUNTS, FAILED = 0, 1, 2, 3
#: Step 2's rows: the history rows, then the row's kind, its file (index in the listing),
#: its row number there, a refused row's place among its file's quarantine lines, its
#: quarantine line and reason (a failure's message and kind), a file's rows read.
_OUTPUT: Final = pa.schema(
    [
        *HISTORY_ROWS,
        ("_kind", pa.int32()),
        ("_file", pa.int32()),
        ("_row", pa.int64()),
        ("_seq", pa.int64()),
        ("_line", pa.string()),
        ("_reason", pa.string()),
        ("_read", pa.int64()),
    ]
)

#: Which failure of a file task the driver raises again (``_reason`` of a ``FAILED`` row).
_FAILURES: Final[dict[str, type[Exception]]] = {
    "invalid": InvalidInputError,
    "transient": TransientError,
}
KEYS: Final = ["date", "sku_id", "location_id"]
_EPOCH: Final = date(1970, 1, 1)
#: The snapshot property naming the source of a commit (the single engine's too).
SOURCE_PROPERTY: Final = "fmcg.import.source"


def run_import_spark(
    source: str,
    mapping: ColumnMapping,
    *,
    spark: SparkSession,
    curated_bucket: str,
    database: str,
    session: boto3.session.Session | None = None,
    progress: Progress | None = None,
    location_defaults: LocationDefaults | None = None,
    file_format: Format | None = None,
) -> ImportReport:
    """Import the daily history in ``source`` on ``spark``; see the module doc.

    Same arguments, result and guarantees as :func:`pipeline.history.run_import`.
    """
    session = session or boto3.session.Session()
    report_progress = progress or null_progress
    store = LakeStore.from_session(session)
    files = open_source(source, session=session, file_format=file_format)
    catalog = iceberg_catalog(session)
    open_tables(catalog, store, database, curated_bucket)
    locations = load_locations(store, curated_bucket, location_defaults)
    report_progress("read source", 0, files.size)
    read = _read(spark, source, files, mapping).cache()
    try:
        found = _found(read)
        report_progress("read source", files.size, files.size)
        ranked = _ranked(read).cache()
        owned = _owned(spark, database, catalog, found.span, locations).cache()
        try:
            run = _Run(spark, database, source, ranked, locations)
            report_progress("write days", 0, 1)
            run.compare(owned, found.span)
            history = run.history_rows(run.history_days, owned).cache()
            demand_days = _changed_days(
                history, run.existing(DAILY_DEMAND, run.history_days), run.history_days
            )
            report_progress("write days", 1, 1)
            key = quarantine_key(source)
            refused = found.refused + run.duplicates
            lines = _quarantine(read, ranked, files) if refused else None
            _write_quarantine(store, curated_bucket, key, lines, refused)
            report_progress("commit tables", 0, 2)
            # daily_demand first: a crash between the two leaves demand_history as it was,
            # so the re-run finds those days changed and writes both again.
            run.replace(DAILY_DEMAND, demand_days, history)
            report_progress("commit tables", 1, 2)
            run.replace(DEMAND_HISTORY, run.history_days, run.valid)
            report_progress("commit tables", 2, 2)
            history.unpersist()
        finally:
            owned.unpersist()
            ranked.unpersist()
    finally:
        read.unpersist()
    reasons = dict(found.reasons)
    if run.duplicates:
        reasons[DUPLICATE_ROW] = run.duplicates
    return ImportReport(
        source_files=len(files.files),
        source_bytes=files.size,
        rows_read=found.rows_read,
        rows_quarantined=refused,
        rows_valid=run.rows_valid,
        rows_superseded_by_stream=run.superseded,
        days_in_source=len(run.days),
        history_days_written=len(run.history_days),
        demand_days_written=len(demand_days),
        quarantine=f"s3://{curated_bucket}/{key}" if refused else "",
        reasons=dict(sorted(reasons.items())),
    )


def _read(spark: SparkSession, name: str, files: Source, mapping: ColumnMapping) -> DataFrame:
    """Step 2: every source file read and checked on the executors."""
    from pyspark.sql.pandas.types import from_arrow_schema

    out = from_arrow_schema(_OUTPUT)
    listed = [(i, f.path, f.size, f.format) for i, f in enumerate(files.files)]
    sc = spark.sparkContext
    frame = spark.createDataFrame(
        sc.parallelize(listed, slices(sc, len(listed))),
        "index int, path string, size bigint, format string",
    )
    return frame.mapInArrow(partial(read_files, name, mapping), out)


def read_files(
    name: str, mapping: ColumnMapping, listed: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Step 2 for a few source files (an executor task), each read as one process reads it.

    A file the import cannot use (a mapped column it lacks, unreadable) yields one
    ``FAILED`` row with the error, raised again on the driver, so the job fails with the
    single engine's error rather than Spark's wrapping of it.
    """
    source = Source(name, _filesystem(name.startswith("s3://")), [])
    for batch in listed:
        for index, path, size, kind in zip(*(c.to_pylist() for c in batch.columns), strict=True):
            file = SourceFile(path, size, kind)
            try:
                yield from _read_file(source, index, file, mapping)
            except (InvalidInputError, TransientError) as e:
                failure = "invalid" if isinstance(e, InvalidInputError) else "transient"
                yield _bookkeeping(1, FAILED, _file=[index], _line=[str(e)], _reason=[failure])


def _read_file(
    source: Source, index: int, file: SourceFile, mapping: ColumnMapping
) -> Iterator[pa.RecordBatch]:
    uri = source.file_uri(file)
    row, read, seq = 1, 0, 0
    for part in batches(source, file, mapping):
        refused = [
            Refused(b.line, MALFORMED_ROW, b.detail, {"line": b.text}) for b in part.malformed
        ]
        checked = validate(part.rows, mapping, row)
        refused += checked.refused
        row += part.rows.num_rows
        read += part.rows.num_rows + len(part.malformed)
        if refused:
            n = len(refused)
            yield _bookkeeping(
                n,
                REFUSED,
                _file=[index] * n,
                _seq=list(range(seq, seq + n)),
                _line=[json.dumps(r.as_dict(uri), separators=(",", ":")) for r in refused],
                _reason=[r.reason for r in refused],
            )
            seq += n
        good = checked.rows
        if good.num_rows:
            n = good.num_rows
            good = good.combine_chunks()
            columns = {name: good.column(name).chunk(0) for name in HISTORY_ROWS.names}
            yield _bookkeeping(n, GOOD, _file=[index] * n, _row=checked.numbers, **columns)
    yield _bookkeeping(1, COUNTS, _file=[index], _read=[read])


def _bookkeeping(n: int, kind: int, **columns: Any) -> pa.RecordBatch:
    """A batch of step 2's output: ``n`` rows of ``kind``, the columns given, nulls else."""
    arrays = []
    for field in _OUTPUT:
        value = columns.get(field.name)
        if field.name == "_kind":
            value = [kind] * n
        if value is None:
            arrays.append(pa.nulls(n, field.type))
        else:
            arrays.append(pa.array(value, field.type) if isinstance(value, list) else value)
    return pa.RecordBatch.from_arrays(arrays, schema=_OUTPUT)


@functools.cache
def _filesystem(s3: bool) -> fs.FileSystem:
    """This executor process's filesystem of the source (S3 with the executor's session)."""
    if not s3:
        return fs.LocalFileSystem()
    from pipeline.query.duckdb_engine import s3_filesystem

    return s3_filesystem(executor_session())


@dataclass(frozen=True)
class _Found:
    """Step 2 added up: the rows read and the rows the checks refused, by reason."""

    rows_read: int
    refused: int
    reasons: dict[str, int]
    #: The first and last day of the good rows (``None``: no good row).
    span: tuple[date, date] | None


def _found(read: DataFrame) -> _Found:
    """The files' counts and refusals (one small job); a file's failure raised again, the
    first in the listing's order (the one a single process meets first)."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

    groups = (
        read.groupBy("_kind", "_reason")
        .agg(
            F.count("*").alias("n"),
            F.sum("_read").alias("read"),
            F.min(F.struct("_file", "_line")).alias("first"),
            F.min("date").alias("low"),
            F.max("date").alias("high"),
        )
        .collect()
    )
    failures = sorted(
        (g["first"]["_file"], g["_reason"], g["first"]["_line"])
        for g in groups
        if g["_kind"] == FAILED
    )
    if failures:
        _, failure, message = failures[0]
        raise _FAILURES[failure](message)
    reasons = {g["_reason"]: int(g["n"]) for g in groups if g["_kind"] == REFUSED}
    rows_read = sum(int(g["read"] or 0) for g in groups if g["_kind"] == COUNTS)
    good = [(g["low"], g["high"]) for g in groups if g["_kind"] == GOOD]
    span = good[0] if good else None
    return _Found(rows_read, sum(reasons.values()), reasons, span)


def _ranked(read: DataFrame) -> DataFrame:
    """The good rows, each with its rank among its SKU x location x day's rows in source
    order (file, then row): 1 is imported, the others are duplicates."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

    first = Window.partitionBy(*KEYS).orderBy("_file", "_row")
    good = read.where(F.col("_kind") == GOOD).select(*HISTORY_ROWS.names, "_file", "_row")
    return good.withColumn("_rank", F.row_number().over(first))


class _Run:
    """Step 3's frames over the ranked rows."""

    def __init__(
        self,
        spark: SparkSession,
        database: str,
        source: str,
        ranked: DataFrame,
        locations: Locations,
    ) -> None:
        from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

        self.spark, self.database, self.source = spark, database, source
        self.ranked, self.locations = ranked, locations
        #: The imported rows: ``demand_history``'s columns.
        self.valid = ranked.where(F.col("_rank") == 1).select(
            *HISTORY_ROWS.names, F.lit(source).alias("source")
        )
        self.days: list[date] = []
        self.history_days: list[date] = []
        self.rows_valid = 0
        self.duplicates = 0
        self.superseded = 0

    def compare(self, owned: DataFrame, span: tuple[date, date] | None) -> None:
        """The source's days and counts, and the days of ``demand_history`` the import
        changes (one job): per day, the imported rows, the duplicates, the imported rows
        whose pair the stream owns, and those that the table does not hold exactly (every
        column, nulls equal)."""
        from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

        if span is None:
            return
        rows = self.ranked.withColumn("source", F.lit(self.source))
        rows = rows.join(owned.withColumn("_owned", F.lit(True)), KEYS, "left")
        old = self.existing(DEMAND_HISTORY, span).withColumn("_same", F.lit(True))
        same = reduce(
            lambda a, b: a & b, (rows[c].eqNullSafe(old[c]) for c in DEMAND_HISTORY_SCHEMA.names)
        )
        first = F.col("_rank") == 1
        found = (
            rows.join(old, same, "left")
            .groupBy(rows["date"])
            .agg(
                F.sum(first.cast("long")).alias("valid"),
                F.sum((~first).cast("long")).alias("duplicates"),
                F.sum((first & F.col("_owned").isNotNull()).cast("long")).alias("owned"),
                F.sum((first & F.col("_same").isNull()).cast("long")).alias("changed"),
            )
            .collect()
        )
        self.days = sorted(r["date"] for r in found)
        self.rows_valid = sum(int(r["valid"]) for r in found)
        self.duplicates = sum(int(r["duplicates"]) for r in found)
        self.superseded = sum(int(r["owned"]) for r in found)
        self.history_days = sorted(r["date"] for r in found if r["changed"])

    def existing(self, spec: TableSpec, days: list[date] | tuple[date, date]) -> DataFrame:
        """The rows of ``days`` (or the span from the first to the last) of the table, in
        its spec's columns."""
        from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

        table = self.spark.table(table_name(self.database, spec.name))
        if isinstance(days, tuple):
            on = F.col("date").between(*days)
        else:
            on = _on_days(days)
        return table.where(on).select(*(F.col(c) for c in spec.columns.names))

    def history_rows(self, days: list[date], owned: DataFrame) -> DataFrame:
        """``daily_demand`` rows of the imported rows of ``days`` whose pair the stream does
        not own that day (made by the single engine's :func:`history_demand`)."""
        from pyspark.sql.pandas.types import from_arrow_schema

        kept = self.valid.where(_on_days(days)).join(owned, KEYS, "left_anti")
        kept = kept.select(*self.valid.columns)
        return kept.mapInArrow(demand_rows, from_arrow_schema(DAILY_DEMAND_SCHEMA))

    def replace(self, spec: TableSpec, days: list[date], rows: DataFrame) -> None:
        """One commit of ``spec``'s table: ``days`` replaced by their rows as they were,
        without the pairs of ``rows``, and ``rows`` (nothing when no day changed)."""
        if not days:
            return
        from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

        new = rows.where(_on_days(days)).select(*spec.columns.names)
        old = self.existing(spec, days).join(new.select(*KEYS), KEYS, "left_anti")
        name = table_name(self.database, spec.name)
        formats = {"year": "yyyy", "month": "MM", "day": "dd"}
        partitioned = old.unionByName(new).select(
            *spec.columns.names,
            *(F.date_format("date", formats[c]).alias(c) for c in PARTITION_COLUMNS),
        )
        # One file per day, its rows by pair, as the single engine writes them.
        ordered = partitioned.repartition(len(days), *PARTITION_COLUMNS).sortWithinPartitions(
            *PARTITION_COLUMNS, "sku_id", "location_id"
        )
        writer = ordered.select(*self.spark.table(name).columns).writeTo(name)
        with committing(name):
            writer.option(f"snapshot-property.{SOURCE_PROPERTY}", self.source).overwritePartitions()


def demand_rows(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Imported rows as ``daily_demand`` rows (an executor task)."""
    for batch in batches:
        rows = pa.Table.from_batches([batch])
        history = rows.select(DEMAND_HISTORY_SCHEMA.names).cast(DEMAND_HISTORY_SCHEMA)
        yield from history_demand(history).to_batches()


def _on_days(days: list[date]) -> Column:
    from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

    return F.col("date").isin(days) if days else F.lit(False)


def _changed_days(new: DataFrame, old: DataFrame, days: list[date]) -> list[date]:
    """The ``days`` of ``new`` with a row that ``old`` does not hold exactly (every column,
    nulls equal): the days whose rows an import changes."""
    if not days:
        return []
    differs = reduce(lambda a, b: a & b, (new[c].eqNullSafe(old[c]) for c in old.columns))
    changed = new.join(old, differs, "left_anti").select("date").distinct().collect()
    return sorted(r["date"] for r in changed)


def _owned(
    spark: SparkSession,
    database: str,
    catalog: Any,
    span: tuple[date, date] | None,
    locations: Locations,
) -> DataFrame:
    """The (date, sku_id, location_id) with a streamed event on that local day: the
    ``sales`` rows of the imported range, a day either side for the zones around UTC."""
    empty = spark.createDataFrame([], "date date, sku_id string, location_id string")
    if span is None or load_table(catalog, database, SALES) is None:
        return empty
    low = datetime.combine(span[0] - timedelta(days=1), time())
    high = datetime.combine(span[1] + timedelta(days=2), time())
    sales = spark.table(table_name(database, SALES.name)).where(
        f"event_time >= '{low.isoformat()}' AND event_time < '{high.isoformat()}'"
    )
    pairs = sales.select("sku_id", "location_id", "event_time").mapInArrow(
        partial(local_pairs, locations), "date date, sku_id string, location_id string"
    )
    return pairs.distinct()


def local_pairs(
    locations: Locations, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """Streamed events as (local day, sku_id, location_id) (an executor task), the days
    by the single engine's :func:`local_dates`."""
    time_type = SALES.schema.field("event_time").type
    for batch in batches:
        if batch.num_rows == 0:
            continue
        rows = pa.Table.from_batches([batch])
        rows = rows.set_column(2, "event_time", rows.column("event_time").cast(time_type))
        yield pa.RecordBatch.from_arrays(
            [
                local_dates(rows, locations),
                rows.column("sku_id").combine_chunks(),
                rows.column("location_id").combine_chunks(),
            ],
            names=KEYS,
        )


def _quarantine(read: DataFrame, ranked: DataFrame, files: Source) -> DataFrame:
    """The quarantine's lines in the single engine's order: each file's refused rows as
    read, then the duplicates by day, file and row."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

    uris = [files.file_uri(f) for f in files.files]
    refused = read.where(F.col("_kind") == REFUSED).select(
        F.lit(0).alias("_group"),
        F.col("_file").cast("long").alias("_a"),
        F.col("_seq").alias("_b"),
        F.lit(0).cast("long").alias("_c"),
        "_line",
    )
    duplicates = (
        ranked.where(F.col("_rank") > 1)
        .select(*HISTORY_ROWS.names, "_file", "_row")
        .mapInArrow(
            partial(duplicate_lines, uris),
            "_group int, _a bigint, _b bigint, _c bigint, _line string",
        )
    )
    return refused.unionByName(duplicates).orderBy("_group", "_a", "_b", "_c")


def duplicate_lines(uris: list[str], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Duplicate rows as quarantine lines (an executor task), the single engine's, each
    with its place: after every file's refused rows, by day, file and row."""
    for batch in batches:
        rows = batch.to_pylist()
        lines = [
            json.dumps(duplicate_refusal(r).as_dict(uris[r["_file"]]), separators=(",", ":"))
            for r in rows
        ]
        yield pa.RecordBatch.from_pydict(
            {
                "_group": [1] * len(rows),
                "_a": [(r["date"] - _EPOCH).days for r in rows],
                "_b": [r["_file"] for r in rows],
                "_c": [r["_row"] for r in rows],
                "_line": lines,
            },
            schema=pa.schema(
                [
                    ("_group", pa.int32()),
                    ("_a", pa.int64()),
                    ("_b", pa.int64()),
                    ("_c", pa.int64()),
                    ("_line", pa.string()),
                ]
            ),
        )


#: Up to this many refused rows, the quarantine's lines are collected in one job; beyond,
#: they stream to the driver a partition at a time (a job each).
COLLECT_LINES: Final = 65536


def _write_quarantine(
    store: LakeStore, bucket: str, key: str, lines: DataFrame | None, count: int
) -> None:
    """The refused rows as one NDJSON object (removed when there are none), written to a
    local file first."""
    if lines is None:
        store.delete(bucket, key)
        return
    texts = lines.select("_line")
    rows = texts.collect() if count <= COLLECT_LINES else texts.toLocalIterator()
    with tempfile.TemporaryDirectory(prefix="history-import-") as tmp:
        path = Path(tmp) / "quarantine.ndjson"
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(row["_line"] + "\n")
        store.upload(path, bucket, key)
