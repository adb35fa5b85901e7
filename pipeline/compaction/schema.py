"""The typed columns of the curated tables, in one place.

Adding a typed field to the contract (say ``promotion_id``) is additive and rewrites no
data: add it to the JSON Schema (optional), to :data:`RAW_SCHEMA` (and so
:data:`SALES_SCHEMA`) here. The next run of either engine finds the Iceberg table without
the column and adds it through Iceberg schema evolution (``ensure_table`` in
:mod:`pipeline.lake.tables`, one commit): the data files written before read it as null,
the new ones carry it. Unknown fields never reach curated: the reader ignores them and they
stay in the raw zone (so a field sent before it was added can be backfilled from there).
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

EVENT_TYPES: Final = ("sale", "return", "stock_count")

#: Fields the contract requires on every event.
REQUIRED_FIELDS: Final = (
    "event_id",
    "event_type",
    "sku_id",
    "location_id",
    "quantity",
    "event_time",
)

#: How raw NDJSON is read: ``event_time`` stays a string so its offset can be checked.
RAW_SCHEMA: Final = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("sku_id", pa.string()),
        ("location_id", pa.string()),
        ("quantity", pa.int64()),
        ("stock_on_hand", pa.int64()),
        ("unit_price", pa.float64()),
        ("event_time", pa.string()),
    ]
)

#: The curated ``sales`` table. ``event_time`` is UTC without a zone, like Athena's
#: ``timestamp``, so the same SQL gives the same dates on Athena and DuckDB.
SALES_SCHEMA: Final = RAW_SCHEMA.set(
    RAW_SCHEMA.get_field_index("event_time"), pa.field("event_time", pa.timestamp("us"))
)

#: The curated ``daily_demand`` table the forecaster reads (names and types are a contract).
#: ``date`` is the location's local calendar day (:mod:`pipeline.lake.locations`);
#: ``avg_unit_price`` is the day's mean selling price (units-weighted ``unit_price`` of its
#: sales, returns excluded), null on a day without a priced sale and in objects written
#: before the column existed.
DAILY_DEMAND_SCHEMA: Final = pa.schema(
    [
        ("sku_id", pa.string()),
        ("location_id", pa.string()),
        ("date", pa.date32()),
        ("units_sold", pa.int64()),
        ("units_returned", pa.int64()),
        ("end_of_day_stock", pa.int64()),
        ("stockout", pa.bool_()),
        ("avg_unit_price", pa.float64()),
    ]
)

SALES_TABLE: Final = "sales"
DAILY_DEMAND_TABLE: Final = "daily_demand"
#: Every partition is one Parquet object with this fixed name (see pipeline.compaction).
PART_FILE: Final = "part-00000.parquet"

#: The curated ``demand_history`` table: the daily history ``fmcg import`` loaded
#: (:mod:`pipeline.history`), one row per SKU x location x day as the source said it, with
#: the source it came from. ``daily_demand`` takes these rows where the stream has no event
#: of that SKU, location and day; compaction keeps them there when it rebuilds a day.
DEMAND_HISTORY_SCHEMA: Final = pa.schema(
    [
        ("sku_id", pa.string()),
        ("location_id", pa.string()),
        ("date", pa.date32()),
        ("units_sold", pa.int64()),
        ("end_of_day_stock", pa.int64()),
        ("avg_unit_price", pa.float64()),
        ("promotion", pa.bool_()),
        ("source", pa.string()),
    ]
)
DEMAND_HISTORY_TABLE: Final = "demand_history"
