"""The curated Iceberg tables from Spark: rows into a table's columns, and day conditions."""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from pipeline.errors import TransientError
from pipeline.lake.tables import partition_values
from pipeline.spark.arrow import from_bytes
from pipeline.spark.session import settled_worker

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import date

    import pyarrow as pa
    from pyspark import RDD
    from pyspark.sql import Column, DataFrame, SparkSession


def ipc_frame(spark: SparkSession, pieces: RDD[bytes], table: str) -> DataFrame:
    """Arrow IPC values (each a table with ``table``'s columns) as a DataFrame of its schema.

    The values stay where they are (executors, or the driver's list parallelized); each
    task decodes its own and hands Spark Arrow batches, so no row is converted one by one.
    """
    schema = spark.table(table).schema
    data = spark.createDataFrame(pieces.map(lambda value: (value,)), "data binary")
    return data.mapInArrow(partial(decode_ipc, schema), schema)


def decode_ipc(schema: Any, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """A task of :func:`ipc_frame`: each value's rows, cast to the table's Arrow schema."""
    from pyspark.sql.pandas.types import to_arrow_schema

    arrow = to_arrow_schema(schema)
    settled_worker()
    for batch in batches:
        for value in batch.column(0).to_pylist():
            yield from from_bytes(value).select(arrow.names).cast(arrow).to_batches()


def days_condition(days: list[date]) -> Column:
    """The rows of ``days`` by their partition columns (a condition Iceberg maps onto whole
    partitions, so an ``overwrite`` by it deletes whole files)."""
    from pyspark.sql import functions as F  # noqa: N812 - Spark's convention

    condition = F.lit(False)
    for day in days:
        year, month, dd = partition_values(day)
        condition = condition | (
            (F.col("year") == year) & (F.col("month") == month) & (F.col("day") == dd)
        )
    return condition


#: Iceberg's exceptions for a commit that lost a race or whose outcome is unknown: the
#: table is at some snapshot, and a re-run (which reads it again) converges.
RETRYABLE_COMMIT: Final = (
    "org.apache.iceberg.exceptions.CommitFailedException",
    "org.apache.iceberg.exceptions.CommitStateUnknownException",
)


@contextmanager
def committing(table: str) -> Iterator[None]:
    """Raise a commit of ``table`` that another writer beat (Glue refused its stale
    version) as a :class:`~pipeline.errors.TransientError`, so the job is retried."""
    try:
        yield
    except Exception as e:
        name = next((n for n in RETRYABLE_COMMIT if n in str(e)), None)
        if name is None:
            raise
        raise TransientError(f"commit {table}: {name.rsplit('.', 1)[1]}") from e


#: Write options of a run's rows: they arrive clustered by day already (sorted by the
#: de-duplication's window, or built day by day), so the writer needs no shuffle to cluster
#: them by partition (Iceberg's default ``hash`` distribution adds one), and a task that holds
#: several days keeps a file open per day instead of failing on an unclustered row.
UNSHUFFLED: Final = {"distribution-mode": "none", "fanout-enabled": "true"}
