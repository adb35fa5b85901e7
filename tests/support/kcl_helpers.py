"""Helpers of the KCL functional tests: produce events, read the raw zone, bounded waits."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    import boto3


def sales_event(n: int) -> dict[str, Any]:
    return {
        "event_id": f"kcl-{n:05d}",
        "event_type": "sale",
        "sku_id": f"SKU-{n % 11}",
        "location_id": f"STORE-{n % 5}",
        "quantity": 1 + n % 4,
        "stock_on_hand": 5 + n % 3,
        "event_time": "2025-03-01T09:00:00+00:00",
    }


def produce(session: boto3.session.Session, stream: str, numbers: range) -> dict[str, str]:
    """Put one event per number; return the highest sequence number written per shard."""
    kinesis = session.client("kinesis")
    response = kinesis.put_records(
        StreamName=stream,
        Records=[
            {
                "Data": json.dumps(sales_event(n)).encode(),
                "PartitionKey": f"SKU-{n % 11}#STORE-{n % 5}",
            }
            for n in numbers
        ],
    )
    assert response["FailedRecordCount"] == 0
    last: dict[str, str] = {}
    for entry in response["Records"]:
        shard, sequence = entry["ShardId"], entry["SequenceNumber"]
        if shard not in last or int(sequence) > int(last[shard]):
            last[shard] = sequence
    return last


def raw_event_ids(session: boto3.session.Session, bucket: str) -> list[str]:
    """Every event id in the raw zone, duplicates included."""
    s3 = session.client("s3")
    ids: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="sales/"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            ids.extend(json.loads(line)["event_id"] for line in body.splitlines())
    return ids


def wait_for(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Poll ``condition`` every 0.5 s; fail the test with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if not alive():
            pytest.fail(f"a KCL worker died while waiting for {what}")
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
