"""A field added to the contract becomes a column of the Iceberg table through schema
evolution: no data file rewritten, old rows read null, new rows carry it."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from pipeline.compaction.schema import SALES_SCHEMA
from pipeline.lake.tables import (
    SALES,
    TableSpec,
    ensure_table,
    iceberg_catalog,
    read_rows,
    with_partition_columns,
)
from tests.support.compaction_lake import Lake, snapshot_files

if TYPE_CHECKING:
    import boto3

DAY = date(2024, 3, 1)
WITH_PROMOTION = TableSpec(
    "sales", SALES_SCHEMA.append(pa.field("promotion_id", pa.string())), None
)


def _row(spec: TableSpec, event_id: str, **extra: object) -> pa.Table:
    values = {
        "event_id": event_id,
        "event_type": "sale",
        "sku_id": "SKU-1",
        "location_id": "LOC-1",
        "quantity": 1,
        "stock_on_hand": None,
        "unit_price": 2.5,
        "event_time": datetime(2024, 3, 1, 9),
        **extra,
    }
    row = pa.Table.from_pylist([values], schema=spec.columns)
    return with_partition_columns(row, spec, DAY)


def test_given_a_new_contract_field_when_the_table_is_opened_then_it_evolves_without_rewrite(
    lake: Lake, session: boto3.session.Session
) -> None:
    catalog = iceberg_catalog(session)
    ensure_table(catalog, lake.database, lake.curated, SALES).append(
        with_partition_columns(
            _row(SALES, "old").drop_columns(["year", "month", "day"]),
            SALES,
            datetime(2024, 3, 1).date(),
        )  # fmt: skip
    )
    files_before = {path for path, _ in snapshot_files(session, lake.database, "sales")}

    evolved = ensure_table(catalog, lake.database, lake.curated, WITH_PROMOTION)
    evolved.append(_row(WITH_PROMOTION, "new", promotion_id="PROMO-7"))

    assert evolved.schema().find_field("promotion_id").optional
    files_after = {path for path, _ in snapshot_files(session, lake.database, "sales")}
    assert files_before < files_after  # the old file is still there, as it was
    rows = read_rows(catalog, lake.database, WITH_PROMOTION, columns=("event_id", "promotion_id"))
    assert sorted(rows.to_pylist(), key=lambda r: r["event_id"]) == [
        {"event_id": "new", "promotion_id": "PROMO-7"},
        {"event_id": "old", "promotion_id": None},
    ]
    # Opening it again with the same spec changes nothing (no further schema commit).
    schema_id = evolved.schema().schema_id
    again = ensure_table(catalog, lake.database, lake.curated, WITH_PROMOTION)
    assert again.schema().schema_id == schema_id
