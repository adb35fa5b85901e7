"""Bounded lateness: which events a scheduled run holds aside, and how a backfill reads them."""

from __future__ import annotations

import json
from datetime import date, datetime

import pyarrow as pa

from pipeline.compaction.job import backfill_plans
from pipeline.compaction.lateness import FUTURE, TOO_LATE, Lateness, held_records
from pipeline.compaction.parse import parse_raw_object
from pipeline.compaction.raw_objects import read_raw_object
from pipeline.lake.locations import LocationDefaults, Locations

ARRIVAL = date(2026, 12, 7)
KEY = "sales/2026/12/07/shardId-000000000000-1-2.json"


def _line(event_id: str, when: str, **extra: object) -> str:
    event = {
        "event_id": event_id,
        "event_type": "sale",
        "sku_id": "S",
        "location_id": "L",
        "quantity": 2,
        "event_time": when,
        "unit_price": 1.25,
        **extra,
    }
    return json.dumps(event)


def test_given_the_horizon_then_each_side_of_it_is_classified() -> None:
    lateness = Lateness(horizon_days=35, future_days=1)

    assert lateness.reason(date(2026, 11, 2), ARRIVAL) is None  # 35 days before
    assert lateness.reason(date(2026, 11, 1), ARRIVAL) == TOO_LATE
    assert lateness.reason(date(2026, 12, 8), ARRIVAL) is None
    assert lateness.reason(date(2026, 12, 9), ARRIVAL) == FUTURE
    assert lateness.reason(date(2000, 1, 2), ARRIVAL) == TOO_LATE


def test_given_a_reset_clock_and_a_clock_ahead_when_read_then_both_are_held_with_reasons() -> None:
    body = "\n".join(
        [
            _line("ok", "2026-12-07T08:00:00Z"),
            _line("reset", "2000-01-02T10:00:00Z"),
            _line("ahead", "2027-12-07T10:00:00+02:00"),
            '{"event_id": 3}',
        ]
    ).encode()

    read = read_raw_object(body, KEY, Lateness())

    assert sorted(read.days) == [ARRIVAL]
    assert (read.rows, read.held, read.quarantined) == (1, 2, 1)
    assert [r.reason for r in read.rejected if r.line] == ["wrong_type"]
    held = {r.reason: json.loads(r.record)["event_id"] for r in read.rejected if r.line == 0}
    assert held == {TOO_LATE: "reset", FUTURE: "ahead"}
    detail = next(r.detail for r in read.rejected if r.reason == TOO_LATE)
    assert detail == (
        "event day 2000-01-02, arrival day 2026-12-07, horizon 35 days before and 1 after"
    )


def test_given_held_events_when_backfilled_then_they_parse_to_the_same_rows() -> None:
    body = (
        _line("reset", "2000-01-02T10:00:00.250000Z", stock_on_hand=4)
        + "\n"
        + _line("ok", "2026-12-07T08:00:00Z")
    ).encode()
    read = read_raw_object(body, KEY, Lateness())
    quarantine = "".join(r.to_json("s3://raw/" + KEY) + "\n" for r in read.rejected).encode()

    again = parse_raw_object(held_records(quarantine))

    expected = parse_raw_object(body).table.filter(pa.array([True, False]))
    assert again.rejected == []
    assert again.table.to_pylist() == expected.to_pylist()
    assert again.table.column("event_time")[0].as_py() == datetime(2000, 1, 2, 10, 0, 0, 250000)


def test_given_a_quarantine_object_then_only_held_reasons_are_backfilled() -> None:
    lines = [
        {"reason": TOO_LATE, "record": "A"},
        {"reason": "wrong_type", "record": "B"},
        {"reason": FUTURE, "record": "C"},
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()

    assert held_records(body) == b"A\nC\n"


def test_given_no_lateness_then_a_backfill_merges_everything() -> None:
    read = read_raw_object(_line("reset", "2000-01-02T10:00:00Z").encode(), KEY, None)

    assert (sorted(read.days), read.held) == ([date(2000, 1, 2)], 0)


def test_given_scattered_days_when_backfilled_then_each_neighbourhood_is_its_own_plan() -> None:
    days = [date(2000, 1, 2), date(2000, 1, 3), date(2026, 10, 1)]

    utc = backfill_plans(days, Locations())
    zoned = backfill_plans(
        days, Locations(defaults=LocationDefaults(time_zone="America/Los_Angeles"))
    )

    assert [(p.first, p.end) for p in utc] == [
        (date(2000, 1, 2), date(2000, 1, 3)),
        (date(2026, 10, 1), date(2026, 10, 1)),
    ]
    assert [len(p.read) for p in zoned] == [4, 3]
    assert zoned[0].read[0] == date(1999, 12, 31)
