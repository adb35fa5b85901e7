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


def new_rows(
    ids: pa.Array | pa.ChunkedArray,
    existing: pa.Array | pa.ChunkedArray,
    *,
    bucket_rows: int,
) -> pa.Array:
    """A mask of the first occurrence of every id in ``ids`` that ``existing`` does not hold.

    Hash tables over a whole day's ids cost several times the ids themselves (measured:
    +115 MB of Arrow memory for 1.2M ids), so above ``bucket_rows`` ids the work is done
    in buckets of about that many, by a cheap function of each id's last bytes: equal ids
    share a bucket, so the first occurrence in its bucket is the first occurrence overall,
    and memory follows one bucket instead of the day. (A skewed id scheme only makes the
    buckets uneven, never the answer different.)
    """
    n = len(ids)
    buckets = max(1, -(-(n + len(existing)) // bucket_rows))
    if buckets == 1:
        return pc.and_(first_occurrences(ids), not_in(ids, existing))
    mask = np.zeros(n, dtype=bool)
    of_ids, of_existing = _buckets(ids, buckets), _buckets(existing, buckets)
    for bucket in range(buckets):
        rows = np.flatnonzero(of_ids == bucket)
        if len(rows) == 0:
            continue
        part = ids.take(pa.array(rows))
        holds = existing.take(pa.array(np.flatnonzero(of_existing == bucket)))
        keep = pc.and_(first_occurrences(part), not_in(part, holds))
        mask[rows[keep.to_numpy(zero_copy_only=False)]] = True
    return pa.array(mask)


def _buckets(ids: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """A bucket number per id from its last four bytes (vectorised over the raw buffers)."""
    chunks = ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]
    parts = [_chunk_hashes(chunk) for chunk in chunks if len(chunk)]
    hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return hashes % buckets


def _chunk_hashes(chunk: pa.Array) -> np.ndarray:
    chunk = chunk.cast(pa.string())
    _, offsets_buffer, data_buffer = chunk.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[
        chunk.offset : chunk.offset + len(chunk) + 1
    ]
    if data_buffer is None or data_buffer.size == 0:
        return np.zeros(len(chunk), dtype=np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    hashes = np.zeros(len(chunk), dtype=np.int64)
    for back in range(1, 5):
        at = ends - back
        present = at >= starts
        hashes = hashes * 257 + np.where(present, data[np.where(present, at, 0)], 0)
    return hashes


def split_by_event_date(table: pa.Table) -> dict[date, pa.Table]:
    """The rows of ``table`` grouped by the UTC date of ``event_time``, in their order."""
    if table.num_rows == 0:
        return {}
    days = pc.cast(table.column("event_time"), pa.date32())
    out: dict[date, pa.Table] = {}
    for day in pc.unique(days).to_pylist():
        out[day] = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
    return out
