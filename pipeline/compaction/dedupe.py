"""De-duplication by ``event_id`` and routing by event date, column-wise in Arrow."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from datetime import date


def first_occurrences(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A mask that keeps the first row of every ``event_id`` (order decides, so re-runs agree)."""
    n = len(ids)
    if n == 0:
        return pa.array([], pa.bool_())
    index = pa.table({"id": ids, "i": pa.array(np.arange(n, dtype=np.int64))})
    firsts = index.group_by("id", use_threads=False).aggregate([("i", "min")])["i_min"]
    mask = np.zeros(n, dtype=bool)
    mask[firsts.to_numpy()] = True
    return pa.array(mask)


def not_in(ids: pa.Array | pa.ChunkedArray, existing: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A mask of the ``ids`` that ``existing`` does not hold."""
    if len(existing) == 0:
        return pa.array(np.ones(len(ids), dtype=bool))
    value_set = existing.combine_chunks() if isinstance(existing, pa.ChunkedArray) else existing
    return pc.invert(pc.is_in(ids, value_set=value_set))


def split_by_event_date(table: pa.Table) -> dict[date, pa.Table]:
    """The rows of ``table`` grouped by the UTC date of ``event_time``, in their order."""
    if table.num_rows == 0:
        return {}
    days = pc.cast(table.column("event_time"), pa.date32())
    out: dict[date, pa.Table] = {}
    for day in pc.unique(days).to_pylist():
        out[day] = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
    return out
