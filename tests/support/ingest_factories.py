"""Factories for the ingest tests: sales events, Kinesis puts, KPL aggregates."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from aws_kinesis_agg.aggregator import RecordAggregator

from tests.support.kinesis_events import KinesisPut, sequence_number

ARRIVAL = 1740820630.0  # 2025-03-01T09:17:10Z
HANDLER_PATH = Path(__file__).parents[2] / "stream_consumers" / "ingest_stream" / "app.py"


def sales_event(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid sales event v1 numbered ``n``; ``overrides`` replace or add fields."""
    event: dict[str, Any] = {
        "event_id": f"evt-{n:05d}",
        "event_type": "sale",
        "sku_id": f"SKU-{n % 7}",
        "location_id": f"STORE-{n % 3}",
        "quantity": 1 + n % 5,
        "stock_on_hand": 10 + n % 4,
        "unit_price": 2.5,
        "event_time": "2025-03-01T09:00:00+00:00",
    }
    event.update(overrides)
    return event


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def put(data: bytes, index: int, partition_key: str = "SKU-1#STORE-1") -> KinesisPut:
    return KinesisPut(data, partition_key, sequence_number(index), ARRIVAL + index / 1000)


def kpl_aggregate(blobs: list[bytes]) -> bytes:
    """A well-formed KPL aggregate of ``blobs`` (the standard aws-kinesis-agg format)."""
    aggregator = RecordAggregator()
    for i, blob in enumerate(blobs):
        aggregator.add_user_record(f"pk-{i}", blob)
    _, _, data = aggregator.clear_and_get().get_contents()
    return bytes(data)


def reseal(body: bytes) -> bytes:
    """``MAGIC + body + md5(body)``: an aggregate with a valid checksum over ``body``."""
    return b"\xf3\x89\x9a\xc2" + body + hashlib.md5(body).digest()


def forged_aggregate(blobs: list[bytes]) -> bytes:
    """A checksum-valid KPL aggregate of ``blobs`` built from the protobuf directly.

    Unlike :func:`kpl_aggregate` (the KPL's own aggregator), nothing here limits the count
    or size: this is what a hostile producer can put.
    """
    from pipeline.ingest.decode import _aggregated_record_type

    aggregated = _aggregated_record_type()()
    aggregated.partition_key_table.append("pk")
    for blob in blobs:
        user_record = aggregated.records.add()
        user_record.partition_key_index = 0
        user_record.data = blob
    return reseal(aggregated.SerializeToString())
