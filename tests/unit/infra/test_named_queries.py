"""The named queries are Athena engine v3 (Trino) SQL that prunes partitions.

Athena bills by bytes scanned and the tables' partition projection spans a century of days,
so a query without a predicate on the partition columns reads the whole history. Each
query must parse as Trino SQL, and every read of a partitioned table must be bounded by
a comparison of ``year`` with a constant and by a predicate on the partition columns
alone. (That the same SQL gives the expected rows on DuckDB: tests/functional/test_query.py.)
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from pipeline.local.template import load_template
from pipeline.query import named_queries

PARTITION_COLUMNS = frozenset({"year", "month", "day"})

QUERIES = named_queries(load_template())


def _partitioned_tables() -> frozenset[str]:
    return frozenset(
        spec["Properties"]["TableInput"]["Name"]
        for spec in load_template()["Resources"].values()
        if spec["Type"] == "AWS::Glue::Table"
        and spec["Properties"]["TableInput"].get("PartitionKeys")
    )


def _columns(node: Any) -> set[str]:
    return {c.name for c in node.find_all(exp.Column)}


def unbounded_reads(sql: str) -> list[str]:
    """Why each read of a partitioned table in ``sql`` would not prune (empty: all prune)."""
    tree = sqlglot.parse_one(sql, read="trino", error_level=ErrorLevel.RAISE)
    partitioned = _partitioned_tables()
    reads = [t for t in tree.find_all(exp.Table) if t.name in partitioned]
    if not reads:
        return ["reads no partitioned table"]
    problems = []
    for table in reads:
        select = table.find_ancestor(exp.Select)
        where = select.args.get("where") if select is not None else None
        if where is None:
            problems.append(f"{table.name} is read without a WHERE")
            continue
        predicates = list(where.find_all(exp.Predicate))
        if not any(
            isinstance(p, (exp.EQ, exp.GTE, exp.GT))
            and _columns(p.left) == {"year"}
            and not _columns(p.right)
            for p in predicates
        ):
            problems.append(f"{table.name} has no year = / >= constant")
        on_partitions = {
            c
            for p in predicates
            if isinstance(p, exp.Binary) and _columns(p) and _columns(p) <= PARTITION_COLUMNS
            for c in _columns(p)
        }
        if on_partitions != PARTITION_COLUMNS:
            problems.append(f"{table.name} is not bounded on year, month and day")
    return problems


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_given_a_named_query_then_it_parses_as_trino_and_bounds_every_partitioned_table(
    name: str,
) -> None:
    assert unbounded_reads(QUERIES[name]) == []


def test_given_a_query_bounded_only_by_a_data_column_then_it_is_reported() -> None:
    sql = "SELECT sku_id FROM daily_demand WHERE stockout AND date = current_date"
    assert unbounded_reads(sql) == [
        "daily_demand has no year = / >= constant",
        "daily_demand is not bounded on year, month and day",
    ]


def test_given_a_query_that_is_not_sql_then_parsing_fails() -> None:
    with pytest.raises(sqlglot.errors.ParseError):
        unbounded_reads("SELEC sku_id FROM sales")
