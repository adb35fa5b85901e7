"""Test data for the curated zone: sales events written to the raw bucket as NDJSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def event(
    event_id: str,
    when: datetime,
    *,
    event_type: str = "sale",
    sku: str = "SKU-1",
    location: str = "LOC-1",
    quantity: int = 1,
    stock: int | None = None,
    price: float | None = 2.5,
    **extra: Any,
) -> dict[str, Any]:
    """One contract-v1 sales event as the ingest consumer writes it."""
    out: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "sku_id": sku,
        "location_id": location,
        "quantity": quantity,
        "event_time": when.isoformat(),
        **extra,
    }
    if stock is not None:
        out["stock_on_hand"] = stock
    if price is not None:
        out["unit_price"] = price
    return out


def raw_key(arrival: datetime, shard: str, first: int, last: int) -> str:
    """A raw object key like the consumer's (arrival date, shard, sequence numbers)."""
    day = arrival.astimezone(UTC)
    return f"sales/{day:%Y/%m/%d}/{shard}-{first:012d}-{last:012d}.json"


def put_raw(s3: Any, bucket: str, key: str, events: list[dict[str, Any]] | list[str]) -> None:
    """Write one raw NDJSON object (dicts are JSON-encoded, strings written as they are)."""
    lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
    s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
