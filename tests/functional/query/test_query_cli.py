"""``fmcg query --format``: a table for people, CSV or JSON with every row for scripts."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.lake.tables import DAILY_DEMAND
from pipeline.settings import CURATED_BUCKET, GLUE_DATABASE

if TYPE_CHECKING:
    from typer.testing import Result

    from tests.functional.query.conftest import IcebergLake

#: More days than the table format prints by default (50).
DAYS = [date(2026, 1, 1) + timedelta(days=i) for i in range(55)]
SQL = "SELECT date, units_sold, stockout, avg_unit_price FROM daily_demand ORDER BY date"


@pytest.fixture
def demand(lake: IcebergLake) -> IcebergLake:
    lake.append(
        DAILY_DEMAND,
        pa.table(
            {
                "sku_id": ["SKU-1"] * len(DAYS),
                "location_id": ["LOC-1"] * len(DAYS),
                "date": DAYS,
                "units_sold": list(range(len(DAYS))),
                "units_returned": [0] * len(DAYS),
                "end_of_day_stock": [1] * len(DAYS),
                "stockout": [i % 7 == 0 for i in range(len(DAYS))],
                "avg_unit_price": [None if i % 2 else i / 4 for i in range(len(DAYS))],
            }
        ),
    )
    return lake


def fmcg(lake: IcebergLake, *args: str) -> Result:
    env = {GLUE_DATABASE: lake.database, CURATED_BUCKET: lake.bucket}
    return CliRunner().invoke(app, list(args), env=env, prog_name="fmcg")


def test_given_more_rows_than_the_limit_when_csv_then_every_row(demand: IcebergLake) -> None:
    result = fmcg(demand, "query", SQL, "--format", "csv")

    assert result.exit_code == 0, result.output
    assert result.stderr == "55 rows\n"
    assert result.stdout == "date,units_sold,stockout,avg_unit_price\n" + "".join(
        f"{day},{i},{'true' if i % 7 == 0 else 'false'},{'' if i % 2 else i / 4}\n"
        for i, day in enumerate(DAYS)
    )
    assert result.stdout.splitlines()[1:4] == [
        "2026-01-01,0,true,0.0",
        "2026-01-02,1,false,",
        "2026-01-03,2,false,0.5",
    ]


def test_given_more_rows_than_the_limit_when_json_then_one_array_of_every_row(
    demand: IcebergLake,
) -> None:
    result = fmcg(demand, "query", SQL, "--format", "json")

    assert result.exit_code == 0, result.output
    assert result.stderr == "55 rows\n"
    lines = [
        json.dumps(
            {
                "date": day.isoformat(),
                "units_sold": i,
                "stockout": i % 7 == 0,
                "avg_unit_price": None if i % 2 else i / 4,
            },
            separators=(",", ":"),
        )
        for i, day in enumerate(DAYS)
    ]
    assert result.stdout == "[\n" + ",\n".join(lines) + "\n]\n"
    assert result.stdout.splitlines()[1] == (
        '{"date":"2026-01-01","units_sold":0,"stockout":true,"avg_unit_price":0.0},'
    )
    assert len(json.loads(result.stdout)) == 55


def test_given_more_rows_than_the_limit_when_table_then_only_the_limit(
    demand: IcebergLake,
) -> None:
    default = fmcg(demand, "query", SQL)
    limited = fmcg(demand, "query", SQL, "--format", "table", "--limit", "2")

    assert (default.exit_code, limited.exit_code) == (0, 0)
    assert default.stderr == limited.stderr == "55 rows\n"
    assert len(default.stdout.splitlines()) == 1 + 50
    assert limited.stdout.splitlines() == [
        "      date  units_sold  stockout  avg_unit_price",
        "2026-01-01           0      True             0.0",
        "2026-01-02           1     False             NaN",
    ]


def test_given_no_rows_when_json_then_an_empty_array(lake: IcebergLake) -> None:
    lake.table(DAILY_DEMAND)

    result = fmcg(lake, "query", SQL, "--format", "json")

    assert (result.exit_code, result.stdout, result.stderr) == (0, "[]\n", "0 rows\n")
