"""Acceptance 1: a hostile corpus in the real Lambda Kinesis event shape.

Every bad record is quarantined with its reason, every good neighbour lands in the raw
object, no exception escapes and ``batchItemFailures`` stays empty.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from pipeline.ingest import InMemoryInventory, InMemoryRawStore
from tests.support.ingest_factories import encode, kpl_aggregate, put, reseal, sales_event
from tests.support.kinesis_events import kinesis_lambda_record

GOOD = sales_event(0)
INF = encode(GOOD).replace(b'"unit_price":2.5', b'"unit_price":Infinity')
OUT_OF_RANGE = "event_time_out_of_range"
BAD_AGGREGATE = "kpl_invalid_aggregate"


def bad(**overrides: Any) -> bytes:
    return encode(sales_event(0, **overrides))


def without(*fields: str) -> bytes:
    event = sales_event(0)
    for field in fields:
        del event[field]
    return encode(event)


_VALID_AGG = kpl_aggregate([encode(sales_event(1)), encode(sales_event(2))])

# (kind, data bytes or ("b64", blob), expected reason)
HOSTILE: list[tuple[str, bytes | tuple[str, str], str]] = [
    ("base64 with characters outside the alphabet", ("b64", "!!!not*base64!!!"), "invalid_base64"),
    ("base64 with bad padding", ("b64", "eyJhIjox"[:-1]), "invalid_base64"),
    ("invalid UTF-8", b'\xff\xfe{"event_id":"x"}', "invalid_utf8"),
    ("UTF-8 encoded lone surrogate", b'"\xed\xa0\x80"', "invalid_utf8"),
    ("truncated JSON", encode(GOOD)[:40], "invalid_json"),
    ("empty record", b"", "invalid_json"),
    ("UTF-8 byte order mark", b"\xef\xbb\xbf" + encode(GOOD), "invalid_json"),
    ("deeply nested JSON", b"[" * 100_000, "invalid_json"),
    ("JSON array", b"[1, 2, 3]", "not_an_object"),
    ("JSON string", b'"sale"', "not_an_object"),
    ("JSON null", b"null", "not_an_object"),
    ("NaN", encode(GOOD).replace(b'"quantity":1', b'"quantity":NaN'), "invalid_json"),
    (
        "Infinity",
        encode(GOOD).replace(b'"unit_price":2.5', b'"unit_price":Infinity'),
        "invalid_json",
    ),
    (
        "-Infinity",
        encode(GOOD).replace(b'"unit_price":2.5', b'"unit_price":-Infinity'),
        "invalid_json",
    ),
    (
        "number beyond a double in an unknown field",
        encode(GOOD)[:-1] + b',"till":{"total":1e400}}',
        "non_finite_number",
    ),
    ("integer past 2^63", bad(quantity=2**63 + 1), "schema_violation"),
    ("stock past 2^64", bad(stock_on_hand=2**64), "schema_violation"),
    ("negative quantity", bad(quantity=-3), "schema_violation"),
    ("fractional quantity", bad(quantity=1.5), "schema_violation"),
    ("quantity as a string", bad(quantity="3"), "schema_violation"),
    ("quantity as a boolean", bad(quantity=True), "schema_violation"),
    ("negative price", bad(unit_price=-0.01), "schema_violation"),
    ("missing event_id", without("event_id"), "schema_violation"),
    ("missing event_time", without("event_time"), "schema_violation"),
    ("unknown event_type", bad(event_type="refund"), "schema_violation"),
    (
        "stock_count without stock",
        without("stock_on_hand").replace(b'"sale"', b'"stock_count"'),
        "schema_violation",
    ),
    ("sku_id with #", bad(sku_id="SKU#1"), "schema_violation"),
    ("location_id with /", bad(location_id="STORE/1"), "schema_violation"),
    ("sku_id ..", bad(sku_id=".."), "schema_violation"),
    ("location_id ../../etc", bad(location_id="../../etc"), "schema_violation"),
    ("event_id with a NUL", bad(event_id="evt\u0000x"), "schema_violation"),
    ("sku_id with a trailing newline", bad(sku_id="SKU-1\n"), "schema_violation"),
    ("sku_id of 65 characters", bad(sku_id="S" * 65), "schema_violation"),
    ("empty location_id", bad(location_id=""), "schema_violation"),
    (
        "duplicate key hiding a negative quantity",
        encode(GOOD)[:-1] + b',"quantity":-1}',
        "schema_violation",
    ),
    ("timestamp without offset", bad(event_time="2025-03-01T09:15:00"), "invalid_event_time"),
    ("timestamp that is not a date", bad(event_time="yesterday"), "invalid_event_time"),
    ("February 30th", bad(event_time="2025-02-30T00:00:00Z"), "invalid_event_time"),
    (
        "timestamp in year 9999",
        bad(event_time="9999-12-31T23:59:59+00:00"),
        "event_time_out_of_range",
    ),
    ("timestamp in 1999", bad(event_time="1999-12-31T23:59:59Z"), OUT_OF_RANGE),
    ("record over 1 MiB", bad(note="x" * (1024 * 1024)), "record_too_large"),
    (
        "KPL aggregate with a bad checksum",
        _VALID_AGG[:-1] + bytes([_VALID_AGG[-1] ^ 0xFF]),
        "kpl_invalid_aggregate",
    ),
    (
        "KPL aggregate with corrupt protobuf",
        reseal(b"\xff\xff\xff\xff\x0f"),
        "kpl_invalid_aggregate",
    ),
    ("KPL magic without a body", b"\xf3\x89\x9a\xc2" + b"\x00" * 8, "kpl_invalid_aggregate"),
    (
        "KPL aggregate with a partition key index out of range",
        reseal(b"\x1a\x06\x08\x05\x1a\x02{}"),
        "kpl_invalid_aggregate",
    ),
]


def _lambda_record(index: int, payload: bytes | tuple[str, str]) -> dict[str, Any]:
    if isinstance(payload, tuple):
        return kinesis_lambda_record(put(b"", index), data_b64=payload[1])
    return kinesis_lambda_record(put(payload, index))


def _corpus_event() -> tuple[dict[str, Any], list[str], list[tuple[str, str]]]:
    """Good, bad, good, bad, ...: returns the event, good event ids, (sequence, reason)."""
    records: list[dict[str, Any]] = []
    good_ids: list[str] = []
    expected: list[tuple[str, str]] = []
    index = 0
    for n, (_, payload, reason) in enumerate(HOSTILE):
        good = sales_event(100 + n, note="kept", nested={"a": [1, 2]})
        index += 1
        records.append(_lambda_record(index, encode(good)))
        good_ids.append(good["event_id"])
        index += 1
        records.append(_lambda_record(index, payload))
        expected.append((records[-1]["kinesis"]["sequenceNumber"], reason))
    index += 1
    records.append(_lambda_record(index, _VALID_AGG))
    good_ids += [sales_event(1)["event_id"], sales_event(2)["event_id"]]
    return {"Records": records}, good_ids, expected


def test_given_the_corpus_has_at_least_30_kinds_then_it_covers_the_issue_list() -> None:
    reasons = {reason for _, _, reason in HOSTILE}
    assert len(HOSTILE) >= 30
    assert reasons == {
        "invalid_base64",
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "schema_violation",
        "invalid_event_time",
        "event_time_out_of_range",
        "record_too_large",
        "kpl_invalid_aggregate",
        "non_finite_number",
    }


def test_given_a_hostile_batch_when_handled_then_bad_records_quarantine_and_good_ones_land(
    load_handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    event, good_ids, expected = _corpus_event()
    app = load_handler(RAW_BUCKET="raw-bucket", INVENTORY_TABLE="")
    store = InMemoryRawStore()
    app._adapters = lambda: (store, InMemoryInventory())

    response = app.lambda_handler(event, None)

    assert response == {"batchItemFailures": []}
    raw_keys = [k for k in store.objects if k.startswith("sales/")]
    quarantine_keys = [k for k in store.objects if k.startswith("quarantine/")]
    assert len(raw_keys) == 1 and len(quarantine_keys) == 1
    raw = [json.loads(line) for line in store.objects[raw_keys[0]].splitlines()]
    assert [e["event_id"] for e in raw] == good_ids
    assert all(e["note"] == "kept" and e["nested"] == {"a": [1, 2]} for e in raw[:-2])
    quarantined = [json.loads(line) for line in store.objects[quarantine_keys[0]].splitlines()]
    assert [(q["sequence_number"], q["reason"]) for q in quarantined] == expected
    assert "StreamLagMilliseconds" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kind", "payload", "reason"), HOSTILE, ids=[kind for kind, _, _ in HOSTILE]
)
def test_given_one_hostile_record_between_good_ones_then_only_it_is_quarantined(
    kind: str, payload: bytes | tuple[str, str], reason: str
) -> None:
    from pipeline.ingest import from_lambda_event, ingest_batch

    event = {
        "Records": [
            _lambda_record(1, encode(sales_event(1))),
            _lambda_record(2, payload),
            _lambda_record(3, encode(sales_event(3))),
        ]
    }
    store = InMemoryRawStore()

    result = ingest_batch(from_lambda_event(event), store=store)

    assert result.valid == 2
    assert dict(result.quarantined) == {reason: 1}
    (line,) = store.objects[result.quarantine_keys[0]].splitlines()
    entry = json.loads(line)
    assert (
        entry["reason"] == reason
        and entry["sequence_number"] == event["Records"][1]["kinesis"]["sequenceNumber"]
    )
    if isinstance(payload, bytes):
        assert base64.b64decode(entry["data_b64"]) == payload
    else:
        assert base64.b64decode(entry["data_b64"]) == payload[1].encode()
