"""The local engine reads an Iceberg table's current snapshot: its rows in Athena's types,
nothing a later commit removed, and only the data files a partition filter needs."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.types import StringType

from pipeline.errors import TerminalError
from pipeline.lake.tables import DAILY_DEMAND, SALES, with_partition_columns
from pipeline.query import run_query
from pipeline.query.formats import plain

if TYPE_CHECKING:
    from tests.functional.query.conftest import IcebergLake

DAYS = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]


def demand(days: list[date], sku: str = "SKU-1") -> pa.Table:
    return pa.table(
        {
            "sku_id": [sku] * len(days),
            "location_id": ["LOC-1"] * len(days),
            "date": days,
            "units_sold": [d.day for d in days],
            "units_returned": [0] * len(days),
            "end_of_day_stock": [10 - d.day for d in days],
            "stockout": [False] * len(days),
            "avg_unit_price": pa.array([None] * len(days), pa.float64()),
        }
    )


def rows(lake: IcebergLake, sql: str) -> list[tuple[object, ...]]:
    frame = run_query(sql, curated_bucket=lake.bucket, database=lake.database, session=lake.session)
    return list(frame.itertuples(index=False, name=None))


def data_keys(lake: IcebergLake, table: str) -> list[str]:
    s3 = lake.session.client("s3")
    listing = s3.list_objects_v2(Bucket=lake.bucket, Prefix=f"{table}/data/")
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_given_an_append_then_a_delete_of_one_day_when_querying_then_only_the_current_snapshot(
    lake: IcebergLake,
) -> None:
    table = lake.append(DAILY_DEMAND, demand(DAYS))
    table.delete("year = '2026' AND month = '01' AND day = '02'")

    result = rows(lake, "SELECT date, units_sold, year, month, day FROM daily_demand ORDER BY 1")

    assert [s.summary.operation.value for s in table.snapshots() if s.summary] == [
        "append",
        "delete",
    ]
    # The deleted day's data file is still in the bucket (no snapshot expired): the plan,
    # not a listing, decides what is read.
    assert any("/day=02/" in key for key in data_keys(lake, "daily_demand"))
    assert result == [
        (date(2026, 1, 1), 1, "2026", "01", "01"),
        (date(2026, 1, 3), 3, "2026", "01", "03"),
    ]


def test_given_a_day_replaced_in_one_commit_when_querying_then_only_its_new_rows(
    lake: IcebergLake,
) -> None:
    table = lake.append(DAILY_DEMAND, demand(DAYS[:2]))
    with table.transaction() as transaction:
        transaction.delete("year = '2026' AND month = '01' AND day = '02'")
        transaction.append(with_partition_columns(demand([DAYS[1]], "SKU-2"), DAILY_DEMAND))

    result = rows(lake, f"SELECT sku_id, date FROM {lake.database}.daily_demand ORDER BY date")

    assert result == [("SKU-1", date(2026, 1, 1)), ("SKU-2", date(2026, 1, 2))]


def test_given_iceberg_tables_when_describing_them_then_athenas_column_types(
    lake: IcebergLake,
) -> None:
    lake.table(SALES)  # created, never written: no snapshot yet

    described = rows(lake, "DESCRIBE sales")
    counted = rows(lake, "SELECT count(*) FROM sales")

    assert [(name, kind) for name, kind, *_ in described] == [
        ("event_id", "VARCHAR"),
        ("event_type", "VARCHAR"),
        ("sku_id", "VARCHAR"),
        ("location_id", "VARCHAR"),
        ("quantity", "BIGINT"),
        ("stock_on_hand", "BIGINT"),
        ("unit_price", "DOUBLE"),
        ("event_time", "TIMESTAMP"),
        ("year", "VARCHAR"),
        ("month", "VARCHAR"),
        ("day", "VARCHAR"),
    ]
    assert counted == [(0,)]


def test_given_a_partition_filter_when_querying_then_other_days_files_are_not_read(
    lake: IcebergLake,
) -> None:
    lake.append(DAILY_DEMAND, demand(DAYS))
    # Break the 2nd of January's data file: reading it would fail the query.
    s3 = lake.session.client("s3")
    (broken,) = (k for k in data_keys(lake, "daily_demand") if "/day=02/" in k)
    s3.put_object(Bucket=lake.bucket, Key=broken, Body=b"not parquet")

    pruned = rows(lake, "SELECT date FROM daily_demand WHERE day = '03' AND month = '01'")

    assert pruned == [(date(2026, 1, 3),)]
    with pytest.raises(TerminalError) as error:
        rows(lake, "SELECT count(*) FROM daily_demand")
    assert str(error.value) == (
        "query failed: reading table daily_demand: Invalid: Could not open Parquet input source"
        f" '{lake.bucket}/{broken}': Parquet magic bytes not found in footer. Either the file is"
        " corrupted or this is not a parquet file."
    )


def test_given_a_hive_style_table_beside_iceberg_ones_when_querying_then_both_are_read(
    lake: IcebergLake,
) -> None:
    lake.append(DAILY_DEMAND, demand(DAYS[:1]))
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"sku_id": ["SKU-1"], "note": ["hive"]}), sink)
    lake.session.client("s3").put_object(
        Bucket=lake.bucket, Key="notes/year=2026/part-0.parquet", Body=sink.getvalue().to_pybytes()
    )
    lake.session.client("glue").create_table(
        DatabaseName=lake.database,
        TableInput={
            "Name": "notes",
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet"},
            "PartitionKeys": [{"Name": "year", "Type": "string"}],
            "StorageDescriptor": {
                "Location": f"s3://{lake.bucket}/notes/",
                "Columns": [
                    {"Name": "sku_id", "Type": "string"},
                    {"Name": "note", "Type": "string"},
                ],
            },
        },
    )

    result = rows(
        lake,
        "SELECT n.note, n.year, d.units_sold FROM notes n JOIN daily_demand d USING (sku_id)",
    )

    assert result == [("hive", "2026", 1)]


def test_given_rows_with_a_timestamp_when_querying_then_it_reads_as_written(
    lake: IcebergLake,
) -> None:
    sale = pa.table(
        {
            "event_id": ["e1"],
            "event_type": ["sale"],
            "sku_id": ["SKU-1"],
            "location_id": ["LOC-1"],
            "quantity": [2],
            "stock_on_hand": pa.array([None], pa.int64()),
            "unit_price": [2.5],
            "event_time": pa.array([datetime(2026, 1, 2, 8, 30, 1, 250000)], pa.timestamp("us")),
        }
    )
    lake.append(SALES, sale, date(2026, 1, 2))

    result = rows(lake, "SELECT event_id, event_time, stock_on_hand, day FROM sales")

    assert [(r[0], str(r[1]), r[2] is pd.NA, r[3]) for r in result] == [
        ("e1", "2026-01-02 08:30:01.250000", True, "02")
    ]


def test_given_a_column_added_by_schema_evolution_when_querying_then_old_rows_read_null(
    lake: IcebergLake,
) -> None:
    table = lake.append(DAILY_DEMAND, demand(DAYS[:1]))
    with table.update_schema() as update:
        update.add_column("promotion_id", StringType())
    newer = with_partition_columns(demand(DAYS[1:2]), DAILY_DEMAND)
    table.append(
        newer.append_column("promotion_id", pa.array(["PROMO-1"])).select(
            table.schema().column_names
        )
    )

    result = rows(lake, "SELECT date, promotion_id, day FROM daily_demand ORDER BY date")
    described = rows(lake, "DESCRIBE daily_demand")

    assert [[plain(v) for v in row] for row in result] == [
        ["2026-01-01", None, "01"],
        ["2026-01-02", "PROMO-1", "02"],
    ]
    assert [name for name, *_ in described][-4:] == ["year", "month", "day", "promotion_id"]


def test_given_a_table_the_query_does_not_name_when_querying_then_it_is_not_read(
    lake: IcebergLake,
) -> None:
    lake.append(DAILY_DEMAND, demand(DAYS[:1]))
    sales = lake.table(SALES)
    # The sales table's metadata file is gone: loading it would fail the query.
    metadata = sales.metadata_location.removeprefix(f"s3://{lake.bucket}/")
    lake.session.client("s3").delete_object(Bucket=lake.bucket, Key=metadata)

    assert rows(lake, "SELECT units_sold FROM daily_demand") == [(1,)]
    with pytest.raises(TerminalError) as error:
        rows(lake, "SELECT count(*) FROM sales")
    assert str(error.value) == (
        f"read table {lake.database}.sales: [Errno 2] Path does not exist '{lake.bucket}/"
        f"{metadata}'. Detail: [errno 2] No such file or directory"
    )
