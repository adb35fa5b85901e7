"""The daily demand table: one row per SKU x location x day, built day by day.

A pair has a row on every day from its first event through the last event date of the
whole lake (dense, so zero-sales days are explicit for the forecaster). ``end_of_day_stock``
is the ``stock_on_hand`` of the latest event (by ``event_time``, then ``event_id``) that
carries one, on that day or carried forward from earlier days; ``stockout`` is that stock
being 0. The builder only needs yesterday's row of each pair (the carry) and today's sales,
so a late event recomputes from its day onwards without reading older history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA

if TYPE_CHECKING:
    from datetime import date

Pair = tuple[str, str]


@dataclass
class DemandBuilder:
    """Carries each pair's stock from one day to the next; feed it days in order."""

    carry: dict[Pair, int | None] = field(default_factory=dict)

    @classmethod
    def from_previous_day(cls, previous: pa.Table | None) -> DemandBuilder:
        """Start from the daily demand rows of the day before the first day to build."""
        builder = cls()
        if previous is not None:
            for sku, loc, stock in zip(
                previous.column("sku_id").to_pylist(),
                previous.column("location_id").to_pylist(),
                previous.column("end_of_day_stock").to_pylist(),
                strict=True,
            ):
                builder.carry[(sku, loc)] = stock
        return builder

    def day(self, day: date, sales: pa.Table) -> pa.Table:
        """The daily demand rows of ``day`` given that day's de-duplicated sales rows."""
        frame = sales.select(
            [
                "event_id",
                "event_type",
                "sku_id",
                "location_id",
                "quantity",
                "stock_on_hand",
                "event_time",
            ]
        ).to_pandas()
        keys = ["sku_id", "location_id"]
        sold = frame[frame["event_type"] == "sale"].groupby(keys)["quantity"].sum()
        returned = frame[frame["event_type"] == "return"].groupby(keys)["quantity"].sum()
        counted = frame[frame["stock_on_hand"].notna()].sort_values(["event_time", "event_id"])
        latest = counted.groupby(keys)["stock_on_hand"].last()
        for pair in set(zip(frame["sku_id"], frame["location_id"], strict=True)):
            self.carry.setdefault(pair, None)
        for pair, stock in latest.items():
            self.carry[pair] = int(stock)  # type: ignore[call-overload]
        pairs = sorted(self.carry)
        stocks = [self.carry[p] for p in pairs]
        # Reindexing aligns the sums to the pairs in one vectorised step (a lookup per pair
        # on a MultiIndex is slow with tens of thousands of pairs).
        index = pd.MultiIndex.from_tuples(pairs, names=keys) if pairs else None
        return pa.table(
            {
                "sku_id": [p[0] for p in pairs],
                "location_id": [p[1] for p in pairs],
                "date": pa.array([day] * len(pairs), pa.date32()),
                "units_sold": _aligned(sold, index),
                "units_returned": _aligned(returned, index),
                "end_of_day_stock": pa.array(stocks, pa.int64()),
                "stockout": [s == 0 for s in stocks],
            },
            schema=DAILY_DEMAND_SCHEMA,
        )


def _aligned(sums: pd.Series, index: pd.MultiIndex | None) -> pa.Array:
    if index is None:
        return pa.array([], pa.int64())
    if sums.empty:
        return pa.array(np.zeros(len(index), dtype=np.int64))
    return pa.array(sums.reindex(index, fill_value=0).to_numpy(dtype=np.int64))
