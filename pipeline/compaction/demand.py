"""The daily demand table: one row per SKU x location x day, built day by day.

A pair has a row on every day from its first event through the last event date of the
whole lake (dense, so zero-sales days are explicit for the forecaster). ``end_of_day_stock``
is the ``stock_on_hand`` of the latest event (by ``event_time``, then ``event_id``) that
carries one, on that day or carried forward from earlier days; ``stockout`` is that stock
being 0. The builder only needs yesterday's row of each pair (the carry) and today's sales,
so a late event recomputes from its day onwards without reading older history.

Everything is column-wise in Arrow (group-bys and one join per day, no per-pair Python),
and a day's sales are reduced batch by batch: memory follows one row group plus one row
per pair, not the size of the day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import date

#: The sales columns the demand needs (what to read from a partition).
DEMAND_INPUT: Final = [
    "event_id",
    "event_type",
    "sku_id",
    "location_id",
    "quantity",
    "stock_on_hand",
    "event_time",
]
_KEYS: Final = ["sku_id", "location_id"]
_PAIR_ORDER: Final = [("sku_id", "ascending"), ("location_id", "ascending")]
_CARRY_SCHEMA: Final = pa.schema(
    [("sku_id", pa.string()), ("location_id", pa.string()), ("end_of_day_stock", pa.int64())]
)
_SUMS_SCHEMA: Final = pa.schema(
    [
        ("sku_id", pa.string()),
        ("location_id", pa.string()),
        ("units_sold", pa.int64()),
        ("units_returned", pa.int64()),
    ]
)
_LATEST_SCHEMA: Final = pa.schema(
    [
        ("sku_id", pa.string()),
        ("location_id", pa.string()),
        ("event_time", pa.timestamp("us")),
        ("event_id", pa.string()),
        ("stock_on_hand", pa.int64()),
    ]
)


def _sums(batch: pa.Table) -> pa.Table:
    """Units sold and returned per pair (every pair with an event gets a row)."""
    kind = batch.column("event_type")
    quantity = batch.column("quantity")
    zero = pa.scalar(0, pa.int64())
    parts = pa.table(
        {
            "sku_id": batch.column("sku_id"),
            "location_id": batch.column("location_id"),
            "units_sold": pc.if_else(pc.equal(kind, "sale"), quantity, zero),
            "units_returned": pc.if_else(pc.equal(kind, "return"), quantity, zero),
        }
    )
    return _sum_by_pair(parts)


def _sum_by_pair(parts: pa.Table) -> pa.Table:
    summed = parts.group_by(_KEYS).aggregate([("units_sold", "sum"), ("units_returned", "sum")])
    return pa.table(
        [
            summed.column("sku_id"),
            summed.column("location_id"),
            pc.fill_null(summed.column("units_sold_sum"), 0),
            pc.fill_null(summed.column("units_returned_sum"), 0),
        ],
        schema=_SUMS_SCHEMA,
    )


def _latest(rows: pa.Table) -> pa.Table:
    """Per pair, the row with a stock reading that is latest by (event_time, event_id)."""
    counted = rows.filter(pc.is_valid(rows.column("stock_on_hand"))).select(_LATEST_SCHEMA.names)
    if counted.num_rows == 0:
        return _LATEST_SCHEMA.empty_table()
    # Only the order within a pair matters: "last" is an ordered aggregation (it needs the
    # single-threaded group-by, which keeps the input order inside every group).
    ordered = counted.sort_by([("event_time", "ascending"), ("event_id", "ascending")])
    last = ordered.group_by(_KEYS, use_threads=False).aggregate(
        [("event_time", "last"), ("event_id", "last"), ("stock_on_hand", "last")]
    )
    return pa.table(
        [
            last.column("sku_id"),
            last.column("location_id"),
            last.column("event_time_last"),
            last.column("event_id_last"),
            last.column("stock_on_hand_last"),
        ],
        schema=_LATEST_SCHEMA,
    )


@dataclass
class DemandBuilder:
    """Carries each pair's stock from one day to the next; feed it days in order."""

    carry: pa.Table = field(default_factory=_CARRY_SCHEMA.empty_table)

    @classmethod
    def from_previous_day(cls, previous: pa.Table | None) -> DemandBuilder:
        """Start from the daily demand rows of the day before the first day to build."""
        if previous is None or previous.num_rows == 0:
            return cls()
        carry = previous.select(_CARRY_SCHEMA.names).cast(_CARRY_SCHEMA)
        return cls(carry.combine_chunks())

    def day(self, day: date, sales: pa.Table) -> pa.Table:
        """The daily demand rows of ``day`` given that day's de-duplicated sales rows."""
        return self.day_from_batches(day, [sales.select(DEMAND_INPUT)])

    def day_from_batches(self, day: date, batches: Iterable[pa.Table | pa.RecordBatch]) -> pa.Table:
        """Like :meth:`day`, reducing the day's sales one batch at a time (the job streams)."""
        sums: list[pa.Table] = []
        latest: list[pa.Table] = []
        for batch in batches:
            rows = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
            if rows.num_rows:
                sums.append(_sums(rows))
                latest.append(_latest(rows))
        today = _sum_by_pair(pa.concat_tables(sums)) if sums else _SUMS_SCHEMA.empty_table()
        stock = _latest(pa.concat_tables(latest)) if latest else _LATEST_SCHEMA.empty_table()
        return self._advance(day, today, stock)

    def _advance(self, day: date, today: pa.Table, stock: pa.Table) -> pa.Table:
        joined = self.carry.join(today, _KEYS, join_type="full outer")
        joined = joined.join(
            stock.select(["sku_id", "location_id", "stock_on_hand"]), _KEYS, join_type="left outer"
        ).sort_by(_PAIR_ORDER)
        end_stock = pc.coalesce(joined.column("stock_on_hand"), joined.column("end_of_day_stock"))
        self.carry = pa.table(
            [joined.column("sku_id"), joined.column("location_id"), end_stock],
            schema=_CARRY_SCHEMA,
        ).combine_chunks()
        n = joined.num_rows
        return pa.table(
            [
                joined.column("sku_id"),
                joined.column("location_id"),
                pa.array([day] * n, pa.date32()) if n else pa.array([], pa.date32()),
                pc.fill_null(joined.column("units_sold"), 0),
                pc.fill_null(joined.column("units_returned"), 0),
                end_stock,
                pc.fill_null(pc.equal(end_stock, 0), False),
            ],
            schema=DAILY_DEMAND_SCHEMA,
        )
