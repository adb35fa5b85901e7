"""Streaming parts of compaction: the day spool, merging from it, daily demand by batches."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.compaction import parquet_files
from pipeline.compaction.demand import DemandBuilder
from pipeline.compaction.parquet_files import DaySpool, write_new_rows
from pipeline.compaction.schema import SALES_SCHEMA

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

DAY = date(2024, 1, 2)


def _rows(ids: list[str], **overrides: object) -> pa.Table:
    rows = [
        {
            "event_id": event_id,
            "event_type": "sale",
            "sku_id": "S",
            "location_id": "L",
            "quantity": 1,
            "stock_on_hand": None,
            "unit_price": None,
            "event_time": datetime(2024, 1, 2, 12),
            **overrides,
        }
        for event_id in ids
    ]
    return pa.Table.from_pylist(rows, schema=SALES_SCHEMA)


def test_given_a_day_beyond_one_row_group_when_spooled_then_rows_come_back_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet_files, "ROW_GROUP_ROWS", 3)
    spool = DaySpool(tmp_path, SALES_SCHEMA)
    for chunk in (["a", "b"], ["c", "d"], ["e"]):
        spool.append(DAY, _rows(chunk))
    spool.close()

    ids = [i for t in spool.batches(DAY, ["event_id"]) for i in t.column(0).to_pylist()]

    # Four rows went to the scratch file (a full row group), "e" is still buffered.
    assert (tmp_path / "spool-2024-01-02.parquet").exists()
    assert ids == ["a", "b", "c", "d", "e"]
    assert spool.days == [DAY]


def test_given_spooled_and_existing_rows_when_written_then_only_new_rows_first_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet_files, "ROW_GROUP_ROWS", 2)
    existing = [tmp_path / "existing-0.parquet", tmp_path / "existing-1.parquet"]
    pq.write_table(_rows(["x"], quantity=9), existing[0])
    pq.write_table(_rows(["y"], quantity=8), existing[1])
    spool = DaySpool(tmp_path, SALES_SCHEMA)
    spool.append(DAY, _rows(["a", "x", "b"], quantity=1))
    spool.append(DAY, _rows(["a", "c", "y"], quantity=2))
    spool.close()
    out = tmp_path / "out.parquet"
    seen: list[str] = []

    result = write_new_rows(
        existing,
        lambda columns: spool.batches(DAY, columns),
        out,
        SALES_SCHEMA,
        on_rows=lambda rows: seen.extend(rows.column("event_id").to_pylist()),
    )

    # The existing files' rows stay where they are: the new file holds only what they lack.
    written = pq.read_table(out).select(["event_id", "quantity"]).to_pylist()
    assert written == [
        {"event_id": "a", "quantity": 1},
        {"event_id": "b", "quantity": 1},
        {"event_id": "c", "quantity": 2},
    ]
    assert seen == ["a", "b", "c"]
    assert (result.new_rows, result.duplicates) == (3, 3)


def test_given_only_known_ids_when_written_then_no_file(tmp_path: Path) -> None:
    existing = tmp_path / "existing.parquet"
    pq.write_table(_rows(["x"], quantity=9), existing)
    spool = DaySpool(tmp_path, SALES_SCHEMA)
    spool.append(DAY, _rows(["x", "x"], quantity=1))
    spool.close()
    out = tmp_path / "out.parquet"

    result = write_new_rows(
        [existing], lambda columns: spool.batches(DAY, columns), out, SALES_SCHEMA
    )

    assert (result.new_rows, result.duplicates) == (0, 2)
    assert not out.exists()


def test_given_a_day_in_batches_when_demand_built_then_same_as_whole_day() -> None:
    sales = pa.concat_tables(
        [
            _rows(["s1", "s2"], sku_id="A", quantity=2),
            _rows(["r1"], sku_id="A", event_type="return", quantity=1),
            # Same time: event_id decides, "k2" (stock 0) is the latest reading of A.
            _rows(["k2"], sku_id="A", event_type="stock_count", quantity=0, stock_on_hand=0),
            _rows(["k1"], sku_id="A", event_type="stock_count", quantity=0, stock_on_hand=7),
            _rows(["s3"], sku_id="B", quantity=4, stock_on_hand=5),
        ]
    )
    previous = pa.table(
        {
            "sku_id": ["C"],
            "location_id": ["L"],
            "date": [date(2024, 1, 1)],
            "units_sold": [1],
            "units_returned": [0],
            "end_of_day_stock": [3],
            "stockout": [False],
        }
    )
    whole = DemandBuilder.from_previous_day(previous).day(DAY, sales)

    batched = DemandBuilder.from_previous_day(previous).day_from_batches(
        DAY, sales.to_batches(max_chunksize=2)
    )

    assert batched.equals(whole)
    assert whole.select(
        ["sku_id", "units_sold", "units_returned", "end_of_day_stock", "stockout"]
    ).to_pylist() == [
        {
            "sku_id": "A",
            "units_sold": 4,
            "units_returned": 1,
            "end_of_day_stock": 0,
            "stockout": True,
        },
        {
            "sku_id": "B",
            "units_sold": 4,
            "units_returned": 0,
            "end_of_day_stock": 5,
            "stockout": False,
        },
        {
            "sku_id": "C",
            "units_sold": 0,
            "units_returned": 0,
            "end_of_day_stock": 3,
            "stockout": False,
        },
    ]
