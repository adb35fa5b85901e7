"""Spark compaction writes the Iceberg tables: new sales rows appended, demand days replaced."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from pipeline.lake.tables import DAILY_DEMAND, SALES, iceberg_catalog
from pipeline.spark.compaction import run_compaction_spark

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import SparkSession

    from pipeline.local.stack import LocalStack


def _lake(stack: LocalStack) -> dict[str, Any]:
    session = stack.session()
    tag = uuid.uuid4().hex[:8]
    lake: dict[str, Any] = {
        "raw_bucket": f"raw-{tag}",
        "curated_bucket": f"cur-{tag}",
        "database": f"db_{tag}",
    }
    session.client("s3").create_bucket(Bucket=lake["raw_bucket"])
    session.client("s3").create_bucket(Bucket=lake["curated_bucket"])
    session.client("glue").create_database(DatabaseInput={"Name": lake["database"]})
    return lake


def _event(event_id: str, day: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": "sale",
        "sku_id": "A",
        "location_id": "L1",
        "quantity": 2,
        "unit_price": 1.25,
        "event_time": f"2024-05-{day:02d}T10:00:00Z",
        **extra,
    }


def _put(stack: LocalStack, bucket: str, key: str, events: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps(e) + "\n" for e in events).encode()
    stack.session().client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def test_given_two_runs_with_duplicates_when_compacted_on_spark_then_each_event_is_in_sales_once(
    stack: LocalStack, spark: SparkSession
) -> None:
    lake = _lake(stack)
    session = stack.session()
    _put(stack, lake["raw_bucket"], "sales/2024/05/11/shardId-0-000001-000001.json",
         [_event("a", 10), _event("b", 10), _event("a", 10, quantity=9)])  # fmt: skip

    first = run_compaction_spark(spark=spark, session=session, **lake)

    _put(stack, lake["raw_bucket"], "sales/2024/05/11/shardId-0-000002-000002.json",
         [_event("b", 10, quantity=7), _event("c", 11, stock_on_hand=4)])  # fmt: skip
    second = run_compaction_spark(spark=spark, session=session, **lake)

    catalog = iceberg_catalog(session)
    sales = catalog.load_table((lake["database"], SALES.name))
    rows = sales.scan().to_arrow().sort_by("event_id").to_pylist()
    assert [(r["event_id"], r["quantity"], r["day"]) for r in rows] == [
        ("a", 2, "10"),
        ("b", 2, "10"),
        ("c", 2, "11"),
    ]
    assert (first.rows_written, first.duplicates_dropped) == (2, 1)
    assert (second.rows_written, second.duplicates_dropped) == (1, 1)
    # One commit per run: the second run appended its one row without rewriting the first's.
    assert [s.summary and s.summary.operation.value for s in sales.snapshots()] == [
        "append",
        "append",
    ]
    demand = catalog.load_table((lake["database"], DAILY_DEMAND.name))
    got = demand.scan().to_arrow().sort_by("date").to_pylist()
    assert [(str(r["date"]), r["units_sold"], r["end_of_day_stock"]) for r in got] == [
        ("2024-05-10", 4, None),
        ("2024-05-11", 2, 4),
    ]


def test_given_imported_history_when_spark_rebuilds_its_day_then_pairs_without_events_keep_it(
    stack: LocalStack, spark: SparkSession, tmp_path: Path
) -> None:
    from pipeline.history import ColumnMapping, run_import

    lake = _lake(stack)
    session = stack.session()
    _put(stack, lake["raw_bucket"], "sales/2024/05/11/shardId-0-000001-000001.json",
         [_event("a", 10)])  # fmt: skip
    run_compaction_spark(spark=spark, session=session, **lake)
    (tmp_path / "h.csv").write_text(
        "sku,loc,day,units,stock\nA,L1,2024-05-10,9,1\nB,L1,2024-05-10,5,3\n"
    )
    mapping = ColumnMapping("sku", "loc", "day", "units", end_of_day_stock="stock")
    imported = run_import(
        str(tmp_path / "h.csv"),
        mapping,
        curated_bucket=lake["curated_bucket"],
        database=lake["database"],
        session=session,
    )
    # A late event of the same day: Spark rebuilds 2024-05-10.
    _put(stack, lake["raw_bucket"], "sales/2024/05/11/shardId-0-000002-000002.json",
         [_event("b", 10, sku_id="C")])  # fmt: skip
    run_compaction_spark(spark=spark, session=session, **lake)

    demand = iceberg_catalog(session).load_table((lake["database"], DAILY_DEMAND.name))
    got = demand.scan().to_arrow().sort_by("sku_id").to_pylist()
    assert imported.rows_superseded_by_stream == 1
    # A is the stream's (its event), B the history's (no event), C the stream's.
    assert [(r["sku_id"], r["units_sold"], r["end_of_day_stock"]) for r in got] == [
        ("A", 2, None),
        ("B", 5, 3),
        ("C", 2, None),
    ]
