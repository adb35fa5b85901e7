"""Every named query of the template runs unmodified on the local engine (DuckDB) against
the curated Iceberg tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from pipeline.errors import NotFoundError
from pipeline.lake.tables import DAILY_DEMAND, FORECASTS, SALES
from pipeline.local.template import load_template
from pipeline.query import named_queries, named_query, run_query

if TYPE_CHECKING:
    from tests.functional.query.conftest import IcebergLake


def sales_rows(*events: tuple[str, str, str, int, int | None, float | None, datetime]) -> pa.Table:
    """Curated sales rows: (event_id, event_type, location_id, quantity, stock, price, time)."""
    names = ("event_id", "event_type", "location_id", "quantity", "stock_on_hand", "unit_price")
    columns = {name: [e[i] for e in events] for i, name in enumerate(names)}
    columns["event_time"] = [e[6].replace(tzinfo=None) for e in events]
    columns["sku_id"] = ["SKU-1"] * len(events)
    return pa.table(columns).select(SALES.columns.names).cast(SALES.columns)


def test_given_curated_iceberg_tables_when_each_named_query_runs_locally_then_expected_rows(
    lake: IcebergLake,
) -> None:
    yesterday = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - (
        timedelta(days=1)
    )
    before = yesterday - timedelta(days=1)
    lake.append(SALES, sales_rows(("a1", "sale", "LOC-1", 3, 4, 2.0, before)), before.date())
    lake.append(
        SALES,
        sales_rows(
            ("a2", "sale", "LOC-1", 4, 0, 2.0, yesterday),
            ("b1", "sale", "LOC-2", 1, 7, 10.0, yesterday),
            ("b2", "return", "LOC-2", 1, None, None, yesterday),
        ),
        yesterday.date(),
    )
    lake.append(
        DAILY_DEMAND,
        pa.table(
            {
                "sku_id": ["SKU-1"] * 3,
                "location_id": ["LOC-1", "LOC-1", "LOC-2"],
                "date": [before.date(), yesterday.date(), yesterday.date()],
                "units_sold": [3, 4, 1],
                "units_returned": [0, 0, 1],
                "end_of_day_stock": [4, 0, 7],
                "stockout": [False, True, False],
                "avg_unit_price": [2.0, 2.0, 10.0],
            }
        ),
    )
    lake.append(
        FORECASTS,
        pa.table(
            {
                "sku_id": ["SKU-1", "SKU-1"],
                "location_id": ["LOC-1", "LOC-1"],
                "date": [yesterday.date()] * 2,
                "forecast_val": [2.0, 5.0],
                "confidence_lower": [1.0, 3.5],
                "confidence_upper": [3.0, 6.0],
                "lower_95": [0.5, 3.0],
                "upper_95": [3.5, 7.0],
                "model": ["old", "seasonal_naive"],
                "generated_at": [
                    before.replace(tzinfo=None),
                    before.replace(tzinfo=None) + timedelta(hours=1),
                ],
            }
        ),
    )
    queries = named_queries(load_template())

    results = {
        name: run_query(
            sql, curated_bucket=lake.bucket, database=lake.database, session=lake.session
        )
        for name, sql in queries.items()
    }

    assert sorted(results) == [
        "daily-sales-by-sku-location",
        "forecast-vs-actual",
        "yesterdays-stockouts",
    ]
    sales = results["daily-sales-by-sku-location"]
    assert [
        (r.sku_id, r.location_id, r.sales_date, r.units_sold, r.revenue) for r in sales.itertuples()
    ] == [
        ("SKU-1", "LOC-1", before.date(), 3, 6.0),
        ("SKU-1", "LOC-1", yesterday.date(), 4, 8.0),
        ("SKU-1", "LOC-2", yesterday.date(), 1, 10.0),
    ]
    stockouts = results["yesterdays-stockouts"]
    assert [
        (r.sku_id, r.location_id, r.date, r.end_of_day_stock) for r in stockouts.itertuples()
    ] == [("SKU-1", "LOC-1", yesterday.date(), 0)]
    versus = results["forecast-vs-actual"]
    assert [
        (r.model, r.forecast_val, r.actual_units, r.error, r.within_interval)
        for r in versus.itertuples()
    ] == [("seasonal_naive", 5.0, 4, 1.0, True)]


def test_given_unknown_name_when_looking_up_named_query_then_not_found_lists_known() -> None:
    with pytest.raises(NotFoundError) as error:
        named_query(load_template(), "no-such-query")
    assert str(error.value) == (
        "no named query 'no-such-query' in the template (known: daily-sales-by-sku-location,"
        " forecast-vs-actual, yesterdays-stockouts)"
    )


def test_given_rows_28_and_29_days_back_when_the_28_day_named_queries_run_then_the_28th_is_in(
    lake: IcebergLake,
) -> None:
    # Athena keeps the 28th day back (current_date - INTERVAL '28' DAY is a date there, a
    # timestamp on DuckDB): a bound on a string of the partition columns once lost it here.
    today = datetime.now(UTC).date()
    inside, outside = today - timedelta(days=28), today - timedelta(days=29)
    for day in (inside, outside):
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        lake.append(SALES, sales_rows((f"e{day}", "sale", "LOC-1", 1, 0, 1.0, noon)), day)
    lake.append(
        DAILY_DEMAND,
        pa.table(
            {
                "sku_id": ["SKU-1"] * 2,
                "location_id": ["LOC-1"] * 2,
                "date": [inside, outside],
                "units_sold": [1, 1],
                "units_returned": [0, 0],
                "end_of_day_stock": [0, 0],
                "stockout": [True, True],
                "avg_unit_price": [1.0, 1.0],
            }
        ),
    )
    lake.append(
        FORECASTS,
        pa.table(
            {
                "sku_id": ["SKU-1"] * 2,
                "location_id": ["LOC-1"] * 2,
                "date": [inside, outside],
                "forecast_val": [1.0, 1.0],
                "confidence_lower": [0.0, 0.0],
                "confidence_upper": [2.0, 2.0],
                "lower_95": [0.0, 0.0],
                "upper_95": [3.0, 3.0],
                "model": ["m", "m"],
                "generated_at": [datetime(2026, 1, 1)] * 2,
            }
        ),
    )
    template = load_template()

    def run(name: str) -> list[object]:
        frame = run_query(
            named_query(template, name),
            curated_bucket=lake.bucket,
            database=lake.database,
            session=lake.session,
        )
        return list(frame.iloc[:, 2])

    assert (run("daily-sales-by-sku-location"), run("forecast-vs-actual")) == (
        [inside],
        [inside],
    )
