"""Local Parquet files of the job: per-day spools of new rows and merged partitions.

Everything streams in record batches so memory follows one raw object, one row group and
the ``event_id`` column of one partition, not the size of the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.compaction.dedupe import first_occurrences, not_in

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

#: Large row groups make few, large files: what Athena and DuckDB scan fastest.
ROW_GROUP_ROWS: Final = 256 * 1024
COMPRESSION: Final = "snappy"


def conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns: missing ones (older files) become nulls."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.table(columns, schema=schema)


class RowGroupWriter:
    """A Parquet writer that buffers small batches into large row groups."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(str(path), schema, compression=COMPRESSION)
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
    """New rows of one run, routed to one local file per event date."""

    def __init__(self, directory: Path, schema: pa.Schema) -> None:
        self._directory = directory
        self._schema = schema
        self._writers: dict[date, RowGroupWriter] = {}

    def append(self, day: date, rows: pa.Table) -> None:
        writer = self._writers.get(day)
        if writer is None:
            writer = RowGroupWriter(self.path(day), self._schema)
            self._writers[day] = writer
        writer.write(rows)

    def path(self, day: date) -> Path:
        return self._directory / f"spool-{day.isoformat()}.parquet"

    @property
    def days(self) -> list[date]:
        return sorted(self._writers)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()


@dataclass(frozen=True)
class MergeResult:
    """What merging new rows into one partition did."""

    new_rows: int
    duplicates: int
    total_rows: int


def merge_partition(existing: Path | None, new: Path, out: Path, schema: pa.Schema) -> MergeResult:
    """Write ``existing`` rows then the new rows whose ``event_id`` is not there yet to ``out``.

    Within the new rows the first occurrence wins; against the partition the existing row
    wins, so a re-run after a crash keeps exactly the rows the first run kept. Nothing is
    written when no row is new (``new_rows == 0``).
    """
    new_ids = pq.read_table(new, columns=["event_id"]).column(0)
    existing_ids = (
        pq.read_table(existing, columns=["event_id"]).column(0)
        if existing is not None
        else pa.chunked_array([], pa.string())
    )
    mask = pc.and_(first_occurrences(new_ids), not_in(new_ids, existing_ids))
    kept = int(pc.sum(mask).as_py() or 0)
    duplicates = len(new_ids) - kept
    if kept == 0:
        return MergeResult(0, duplicates, len(existing_ids))
    writer = RowGroupWriter(out, schema)
    if existing is not None:
        for batch in pq.ParquetFile(existing).iter_batches(batch_size=ROW_GROUP_ROWS):
            writer.write(batch)
    offset = 0
    for batch in pq.ParquetFile(new).iter_batches(batch_size=ROW_GROUP_ROWS):
        writer.write(batch.filter(mask.slice(offset, batch.num_rows)))
        offset += batch.num_rows
    writer.close()
    return MergeResult(kept, duplicates, writer.rows)
