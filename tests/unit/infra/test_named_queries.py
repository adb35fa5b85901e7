"""The named queries are Athena engine v3 (Trino) SQL that prunes the curated tables.

Athena bills by bytes scanned and the curated tables hold every day of history, so a query
without bounds reads all of it. Athena plans a read of an Iceberg table from its manifests,
pruning by comparisons of one column with a constant: each query must parse as Trino SQL,
and every read of a curated table must compare ``year`` (an identity partition column) with
a constant, and bound the table's day column with a constant (data files are skipped by
their column bounds) or pin year, month and day each to a constant (one partition). (That
the same SQL gives the expected rows on DuckDB: tests/functional/query/test_query.py.)
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from pipeline.lake.tables import PARTITION_COLUMNS, TABLES
from pipeline.local.template import load_template
from pipeline.query import named_queries

QUERIES = named_queries(load_template())

#: The column each curated table's day partition is taken from (sales: event_time's UTC day).
DAY_COLUMNS = {"sales": "event_time", "daily_demand": "date", "forecasts": "date"}

_BOUNDS = (exp.EQ, exp.GTE, exp.GT)


def _columns(node: Any) -> set[str]:
    return {c.name for c in node.find_all(exp.Column)}


def _constant_bounds(predicates: list[exp.Expression], kinds: tuple[type, ...]) -> set[str]:
    """The columns compared alone (``column op constant``) by one of ``kinds``."""
    return {
        p.left.name
        for p in predicates
        if isinstance(p, kinds) and isinstance(p.left, exp.Column) and not _columns(p.right)
    }


def unbounded_reads(sql: str) -> list[str]:
    """Why each read of a curated table in ``sql`` would not prune (empty: all prune)."""
    tree = sqlglot.parse_one(sql, read="trino", error_level=ErrorLevel.RAISE)
    reads = [t for t in tree.find_all(exp.Table) if t.name in DAY_COLUMNS]
    if not reads:
        return ["reads no curated table"]
    problems = []
    for table in reads:
        select = table.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        if where is None:
            problems.append(f"{table.name} is read without a WHERE")
            continue
        predicates = list(where.find_all(exp.Predicate))
        bounded = _constant_bounds(predicates, _BOUNDS)
        if "year" not in bounded:
            problems.append(f"{table.name} has no year = / >= constant")
        one_day = set(PARTITION_COLUMNS) <= _constant_bounds(predicates, (exp.EQ,))
        if DAY_COLUMNS[table.name] not in bounded and not one_day:
            problems.append(
                f"{table.name} bounds neither {DAY_COLUMNS[table.name]} nor year, month and day"
            )
    return problems


def test_given_the_curated_tables_then_each_has_its_day_column() -> None:
    assert set(DAY_COLUMNS) == {spec.name for spec in TABLES}
    for spec in TABLES:
        assert DAY_COLUMNS[spec.name] in spec.columns.names


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_given_a_named_query_then_it_parses_as_trino_and_bounds_every_partitioned_table(
    name: str,
) -> None:
    assert unbounded_reads(QUERIES[name]) == []


def test_given_a_query_bounded_only_by_its_day_column_then_the_missing_year_is_reported() -> None:
    sql = "SELECT sku_id FROM daily_demand WHERE stockout AND date = current_date"
    assert unbounded_reads(sql) == ["daily_demand has no year = / >= constant"]


def test_given_a_query_bounded_by_a_computed_day_then_the_unbounded_day_is_reported() -> None:
    sql = (
        "SELECT sku_id FROM sales WHERE year >= '2026'"
        " AND concat(year, '-', month, '-', day) >= '2026-11-01'"
    )
    assert unbounded_reads(sql) == ["sales bounds neither event_time nor year, month and day"]


def test_given_a_query_of_one_partition_day_then_it_prunes() -> None:
    sql = "SELECT * FROM forecasts WHERE year = '2026' AND month = '12' AND day = '07'"
    assert unbounded_reads(sql) == []


def test_given_a_query_that_is_not_sql_then_parsing_fails() -> None:
    with pytest.raises(sqlglot.errors.ParseError):
        unbounded_reads("SELEC sku_id FROM sales")
