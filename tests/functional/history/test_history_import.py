"""The history import against the emulator: bad rows quarantined, re-import, crash, overlap."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.compaction import run_compaction
from pipeline.history import ColumnMapping, quarantine_key, run_import
from pipeline.lake.tables import (
    DAILY_DEMAND,
    DEMAND_HISTORY,
    TableSpec,
    iceberg_catalog,
    load_table,
    read_rows,
)
from pipeline.local.glue_runtime import run_glue_job
from tests.support.compaction_helpers import event, put_raw, raw_key
from tests.support.crash import Crash, Crasher

if TYPE_CHECKING:
    import boto3

    from pipeline.history import ImportReport
    from pipeline.local.stack import LocalStack
    from tests.support.compaction_lake import Lake

MAPPING = ColumnMapping(
    sku_id="item",
    location_id="store",
    date="day",
    units="sold",
    price="price",
    promotion="promo",
    end_of_day_stock="stock",
)
GOOD = [
    "item,store,day,sold,price,promo,stock",
    "SKU-1,LOC-1,2024-03-01,3,2.50,false,7",
    "SKU-1,LOC-1,2024-03-02,0,2.50,false,0",
    "SKU-2,LOC-1,2024-03-01,5,,yes,",
    "SKU-2,LOC-1,2024-03-02,1,1.25,no,4",
]
BAD = [
    "SKU-3,LOC-1,01/03/2024,2,1.0,false,1",  # a date in another format
    "SKU-3,LOC-1,2024-03-02,-4,1.0,false,1",  # negative units
    ",LOC-1,2024-03-02,2,1.0,false,1",  # no SKU
    "SKU-3,LOC-1,2024-03-03,2,abc,false,1",  # a price that is not a number
]

#: daily_demand after importing GOOD.
EXPECTED_DEMAND = [
    {"sku_id": "SKU-1", "location_id": "LOC-1", "date": date(2024, 3, 1), "units_sold": 3,
     "units_returned": 0, "end_of_day_stock": 7, "stockout": False, "avg_unit_price": 2.5},
    {"sku_id": "SKU-2", "location_id": "LOC-1", "date": date(2024, 3, 1), "units_sold": 5,
     "units_returned": 0, "end_of_day_stock": None, "stockout": False,
     "avg_unit_price": None},
    {"sku_id": "SKU-1", "location_id": "LOC-1", "date": date(2024, 3, 2), "units_sold": 0,
     "units_returned": 0, "end_of_day_stock": 0, "stockout": True, "avg_unit_price": 2.5},
    {"sku_id": "SKU-2", "location_id": "LOC-1", "date": date(2024, 3, 2), "units_sold": 1,
     "units_returned": 0, "end_of_day_stock": 4, "stockout": False, "avg_unit_price": 1.25},

]  # fmt: skip


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _import(lake: Lake, session: boto3.session.Session, source: str, **kw: Any) -> ImportReport:
    return run_import(
        source,
        kw.pop("mapping", MAPPING),
        curated_bucket=lake.curated,
        database=lake.database,
        session=session,
        **kw,
    )


def _rows(session: boto3.session.Session, lake: Lake, spec: TableSpec) -> list[dict[str, Any]]:
    rows = read_rows(
        iceberg_catalog(session), lake.database, spec, columns=tuple(spec.columns.names)
    )
    return sorted(rows.to_pylist(), key=lambda r: (r["date"], r["sku_id"], r["location_id"]))


def _snapshots(session: boto3.session.Session, lake: Lake) -> dict[str, int | None]:
    catalog = iceberg_catalog(session)
    out: dict[str, int | None] = {}
    for spec in (DEMAND_HISTORY, DAILY_DEMAND):
        table = load_table(catalog, lake.database, spec)
        snapshot = None if table is None else table.current_snapshot()
        out[spec.name] = None if snapshot is None else snapshot.snapshot_id
    return out


def _quarantined(session: boto3.session.Session, lake: Lake, source: str) -> list[dict[str, Any]]:
    body = session.client("s3").get_object(Bucket=lake.curated, Key=quarantine_key(source))
    return [json.loads(line) for line in body["Body"].read().decode().splitlines()]


def test_given_a_file_with_bad_rows_when_imported_then_good_rows_load_and_each_bad_one_is_quarantined_with_its_reason(  # noqa: E501
    lake: Lake, session: boto3.session.Session, tmp_path: Path
) -> None:
    source = str(_write(tmp_path / "history.csv", GOOD + BAD))

    report = _import(lake, session, source)

    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (8, 4, 4)
    assert report.reasons == {
        "bad_date": 1,
        "bad_price": 1,
        "missing_sku": 1,
        "negative_units": 1,
    }
    assert _rows(session, lake, DAILY_DEMAND) == EXPECTED_DEMAND
    history = _rows(session, lake, DEMAND_HISTORY)
    assert [(r["sku_id"], r["date"].day, r["promotion"], r["source"]) for r in history] == [
        ("SKU-1", 1, False, source),
        ("SKU-2", 1, True, source),
        ("SKU-1", 2, False, source),
        ("SKU-2", 2, False, source),
    ]
    quarantined = _quarantined(session, lake, source)
    assert [(q["row"], q["reason"], q["detail"]) for q in quarantined] == [
        (5, "bad_date", "date '01/03/2024' (column 'day') is not a date in the format %Y-%m-%d"),
        (6, "negative_units", "units '-4' (column 'sold') is negative"),
        (7, "missing_sku", "sku_id (column 'item') is missing"),
        (8, "bad_price", "price 'abc' (column 'price') is not a number"),
    ]
    assert quarantined[0]["record"] == {
        "item": "SKU-3", "store": "LOC-1", "day": "01/03/2024", "sold": "2", "price": "1.0",
        "promo": "false", "stock": "1",
    }  # fmt: skip
    assert {q["source"] for q in quarantined} == {source}


def test_given_an_imported_file_when_imported_again_then_nothing_changes(
    lake: Lake, session: boto3.session.Session, tmp_path: Path
) -> None:
    source = str(_write(tmp_path / "history.csv", GOOD + BAD))
    _import(lake, session, source)
    before = (_snapshots(session, lake), _rows(session, lake, DAILY_DEMAND))

    again = _import(lake, session, source)

    assert (again.history_days_written, again.demand_days_written) == (0, 0)
    assert (_snapshots(session, lake), _rows(session, lake, DAILY_DEMAND)) == before
    assert len(_quarantined(session, lake, source)) == 4


def test_given_a_corrected_file_when_imported_again_then_its_rows_replace_the_earlier_ones(
    lake: Lake, session: boto3.session.Session, tmp_path: Path
) -> None:
    path = tmp_path / "history.csv"
    _import(lake, session, str(_write(path, GOOD + BAD)))
    s3 = session.client("s3")
    assert s3.list_objects_v2(Bucket=lake.curated, Prefix="quarantine/import/")["KeyCount"] == 1

    report = _import(
        lake, session, str(_write(path, [GOOD[0], "SKU-1,LOC-1,2024-03-02,9,2.50,false,0"]))
    )

    assert (report.history_days_written, report.demand_days_written) == (1, 1)
    assert report.quarantine == ""
    # The fixed file refused nothing: its quarantine object is gone.
    assert s3.list_objects_v2(Bucket=lake.curated, Prefix="quarantine/import/")["KeyCount"] == 0
    demand = {
        (r["sku_id"], r["date"].day): r["units_sold"] for r in _rows(session, lake, DAILY_DEMAND)
    }
    assert demand == {("SKU-1", 1): 3, ("SKU-2", 1): 5, ("SKU-1", 2): 9, ("SKU-2", 2): 1}


def test_given_a_pair_twice_on_a_day_when_imported_then_the_first_row_loads_and_the_second_is_quarantined(  # noqa: E501
    lake: Lake, session: boto3.session.Session, tmp_path: Path
) -> None:
    source = str(_write(tmp_path / "h.csv", [*GOOD[:2], "SKU-1,LOC-1,2024-03-01,8,2.50,false,7"]))

    report = _import(lake, session, source)

    assert report.reasons == {"duplicate_row": 1}
    assert [r["units_sold"] for r in _rows(session, lake, DAILY_DEMAND)] == [3]
    (quarantined,) = _quarantined(session, lake, source)
    assert (quarantined["row"], quarantined["detail"]) == (
        2,
        "SKU-1 at LOC-1 on 2024-03-01 is in the source more than once; its first row is imported",
    )


@pytest.mark.parametrize(
    ("step", "position"),
    [("read source", 0.5), ("write days", 0.5), ("commit tables", 0.0), ("commit tables", 0.5)],
)
def test_given_a_crash_mid_import_when_run_again_then_the_tables_were_untouched_and_converge(
    lake: Lake, session: boto3.session.Session, tmp_path: Path, step: str, position: float
) -> None:
    first = str(_write(tmp_path / "first.csv", GOOD[:3]))
    _import(lake, session, first)
    before = (_snapshots(session, lake), _rows(session, lake, DAILY_DEMAND))
    source = str(_write(tmp_path / "second.csv", [GOOD[0], *GOOD[3:], *BAD]))
    crasher = Crasher(step, position)

    with pytest.raises(Crash):
        _import(lake, session, source, progress=crasher)

    assert crasher.fired is not None
    if (step, position) != ("commit tables", 0.5):
        assert (_snapshots(session, lake), _rows(session, lake, DAILY_DEMAND)) == before
    else:  # between the two commits: daily_demand has the import, demand_history not yet
        assert _snapshots(session, lake)[DEMAND_HISTORY.name] == before[0][DEMAND_HISTORY.name]
    _import(lake, session, source)
    assert _rows(session, lake, DAILY_DEMAND) == EXPECTED_DEMAND


def _compact(lake: Lake, session: boto3.session.Session) -> None:
    run_compaction(
        raw_bucket=lake.raw, curated_bucket=lake.curated, database=lake.database, session=session
    )


def test_given_streamed_events_and_history_of_the_same_day_when_both_land_then_the_stream_wins_per_pair(  # noqa: E501
    lake: Lake, session: boto3.session.Session, tmp_path: Path
) -> None:
    s3 = session.client("s3")
    day2 = datetime(2024, 3, 2, 10, 0, tzinfo=UTC)
    put_raw(s3, lake.raw, raw_key(day2, "shardId-0", 1, 1),
            [event("e1", day2, sku="SKU-1", quantity=4, stock=10)])  # fmt: skip
    _compact(lake, session)
    source = str(_write(tmp_path / "h.csv", [*GOOD, "SKU-4,LOC-1,2024-03-02,6,3.0,false,2"]))

    report = _import(lake, session, source)

    assert report.rows_superseded_by_stream == 1
    units = {
        (r["sku_id"], r["date"].day): r["units_sold"] for r in _rows(session, lake, DAILY_DEMAND)
    }
    # SKU-1 on the 2nd is the stream's (4 units), every other row the history's.
    assert units == {("SKU-1", 1): 3, ("SKU-2", 1): 5, ("SKU-1", 2): 4, ("SKU-2", 2): 1,
                     ("SKU-4", 2): 6}  # fmt: skip
    assert len(_rows(session, lake, DEMAND_HISTORY)) == 5  # the history keeps what it said

    # Events of SKU-2 and SKU-3 on the 2nd arrive later: compaction rebuilds the day.
    put_raw(s3, lake.raw, raw_key(day2, "shardId-0", 2, 3), [
        event("e2", day2, sku="SKU-2", quantity=2), event("e3", day2, sku="SKU-3", quantity=1)
    ])  # fmt: skip
    _compact(lake, session)

    rows = {(r["sku_id"], r["date"].day): r for r in _rows(session, lake, DAILY_DEMAND)}
    assert {k: r["units_sold"] for k, r in rows.items()} == {
        ("SKU-1", 1): 3, ("SKU-2", 1): 5,  # history, not rebuilt
        ("SKU-1", 2): 4, ("SKU-2", 2): 2, ("SKU-3", 2): 1,  # the stream's
        ("SKU-4", 2): 6,  # history of a pair without events, kept by the rebuild
    }  # fmt: skip
    assert (rows[("SKU-4", 2)]["end_of_day_stock"], rows[("SKU-4", 2)]["avg_unit_price"]) == (
        2,
        3.0,
    )
    assert rows[("SKU-1", 2)]["end_of_day_stock"] == 10
    # Importing the file again changes nothing: the stream still wins where it has events.
    again = _import(lake, session, source)
    assert (again.rows_superseded_by_stream, again.demand_days_written) == (2, 0)


def test_given_typed_parquet_on_s3_when_imported_then_typed_values_are_checked_too(
    lake: Lake, session: boto3.session.Session, tmp_path: Path
) -> None:
    table = pa.table(
        {
            "item_id": ["A", "B", "C", "D"],
            "store_id": ["S1", "S1", "S1", "S1"],
            "date": pa.array([date(2024, 1, 1)] * 4, pa.date32()),
            "sales": [1.0, 2.5, -1.0, 3.0],
            "sell_price": [1.0, 1.0, 1.0, float("nan")],
        }
    )
    pq.write_table(table, tmp_path / "m5.parquet")
    session.client("s3").upload_file(str(tmp_path / "m5.parquet"), lake.curated, "in/m5.parquet")
    mapping = ColumnMapping(
        sku_id="item_id", location_id="store_id", date="date", units="sales", price="sell_price"
    )
    source = f"s3://{lake.curated}/in/"

    report = _import(lake, session, source, mapping=mapping)

    assert (report.rows_valid, report.reasons) == (
        1,
        {"bad_price": 1, "bad_units": 1, "negative_units": 1},
    )
    assert [(q["row"], q["detail"]) for q in _quarantined(session, lake, source)] == [
        (2, "units 2.5 (column 'sales') is not a whole number"),
        (3, "units -1.0 (column 'sales') is negative"),
        (4, "price nan (column 'sell_price') is not a number"),
    ]
    assert [(r["sku_id"], r["units_sold"]) for r in _rows(session, lake, DAILY_DEMAND)] == [
        ("A", 1)
    ]


def test_given_the_glue_job_when_run_from_its_artifacts_then_it_imports_and_reports_progress(
    shared_stack: LocalStack, lake: Lake, session: boto3.session.Session, tmp_path: Path
) -> None:
    source = str(_write(tmp_path / "history.csv", GOOD + BAD))
    steps: list[tuple[str, int, int]] = []
    mapping = {f"--{k}": v for k, v in MAPPING.as_options().items()}

    report = run_glue_job(
        shared_stack,
        "ImportHistoryJob",
        arguments={
            "--source": source,
            "--curated_bucket": lake.curated,
            "--database": lake.database,
            **mapping,
        },
        progress=lambda *step: steps.append(step),
    )

    assert (report["rows_valid"], report["rows_quarantined"]) == (4, 4)
    assert report["quarantine"] == f"s3://{lake.curated}/{quarantine_key(source)}"
    assert _rows(session, lake, DAILY_DEMAND) == EXPECTED_DEMAND
    assert list(dict.fromkeys(step[0] for step in steps)) == [
        "read source",
        "write days",
        "commit tables",
    ]
    assert steps[-1] == ("commit tables", 2, 2)


#: The M5 subset beside the repository (``../shared``), never copied into it.
M5 = Path(__file__).resolve().parents[3].parent / "shared/data/m5_subset"


@pytest.mark.skipif(not (M5 / "m5_subset_944.parquet").exists(), reason="no M5 subset here")
def test_given_m5_series_when_imported_then_daily_demand_has_every_row_and_unit(
    lake: Lake, session: boto3.session.Session, tmp_path: Path
) -> None:
    import pyarrow.compute as pc  # noqa: PLC0415

    # Five SKUs' last 120 days: every day imported is a partition written to the emulator.
    rows = pq.read_table(
        M5 / "m5_subset_944.parquet",
        columns=["item_id", "store_id", "date", "sales"],
        filters=[("date", ">", date(2016, 5, 22) - timedelta(days=120))],
    )
    some = rows.filter(pc.is_in(rows.column("item_id"), pc.unique(rows.column("item_id"))[:5]))
    pq.write_table(some, tmp_path / "m5.parquet")
    mapping = ColumnMapping(sku_id="item_id", location_id="store_id", date="date", units="sales")

    report = _import(lake, session, str(tmp_path / "m5.parquet"), mapping=mapping)

    demand = read_rows(iceberg_catalog(session), lake.database, DAILY_DEMAND)
    assert report.rows_valid == demand.num_rows == some.num_rows
    assert pc.sum(demand.column("units_sold")).as_py() == int(pc.sum(some.column("sales")).as_py())
