"""Daily demand by the location's calendar day: booking, daylight saving time, the plan."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa

from pipeline.compaction.demand import DemandBuilder, LocalDays, local_dates
from pipeline.compaction.job import demand_plan
from pipeline.compaction.schema import SALES_SCHEMA
from pipeline.compaction.state import Manifest
from pipeline.lake.locations import Location, Locations

LOCATIONS = Locations(
    rows={
        "LA": Location("LA", "America/Los_Angeles"),
        "TOKYO": Location("TOKYO", "Asia/Tokyo"),
    }
)


def _sales(rows: list[tuple[str, str, datetime, int]]) -> pa.Table:
    """Sales rows (event_id, location, UTC event_time, quantity) of one SKU."""
    return pa.Table.from_pylist(
        [
            {
                "event_id": event_id,
                "event_type": "sale",
                "sku_id": "S",
                "location_id": location,
                "quantity": quantity,
                "stock_on_hand": None,
                "unit_price": 1.0,
                "event_time": when,
            }
            for event_id, location, when, quantity in rows
        ],
        schema=SALES_SCHEMA,
    )


def test_given_a_sale_at_17_local_west_of_utc_when_booked_then_it_is_on_its_local_date() -> None:
    sales = _sales(
        [
            ("a", "LA", datetime(2024, 1, 16, 1, 0), 1),  # 17:00 on 15 Jan (UTC-8)
            ("b", "TOKYO", datetime(2024, 1, 15, 16, 0), 1),  # 01:00 on 16 Jan (UTC+9)
            ("c", "UTC-STORE", datetime(2024, 1, 15, 23, 59), 1),
        ]
    )

    assert local_dates(sales, LOCATIONS).to_pylist() == [
        date(2024, 1, 15),
        date(2024, 1, 16),
        date(2024, 1, 15),
    ]


def test_given_daylight_saving_time_when_booked_then_the_offset_of_the_day_applies() -> None:
    # Los Angeles: UTC-8 until 2024-03-10 02:00 local, UTC-7 after; UTC-8 again 3 Nov.
    sales = _sales(
        [
            ("a", "LA", datetime(2024, 3, 10, 7, 30), 1),  # 23:30 on 9 Mar (UTC-8)
            ("b", "LA", datetime(2024, 3, 11, 6, 30), 1),  # 23:30 on 10 Mar (UTC-7)
            ("c", "LA", datetime(2024, 3, 11, 7, 30), 1),  # 00:30 on 11 Mar (UTC-7)
            ("d", "LA", datetime(2024, 11, 4, 7, 30), 1),  # 23:30 on 3 Nov (UTC-8 again)
        ]
    )

    assert local_dates(sales, LOCATIONS).to_pylist() == [
        date(2024, 3, 9),
        date(2024, 3, 10),
        date(2024, 3, 11),
        date(2024, 11, 3),
    ]


def test_given_a_local_day_across_two_utc_partitions_when_built_then_one_row_sums_both() -> None:
    local = LocalDays(LOCATIONS, first=date(2024, 1, 15))
    # The UTC partition of 15 Jan, then that of 16 Jan: both hold part of LA's 15 Jan.
    local.add(_sales([("a", "LA", datetime(2024, 1, 15, 9, 0), 2)]))  # 01:00 local
    local.end_partition()
    local.add(_sales([("b", "LA", datetime(2024, 1, 16, 7, 0), 3)]))  # 23:00 local
    local.add(_sales([("c", "LA", datetime(2024, 1, 16, 9, 0), 5)]))  # 01:00 on 16 Jan
    local.end_partition()

    rows = DemandBuilder().finish(date(2024, 1, 15), local.take(date(2024, 1, 15))).to_pylist()

    assert [(r["date"], r["units_sold"]) for r in rows] == [(date(2024, 1, 15), 5)]
    assert local.last == date(2024, 1, 16)


def test_given_rows_of_a_day_not_rebuilt_when_routed_then_they_are_dropped() -> None:
    local = LocalDays(LOCATIONS, first=date(2024, 1, 16))
    local.add(_sales([("a", "LA", datetime(2024, 1, 16, 7, 0), 3)]))  # 15 Jan local

    assert local.end_partition() == {}


def test_given_every_location_at_utc_when_planned_then_the_plan_is_the_utc_days() -> None:
    plan = demand_plan([date(2024, 1, 10)], Manifest(max_event_date=date(2024, 1, 12)), Locations())

    assert (plan.first, plan.read[0], plan.read[-1], plan.spill) == (
        date(2024, 1, 10),
        date(2024, 1, 10),
        date(2024, 1, 12),
        0,
    )


def test_given_zones_off_utc_when_planned_then_neighbouring_utc_days_are_read() -> None:
    plan = demand_plan([date(2024, 1, 10)], Manifest(max_event_date=date(2024, 1, 12)), LOCATIONS)

    # Local 9 Jan may hold sales of the UTC 10 Jan (zones behind UTC): it is rebuilt, and
    # the UTC 8 Jan is read for its rows of zones ahead of UTC.
    assert (plan.first, plan.read[0], plan.read[-1]) == (
        date(2024, 1, 9),
        date(2024, 1, 8),
        date(2024, 1, 12),
    )
    assert plan.complete_through(date(2024, 1, 10)) == date(2024, 1, 9)
