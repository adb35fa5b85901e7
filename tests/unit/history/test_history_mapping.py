"""The history import's mapping and row checks: pure Arrow, no AWS."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.compaction.demand import DaySales, DemandBuilder, history_demand, with_history
from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA, DEMAND_HISTORY_SCHEMA
from pipeline.errors import InvalidInputError
from pipeline.history import ColumnMapping, quarantine_key
from pipeline.history.mapping import first_of_each_key, validate
from pipeline.history.source import batches, open_source

MAPPING = ColumnMapping(
    sku_id="sku", location_id="loc", date="day", units="units", price="price",
    promotion="promo", end_of_day_stock="stock",
)  # fmt: skip


def _text_rows(*rows: tuple[str | None, ...]) -> pa.Table:
    names = ["sku", "loc", "day", "units", "price", "promo", "stock"]
    return pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})


def _refusal(row: tuple[str | None, ...], mapping: ColumnMapping = MAPPING) -> tuple[str, str]:
    checked = validate(_text_rows(row), mapping, 1)
    assert checked.rows.num_rows == 0
    (refused,) = checked.refused
    return refused.reason, refused.detail


def test_given_good_text_rows_when_validated_then_they_are_typed() -> None:
    checked = validate(
        _text_rows(
            ("A", "L1", "2024-01-02", "3", "1.5", "yes", "7"),
            (" B ", "L1", "2024-01-03", "4.0", None, None, None),
        ),
        MAPPING,
        1,
    )

    assert checked.refused == []
    assert checked.numbers.to_pylist() == [1, 2]
    assert checked.rows.to_pylist() == [
        {"sku_id": "A", "location_id": "L1", "date": date(2024, 1, 2), "units_sold": 3,
         "end_of_day_stock": 7, "avg_unit_price": 1.5, "promotion": True},
        {"sku_id": "B", "location_id": "L1", "date": date(2024, 1, 3), "units_sold": 4,
         "end_of_day_stock": None, "avg_unit_price": None, "promotion": None},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "reason", "detail"),
    [
        ((None, "L1", "2024-01-02", "1", "1", "no", "1"), "missing_sku",
         "sku_id (column 'sku') is missing"),
        (("A#1", "L1", "2024-01-02", "1", "1", "no", "1"), "invalid_sku",
         "sku_id 'A#1' (column 'sku') is not 1-64 characters of A-Z, a-z, 0-9, _ or -"),
        (("A", "", "2024-01-02", "1", "1", "no", "1"), "missing_location",
         "location_id (column 'loc') is missing"),
        (("A", "L/1", "2024-01-02", "1", "1", "no", "1"), "invalid_location",
         "location_id 'L/1' (column 'loc') is not 1-64 characters of A-Z, a-z, 0-9, _ or -"),
        (("A", "L1", None, "1", "1", "no", "1"), "missing_date",
         "date (column 'day') is missing"),
        (("A", "L1", "02/01/2024", "1", "1", "no", "1"), "bad_date",
         "date '02/01/2024' (column 'day') is not a date in the format %Y-%m-%d"),
        (("A", "L1", "2024-02-30", "1", "1", "no", "1"), "bad_date",
         "date '2024-02-30' (column 'day') is not a date in the format %Y-%m-%d"),
        (("A", "L1", "2024-01-02", None, "1", "no", "1"), "missing_units",
         "units (column 'units') is missing"),
        (("A", "L1", "2024-01-02", "1.5", "1", "no", "1"), "bad_units",
         "units '1.5' (column 'units') is not a whole number"),
        (("A", "L1", "2024-01-02", "ten", "1", "no", "1"), "bad_units",
         "units 'ten' (column 'units') is not a whole number"),
        (("A", "L1", "2024-01-02", "99999999999999999999", "1", "no", "1"), "bad_units",
         "units '99999999999999999999' (column 'units') is not a whole number"),
        (("A", "L1", "2024-01-02", "-2", "1", "no", "1"), "negative_units",
         "units '-2' (column 'units') is negative"),
        (("A", "L1", "2024-01-02", "1", "1,5", "no", "1"), "bad_price",
         "price '1,5' (column 'price') is not a number"),
        (("A", "L1", "2024-01-02", "1", "inf", "no", "1"), "bad_price",
         "price 'inf' (column 'price') is not a number"),
        (("A", "L1", "2024-01-02", "1", "-0.5", "no", "1"), "negative_price",
         "price '-0.5' (column 'price') is negative"),
        (("A", "L1", "2024-01-02", "1", "1", "maybe", "1"), "bad_promotion",
         "promotion 'maybe' (column 'promo') is not one of true/false, yes/no, 1/0"),
        (("A", "L1", "2024-01-02", "1", "1", "no", "2.5"), "bad_stock",
         "end_of_day_stock '2.5' (column 'stock') is not a whole number"),
        (("A", "L1", "2024-01-02", "1", "1", "no", "-1"), "negative_stock",
         "end_of_day_stock '-1' (column 'stock') is negative"),
    ],
)  # fmt: skip
def test_given_a_bad_text_row_when_validated_then_it_is_refused_with_its_reason(
    row: tuple[str | None, ...], reason: str, detail: str
) -> None:
    assert _refusal(row) == (reason, detail)


def test_given_a_row_with_several_faults_when_validated_then_the_first_is_named() -> None:
    assert _refusal((None, "L1", "bad", "-1", "x", "no", "1"))[0] == "missing_sku"
    assert _refusal(("A", "L1", "bad", "-1", "x", "no", "1"))[0] == "bad_date"


def test_given_a_date_format_when_validated_then_dates_read_in_it() -> None:
    mapping = ColumnMapping("sku", "loc", "day", "units", date_format="%d/%m/%Y")
    table = pa.table({"sku": ["A"] * 2, "loc": ["L"] * 2, "day": ["02/01/2024", "3/1/2024"],
                      "units": ["1"] * 2})  # fmt: skip
    assert validate(table, mapping, 1).rows.column("date").to_pylist() == [
        date(2024, 1, 2),
        date(2024, 1, 3),
    ]


def test_given_typed_columns_when_validated_then_their_values_are_checked() -> None:
    mapping = ColumnMapping("sku", "loc", "day", "units", price="price", end_of_day_stock="s")
    table = pa.table(
        {
            "sku": pa.array([1, 2, 3, 4], pa.int64()),  # numeric codes read as text
            "loc": ["L"] * 4,
            "day": pa.array([date(2024, 1, 1)] * 4, pa.date32()),
            "units": pa.array([1.0, float("nan"), -3.0, 2.0]),
            "price": pa.array([1.0, 2.0, 3.0, -1.0]),
            "s": pa.array([0, 1, 2, 3], pa.int32()),
        }
    )

    checked = validate(table, mapping, 10)

    assert [(r.row, r.reason, r.detail) for r in checked.refused] == [
        (11, "bad_units", "units nan (column 'units') is not a whole number"),
        (12, "negative_units", "units -3.0 (column 'units') is negative"),
        (13, "negative_price", "price -1.0 (column 'price') is negative"),
    ]
    assert checked.refused[0].record == {
        "sku": 2, "loc": "L", "day": "2024-01-01", "units": "nan", "price": 2.0, "s": 1,
    }  # fmt: skip
    assert checked.rows.to_pylist() == [
        {"sku_id": "1", "location_id": "L", "date": date(2024, 1, 1), "units_sold": 1,
         "end_of_day_stock": 0, "avg_unit_price": 1.0, "promotion": None},
    ]  # fmt: skip


def test_given_options_without_the_required_columns_then_the_mapping_is_refused_naming_them() -> (
    None
):
    with pytest.raises(InvalidInputError) as raised:
        ColumnMapping.from_options({"sku_id": "a", "date": "", "units": "u", "price": "p"})
    assert str(raised.value) == "the column mapping needs --location_id, --date"


def test_given_options_when_mapped_and_back_then_they_round_trip() -> None:
    assert ColumnMapping.from_options(MAPPING.as_options()) == MAPPING
    assert MAPPING.source_columns == ["sku", "loc", "day", "units", "price", "promo", "stock"]


def test_given_a_pair_twice_in_a_day_then_the_first_row_is_kept() -> None:
    rows = pa.table({"sku_id": ["A", "B", "A"], "location_id": ["L"] * 3, "units": [1, 2, 3]})
    kept, duplicates = first_of_each_key(rows)
    assert (kept.column("units").to_pylist(), duplicates.column("units").to_pylist()) == (
        [1, 2],
        [3],
    )


def test_given_a_csv_without_a_mapped_column_when_read_then_it_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "h.csv").write_text("sku,loc,day\nA,L,2024-01-01\n")
    source = open_source(str(tmp_path / "h.csv"))
    mapping = ColumnMapping("sku", "loc", "day", "units")

    with pytest.raises(InvalidInputError) as raised:
        list(batches(source, source.files[0], mapping))

    assert str(raised.value) == (
        f"{tmp_path / 'h.csv'} has no column 'units' (its columns: sku, loc, day)"
    )


def test_given_a_folder_when_opened_then_its_csv_and_parquet_files_are_the_source(
    tmp_path: Path,
) -> None:
    (tmp_path / "b.csv").write_text("x\n")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "a.parquet")
    (tmp_path / "README.md").write_text("not data")
    (tmp_path / "_SUCCESS").write_text("")

    source = open_source(str(tmp_path))

    assert [(Path(f.path).name, f.format) for f in source.files] == [
        ("a.parquet", "parquet"),
        ("b.csv", "csv"),
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.csv", "no such file or folder"),
        ("notes.txt", "not a .csv or .parquet file (say which with --format)"),
    ],
)
def test_given_an_unusable_source_when_opened_then_it_is_refused(
    tmp_path: Path, name: str, message: str
) -> None:
    if name == "notes.txt":
        (tmp_path / name).write_text("x")
    with pytest.raises(InvalidInputError) as raised:
        open_source(str(tmp_path / name))
    assert str(raised.value) == f"{tmp_path / name}: {message}"


def test_given_a_source_then_its_quarantine_key_is_stable_and_names_the_file() -> None:
    key = quarantine_key("s3://b/in/h.csv")
    assert key == quarantine_key("s3://b/in/h.csv") != quarantine_key("s3://b/other/h.csv")
    assert key.startswith("quarantine/import/") and key.endswith("/h.csv.ndjson")


def _history(*rows: tuple[str, int, int | None]) -> pa.Table:
    return pa.table(
        {
            "sku_id": [r[0] for r in rows],
            "location_id": ["L"] * len(rows),
            "date": pa.array([date(2024, 1, 2)] * len(rows), pa.date32()),
            "units_sold": [r[1] for r in rows],
            "end_of_day_stock": pa.array([r[2] for r in rows], pa.int64()),
            "avg_unit_price": pa.array([None] * len(rows), pa.float64()),
            "promotion": pa.array([None] * len(rows), pa.bool_()),
            "source": ["f"] * len(rows),
        },
        schema=DEMAND_HISTORY_SCHEMA,
    )


def test_given_history_rows_then_as_demand_they_have_no_returns_and_a_stockout_at_zero() -> None:
    demand = history_demand(_history(("A", 2, 0), ("B", 1, None)))
    assert demand.schema == DAILY_DEMAND_SCHEMA
    assert [(r["units_returned"], r["stockout"]) for r in demand.to_pylist()] == [
        (0, True),
        (0, False),
    ]


def test_given_a_day_with_events_and_history_when_built_then_the_stream_wins_per_pair() -> None:
    previous = pa.table(
        {"sku_id": ["A", "C"], "location_id": ["L", "L"], "end_of_day_stock": [5, 9]}
    )
    builder = DemandBuilder.from_previous_day(previous)
    sales = DaySales()
    sales.add(
        pa.table(
            {
                "event_id": ["e1"],
                "event_type": ["sale"],
                "sku_id": ["A"],
                "location_id": ["L"],
                "quantity": pa.array([2], pa.int64()),
                "stock_on_hand": pa.array([3], pa.int64()),
                "unit_price": [1.0],
                "event_time": pa.array([0], pa.timestamp("us")),
            }
        )
    )

    rows = builder.finish(date(2024, 1, 2), sales, _history(("A", 7, 1), ("B", 4, 6)))

    assert [(r["sku_id"], r["units_sold"], r["end_of_day_stock"]) for r in rows.to_pylist()] == [
        ("A", 2, 3),  # the stream's: it has an event that day
        ("B", 4, 6),  # the history's
        ("C", 0, 9),  # carried, neither
    ]
    # The history's stock carries on to the next day.
    assert builder.carry.to_pylist()[1] == {
        "sku_id": "B",
        "location_id": "L",
        "end_of_day_stock": 6,
    }


def test_given_no_history_then_with_history_changes_nothing() -> None:
    rows = history_demand(_history(("A", 1, 1)))
    events = rows.select(["sku_id", "location_id"])
    assert with_history(rows, _history(("A", 5, 5)), events).equals(rows)


def test_given_a_csv_line_with_the_wrong_number_of_fields_when_read_then_it_is_set_aside(
    tmp_path: Path,
) -> None:
    (tmp_path / "h.csv").write_text("sku,loc,day,units\nA,L,2024-01-01,1\nB,L,2024-01-01\n")
    source = open_source(str(tmp_path / "h.csv"))

    read = list(batches(source, source.files[0], ColumnMapping("sku", "loc", "day", "units")))

    assert sum(b.rows.num_rows for b in read) == 1
    (malformed,) = [m for b in read for m in b.malformed]
    assert (malformed.detail, malformed.text) == (
        "3 fields where the header has 4",
        "B,L,2024-01-01",
    )
