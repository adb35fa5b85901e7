"""The daily demand table: one row per SKU x location x local day, built day by day.

A day is the location's calendar day in its time zone (:mod:`pipeline.lake.locations`):
:func:`local_dates` books each sale on it, and :class:`LocalDays` routes the rows of a UTC
sales partition to the (up to three) local days it overlaps. A pair has a row on every day
from its first event through the latest local day of the whole lake (dense, so zero-sales
days are explicit for the forecaster). ``end_of_day_stock`` is the ``stock_on_hand`` of
the latest event (by ``event_time``, then ``event_id``) that carries one, on that day or
carried forward from earlier days; ``stockout`` is that stock being 0; ``avg_unit_price``
is ``sum(quantity * unit_price) / sum(quantity)`` over the day's priced sales (null
without one). The builder only needs yesterday's row of each pair (the carry) and today's
sales, so a late event recomputes from its day onwards without reading older history.

Everything is column-wise in Arrow (group-bys and one join per day, no per-pair Python),
and a day's sales are reduced batch by batch: memory follows one row group plus one row
per pair, not the size of the day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.compaction.parquet_files import ROW_GROUP_ROWS, conform
from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA, SALES_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import date

    from pipeline.lake.locations import Locations

#: The sales columns the demand needs (what to read from a partition).
DEMAND_INPUT: Final = [
    "event_id",
    "event_type",
    "sku_id",
    "location_id",
    "quantity",
    "stock_on_hand",
    "unit_price",
    "event_time",
]
_INPUT_SCHEMA: Final = pa.schema([SALES_SCHEMA.field(name) for name in DEMAND_INPUT])
_KEYS: Final = ["sku_id", "location_id"]
_PAIR_ORDER: Final = [("sku_id", "ascending"), ("location_id", "ascending")]
_CARRY_SCHEMA: Final = pa.schema(
    [("sku_id", pa.string()), ("location_id", pa.string()), ("end_of_day_stock", pa.int64())]
)
#: A day's sales reduced per pair: units, the takings and units of the priced sales, and
#: the latest stock reading with what orders it. Reducing a concatenation of reductions
#: gives the reduction of the whole day.
_REDUCED_SCHEMA: Final = pa.schema(
    [
        ("sku_id", pa.string()),
        ("location_id", pa.string()),
        ("units_sold", pa.int64()),
        ("units_returned", pa.int64()),
        ("revenue", pa.float64()),
        ("priced_units", pa.int64()),
        ("event_time", pa.timestamp("us")),
        ("event_id", pa.string()),
        ("stock_on_hand", pa.int64()),
    ]
)
_LATEST_ORDER: Final = [("event_time", "ascending"), ("event_id", "ascending")]
_TODAY: Final = ["units_sold", "units_returned", "revenue", "priced_units", "stock_on_hand"]
_SUMS: Final = ["units_sold", "units_returned", "revenue", "priced_units"]


def _reduce(rows: pa.Table) -> pa.Table:
    """Per pair, the sums of the units and the stock reading latest by (event_time, event_id).

    Only the rows with a reading are sorted, and only for their ranks: one hash group-by
    then sums the units and takes each pair's highest rank, which picks its latest reading
    (ties keep the input order: the sort is stable). Sorting every row and aggregating
    with the ordered "last" gives the same result at about twice the cost.
    """
    stock = rows.column("stock_on_hand")
    has_reading = pc.is_valid(stock).to_numpy(zero_copy_only=False)
    readings = rows.filter(has_reading)
    order = pc.sort_indices(readings, sort_keys=_LATEST_ORDER).to_numpy()
    rank = np.full(rows.num_rows, -1, dtype=np.int64)
    rank[np.flatnonzero(has_reading)[order]] = np.arange(len(order), dtype=np.int64)
    reduced = (
        pa.table(
            {
                "sku_id": rows.column("sku_id"),
                "location_id": rows.column("location_id"),
                **{name: rows.column(name) for name in _SUMS},
                "rank": rank,
            }
        )
        .group_by(_KEYS, use_threads=False)
        .aggregate([*((name, "sum") for name in _SUMS), ("rank", "max")])
    )
    latest = reduced.column("rank_max").to_numpy()
    found = latest >= 0
    # Rank r is readings row order[r]; a pair without a reading takes a null.
    index = pa.array(order[np.where(found, latest, 0)] if len(order) else latest, mask=~found)
    return pa.table(
        [
            reduced.column("sku_id"),
            reduced.column("location_id"),
            *(pc.fill_null(reduced.column(f"{name}_sum"), 0) for name in _SUMS),
            readings.column("event_time").take(index),
            readings.column("event_id").take(index),
            readings.column("stock_on_hand").take(index),
        ],
        schema=_REDUCED_SCHEMA,
    )


def demand_columns(rows: pa.Table) -> pa.Table:
    """The columns of :data:`DEMAND_INPUT` (one an older partition lacks reads as nulls)."""
    if all(name in rows.column_names for name in DEMAND_INPUT):
        return rows.select(DEMAND_INPUT)
    return conform(rows, _INPUT_SCHEMA)


def _sales_reduction(batch: pa.Table) -> pa.Table:
    """The reduction of sales rows (every pair with an event gets a row)."""
    kind = batch.column("event_type")
    quantity = batch.column("quantity")
    stock = batch.column("stock_on_hand")
    price = batch.column("unit_price")
    counted = pc.is_valid(stock)
    zero = pa.scalar(0, pa.int64())
    sale = pc.equal(kind, "sale")
    # The mean selling price weighs each priced sale by its units; a sale without a price
    # (the field is optional) counts in units_sold but not in the price.
    priced = pc.fill_null(pc.and_(sale, pc.is_valid(price)), False)
    parts = pa.table(
        [
            batch.column("sku_id"),
            batch.column("location_id"),
            pc.if_else(sale, quantity, zero),
            pc.if_else(pc.equal(kind, "return"), quantity, zero),
            pc.if_else(priced, pc.multiply(pc.cast(quantity, pa.float64()), price), 0.0),
            pc.if_else(priced, quantity, zero),
            pc.if_else(counted, batch.column("event_time"), None),
            pc.if_else(counted, batch.column("event_id"), None),
            stock,
        ],
        schema=_REDUCED_SCHEMA,
    )
    return _reduce(parts)


@dataclass
class DaySales:
    """One day's sales, reduced a row group at a time: units per pair and the latest stock.

    Feed it the rows as they stream by (the job feeds the batches it writes to the merged
    partition); memory follows one row group plus one row per pair, not the size of the day.
    """

    parts: list[pa.Table] = field(default_factory=list)
    pending: list[pa.Table] = field(default_factory=list)
    pending_rows: int = 0

    def add(self, batch: pa.Table | pa.RecordBatch) -> None:
        rows = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        if rows.num_rows:
            # Every reduction has a fixed cost: reduce row groups, not the small batches.
            self.pending.append(demand_columns(rows))
            self.pending_rows += rows.num_rows
            if self.pending_rows >= ROW_GROUP_ROWS:
                self._reduce_pending()

    def _reduce_pending(self) -> None:
        if self.pending:
            self.parts.append(_sales_reduction(pa.concat_tables(self.pending)))
        self.pending, self.pending_rows = [], 0

    def reduced(self) -> pa.Table:
        """The reduction of every row added."""
        self._reduce_pending()
        if not self.parts:
            return _REDUCED_SCHEMA.empty_table()
        if len(self.parts) > 1:
            self.parts = [_reduce(pa.concat_tables(self.parts))]
        return self.parts[0]


def _mean_price(revenue: pa.ChunkedArray, units: pa.ChunkedArray) -> pa.ChunkedArray:
    """Takings over units of the day's priced sales; null on a day without one."""
    has_price = pc.fill_null(pc.greater(units, 0), False)
    return pc.if_else(has_price, pc.divide(revenue, pc.cast(units, pa.float64())), None)


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
        return self.day_from_batches(day, [demand_columns(sales)])

    def day_from_batches(self, day: date, batches: Iterable[pa.Table | pa.RecordBatch]) -> pa.Table:
        """Like :meth:`day`, reducing the day's sales one batch at a time (the job streams)."""
        sales = DaySales()
        for batch in batches:
            sales.add(batch)
        return self.finish(day, sales)

    def finish(self, day: date, sales: DaySales, history: pa.Table | None = None) -> pa.Table:
        """The daily demand rows of ``day`` from its reduced sales; advances the carry.

        ``history``: imported history rows of ``day`` (``demand_history``'s columns). A
        pair with no event that day takes its history row (and its stock carries on); a
        pair with events keeps what the stream says (:func:`with_history`).
        """
        rows = self._finish(day, sales)
        if history is None or history.num_rows == 0:
            return rows
        events = sales.reduced().select(_KEYS)
        rows = with_history(rows, history, events)
        self.carry = rows.select(_CARRY_SCHEMA.names).cast(_CARRY_SCHEMA).combine_chunks()
        return rows

    def _finish(self, day: date, sales: DaySales) -> pa.Table:
        today = sales.reduced().select(["sku_id", "location_id", *_TODAY])
        joined = self.carry.join(today, _KEYS, join_type="full outer", use_threads=False)
        joined = joined.sort_by(_PAIR_ORDER)
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
                pa.repeat(pa.scalar(day, pa.date32()), n),
                pc.fill_null(joined.column("units_sold"), 0),
                pc.fill_null(joined.column("units_returned"), 0),
                end_stock,
                pc.fill_null(pc.equal(end_stock, 0), False),
                _mean_price(joined.column("revenue"), joined.column("priced_units")),
            ],
            schema=DAILY_DEMAND_SCHEMA,
        )


def history_demand(history: pa.Table) -> pa.Table:
    """Imported history rows (``demand_history``'s columns) as ``daily_demand`` rows: the
    units as sold, none returned, the stock as the source gave it (none: null, and no
    stockout), its price as the day's mean selling price."""
    stock = history.column("end_of_day_stock")
    return pa.table(
        [
            history.column("sku_id"),
            history.column("location_id"),
            history.column("date"),
            history.column("units_sold"),
            pa.repeat(pa.scalar(0, pa.int64()), history.num_rows),
            stock,
            pc.fill_null(pc.equal(stock, 0), False),
            history.column("avg_unit_price"),
        ],
        schema=DAILY_DEMAND_SCHEMA,
    )


def with_history(rows: pa.Table, history: pa.Table, events: pa.Table) -> pa.Table:
    """One day's ``daily_demand`` ``rows`` with imported ``history`` of that day over them,
    for every pair without a streamed event that day (``events``: the pairs with one).

    The overlap rule: a SKU x location x day with streamed events is the stream's; any
    other pair with history that day is the history's. Sorted by pair, as the builder's.
    """
    history = history.select(DAILY_DEMAND_SCHEMA.names[:3] + ["units_sold", "end_of_day_stock",
                             "avg_unit_price"])  # fmt: skip
    kept = history.join(events.select(_KEYS), _KEYS, join_type="left anti", use_threads=False)
    if kept.num_rows == 0:
        return rows
    others = rows.join(kept.select(_KEYS), _KEYS, join_type="left anti", use_threads=False)
    merged = pa.concat_tables(
        [others.select(DAILY_DEMAND_SCHEMA.names).cast(DAILY_DEMAND_SCHEMA), history_demand(kept)]
    )
    return merged.sort_by(_PAIR_ORDER).combine_chunks()


def local_dates(rows: pa.Table, locations: Locations) -> pa.Array:
    """Each row's ``event_time`` (UTC) as a calendar date at its ``location_id``'s zone.

    Vectorised per zone: one lookup per distinct location, then one conversion per zone.
    """
    times = rows.column("event_time")
    if locations.all_utc:
        return pc.cast(times, pa.date32()).combine_chunks()
    ids = rows.column("location_id")
    distinct = pc.unique(ids)
    names = sorted({locations.time_zone(x) for x in distinct.to_pylist()})
    zone_of = np.array(
        [names.index(locations.time_zone(x)) for x in distinct.to_pylist()], dtype=np.int64
    )
    row_zone = zone_of[pc.index_in(ids, value_set=distinct).to_numpy(zero_copy_only=False)]
    out = np.empty(rows.num_rows, dtype="datetime64[D]")
    instants = times.combine_chunks() if isinstance(times, pa.ChunkedArray) else times
    for i, name in enumerate(names):
        where = np.flatnonzero(row_zone == i)
        zoned = instants.take(pa.array(where)).cast(pa.timestamp("us", name))
        local = pc.cast(pc.local_timestamp(zoned), pa.date32())
        out[where] = local.to_numpy(zero_copy_only=False)
    return pa.array(out, pa.date32())


@dataclass
class LocalDays:
    """Sales rows routed to their location's calendar day, one UTC sales partition at a time.

    A local day spans up to three UTC partitions (the day before and after, for zones
    behind and ahead of UTC). Each partition's rows are reduced per local day
    (:class:`DaySales`) and the reductions are kept per local day until it is taken: the
    Spark path makes the same reductions in separate tasks, so both build the same rows.
    Rows of days before ``first`` are not being rebuilt and are dropped.
    """

    locations: Locations
    first: date
    current: dict[date, DaySales] = field(default_factory=dict)
    done: dict[date, list[pa.Table]] = field(default_factory=dict)
    #: The latest local day of any row seen (dropped rows included).
    last: date | None = None

    def add(self, batch: pa.Table | pa.RecordBatch) -> None:
        rows = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        if not rows.num_rows:
            return
        dates = local_dates(rows, self.locations)
        low, high = pc.min_max(dates).values()
        first_day, last_day = low.as_py(), high.as_py()
        self.last = last_day if self.last is None else max(self.last, last_day)
        if first_day == last_day:
            if first_day >= self.first:
                self.current.setdefault(first_day, DaySales()).add(rows)
            return
        for day in pc.unique(dates).to_pylist():
            if day >= self.first:
                mask = pc.equal(dates, pa.scalar(day, pa.date32()))
                self.current.setdefault(day, DaySales()).add(rows.filter(mask))

    def end_partition(self) -> dict[date, pa.Table]:
        """Close the UTC partition being read: its reductions per local day."""
        reduced = {day: sales.reduced() for day, sales in sorted(self.current.items())}
        for day, part in reduced.items():
            self.done.setdefault(day, []).append(part)
        self.current = {}
        return reduced

    def take(self, day: date) -> DaySales:
        """The sales of a finished local day (every partition it spans has been read)."""
        return DaySales(parts=self.done.pop(day, []))
