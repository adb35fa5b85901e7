"""The history import on Spark against the emulator: the single engine's rows, quarantine
and report on the same source; a re-import changes nothing; a crash converges."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.compaction import run_compaction
from pipeline.errors import InvalidInputError
from pipeline.history import ImportReport, quarantine_key, run_import
from pipeline.lake.tables import (
    DAILY_DEMAND,
    DEMAND_HISTORY,
    iceberg_catalog,
    load_table,
    read_rows,
)
from pipeline.spark.history import run_import_spark
from tests.functional.compaction.conftest import lake, session, shared_stack
from tests.functional.history.test_history_import import BAD, GOOD, MAPPING
from tests.support.compaction_helpers import event, put_raw, raw_key
from tests.support.compaction_lake import Lake, fresh_lake
from tests.support.crash import Crash, Crasher

if TYPE_CHECKING:
    from pathlib import Path

    import boto3
    from pyspark.sql import SparkSession

    from pipeline.local.stack import LocalStack

__all__ = ["lake", "session", "shared_stack"]

#: The second import: GOOD's SKU-2 corrected on the 2nd, a pair twice on the 1st, a pair
#: the stream owns (SKU-1 on the 2nd) and one it does not (SKU-4), and BAD's four reasons.
SECOND = [
    GOOD[0],
    GOOD[1],
    "SKU-2,LOC-1,2024-03-02,7,1.25,no,4",
    "SKU-1,LOC-1,2024-03-01,8,2.50,false,7",  # SKU-1 twice on the 1st: refused
    "SKU-1,LOC-1,2024-03-02,2,2.50,true,1",
    "SKU-4,LOC-1,2024-03-02,6,3.0,false,2",
    *BAD,
]


def _write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _streamed(session: boto3.session.Session, lake: Lake) -> None:
    """A streamed sale of SKU-1 on 2024-03-02, compacted."""
    day2 = datetime(2024, 3, 2, 10, 0, tzinfo=UTC)
    put_raw(session.client("s3"), lake.raw, raw_key(day2, "shardId-0", 1, 1),
            [event("e1", day2, sku="SKU-1", quantity=4, stock=10)])  # fmt: skip
    run_compaction(
        raw_bucket=lake.raw, curated_bucket=lake.curated, database=lake.database, session=session
    )


def _on_spark(
    spark: SparkSession, session: boto3.session.Session, lake: Lake, source: str, **kw: Any
) -> ImportReport:
    return run_import_spark(
        source,
        MAPPING,
        spark=spark,
        curated_bucket=lake.curated,
        database=lake.database,
        session=session,
        **kw,
    )


def _single(session: boto3.session.Session, lake: Lake, source: str) -> ImportReport:
    return run_import(
        source, MAPPING, curated_bucket=lake.curated, database=lake.database, session=session
    )


def _tables(session: boto3.session.Session, lake: Lake) -> dict[str, list[dict[str, Any]]]:
    """Both tables' rows (through their current snapshots, not their files)."""
    catalog = iceberg_catalog(session)
    return {
        spec.name: sorted(
            read_rows(catalog, lake.database, spec).to_pylist(),
            key=lambda r: (r["date"], r["sku_id"], r["location_id"]),
        )
        for spec in (DEMAND_HISTORY, DAILY_DEMAND)
    }


def _snapshots(session: boto3.session.Session, lake: Lake) -> list[int | None]:
    catalog = iceberg_catalog(session)
    out = []
    for spec in (DEMAND_HISTORY, DAILY_DEMAND):
        table = load_table(catalog, lake.database, spec)
        snapshot = None if table is None else table.current_snapshot()
        out.append(None if snapshot is None else snapshot.snapshot_id)
    return out


def _quarantine(session: boto3.session.Session, lake: Lake, source: str) -> list[str]:
    body = session.client("s3").get_object(Bucket=lake.curated, Key=quarantine_key(source))
    return body["Body"].read().decode().splitlines()


@dataclass
class Imported:
    """Two lakes with the same streamed sale and the same two imports, one lake's on one
    process, the other's on Spark (whose first import crashed between its commits and was
    run again), and what each step left."""

    session: boto3.session.Session
    single: Lake
    distributed: Lake
    second: str
    expected: ImportReport
    got: ImportReport
    crashed: list[int | None]
    after_first: tuple[dict[str, Any], dict[str, Any]]


@pytest.fixture(scope="module")
def imported(
    shared_stack: LocalStack, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Imported:
    tmp = tmp_path_factory.mktemp("history")
    session = shared_stack.session()
    single, distributed = fresh_lake(shared_stack, session), fresh_lake(shared_stack, session)
    first, second = _write(tmp / "first.csv", GOOD), _write(tmp / "second.csv", SECOND)
    for each in (single, distributed):
        _streamed(session, each)
    _single(session, single, first)
    crasher = Crasher("commit tables", 0.5)
    with pytest.raises(Crash):
        _on_spark(spark, session, distributed, first, progress=crasher)
    crashed = _snapshots(session, distributed)
    _on_spark(spark, session, distributed, first)
    after_first = (_tables(session, distributed), _tables(session, single))
    return Imported(
        session,
        single,
        distributed,
        second,
        _single(session, single, second),
        _on_spark(spark, session, distributed, second),
        crashed,
        after_first,
    )


def test_given_a_crash_between_the_spark_commits_when_run_again_then_it_converges(
    imported: Imported,
) -> None:
    # Between the commits: daily_demand has the import, demand_history no snapshot yet.
    assert imported.crashed[0] is None
    assert imported.crashed[1] is not None
    spark_rows, single_rows = imported.after_first
    assert spark_rows == single_rows


def test_given_the_same_history_when_imported_on_spark_then_rows_quarantine_and_counts_equal_the_single_engines(  # noqa: E501
    imported: Imported,
) -> None:
    session, single, distributed = imported.session, imported.single, imported.distributed
    second, got, expected = imported.second, imported.got, imported.expected

    assert _tables(session, distributed) == _tables(session, single)
    assert _quarantine(session, distributed, second) == _quarantine(session, single, second)
    shown = got.as_dict() | {"quarantine": got.quarantine.replace(distributed.curated, "<c>")}
    assert shown == expected.as_dict() | {
        "quarantine": expected.quarantine.replace(single.curated, "<c>")
    }
    assert (got.rows_quarantined, got.rows_superseded_by_stream, got.history_days_written) == (
        5,
        1,
        2,
    )
    assert [json.loads(line)["reason"] for line in _quarantine(session, distributed, second)] == [
        "bad_date",
        "negative_units",
        "missing_sku",
        "bad_price",
        "duplicate_row",
    ]


def test_given_a_spark_import_when_the_same_file_is_imported_again_then_nothing_changes(
    imported: Imported, spark: SparkSession
) -> None:
    session, lake = imported.session, imported.distributed
    before = (_snapshots(session, lake), _tables(session, lake))

    again = _on_spark(spark, session, lake, imported.second)

    assert (again.history_days_written, again.demand_days_written) == (0, 0)
    assert again.as_dict() == imported.got.as_dict() | {
        "history_days_written": 0,
        "demand_days_written": 0,
    }
    assert (_snapshots(session, lake), _tables(session, lake)) == before


def test_given_a_source_without_a_mapped_column_when_imported_on_spark_then_the_single_engines_error_is_raised(  # noqa: E501
    lake: Lake, session: boto3.session.Session, spark: SparkSession, tmp_path: Path
) -> None:
    source = _write(
        tmp_path / "history.csv", [GOOD[0].replace(",stock", ""), "A,L,2024-03-01,1,1.0,no"]
    )

    with pytest.raises(InvalidInputError) as raised:
        _on_spark(spark, session, lake, source)

    assert str(raised.value) == (
        f"{source} has no column 'stock' (its columns: item, store, day, sold, price, promo)"
    )
