"""Arrow tables as bytes, the form rows take between Spark stages, and a DataFrame as Arrow."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def to_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def from_bytes(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def collect_arrow(frame: DataFrame) -> pa.Table:
    """A DataFrame's rows on the driver as one Arrow table, through Spark's Arrow collect
    (Spark 3.5 has no public ``toArrow``; its pandas conversions vary with pandas)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    batches = frame._collect_as_arrow()
    schema = to_arrow_schema(frame.schema)
    return pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
