"""KPL aggregates a producer can forge: a cap on user records, one quarantine line for a
mostly invalid aggregate, and every user record delivered or inside that line."""

from __future__ import annotations

import base64
import json
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from pipeline.contracts import MAX_RECORD_BYTES, parse_event
from pipeline.ingest import IngestResult, InMemoryRawStore, from_lambda_event, ingest_batch
from pipeline.ingest.decode import MAX_USER_RECORDS, user_records
from pipeline.produce.replay import parse_quarantine, plan_replay
from tests.support.ingest_factories import encode, forged_aggregate, kpl_aggregate, put, sales_event
from tests.support.kinesis_events import kinesis_lambda_event

NOW = datetime(2025, 3, 1, 9, 17, 15, tzinfo=UTC)
#: The smallest event the contract accepts (one-character ids, no optional field).
SMALLEST = (
    b'{"event_id":"a","event_type":"sale","sku_id":"a","location_id":"a","quantity":0,'
    b'"event_time":"2025-03-01T09:00:00Z"}'
)


def _ingest(*blobs: bytes) -> tuple[InMemoryRawStore, IngestResult]:
    store = InMemoryRawStore()
    event = kinesis_lambda_event(put(b, i + 1) for i, b in enumerate(blobs))
    return store, ingest_batch(from_lambda_event(event), store=store, now=NOW)


def _lines(store: InMemoryRawStore, prefix: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for key, body in store.objects.items()
        if key.startswith(prefix)
        for line in body.splitlines()
    ]


def test_given_the_smallest_valid_event_then_a_full_aggregate_of_them_is_under_the_cap() -> None:
    parse_event(SMALLEST, now=NOW)  # valid
    one, two = forged_aggregate([SMALLEST]), forged_aggregate([SMALLEST, SMALLEST])
    per_record = len(two) - len(one)
    assert per_record == 122
    assert MAX_RECORD_BYTES // per_record == 8594 < MAX_USER_RECORDS


def test_given_an_aggregate_of_170000_empty_records_then_one_line_of_its_size_is_quarantined() -> (
    None
):
    bomb = forged_aggregate([b""] * 170_000)
    assert len(bomb) < MAX_RECORD_BYTES
    good = encode(sales_event(1))

    tracemalloc.start()
    try:
        store, result = _ingest(good, bomb, encode(sales_event(2)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    (key,) = [k for k in store.objects if k.startswith("quarantine/")]
    # The aggregate once, base64 (4/3) plus one line's fields; it was 42 MB.
    assert len(store.objects[key]) < len(bomb) * 4 // 3 + 500
    assert peak < 12 * 1024 * 1024
    (entry,) = _lines(store, "quarantine/")
    assert entry["reason"] == "kpl_too_many_records"
    assert entry["detail"] == "170000 user records > 10000 per aggregate"
    assert entry["user_records"] == 170_000
    assert base64.b64decode(entry["data_b64"]) == bomb
    assert [e["event_id"] for e in _lines(store, "sales/")] == ["evt-00001", "evt-00002"]
    assert result.quarantined == {"kpl_too_many_records": 1}


def test_given_an_aggregate_at_the_cap_then_it_is_read_and_past_it_it_is_not() -> None:
    at_cap = forged_aggregate([b""] * MAX_USER_RECORDS)
    past = forged_aggregate([b""] * (MAX_USER_RECORDS + 1))

    store, _ = _ingest(at_cap, past)

    assert [(e["reason"], e["user_records"]) for e in _lines(store, "quarantine/")] == [
        ("kpl_mostly_invalid", MAX_USER_RECORDS),
        ("kpl_too_many_records", MAX_USER_RECORDS + 1),
    ]


def test_given_a_mostly_invalid_aggregate_then_it_is_one_line_holding_every_user_record() -> None:
    valid = [encode(sales_event(n)) for n in range(3)]
    invalid = [b"", b"{", b"[1]", b"", b"", b"", encode(sales_event(9, quantity=-1))]
    aggregate = kpl_aggregate([valid[0], *invalid[:4], valid[1], *invalid[4:], valid[2]])

    store, result = _ingest(aggregate)

    (entry,) = _lines(store, "quarantine/")
    assert entry["reason"] == "kpl_mostly_invalid"
    assert entry["detail"] == (
        "7 of 10 user records invalid (invalid_json 5, not_an_object 1, schema_violation 1); "
        "first, user record 1: invalid_json: Expecting value: line 1 column 1 (char 0)"
    )
    assert entry["user_records"] == 10 and entry["sub_sequence"] is None
    assert base64.b64decode(entry["data_b64"]) == aggregate
    assert _lines(store, "sales/") == []
    assert (result.events, result.valid) == (10, 0)
    # Nothing lost: replaying the line yields the three valid events, the rest stay.
    plan = plan_replay(parse_quarantine(next(iter(store.objects.values()))))
    assert [e["event_id"] for e in plan.events] == ["evt-00000", "evt-00001", "evt-00002"]
    assert [where.rsplit("/", 1)[1] for where, _ in plan.still_invalid] == [
        "1", "2", "3", "4", "6", "7", "8",
    ]  # fmt: skip


def test_given_a_mostly_valid_aggregate_then_valid_ones_land_and_each_invalid_one_is_a_line() -> (
    None
):
    blobs = [encode(sales_event(n)) for n in range(7)]
    blobs[2:2] = [b"", b"{"]
    blobs.append(b"[1]")  # 3 invalid of 10
    store, result = _ingest(kpl_aggregate(blobs))

    assert [e["event_id"] for e in _lines(store, "sales/")] == [f"evt-0000{n}" for n in range(7)]
    entries = _lines(store, "quarantine/")
    assert [(e["reason"], e["sub_sequence"]) for e in entries] == [
        ("invalid_json", 2),
        ("invalid_json", 3),
        ("not_an_object", 9),
    ]
    assert all("user_records" not in e for e in entries)
    assert (result.events, result.valid) == (10, 7)


def test_given_an_aggregate_exactly_half_invalid_then_it_is_still_split() -> None:
    store, _ = _ingest(kpl_aggregate([encode(sales_event(1)), b""]))

    assert [e["event_id"] for e in _lines(store, "sales/")] == ["evt-00001"]
    assert [e["sub_sequence"] for e in _lines(store, "quarantine/")] == [1]


def test_given_an_oversized_aggregate_when_replayed_then_the_cap_does_not_apply() -> None:
    bomb = forged_aggregate([encode(sales_event(5))] + [b""] * MAX_USER_RECORDS)
    store, _ = _ingest(bomb)

    plan = plan_replay(parse_quarantine(next(iter(store.objects.values()))))

    assert [e["event_id"] for e in plan.events] == ["evt-00005"]
    assert len(plan.still_invalid) == MAX_USER_RECORDS
    assert len(user_records(bomb, max_user_records=None)) == MAX_USER_RECORDS + 1
