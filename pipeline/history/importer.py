"""The history import: daily history from CSV or Parquet into the curated tables.

Steps, in this order (each safe to repeat; nothing is visible before the commits):

1. read the source in batches (:mod:`pipeline.history.source`), check each row
   (:mod:`pipeline.history.mapping`) and spool the good ones to local scratch files by
   month (memory follows a batch, not the source); the refused rows go to one quarantine
   object per source, each with its reason (a deterministic key: a re-import overwrites it);
2. find the SKU x location x days that streamed events already hold: the ``sales`` rows of
   the imported date range, each on its location's local day (the overlap rule below);
3. one month at a time, for each day of the source: the day's ``demand_history`` rows (the
   source's row of a pair replaces the one an earlier import left, the first row of a pair
   wins within the source, later ones are quarantined as ``duplicate_row``) and, for the
   days where those change, its ``daily_demand`` rows (the history's row for each pair
   without streamed events; the others as they were). A day whose rows come out exactly as
   the table holds them is not written: re-importing a file changes nothing, not even a
   snapshot;
4. once every file is uploaded, commit ``daily_demand`` and then ``demand_history``, one
   commit each (one overwrite snapshot: the changed days' old data files out, the new ones
   in; their statistics come from the local copies). A crash before a commit leaves that
   table as it was (the uploaded files are orphans for maintenance); one between the two
   leaves ``demand_history`` as it was, so the re-run finds the same days changed and
   writes both again.

**The overlap rule: streamed events win.** A SKU x location x day with any streamed event
(sale, return or stock count) keeps the row compaction built from the stream; the history's
row of that day is kept in ``demand_history`` only. Every other imported day is the
history's, and stays so when compaction later rebuilds that day (it lays
``demand_history`` over the pairs without events: :func:`pipeline.compaction.demand.with_history`).

History rows are daily aggregates, not events: nothing goes to ``sales``. The promotion
flag is kept in ``demand_history`` (``daily_demand`` has no such column; the forecaster
sees a promotion as its price).

Cost follows the imported days: the existing rows of those days are read (to replace the
source's pairs and to compare), and the ``sales`` rows of the imported date range.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import (
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import TableProperties

from pipeline.compaction.demand import history_demand, local_dates
from pipeline.compaction.parquet_files import RowGroupWriter, conform
from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA, DEMAND_HISTORY_SCHEMA
from pipeline.compaction.store import LakeStore
from pipeline.errors import TerminalError, TransientError
from pipeline.history.mapping import (
    DUPLICATE_ROW,
    HISTORY_ROWS,
    MALFORMED_ROW,
    ColumnMapping,
    Refused,
    first_of_each_key,
    validate,
)
from pipeline.history.source import Format, Source, batches, open_source
from pipeline.job_protocol import Progress, null_progress
from pipeline.lake.adopt import refuse_unadopted
from pipeline.lake.locations import LocationDefaults, Locations, load_locations
from pipeline.lake.tables import (
    DAILY_DEMAND,
    DEMAND_HISTORY,
    SALES,
    TableSpec,
    data_key,
    ensure_table,
    file_day,
    iceberg_catalog,
    load_table,
    translated,
    with_partition_columns,
)

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

#: The import's quarantine, in the curated bucket: one object per source.
IMPORT_QUARANTINE_PREFIX: Final = "quarantine/import/"
IO_THREADS: Final = 4
_KEYS: Final = ["sku_id", "location_id"]
_ORDER: Final = [("sku_id", "ascending"), ("location_id", "ascending")]
#: Spooled rows: the history rows and where each came from (file index, row number).
_SPOOL: Final = pa.schema([*HISTORY_ROWS, ("_file", pa.int32()), ("_row", pa.int64())])


@dataclass(frozen=True)
class ImportReport:
    """What one import did."""

    source_files: int = 0
    source_bytes: int = 0
    rows_read: int = 0
    #: Rows refused by the checks or as duplicates, each quarantined with its reason.
    rows_quarantined: int = 0
    #: Good rows, one per SKU x location x day.
    rows_valid: int = 0
    #: Valid rows whose SKU x location x day the stream holds (kept in demand_history only).
    rows_superseded_by_stream: int = 0
    days_in_source: int = 0
    history_days_written: int = 0
    demand_days_written: int = 0
    #: Where the refused rows are (``s3://`` URI; empty: none).
    quarantine: str = ""
    #: Refused rows per reason.
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def quarantine_key(source: str) -> str:
    """Where an import of ``source`` puts its refused rows (re-imports overwrite it)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    name = source.rstrip("/").rsplit("/", 1)[-1] or "source"
    return f"{IMPORT_QUARANTINE_PREFIX}{digest}/{name}.ndjson"


class _MonthSpool:
    """Good rows by month, in local Parquet scratch files (read back one month at a time)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._writers: dict[tuple[int, int], pq.ParquetWriter] = {}

    def add(self, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        # A stable sort: within a day, rows stay in source order (the first of a pair wins).
        rows = rows.take(pc.sort_indices(rows.column("date"))).combine_chunks()
        days = rows.column("date").chunk(0).to_numpy(zero_copy_only=False).astype("datetime64[M]")
        months = days.astype(np.int64)
        bounds = np.flatnonzero(np.diff(months)) + 1
        for start, end in zip([0, *bounds], [*bounds, len(months)], strict=True):
            month = int(months[start])
            key = (1970 + month // 12, month % 12 + 1)
            writer = self._writers.get(key)
            if writer is None:
                writer = pq.ParquetWriter(
                    str(self._path(key)), _SPOOL, compression="none", use_dictionary=False
                )
                self._writers[key] = writer
            writer.write_table(rows.slice(start, end - start))

    def _path(self, month: tuple[int, int]) -> Path:
        return self._directory / f"spool-{month[0]:04d}-{month[1]:02d}.parquet"

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()

    @property
    def months(self) -> list[tuple[int, int]]:
        return sorted(self._writers)

    def read(self, month: tuple[int, int]) -> pa.Table:
        """The month's rows, by day (source order within a day); the file is removed."""
        path = self._path(month)
        rows = pq.read_table(path)
        path.unlink()
        return rows.take(pc.sort_indices(rows.column("date")))


def run_import(
    source: str,
    mapping: ColumnMapping,
    *,
    curated_bucket: str,
    database: str,
    session: boto3.session.Session | None = None,
    progress: Progress | None = None,
    location_defaults: LocationDefaults | None = None,
    file_format: Format | None = None,
) -> ImportReport:
    """Import the daily history in ``source`` into ``demand_history`` and ``daily_demand``;
    see the module docstring for the steps and the guarantees."""
    session = session or boto3.session.Session()
    report_progress = progress or null_progress
    store = LakeStore.from_session(session)
    files = open_source(source, session=session, file_format=file_format)
    with (
        tempfile.TemporaryDirectory(prefix="history-import-") as tmp,
        ThreadPoolExecutor(IO_THREADS, thread_name_prefix="import-io") as pool,
    ):
        catalog = iceberg_catalog(session)
        opened = pool.submit(open_tables, catalog, store, database, curated_bucket)
        locations = pool.submit(load_locations, store, curated_bucket, location_defaults)
        run = _Import(Path(tmp), source, files, store, curated_bucket, report_progress, pool)
        spool = _MonthSpool(run.work)
        try:
            rows_read = run.read(mapping, spool)
        finally:
            spool.close()
        tables = opened.result()
        owned = _stream_days(catalog, database, run.days, locations.result())
        run.tables = tables
        run.planned = {name: _planned(table, run.days) for name, table in tables.items()}
        run.report_progress("write days", 0, len(run.days))
        for month in spool.months:
            run.write_month(spool.read(month), owned)
        key = quarantine_key(source)
        run.write_quarantine(key)
        run.commit(tables)
    reasons: dict[str, int] = {}
    for refused in run.refused_reasons:
        reasons[refused] = reasons.get(refused, 0) + 1
    return ImportReport(
        source_files=len(files.files),
        source_bytes=files.size,
        rows_read=rows_read,
        rows_quarantined=len(run.refused_reasons),
        rows_valid=run.valid,
        rows_superseded_by_stream=run.superseded,
        days_in_source=len(run.days),
        history_days_written=len(run.written[DEMAND_HISTORY.name]),
        demand_days_written=len(run.written[DAILY_DEMAND.name]),
        quarantine=f"s3://{curated_bucket}/{key}" if run.refused_reasons else "",
        reasons=dict(sorted(reasons.items())),
    )


def open_tables(catalog: Catalog, store: LakeStore, database: str, bucket: str) -> dict[str, Table]:
    """``demand_history`` and ``daily_demand`` by name, created when missing."""
    history = ensure_table(catalog, database, bucket, DEMAND_HISTORY)
    demand = ensure_table(catalog, database, bucket, DAILY_DEMAND)
    refuse_unadopted(store, bucket, demand, DAILY_DEMAND)
    return {DEMAND_HISTORY.name: history, DAILY_DEMAND.name: demand}


def _stream_days(
    catalog: Catalog, database: str, days: list[date], locations: Locations
) -> dict[date, pa.Table]:
    """Per imported day, the (sku_id, location_id) pairs with a streamed event that day at
    the location's local day: the ``sales`` rows of the imported range (a day either side,
    for the zones around UTC)."""
    if not days:
        return {}
    table = load_table(catalog, database, SALES)
    if table is None:
        return {}
    low = datetime.combine(days[0] - timedelta(days=1), time())
    high = datetime.combine(days[-1] + timedelta(days=2), time())
    condition = f"event_time >= '{low.isoformat()}' AND event_time < '{high.isoformat()}'"
    wanted = set(days)
    pairs: dict[date, list[pa.Table]] = {}
    name = ".".join(table.name())
    with translated(f"read {name}", name):
        reader = table.scan(
            row_filter=condition, selected_fields=("sku_id", "location_id", "event_time")
        ).to_arrow_batch_reader()
        for batch in reader:
            rows = pa.Table.from_batches([batch]).cast(
                pa.schema([SALES.schema.field(n) for n in batch.schema.names])
            )
            if rows.num_rows == 0:
                continue
            keyed = pa.table(
                {
                    "sku_id": rows.column("sku_id"),
                    "location_id": rows.column("location_id"),
                    "date": local_dates(rows, locations),
                }
            )
            distinct = keyed.group_by([*_KEYS, "date"], use_threads=False).aggregate([])
            for day in pc.unique(distinct.column("date")).to_pylist():
                if day in wanted:
                    mask = pc.equal(distinct.column("date"), pa.scalar(day, pa.date32()))
                    pairs.setdefault(day, []).append(distinct.filter(mask).select(_KEYS))
    return {
        day: pa.concat_tables(parts).group_by(_KEYS, use_threads=False).aggregate([])
        for day, parts in pairs.items()
    }


@dataclass
class _Import:
    """The state of one import."""

    work: Path
    source_name: str
    source: Source
    store: LakeStore
    bucket: str
    report_progress: Progress
    pool: ThreadPoolExecutor
    days: list[date] = field(default_factory=list)
    valid: int = 0
    superseded: int = 0
    days_done: int = 0
    refused_reasons: list[str] = field(default_factory=list)
    uploads: list[Future[None]] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)
    #: The planned data files of the imported days, by table (the ones a commit replaces).
    planned: dict[str, dict[date, list[DataFile]]] = field(default_factory=dict)
    added: dict[str, list[DataFile]] = field(
        default_factory=lambda: {DEMAND_HISTORY.name: [], DAILY_DEMAND.name: []}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    written: dict[str, list[date]] = field(
        default_factory=lambda: {DEMAND_HISTORY.name: [], DAILY_DEMAND.name: []}
    )
    #: Names the import's data files: a crashed import's files are never a later one's.
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _quarantine: TextIO | None = None

    def _refuse(self, refused: Refused, source: str) -> None:
        if self._quarantine is None:
            self._quarantine = (self.work / "quarantine.ndjson").open("w", encoding="utf-8")
        self._quarantine.write(json.dumps(refused.as_dict(source), separators=(",", ":")) + "\n")
        self.refused_reasons.append(refused.reason)

    def read(self, mapping: ColumnMapping, spool: _MonthSpool) -> int:
        """Step 1: check every source row; spool the good ones. The rows read."""
        total = self.source.size
        before = 0
        rows_read = 0
        seen_days: set[int] = set()
        self.report_progress("read source", 0, total)
        for index, file in enumerate(self.source.files):
            uri = self.source.file_uri(file)
            row = 1
            for batch in batches(self.source, file, mapping):
                for bad in batch.malformed:
                    self._refuse(
                        Refused(bad.line, MALFORMED_ROW, bad.detail, {"line": bad.text}), uri
                    )
                checked = validate(batch.rows, mapping, row)
                row += batch.rows.num_rows
                rows_read += batch.rows.num_rows + len(batch.malformed)
                for refused in checked.refused:
                    self._refuse(refused, uri)
                rows = checked.rows
                if rows.num_rows:
                    seen_days.update(pc.unique(rows.column("date").cast(pa.int32())).to_pylist())
                    rows = rows.append_column(
                        "_file", pa.repeat(pa.scalar(index, pa.int32()), rows.num_rows)
                    ).append_column("_row", checked.numbers)
                    spool.add(rows)
                self.report_progress("read source", before + batch.position, total)
            before += file.size
        self.days = [date(1970, 1, 1) + timedelta(days=d) for d in sorted(seen_days)]
        self.report_progress("read source", total, total)
        return rows_read

    def _files(self, spec: TableSpec, days: list[date]) -> dict[date, list[str]]:
        return {d: [f.file_path for f in self.planned[spec.name].get(d, [])] for d in days}

    def write_month(self, rows: pa.Table, owned: dict[date, pa.Table]) -> None:
        """Step 3 for one month of the source: each day's new rows of both tables, written
        where they differ from what the table holds.

        ``daily_demand`` is read and rebuilt only for the days whose ``demand_history``
        changes: elsewhere it already holds the history (this import wrote both, or
        compaction laid the history over the stream when it rebuilt the day), so a
        re-import reads one table, not two.
        """
        dates = rows.column("date")
        month_days = sorted(pc.unique(dates).to_pylist())
        old_history = _existing_rows(
            self.store, DEMAND_HISTORY, self._files(DEMAND_HISTORY, month_days), self.pool
        )
        changed: dict[date, pa.Table] = {}
        for day in month_days:
            day_rows = rows.filter(pc.equal(dates, pa.scalar(day, pa.date32())))
            kept, duplicates = first_of_each_key(day_rows)
            for duplicate in duplicates.to_pylist():
                uri = self.source.file_uri(self.source.files[duplicate["_file"]])
                self._refuse(duplicate_refusal(duplicate), uri)
            imported = kept.select(HISTORY_ROWS.names).append_column(
                "source", pa.repeat(pa.scalar(self.source_name, pa.string()), kept.num_rows)
            )
            self.valid += imported.num_rows
            stream = owned.get(day)
            history_rows = imported
            if stream is not None and stream.num_rows:
                history_rows = imported.join(
                    stream, _KEYS, join_type="left anti", use_threads=False
                )
                self.superseded += imported.num_rows - history_rows.num_rows
            before = old_history.get(day)
            new_history = _replaced(before, imported, DEMAND_HISTORY_SCHEMA)
            if self._write_if_changed(DEMAND_HISTORY, day, before, new_history):
                changed[day] = history_rows
        old_demand = _existing_rows(
            self.store, DAILY_DEMAND, self._files(DAILY_DEMAND, sorted(changed)), self.pool
        )
        for day, history_rows in changed.items():
            before = old_demand.get(day)
            new_demand = _replaced(before, history_demand(history_rows), DAILY_DEMAND_SCHEMA)
            self._write_if_changed(DAILY_DEMAND, day, before, new_demand)
        self.days_done += len(month_days)
        self.report_progress("write days", self.days_done, len(self.days))

    def _write_if_changed(
        self, spec: TableSpec, day: date, old: pa.Table | None, new: pa.Table
    ) -> bool:
        """Write the day's ``new`` rows unless the table holds them already; whether it did."""
        if old is not None and old.equals(new):
            return False
        if old is None and new.num_rows == 0:
            return False
        path = self.work / f"{spec.name}-{day.isoformat()}.parquet"
        writer = RowGroupWriter(path, spec.schema, unique_columns=())
        writer.write(with_partition_columns(new, spec, day))
        key = data_key(spec.name, day, self.run_id)
        table = self.tables[spec.name]
        self.uploads.append(self.pool.submit(self._close_and_upload, writer, key, table))
        self.written[spec.name].append(day)
        return True

    def _close_and_upload(self, writer: RowGroupWriter, key: str, table: Table) -> None:
        """Close and upload one data file; its Iceberg entry (the statistics from the local
        footer: ``add_files`` would GET every file's footer back)."""
        writer.close()
        self.store.upload(writer.path, self.bucket, key)
        entry = data_file(table, writer.path, f"s3://{self.bucket}/{key}")
        writer.path.unlink()
        with self.lock:
            self.added[table.name()[-1]].append(entry)

    def write_quarantine(self, key: str) -> None:
        """The refused rows, one NDJSON object per source (replaced by each import of it;
        removed by one that refuses none, so it never tells of rows a fixed file lacks)."""
        if self._quarantine is None:
            self.store.delete(self.bucket, key)
            return
        self._quarantine.close()
        self.store.upload(self.work / "quarantine.ndjson", self.bucket, key)

    def commit(self, tables: dict[str, Table]) -> None:
        """Step 4: both tables, one commit each, after every file is uploaded."""
        self.report_progress("commit tables", 0, 2)
        for upload in self.uploads:
            upload.result()
        # daily_demand first: a crash between the two leaves demand_history as it was, so
        # the re-run finds those days changed and writes both again.
        for n, spec in enumerate((DAILY_DEMAND, DEMAND_HISTORY)):
            days = self.written[spec.name]
            if days:
                planned = self.planned[spec.name]
                old = [f for day in days for f in planned.get(day, [])]
                replace_files(tables[spec.name], old, self.added[spec.name], self.source_name)
            self.report_progress("commit tables", n + 1, 2)


def duplicate_refusal(row: dict[str, Any]) -> Refused:
    """A later row of a pair and day already in the source, refused."""
    record = {
        k: (v.isoformat() if isinstance(v, date) else v)
        for k, v in row.items()
        if not k.startswith("_")
    }
    detail = (
        f"{row['sku_id']} at {row['location_id']} on {row['date'].isoformat()} is in the "
        "source more than once; its first row is imported"
    )
    return Refused(int(row["_row"]), DUPLICATE_ROW, detail, record)


def _planned(table: Table, days: list[date]) -> dict[date, list[DataFile]]:
    """The current data files of ``days`` of ``table``, by day (one scan planning, over
    the imported date range: a set of thousands of days costs more to evaluate per file)."""
    name = ".".join(table.name())
    if not days:
        return {}
    condition = f"date >= '{days[0].isoformat()}' AND date <= '{days[-1].isoformat()}'"
    with translated(f"plan {name}", name):
        tasks = list(table.scan(row_filter=condition).plan_files())
    wanted = set(days)
    files: dict[date, list[DataFile]] = {}
    for task in tasks:
        if task.delete_files:
            raise TerminalError(
                f"{name}: {task.file.file_path} has delete files; the curated tables are "
                "copy-on-write, merge-on-read is not supported"
            )
        day = file_day(task.file.partition)
        if day in wanted:
            files.setdefault(day, []).append(task.file)
    return {day: sorted(found, key=lambda f: f.file_path) for day, found in files.items()}


def _sorted(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    return conform(rows, schema).sort_by(_ORDER).combine_chunks()


def _replaced(old: pa.Table | None, new: pa.Table, schema: pa.Schema) -> pa.Table:
    """A day's rows: ``old`` without the pairs of ``new``, and ``new``; sorted by pair."""
    if old is None or old.num_rows == 0:
        return _sorted(new, schema)
    if new.num_rows == 0:
        return old
    others = old.join(new.select(_KEYS), _KEYS, join_type="left anti", use_threads=False)
    return _sorted(pa.concat_tables([conform(others, schema), conform(new, schema)]), schema)


def _existing_rows(
    store: LakeStore, spec: TableSpec, files: dict[date, list[str]], pool: ThreadPoolExecutor
) -> dict[date, pa.Table]:
    """The rows of the given days' data files, by day, each sorted by pair (one GET per
    file, in parallel)."""

    def read(uri: str) -> pa.Table:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        data = store.get(bucket, key)
        if data is None:
            # Only maintenance removes a snapshot's files, and never a current one's.
            raise TransientError(f"data file {uri} vanished during the import")
        rows = pq.read_table(pa.BufferReader(data), columns=spec.columns.names)
        return conform(rows, spec.columns)

    wanted = [(day, path) for day, paths in sorted(files.items()) for path in paths]
    parts: dict[date, list[pa.Table]] = {}
    for (day, _), rows in zip(wanted, pool.map(read, [p for _, p in wanted]), strict=True):
        parts.setdefault(day, []).append(rows)
    return {day: _sorted(pa.concat_tables(p), spec.columns) for day, p in parts.items()}


def data_file(table: Table, local: Path, uri: str) -> DataFile:
    """The Iceberg entry of a data file uploaded to ``uri`` from ``local``: what PyIceberg's
    ``add_files`` makes of a file's footer, read from the local copy."""
    metadata = table.metadata
    schema = metadata.schema()
    footer = pq.read_metadata(local)
    statistics = data_file_statistics_from_parquet_metadata(
        parquet_metadata=footer,
        stats_columns=compute_statistics_plan(schema, metadata.properties),
        parquet_column_mapping=parquet_path_to_id_mapping(schema),
    )
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=uri,
        file_format=FileFormat.PARQUET,
        partition=statistics.partition(metadata.spec(), schema),
        file_size_in_bytes=local.stat().st_size,
        sort_order_id=None,
        spec_id=metadata.default_spec_id,
        equality_ids=None,
        key_metadata=None,
        **statistics.to_serialized_dict(),
    )


def replace_files(table: Table, old: list[DataFile], new: list[DataFile], source: str) -> None:
    """One commit of ``table``: the ``old`` data files (each holds one day) out, the ``new``
    ones in (one overwrite snapshot), with the source named in the snapshot summary."""
    name = ".".join(table.name())
    with translated(f"commit {name}", name):
        transaction = table.transaction()
        if transaction.table_metadata.name_mapping() is None:
            # As add_files does: the files carry no field ids, readers map them by name.
            mapping = transaction.table_metadata.schema().name_mapping.model_dump_json()
            transaction.set_properties({TableProperties.DEFAULT_NAME_MAPPING: mapping})
        properties = {"fmcg.import.source": source}
        with transaction.update_snapshot(properties).overwrite() as overwrite:
            for entry in old:
                overwrite.delete_data_file(entry)
            for entry in new:
                overwrite.append_data_file(entry)
        transaction.commit_transaction()
