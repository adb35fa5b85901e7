"""The producer against an in-memory Kinesis: limits, partial failures, order, aggregation."""

from __future__ import annotations

import base64
import json
import random
from collections import defaultdict
from typing import Any

import pytest
from aws_kinesis_agg.deaggregator import iter_deaggregate_records

from pipeline.produce import Producer, partition_key
from pipeline.produce.producer import ProducerRejected, ProducerRetriesExhausted
from tests.support.fake_kinesis import FakeKinesis


def events(n: int, keys: int, pad: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        event = {
            "event_id": f"e-{i:06d}",
            "event_type": "sale",
            "sku_id": f"SKU-{i % keys:04d}",
            "location_id": "LOC-001",
            "quantity": 1,
            "event_time": "2024-05-01T10:00:00+00:00",
        }
        if pad:
            event["note"] = "x" * pad
        out.append(event)
    return out


def stored_events(fake: FakeKinesis) -> dict[str, list[dict[str, Any]]]:
    """Every user record in the fake, de-aggregated, per shard in stream order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for shard, records in fake.shards.items():
        boto_records = [
            {
                "Data": d,
                "PartitionKey": pk,
                "SequenceNumber": str(i),
                "ApproximateArrivalTimestamp": 0,
            }
            for i, (pk, d) in enumerate(records)
        ]
        users = iter_deaggregate_records(boto_records, data_format="Boto3")
        out[shard] = [json.loads(decode(u["kinesis"]["data"])) for u in users]
    return out


def decode(data: bytes | str) -> bytes:
    # The package hands plain records back as they came and user records base64-encoded.
    if isinstance(data, bytes) and data.startswith(b"{"):
        return data
    return base64.b64decode(data)


def per_key(events_in_order: list[dict[str, Any]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for e in events_in_order:
        grouped[partition_key(e)].append(e["event_id"])
    return dict(grouped)


def no_sleep(_: float) -> None:
    return None


def test_given_many_keys_when_put_then_calls_respect_500_records_and_one_record_per_key():
    fake = FakeKinesis()
    sent = events(1200, keys=700)
    report = Producer(fake, "s", sleep=no_sleep).put(sent)  # type: ignore[arg-type]

    assert report.events == 1200
    assert report.kinesis_records == 1200
    assert [len(c) for c in fake.calls] == [500, 500, 200]
    for call in fake.calls:
        keys = [r["PartitionKey"] for r in call]
        assert len(keys) == len(set(keys))
    stored = [e for shard in stored_events(fake).values() for e in shard]
    assert per_key(stored) == per_key(sent)


def test_given_large_records_when_put_then_each_call_stays_within_5_mib():
    fake = FakeKinesis()
    sent = events(20, keys=20, pad=600_000)
    report = Producer(fake, "s", sleep=no_sleep).put(sent)  # type: ignore[arg-type]

    assert report.events == 20
    # 8 records of ~600 KB fit 5 MiB, the ninth does not.
    assert [len(c) for c in fake.calls] == [8, 8, 4]


def test_given_record_over_1_mib_when_put_then_rejected_before_anything_is_sent():
    fake = FakeKinesis()
    sent = events(3, keys=3)
    sent[1]["note"] = "x" * (1024 * 1024)

    with pytest.raises(ProducerRejected) as caught:
        Producer(fake, "s", sleep=no_sleep).put(sent)  # type: ignore[arg-type]

    assert str(caught.value).startswith("event 'e-000001' is 1048")
    assert str(caught.value).endswith("bytes with its partition key; Kinesis takes at most 1048576")
    assert caught.value.undelivered == sent
    assert fake.calls == []


def test_given_partial_failures_when_put_then_only_failed_records_are_retried_in_key_order():
    # Records of key SKU-0000 fail on their first try: later records of that key must not
    # overtake them, and records that succeeded must never be sent twice.
    tried: set[str] = set()
    calls_with_failures: set[int] = set()

    def fail_first_try(call: int, record: dict[str, Any]) -> str | None:
        event_id = json.loads(record["Data"])["event_id"]
        if event_id in tried:
            return None
        if record["PartitionKey"].startswith("SKU-0000#") or event_id == "e-000005":
            tried.add(event_id)
            calls_with_failures.add(call)
            return (
                "InternalFailure"
                if event_id == "e-000005"
                else ("ProvisionedThroughputExceededException")
            )
        return None

    fake = FakeKinesis(fail=fail_first_try)
    sleeps: list[float] = []
    sent = events(40, keys=4)
    report = Producer(  # type: ignore[arg-type]
        fake, "s", sleep=sleeps.append, rng=random.Random(1), max_attempts=3
    ).put(sent)

    stored = [e for shard in stored_events(fake).values() for e in shard]
    assert per_key(stored) == per_key(sent)
    assert sorted(e["event_id"] for e in stored) == [e["event_id"] for e in sent]
    assert report.events == 40
    assert report.retried_records == 11  # ten of SKU-0000 and e-000005
    assert len(sleeps) == len(calls_with_failures)
    assert all(0.0 <= s <= 0.05 for s in sleeps)  # every failure was a first attempt


def test_given_a_key_that_always_fails_when_put_then_retries_exhausted_lists_its_events():
    def throttle_sku1(_call: int, record: dict[str, Any]) -> str | None:
        return (
            "ProvisionedThroughputExceededException"
            if "SKU-0001#" in record["PartitionKey"]
            else None
        )

    fake = FakeKinesis(fail=throttle_sku1)
    sleeps: list[float] = []
    sent = events(9, keys=3)

    with pytest.raises(ProducerRetriesExhausted) as caught:
        Producer(  # type: ignore[arg-type]
            fake,
            "s",
            sleep=sleeps.append,
            rng=random.Random(2),
            max_attempts=3,
            base_backoff_s=0.1,
        ).put(sent)

    assert str(caught.value) == (
        "3 events not delivered to s: records still failing after 3 attempts"
    )
    assert [e["event_id"] for e in caught.value.undelivered] == ["e-000001", "e-000004", "e-000007"]
    # Backoff before attempts 2 and 3: full jitter under 0.1 then under 0.2.
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.1
    assert 0 <= sleeps[1] <= 0.2
    assert len(fake.shards["shardId-000000000000"]) + len(fake.shards["shardId-000000000001"]) == 6


def test_given_a_terminal_record_error_when_put_then_producer_rejected():
    fake = FakeKinesis(fail=lambda _c, r: "KMSAccessDeniedException")

    with pytest.raises(ProducerRejected) as caught:
        Producer(fake, "s", sleep=no_sleep).put(events(1, keys=1))  # type: ignore[arg-type]

    assert str(caught.value) == (
        "PutRecords rejected a record of 'SKU-0000#LOC-001': "
        "KMSAccessDeniedException: KMSAccessDeniedException for test"
    )


def test_given_unknown_stream_when_put_then_producer_rejected_with_the_code():
    fake = FakeKinesis(call_error="ResourceNotFoundException")

    with pytest.raises(ProducerRejected) as caught:
        Producer(fake, "nope", sleep=no_sleep).put(events(2, keys=2))  # type: ignore[arg-type]

    assert str(caught.value) == (
        "PutRecords: ResourceNotFoundException (400): Stream nope not found"
    )
    assert len(caught.value.undelivered) == 2


def test_given_200_byte_events_when_aggregated_then_at_most_one_record_per_five_events():
    fake = FakeKinesis()
    sent = events(3000, keys=300, pad=60)
    assert 180 <= len(json.dumps(sent[0], separators=(",", ":"))) <= 220

    report = Producer(fake, "s", aggregate=True, sleep=no_sleep).put(sent)  # type: ignore[arg-type]

    assert report.events == 3000
    assert report.kinesis_records * 5 <= report.events
    stored = stored_events(fake)
    for shard, shard_events in stored.items():
        assert all(FakeKinesis.shard_of(partition_key(e)) == shard for e in shard_events)
    assert per_key([e for s in stored.values() for e in s]) == per_key(sent)


def test_given_aggregation_and_a_failed_aggregate_when_put_then_key_order_is_kept():
    calls_failed: set[int] = set()

    def fail_first_shard0_record(call: int, record: dict[str, Any]) -> str | None:
        if call == 0 and FakeKinesis.shard_of(record["PartitionKey"]).endswith("0"):
            calls_failed.add(call)
            return "ProvisionedThroughputExceededException"
        return None

    fake = FakeKinesis(fail=fail_first_shard0_record)
    sent = events(500, keys=20)
    report = Producer(  # type: ignore[arg-type]
        fake, "s", aggregate=True, sleep=no_sleep, rng=random.Random(3)
    ).put(sent)

    assert calls_failed == {0}
    assert report.retried_records == 1
    # One aggregate per shard per call: nothing of shard 0 can overtake the failed one.
    assert all(len(c) <= 2 for c in fake.calls)
    stored = stored_events(fake)
    assert per_key([e for s in stored.values() for e in s]) == per_key(sent)
    assert sum(len(s) for s in stored.values()) == 500
