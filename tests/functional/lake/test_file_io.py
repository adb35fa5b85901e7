"""The curated tables' file IO writes each small file with one PutObject, on the emulator."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import date
from typing import TYPE_CHECKING

import pyarrow as pa

from pipeline.compaction.schema import DAILY_DEMAND_SCHEMA
from pipeline.lake.tables import DAILY_DEMAND, ensure_table, iceberg_catalog, with_partition_columns
from pipeline.local.server import REQUESTS_PATH

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack


def _s3_writes(endpoint: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{endpoint}{REQUESTS_PATH}", timeout=10) as response:
        operations = json.load(response)["operations"]
    names = ("s3:PutObject", "s3:CreateMultipartUpload", "s3:UploadPart")
    return {name: int(operations.get(name, {}).get("requests", 0)) for name in names}


def test_given_a_table_when_a_day_is_appended_then_each_file_is_one_put_object(
    stack: LocalStack,
) -> None:
    session = stack.session()
    catalog = iceberg_catalog(session)
    database = f"io_{uuid.uuid4().hex[:8]}"
    session.client("glue").create_database(DatabaseInput={"Name": database})
    table = ensure_table(catalog, database, stack.ref("CuratedBucket"), DAILY_DEMAND)
    row = {
        "sku_id": "SKU-1",
        "location_id": "LOC-1",
        "date": date(2024, 5, 10),
        "units_sold": 3,
        "units_returned": 0,
        "end_of_day_stock": 4,
        "stockout": False,
    }
    rows = pa.Table.from_pylist([row], DAILY_DEMAND_SCHEMA)
    before = _s3_writes(stack.endpoint_url)

    table.append(with_partition_columns(rows, DAILY_DEMAND))

    after = _s3_writes(stack.endpoint_url)
    written = {name: after[name] - before[name] for name in after}
    # A data file, a manifest, a manifest list and the metadata JSON: one request each.
    assert written == {"s3:PutObject": 4, "s3:CreateMultipartUpload": 0, "s3:UploadPart": 0}
