"""ingest_batch: keys, retries, store failures, KPL user records, lag."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.errors import TerminalError, TransientError
from pipeline.ingest import InMemoryRawStore, StreamRecord, from_lambda_event, ingest_batch
from tests.support.ingest_factories import ARRIVAL, encode, kpl_aggregate, put, sales_event
from tests.support.kinesis_events import kinesis_lambda_event

NOW = datetime(2025, 3, 1, 9, 17, 15, tzinfo=UTC)


class FailingStore(InMemoryRawStore):
    """Fails the first ``failures`` puts with ``error``, then behaves."""

    def __init__(self, failures: int, error: Exception) -> None:
        super().__init__()
        self.failures = failures
        self.error = error
        self.attempts = 0

    def put(self, key: str, body: bytes) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        super().put(key, body)


def _event(*blobs: bytes) -> dict[str, object]:
    return kinesis_lambda_event(put(b, i + 1) for i, b in enumerate(blobs))


def test_given_a_batch_then_the_raw_key_is_shard_first_and_last_sequence_by_arrival_date() -> None:
    event = _event(encode(sales_event(1)), b"junk", encode(sales_event(2)))
    result = ingest_batch(from_lambda_event(event), store=InMemoryRawStore(), now=NOW)

    seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]  # type: ignore[index]
    assert result.raw_key == f"sales/2025/03/01/shardId-000000000000-{seqs[0]}-{seqs[2]}.json"
    assert result.quarantine_keys == (
        f"quarantine/2025/03/01/shardId-000000000000-{seqs[0]}-{seqs[2]}.json",
    )


def test_given_a_retried_batch_then_it_overwrites_the_same_objects() -> None:
    store = InMemoryRawStore()
    event = _event(encode(sales_event(1)), b"junk")
    first = ingest_batch(from_lambda_event(event), store=store, now=NOW)
    snapshot = dict(store.objects)

    second = ingest_batch(from_lambda_event(event), store=store, now=NOW)

    assert second.raw_keys == first.raw_keys and store.objects == snapshot


@pytest.mark.parametrize(
    "error", [TransientError("put: SlowDown (503)"), TerminalError("put: AccessDenied (403)")]
)
def test_given_the_store_fails_when_handled_then_every_record_is_reported_failed(
    load_handler: object, error: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    app = load_handler(RAW_BUCKET="raw-bucket")  # type: ignore[operator]
    app._adapters = lambda: (FailingStore(1, error), None)
    event = _event(encode(sales_event(1)), b"junk", encode(sales_event(2)))

    response = app.lambda_handler(event, None)

    seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]  # type: ignore[index]
    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in seqs]}
    assert '"IngestFailedBatches":' in capsys.readouterr().out


def test_given_the_quarantine_put_fails_then_the_error_propagates_and_nothing_is_counted() -> None:
    store = FailingStore(2, TransientError("put: InternalError (500)"))
    store.attempts = 1  # the raw put succeeds, the quarantine put fails
    with pytest.raises(TransientError, match=r"put: InternalError \(500\)"):
        ingest_batch(from_lambda_event(_event(encode(sales_event(1)), b"x")), store=store)


def test_given_a_kpl_aggregate_then_each_user_record_is_validated_on_its_own() -> None:
    store = InMemoryRawStore()
    aggregate = kpl_aggregate([encode(sales_event(1)), b"{broken", encode(sales_event(2))])

    result = ingest_batch(from_lambda_event(_event(aggregate)), store=store, now=NOW)

    assert (result.records, result.events, result.valid) == (1, 3, 2)
    (line,) = store.objects[result.quarantine_keys[0]].splitlines()
    assert json.loads(line)["sub_sequence"] == 1
    assert json.loads(line)["partition_key"] == "pk-1"
    raw = store.objects[result.raw_keys[0]].splitlines()
    assert [json.loads(x)["event_id"] for x in raw] == ["evt-00001", "evt-00002"]


def test_given_a_batch_then_lag_is_now_minus_arrival_per_valid_event() -> None:
    event = _event(encode(sales_event(1)), b"junk", encode(sales_event(2)))
    now = datetime.fromtimestamp(ARRIVAL, UTC) + timedelta(seconds=2)

    result = ingest_batch(from_lambda_event(event), store=InMemoryRawStore(), now=now)

    assert result.lag_ms == pytest.approx((1999.0, 1997.0))


def test_given_a_pretty_printed_event_then_the_raw_line_is_one_compact_line() -> None:
    store = InMemoryRawStore()
    pretty = json.dumps(sales_event(1, extra={"k": "v"}), indent=2).encode()

    result = ingest_batch(from_lambda_event(_event(pretty)), store=store, now=NOW)

    (line,) = store.objects[result.raw_keys[0]].splitlines()
    assert json.loads(line) == json.loads(pretty)


def test_given_an_empty_batch_then_nothing_is_written() -> None:
    store = InMemoryRawStore()
    result = ingest_batch([], store=store)
    assert (result.records, result.raw_keys, store.objects) == (0, (), {})


def test_given_lambda_records_when_decoded_then_they_are_real_frozen_stream_records() -> None:
    record = from_lambda_event(_event(b"{}"))[0]
    assert type(record) is StreamRecord
    assert record == StreamRecord(
        record.shard_id, record.sequence_number, record.approximate_arrival, b"{}",
        record.partition_key,
    )  # fmt: skip
    assert (record.sub_sequence, record.defect, record.defect_detail) == (None, None, "")
    with pytest.raises(FrozenInstanceError):
        record.data = b"[]"  # type: ignore[misc]


def test_given_a_valid_event_with_non_ascii_when_stored_then_the_raw_line_stays_ascii() -> None:
    event = {**sales_event(1), "note": "café ☕"}
    store = InMemoryRawStore()
    ingest_batch(from_lambda_event(_event(encode(event))), store=store, now=NOW)
    (raw,) = store.objects.values()
    assert raw.isascii()
    assert json.loads(raw) == event
