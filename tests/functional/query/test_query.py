"""Every named query of the template runs unmodified on the local engine (DuckDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.compaction import run_compaction
from pipeline.errors import NotFoundError
from pipeline.lake import curated_partition_prefix
from pipeline.query import named_queries, named_query, run_query
from tests.support.compaction_helpers import event, put_raw, raw_key

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack


def test_given_curated_data_when_each_named_query_runs_locally_then_expected_rows(
    stack: LocalStack,
) -> None:
    session = stack.session()
    s3 = session.client("s3")
    curated, database = stack.ref("CuratedBucket"), stack.ref("LakeDatabase")
    yesterday = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - (
        timedelta(days=1)
    )
    before = yesterday - timedelta(days=1)
    put_raw(
        s3,
        stack.ref("RawBucket"),
        raw_key(yesterday, "shardId-000000000000", 1, 5),
        [
            event("a1", before, quantity=3, stock=4, price=2.0),
            event("a2", yesterday, quantity=4, stock=0, price=2.0),
            event("b1", yesterday, location="LOC-2", quantity=1, stock=7, price=10.0),
            event("b2", yesterday, location="LOC-2", event_type="return", quantity=1, price=None),
        ],
    )
    run_compaction(
        raw_bucket=stack.ref("RawBucket"),
        curated_bucket=stack.ref("CuratedBucket"),
        database=stack.ref("LakeDatabase"),
        session=stack.session(),
    )
    forecasts = pa.table(
        {
            "sku_id": ["SKU-1", "SKU-1"],
            "location_id": ["LOC-1", "LOC-1"],
            "date": pa.array([yesterday.date()] * 2, pa.date32()),
            "forecast_val": [2.0, 5.0],
            "confidence_lower": [1.0, 3.5],
            "confidence_upper": [3.0, 6.0],
            "model": ["old", "seasonal_naive"],
            "generated_at": pa.array(
                [before.replace(tzinfo=None), before.replace(tzinfo=None) + timedelta(hours=1)],
                pa.timestamp("us"),
            ),
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(forecasts, sink)
    s3.put_object(
        Bucket=curated,
        Key=curated_partition_prefix(yesterday.date(), "forecasts") + "part-00000.parquet",
        Body=sink.getvalue().to_pybytes(),
    )
    queries = named_queries(stack.template)

    results = {
        name: run_query(sql, curated_bucket=curated, database=database, session=session)
        for name, sql in queries.items()
    }

    assert sorted(results) == [
        "daily-sales-by-sku-location",
        "forecast-vs-actual",
        "yesterdays-stockouts",
    ]
    sales = results["daily-sales-by-sku-location"]
    assert [
        (r.sku_id, r.location_id, str(r.sales_date)[:10], r.units_sold, r.revenue)
        for r in sales.itertuples()
    ] == [
        ("SKU-1", "LOC-1", before.date().isoformat(), 3, 6.0),
        ("SKU-1", "LOC-1", yesterday.date().isoformat(), 4, 8.0),
        ("SKU-1", "LOC-2", yesterday.date().isoformat(), 1, 10.0),
    ]
    stockouts = results["yesterdays-stockouts"]
    assert [(r.sku_id, r.location_id, r.end_of_day_stock) for r in stockouts.itertuples()] == [
        ("SKU-1", "LOC-1", 0)
    ]
    versus = results["forecast-vs-actual"]
    assert [
        (r.model, r.forecast_val, r.actual_units, r.error, r.within_interval)
        for r in versus.itertuples()
    ] == [("seasonal_naive", 5.0, 4, 1.0, True)]


def test_given_unknown_name_when_looking_up_named_query_then_not_found_lists_known(
    stack: LocalStack,
) -> None:
    with pytest.raises(NotFoundError) as error:
        named_query(stack.template, "no-such-query")
    assert str(error.value) == (
        "no named query 'no-such-query' in the template (known: daily-sales-by-sku-location,"
        " forecast-vs-actual, yesterdays-stockouts)"
    )
