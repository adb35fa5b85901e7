"""Pure parts of compaction: parsing and type enforcement, de-duplication, Glue arguments,
daily demand, the job's line protocol."""

from __future__ import annotations

import json
from datetime import date, datetime

import pyarrow as pa
import pytest

from pipeline.compaction.dedupe import first_occurrences, not_in, split_by_event_date
from pipeline.compaction.demand import DemandBuilder
from pipeline.compaction.parse import parse_raw_object
from pipeline.compaction.schema import SALES_SCHEMA
from pipeline.errors import ConfigurationError
from pipeline.glue_args import resolve_options
from pipeline.job_protocol import parse_line, progress_line, report_line


def _line(**overrides: object) -> str:
    base: dict[str, object] = {
        "event_id": "e1",
        "event_type": "sale",
        "sku_id": "S",
        "location_id": "L",
        "quantity": 2,
        "event_time": "2024-01-02T01:30:00+02:00",
    }
    base.update(overrides)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_given_valid_ndjson_with_unknown_fields_when_parsed_then_typed_rows_in_utc() -> None:
    data = (_line(extra={"a": [1]}) + "\n" + _line(event_id="e2", unit_price=3) + "\n").encode()

    parsed = parse_raw_object(data)

    assert parsed.rejected == []
    assert parsed.table.schema == SALES_SCHEMA
    assert parsed.table.column("event_time").to_pylist() == [datetime(2024, 1, 1, 23, 30)] * 2
    assert parsed.table.column("unit_price").to_pylist() == [None, 3.0]


@pytest.mark.parametrize(
    ("line", "reason", "detail"),
    [
        (_line(quantity="2"), "wrong_type", "quantity: expected integer, got string"),
        (_line(quantity=2.5), "wrong_type", "quantity: expected integer, got 2.5"),
        (_line(sku_id=7), "wrong_type", "sku_id: expected string, got number"),
        (_line(unit_price=True), "wrong_type", "unit_price: expected number, got boolean"),
        (_line(location_id=...), "missing_field", "location_id"),
        (_line(event_type="refund"), "invalid_event_type", "'refund'"),
        (
            _line(event_time="2024-01-02T01:30:00"),
            "invalid_event_time",
            "'2024-01-02T01:30:00': no UTC offset",
        ),
        ("[1, 2]", "not_an_object", "got JSON list"),
    ],
)
def test_given_a_bad_line_among_good_when_parsed_then_only_it_is_rejected_with_reason(
    line: str, reason: str, detail: str
) -> None:
    data = "\n".join([_line(event_id="ok1"), line, _line(event_id="ok2")]).encode()

    parsed = parse_raw_object(data)

    assert parsed.table.column("event_id").to_pylist() == ["ok1", "ok2"]
    assert [(r.line, r.reason, r.detail, r.record) for r in parsed.rejected] == [
        (2, reason, detail, line)
    ]


def test_given_whole_number_float_when_parsed_slowly_then_accepted_as_integer() -> None:
    data = (_line(quantity="x", event_id="bad") + "\n" + _line(quantity=3.0)).encode()

    parsed = parse_raw_object(data)

    assert parsed.table.column("quantity").to_pylist() == [3]


def test_given_ids_when_deduplicated_then_first_occurrence_kept_and_existing_excluded() -> None:
    ids = pa.array(["a", "b", "a", "c", "b"])

    assert first_occurrences(ids).to_pylist() == [True, True, False, True, False]
    assert not_in(ids, pa.array(["b"])).to_pylist() == [True, False, True, True, False]


def test_given_rows_of_two_days_when_split_then_grouped_by_utc_event_date() -> None:
    table = parse_raw_object(
        "\n".join(
            [
                _line(event_id="a", event_time="2024-01-02T01:30:00+02:00"),
                _line(event_id="b", event_time="2024-01-02T01:30:00Z"),
            ]
        ).encode()
    ).table

    parts = split_by_event_date(table)

    assert {d: t.column("event_id").to_pylist() for d, t in parts.items()} == {
        date(2024, 1, 1): ["a"],
        date(2024, 1, 2): ["b"],
    }


def test_given_glue_argv_when_resolved_then_unknown_glue_arguments_ignored() -> None:
    argv = [
        "--JOB_NAME",
        "j",
        "--raw_bucket",
        "r",
        "--job-bookmark-option",
        "job-bookmark-disable",
        "--library-set",
        "analytics",
        "--enable-metrics",
        "--database=d",
        "--curated_bucket",
        "c",
    ]

    assert resolve_options(argv, ["raw_bucket", "curated_bucket", "database"]) == {
        "raw_bucket": "r",
        "curated_bucket": "c",
        "database": "d",
    }


def test_given_missing_argument_when_resolved_then_configuration_error_names_it() -> None:
    with pytest.raises(ConfigurationError, match=r"^missing job arguments: --database$"):
        resolve_options(["--raw_bucket", "r"], ["raw_bucket", "database"])


def test_given_stock_readings_when_days_built_then_latest_stock_carried_forward() -> None:
    day1 = parse_raw_object(
        "\n".join(
            [
                _line(event_id="b", stock_on_hand=3, event_time="2024-01-01T10:00:00Z"),
                _line(
                    event_id="a",
                    stock_on_hand=0,
                    event_type="stock_count",
                    quantity=0,
                    event_time="2024-01-01T10:00:00Z",
                ),
                _line(
                    event_id="r", event_type="return", quantity=1, event_time="2024-01-01T11:00:00Z"
                ),
            ]
        ).encode()
    ).table
    builder = DemandBuilder()

    first = builder.day(date(2024, 1, 1), day1).to_pylist()
    second = builder.day(date(2024, 1, 2), SALES_SCHEMA.empty_table()).to_pylist()

    # Same event_time: event_id breaks the tie, so "b" (stock 3) is the latest reading.
    assert first == [
        {
            "sku_id": "S",
            "location_id": "L",
            "date": date(2024, 1, 1),
            "units_sold": 2,
            "units_returned": 1,
            "end_of_day_stock": 3,
            "stockout": False,
            "avg_unit_price": None,  # no sale carries a price
        }
    ]
    assert second == [{**first[0], "date": date(2024, 1, 2), "units_sold": 0, "units_returned": 0}]


def test_given_job_output_when_parsed_then_progress_and_report_recognised() -> None:
    assert parse_line(progress_line("read raw", 1, 4)) == (
        "progress",
        {"step": "read raw", "done": 1, "total": 4},
    )
    assert parse_line(report_line({"rows_written": 3})) == ("report", {"rows_written": 3})
    assert parse_line("INFO something else") is None


@pytest.mark.parametrize(
    ("price", "reason", "detail"),
    [
        ("NaN", "invalid_json", "non-finite number NaN is not JSON"),
        ("Infinity", "invalid_json", "non-finite number Infinity is not JSON"),
        ("-Infinity", "invalid_json", "non-finite number -Infinity is not JSON"),
        ("1e400", "non_finite_number", "1e400 is beyond the range of a double"),
    ],
)
def test_given_a_non_finite_number_when_parsed_then_the_line_is_refused_as_ingest_refuses_it(
    price: str, reason: str, detail: str
) -> None:
    good = (
        '{"event_id":"g","event_type":"sale","sku_id":"S","location_id":"L","quantity":1,'
        '"event_time":"2026-01-01T00:00:00Z","unit_price":2.5}'
    )
    bad = good.replace('"event_id":"g"', '"event_id":"b"').replace("2.5", price)

    parsed = parse_raw_object(f"{good}\n{bad}\n".encode())

    assert parsed.table.column("event_id").to_pylist() == ["g"]
    assert [(r.line, r.reason, r.detail) for r in parsed.rejected] == [(2, reason, detail)]
