"""Property: de-duplicating in buckets (bounded memory) keeps exactly the rows that one
pass over all the ids keeps, whatever the ids, their chunking and the existing ones."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.compaction.dedupe import new_rows

# Few distinct ids (many duplicates), short and empty ones, non-ASCII bytes.
_id = st.sampled_from(["", "a", "é", "evt-1", "evt-2", "x" * 9, "evt-10", "evt-11"]) | st.text(
    max_size=6
)


def _chunked(values: list[str], cuts: list[int]) -> pa.ChunkedArray:
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    return pa.chunked_array(
        [pa.array(values[a:b], pa.string()) for a, b in zip(bounds, bounds[1:], strict=False)],
        pa.string(),
    )


def _reference(ids: list[str], existing: list[str]) -> list[bool]:
    seen = set(existing)
    keep = []
    for value in ids:
        keep.append(value not in seen)
        seen.add(value)
    return keep


@settings(max_examples=200, deadline=None)
@given(
    ids=st.lists(_id, max_size=60),
    existing=st.lists(_id, max_size=20),
    cuts=st.lists(st.integers(0, 60), max_size=4),
    bucket_rows=st.integers(1, 8),
)
def test_given_any_ids_when_deduplicated_in_buckets_then_same_rows_as_one_pass(
    ids: list[str], existing: list[str], cuts: list[int], bucket_rows: int
) -> None:
    chunked = _chunked(ids, cuts)
    # Sliced arrays start at a non-zero offset into their buffers.
    sliced = pa.array(["pad", *existing], pa.string()).slice(1)

    kept = new_rows(chunked, sliced, bucket_rows=bucket_rows)

    assert kept.to_pylist() == _reference(ids, existing)
