"""Spark and PyIceberg write and read the same Iceberg tables in the (emulated) Glue catalog."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from pipeline.lake.tables import SALES, ensure_table, iceberg_catalog, with_partition_columns
from pipeline.spark.arrow import collect_arrow
from pipeline.spark.session import table_name

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from pipeline.local.stack import LocalStack


def _lake(stack: LocalStack) -> tuple[str, str]:
    session = stack.session()
    tag = uuid.uuid4().hex[:8]
    bucket, database = f"iceberg-{tag}", f"iceberg_{tag}"
    session.client("s3").create_bucket(Bucket=bucket)
    session.client("glue").create_database(DatabaseInput={"Name": database})
    return bucket, database


def _sales(*event_ids: str, day: date = date(2024, 5, 10)) -> pa.Table:
    n = len(event_ids)
    rows = pa.table(
        {
            "event_id": list(event_ids),
            "event_type": ["sale"] * n,
            "sku_id": ["A"] * n,
            "location_id": ["L1"] * n,
            "quantity": [1] * n,
            "stock_on_hand": [None] * n,
            "unit_price": [1.25] * n,
            "event_time": [datetime(day.year, day.month, day.day, 12, 0)] * n,
        }
    )
    return with_partition_columns(rows, SALES, day)


def test_given_a_table_pyiceberg_created_when_spark_appends_then_pyiceberg_reads_those_rows(
    stack: LocalStack, spark: SparkSession
) -> None:
    bucket, database = _lake(stack)
    catalog = iceberg_catalog(stack.session())
    table = ensure_table(catalog, database, bucket, SALES)
    rows = _sales("ev-1", "ev-2")

    name = table_name(database, "sales")
    spark.createDataFrame(rows.to_pylist(), spark.table(name).schema).writeTo(name).append()

    read = table.refresh().scan().to_arrow().sort_by("event_id")
    assert read.to_pylist() == rows.cast(read.schema).to_pylist()
    data_files = [task.file.file_path for task in table.scan().plan_files()]
    assert all(f"s3://{bucket}/sales/data/year=2024/month=05/day=10/" in f for f in data_files)


def test_given_rows_pyiceberg_appended_when_spark_reads_the_table_then_it_gets_them(
    stack: LocalStack, spark: SparkSession
) -> None:
    bucket, database = _lake(stack)
    table = ensure_table(iceberg_catalog(stack.session()), database, bucket, SALES)
    rows = _sales("ev-3", "ev-4", day=date(2024, 5, 11))
    table.append(rows.cast(table.schema().as_arrow()))

    read = collect_arrow(spark.table(table_name(database, "sales")).orderBy("event_id"))

    assert read.to_pylist() == rows.to_pylist()
