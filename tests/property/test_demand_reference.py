"""Property: the column-wise daily demand equals a row-by-row reference on any day's sales,
however the rows are batched (ties on event_time, pairs without a reading, carried stock)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.compaction import demand
from pipeline.compaction.demand import DemandBuilder
from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA, SALES_SCHEMA

DAY = date(2024, 3, 4)
NOON = datetime(2024, 3, 4, 12)

_event = st.fixed_dictionaries(
    {
        "event_type": st.sampled_from(["sale", "return", "stock_count"]),
        "sku_id": st.sampled_from(["A", "B", "C"]),
        "location_id": st.sampled_from(["L1", "L2"]),
        "quantity": st.integers(0, 5),
        # Few distinct times: ties are common, so event_id has to break them.
        "minute": st.integers(0, 3),
        "stock_on_hand": st.none() | st.integers(0, 9),
        "unit_price": st.none() | st.sampled_from([0.0, 0.5, 1.25, 3.99]),
    }
)
_carry = st.dictionaries(
    st.tuples(st.sampled_from(["A", "B", "D"]), st.sampled_from(["L1", "L2"])),
    st.none() | st.integers(0, 9),
    max_size=4,
)


def _sales(events: list[dict[str, Any]], ids: list[int]) -> pa.Table:
    rows = [
        {
            "event_id": f"e{i:03d}",
            "event_type": e["event_type"],
            "sku_id": e["sku_id"],
            "location_id": e["location_id"],
            "quantity": e["quantity"],
            "stock_on_hand": e["stock_on_hand"],
            "unit_price": e["unit_price"],
            "event_time": NOON + timedelta(minutes=e["minute"]),
        }
        for i, e in zip(ids, events, strict=True)
    ]
    return pa.Table.from_pylist(rows, schema=SALES_SCHEMA)


def _reference(sales: pa.Table, carry: dict[tuple[str, str], int | None]) -> list[dict[str, Any]]:
    def fresh(stock: int | None) -> dict[str, Any]:
        return {
            "units_sold": 0,
            "units_returned": 0,
            "latest": None,
            "stock": stock,
            "revenue": 0.0,
            "priced": 0,
        }

    out = {pair: fresh(stock) for pair, stock in carry.items()}
    for row in sales.to_pylist():
        pair = (row["sku_id"], row["location_id"])
        acc = out.setdefault(pair, fresh(None))
        if row["event_type"] == "sale":
            acc["units_sold"] += row["quantity"]
            if row["unit_price"] is not None:
                acc["revenue"] += row["quantity"] * row["unit_price"]
                acc["priced"] += row["quantity"]
        if row["event_type"] == "return":
            acc["units_returned"] += row["quantity"]
        order = (row["event_time"], row["event_id"])
        if row["stock_on_hand"] is not None and (acc["latest"] is None or order > acc["latest"]):
            acc["latest"], acc["stock"] = order, row["stock_on_hand"]
    return [
        {
            "sku_id": sku,
            "location_id": location,
            "date": DAY,
            "units_sold": acc["units_sold"],
            "units_returned": acc["units_returned"],
            "end_of_day_stock": acc["stock"],
            "stockout": acc["stock"] == 0,
            # Units-weighted mean selling price; none on a day without a priced unit sold.
            "avg_unit_price": acc["revenue"] / acc["priced"] if acc["priced"] else None,
        }
        for (sku, location), acc in sorted(out.items())
    ]


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(_event, max_size=40),
    carry=_carry,
    batch=st.integers(1, 8),
    row_group=st.integers(1, 16),
    data=st.data(),
)
def test_given_any_day_when_demand_built_in_batches_then_equals_row_by_row_reference(
    events: list[dict[str, Any]],
    carry: dict[tuple[str, str], int | None],
    batch: int,
    row_group: int,
    data: st.DataObject,
) -> None:
    # Ids in a random order, so the id order and the row order disagree.
    ids = data.draw(st.permutations(list(range(len(events)))))
    sales = _sales(events, ids)
    previous = pa.Table.from_pylist(
        [
            {
                "sku_id": sku,
                "location_id": location,
                "date": DAY - timedelta(days=1),
                "units_sold": 0,
                "units_returned": 0,
                "end_of_day_stock": stock,
                "stockout": stock == 0,
            }
            for (sku, location), stock in carry.items()
        ],
        schema=DAILY_DEMAND_SCHEMA,
    )

    # Small row groups: the day is reduced in parts, then the parts are reduced again.
    with mock.patch.object(demand, "ROW_GROUP_ROWS", row_group):
        built = DemandBuilder.from_previous_day(previous).day_from_batches(
            DAY, sales.to_batches(max_chunksize=batch)
        )

    got, expected = built.to_pylist(), _reference(sales, carry)
    # The float sums run in another order: the price agrees to rounding, the rest exactly.
    got_prices = [row.pop("avg_unit_price") for row in got]
    expected_prices = [row.pop("avg_unit_price") for row in expected]
    assert got == expected
    assert got_prices == [None if p is None else pytest.approx(p) for p in expected_prices]
