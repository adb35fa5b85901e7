"""A curated zone of the Hive layout (one object per partition, Hive Glue tables): the job
refuses to start on it, ``adopt`` brings it into the Iceberg tables once, the job goes on."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.compaction import run_compaction
from pipeline.compaction.store import LakeStore
from pipeline.errors import TerminalError
from pipeline.lake.adopt import ADOPTED, adopt
from pipeline.lake.tables import SALES, ensure_table, iceberg_catalog
from tests.support.compaction_helpers import event, put_raw, raw_key
from tests.support.compaction_lake import Lake, curated_rows, table_rows

if TYPE_CHECKING:
    import boto3

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
OLD_DAY = date(2024, 2, 28)


def _hive_sales(s3: Any, lake: Lake, session: boto3.session.Session) -> None:
    """What an earlier release left: one Parquet object for 2024-02-28 (no partition
    columns, no ``unit_price`` yet) and a Hive Glue table over the layout."""
    old = pa.table(
        {
            "event_id": ["old-1", "old-2"],
            "event_type": ["sale", "sale"],
            "sku_id": ["SKU-1", "SKU-2"],
            "location_id": ["LOC-1", "LOC-1"],
            "quantity": pa.array([3, 4], pa.int64()),
            "stock_on_hand": pa.array([None, None], pa.int64()),
            "event_time": pa.array(
                [datetime(2024, 2, 28, 10), datetime(2024, 2, 28, 11)], pa.timestamp("us")
            ),
        }
    )
    sink = io.BytesIO()
    pq.write_table(old, sink)
    key = "sales/year=2024/month=02/day=28/part-00000.parquet"
    s3.put_object(Bucket=lake.curated, Key=key, Body=sink.getvalue())
    session.client("glue").create_table(
        DatabaseName=lake.database,
        TableInput={
            "Name": "sales",
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {"Location": f"s3://{lake.curated}/sales/", "Columns": []},
        },
    )


def _compact(lake: Lake, session: boto3.session.Session) -> Any:
    return run_compaction(
        raw_bucket=lake.raw, curated_bucket=lake.curated, database=lake.database, session=session
    )


def test_given_a_hive_table_when_compacting_then_refused_naming_the_command(
    lake: Lake, session: boto3.session.Session
) -> None:
    s3 = session.client("s3")
    _hive_sales(s3, lake, session)
    put_raw(s3, lake.raw, raw_key(T0, "shardId-000000000000", 1, 1), [event("new-1", T0)])

    with pytest.raises(TerminalError) as raised:
        _compact(lake, session)

    assert str(raised.value).startswith(
        f"{lake.database}.sales is not an Iceberg table (a Hive table of an earlier release?): "
        "run `fmcg adopt-hive` once"
    )


def test_given_hive_objects_beside_a_new_table_when_compacting_then_refused(
    lake: Lake, session: boto3.session.Session
) -> None:
    # GIVEN the Hive table is gone from the catalog (a stack update removed it) but its
    # objects are still there, and an empty Iceberg table was created
    s3 = session.client("s3")
    _hive_sales(s3, lake, session)
    session.client("glue").delete_table(DatabaseName=lake.database, Name="sales")
    ensure_table(iceberg_catalog(session), lake.database, lake.curated, SALES)
    put_raw(s3, lake.raw, raw_key(T0, "shardId-000000000000", 1, 1), [event("new-1", T0)])

    with pytest.raises(TerminalError) as raised:
        _compact(lake, session)

    assert str(raised.value) == (
        f"s3://{lake.curated}/sales/year=... holds sales partitions of the Hive layout that "
        f"the Iceberg table {lake.database}.sales lacks: run `fmcg adopt-hive` once "
        "(docs: pipeline/lake/adopt.py)"
    )


def test_given_a_hive_lake_when_adopted_then_its_rows_join_the_table_once(
    lake: Lake, session: boto3.session.Session
) -> None:
    s3 = session.client("s3")
    _hive_sales(s3, lake, session)
    put_raw(s3, lake.raw, raw_key(T0, "shardId-000000000000", 1, 1), [event("new-1", T0)])
    store = LakeStore.from_session(session)

    first = adopt(session, store, database=lake.database, curated_bucket=lake.curated)
    again = adopt(session, store, database=lake.database, curated_bucket=lake.curated)
    report = _compact(lake, session)

    assert first == {"sales": 2, "daily_demand": 0, "forecasts": 0}
    assert again == {"sales": 0, "daily_demand": 0, "forecasts": 0}
    assert report.rows_written == 1
    rows = table_rows(session, lake.database, "sales")
    assert sorted((r["event_id"], r["year"], r["month"], r["day"]) for r in rows) == [
        ("new-1", "2024", "03", "01"),
        ("old-1", "2024", "02", "28"),
        ("old-2", "2024", "02", "28"),
    ]
    # The column the old object lacked reads as null.
    old = curated_rows(session, lake.database, "sales", "day = '28'")
    assert old["unit_price"].isna().all()
    table = ensure_table(iceberg_catalog(session), lake.database, lake.curated, SALES)
    assert table.properties[ADOPTED] == "1"
