"""Only the tables a query names are planned; every table when DuckDB cannot tell."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from pipeline.query.catalog import TableInfo
from pipeline.query.duckdb_engine import CONNECTION_CONFIG, referenced_tables

TABLES = [
    TableInfo(name, f"s3://cur/{name}/", pa.schema([]), pa.schema([]), iceberg=True)
    for name in ("daily_demand", "forecasts", "sales")
]


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SELECT count(*) FROM sales", ["sales"]),
        ('SELECT * FROM lake."SALES"', ["sales"]),
        (
            "WITH f AS (SELECT * FROM forecasts) SELECT * FROM f JOIN daily_demand d"
            " ON f.sku_id = d.sku_id",
            ["daily_demand", "forecasts"],
        ),
        ("SELECT * FROM query('SELECT * FROM sales')", ["sales"]),
        (
            "SELECT * FROM sales JOIN daily_demand USING (sku_id)",
            ["daily_demand", "forecasts", "sales"],
        ),
        ("SHOW TABLES", ["daily_demand", "forecasts", "sales"]),
        ("SELECT 1", ["daily_demand", "forecasts", "sales"]),
        ("SELEC 1", ["daily_demand", "forecasts", "sales"]),
        ("SELECT * FROM other_table", ["daily_demand", "forecasts", "sales"]),
    ],
    ids=[
        "one",
        "quoted",
        "cte-join",
        "query-function",
        "unbound",
        "show",
        "none",
        "bad",
        "unknown",
    ],
)
def test_given_sql_then_the_tables_it_names_or_all(sql: str, names: list[str]) -> None:
    con = duckdb.connect(":memory:", config=CONNECTION_CONFIG)

    assert [t.name for t in referenced_tables(con, sql, TABLES)] == names
