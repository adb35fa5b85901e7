"""Local Parquet files of the job: per-day spools of new rows and merged partitions.

Everything streams in record batches so memory follows a few raw objects, a row group or
two and the ``event_id`` column of one partition (de-duplication's hash tables cover one
bucket of it at a time), not the size of the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.compaction.dedupe import new_rows

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from datetime import date
    from pathlib import Path

#: Large row groups make few, large files: what Athena and DuckDB scan fastest.
ROW_GROUP_ROWS: Final = 256 * 1024
COMPRESSION: Final = "snappy"


def read_batch_rows() -> int:
    """Rows per batch when reading a file back: a quarter of a row group.

    Buffers that collect batches up to a row group (the writer's, the demand reduction's)
    then overshoot it by at most a quarter; reading whole row groups, a filtered one falls
    just short and the next one doubles what is held (measured: 181 vs 70 MB of Arrow
    memory for a 1.2M-row day).
    """
    return max(1, ROW_GROUP_ROWS // 4)


def conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing ones (older files) become nulls."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if table.schema.equals(schema):
        return table
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.table(columns, schema=schema)


class RowGroupWriter:
    """A Parquet writer that buffers small batches into large row groups.

    Columns whose values are (nearly) all distinct, such as ``event_id`` and ``event_time``,
    are written without a dictionary: building one only for Parquet to fall back to plain
    encoding cost a third of the write time in the compaction benchmark.
    """

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        compression: str = COMPRESSION,
        unique_columns: Iterable[str] = ("event_id", "event_time"),
    ) -> None:
        unique = set(unique_columns)
        self.path = path
        self._writer = pq.ParquetWriter(
            str(path),
            schema,
            compression=compression,
            use_dictionary=[name for name in schema.names if name not in unique],
        )
        self._schema = schema
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self.rows = 0

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        if table.num_rows == 0:
            return
        self._buffer.append(conform(table, self._schema))
        self._buffered += table.num_rows
        self.rows += table.num_rows
        if self._buffered >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.concat_tables(self._buffer), row_group_size=ROW_GROUP_ROWS)
        self._buffer, self._buffered = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


class DaySpool:
    """New rows of one run by event date: in memory up to a row group, then a local file.

    A day's rows are buffered like a :class:`RowGroupWriter` buffers them and only full row
    groups go to the day's scratch file, so a day that fits in one row group never touches
    the disk (memory is the same either way: one row group per day at most).
    """

    def __init__(self, directory: Path, schema: pa.Schema) -> None:
        self._directory = directory
        self._schema = schema
        self._writers: dict[date, RowGroupWriter] = {}
        self._buffers: dict[date, list[pa.Table]] = {}
        self._buffered: dict[date, int] = {}

    def append(self, day: date, rows: pa.Table) -> None:
        """Add rows of ``day`` (in order: the first occurrence of an ``event_id`` wins)."""
        buffer = self._buffers.setdefault(day, [])
        buffer.append(conform(rows, self._schema))
        self._buffered[day] = self._buffered.get(day, 0) + rows.num_rows
        if self._buffered[day] >= ROW_GROUP_ROWS:
            writer = self._writers.get(day)
            if writer is None:
                # A local scratch file read back once: compressing it would only cost CPU.
                writer = RowGroupWriter(self._path(day), self._schema, compression="none")
                self._writers[day] = writer
            writer.write(pa.concat_tables(buffer))
            self._buffers[day], self._buffered[day] = [], 0

    def _path(self, day: date) -> Path:
        return self._directory / f"spool-{day.isoformat()}.parquet"

    @property
    def days(self) -> list[date]:
        return sorted(self._buffers)

    def close(self) -> None:
        """Finish the scratch files (call before reading)."""
        for writer in self._writers.values():
            writer.close()

    def batches(self, day: date, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """The rows of ``day`` in the order they were appended, in batches of at most a row
        group (scratch-file rows come in :func:`read_batch_rows` batches)."""
        if day in self._writers:
            file = pq.ParquetFile(self._path(day))
            for batch in file.iter_batches(batch_size=read_batch_rows(), columns=columns):
                yield pa.Table.from_batches([batch])
        for table in self._buffers.get(day, []):
            yield table if columns is None else table.select(columns)

    def discard(self, day: date) -> None:
        """Free the rows of ``day`` once merged."""
        self._buffers[day] = []
        self._path(day).unlink(missing_ok=True)


@dataclass(frozen=True)
class MergeResult:
    """What adding new rows to one partition did."""

    new_rows: int
    duplicates: int


def existing_ids(files: Iterable[Path]) -> pa.ChunkedArray:
    """The ``event_id`` column of a partition's data files."""
    chunks = [c for f in files for c in pq.read_table(f, columns=["event_id"]).column(0).chunks]
    return pa.chunked_array(chunks, pa.string())


def write_new_rows(
    existing: Iterable[Path],
    new: Callable[[list[str] | None], Iterable[pa.Table]],
    out: Path,
    schema: pa.Schema,
    *,
    prepare: Callable[[pa.Table], pa.Table] = lambda rows: rows,
    on_rows: Callable[[pa.Table], None] | None = None,
    finish: Callable[[RowGroupWriter], None] = RowGroupWriter.close,
) -> MergeResult:
    """Write the new rows whose ``event_id`` the partition's ``existing`` files lack to ``out``.

    ``new(columns)`` yields the new rows in order (it is read twice: ids, then rows).
    Within the new rows the first occurrence wins; against the partition the existing row
    wins, so a re-run after a crash keeps exactly the rows the first run kept. The existing
    files are only read (their ``event_id`` column), never rewritten: the table appends
    ``out`` beside them. Nothing is written when no row is new (``new_rows == 0``).
    ``prepare`` completes each batch to ``schema`` (the partition columns); ``on_rows``
    sees every new batch written, before ``prepare``; ``finish`` completes the file (by
    default: closes it; the job closes it off the main thread).
    """
    id_tables = [t.column("event_id") for t in new(["event_id"])]
    new_ids = pa.chunked_array([c for column in id_tables for c in column.chunks], pa.string())
    mask = new_rows(new_ids, existing_ids(existing), bucket_rows=ROW_GROUP_ROWS)
    kept = int(pc.sum(mask).as_py() or 0)
    duplicates = len(new_ids) - kept
    if kept == 0:
        return MergeResult(0, duplicates)
    writer = RowGroupWriter(out, schema)
    offset = 0
    for batch in new(None):
        rows = batch.filter(mask.slice(offset, batch.num_rows))
        offset += batch.num_rows
        if rows.num_rows:
            if on_rows is not None:
                on_rows(rows)
            writer.write(prepare(rows))
    finish(writer)
    return MergeResult(kept, duplicates)
