"""Failed-batch documents: Lambda's S3 document read back, and replay's order and idempotence.

The documents are written by the local event source mapping's own writer, so these tests
also hold the writer and the reader to one shape. The bucket is in memory; Kinesis is the
fake with PutRecords' limits.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_kinesis_agg.aggregator import AggRecord
from botocore.exceptions import ClientError

from pipeline.errors import InvalidInputError, NotFoundError
from pipeline.local.event_source.invocation import FunctionError
from pipeline.local.event_source.mapping import EventSourceMapping
from pipeline.local.event_source.payloads import (
    RETRY_ATTEMPTS_EXHAUSTED,
    S3_FAILURE_PREFIX,
    failure_record,
    s3_failure_document,
    s3_failure_key,
)
from pipeline.produce import Producer
from pipeline.produce.failed_batches import (
    FAILED_BATCH_PREFIX,
    REPLAYED_TAG,
    FailedBatchBucket,
    parse_failed_batch,
    replay_failed_batches,
)
from tests.support.fake_kinesis import FakeKinesis

STREAM = "sales"
MAPPING = EventSourceMapping(
    function_name="IngestStreamFunction",
    stream_arn=f"arn:aws:kinesis:us-east-1:123456789012:stream/{STREAM}",
)
SHARD = "shardId-000000000000"
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
BUCKET = "failed"


def kinesis_records(first_sequence: int, items: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """Records as GetRecords returns them, with consecutive sequence numbers."""
    return [
        {
            "PartitionKey": key,
            "Data": data,
            "SequenceNumber": str(first_sequence + i),
            "ApproximateArrivalTimestamp": WHEN,
        }
        for i, (key, data) in enumerate(items)
    ]


def document(first_sequence: int, items: list[tuple[str, bytes]]) -> bytes:
    """What the local mapping writes for a batch given up after its retries."""
    body = s3_failure_document(
        MAPPING,
        SHARD,
        kinesis_records(first_sequence, items),
        condition=RETRY_ATTEMPTS_EXHAUSTED,
        attempts=6,
        function_error=FunctionError.UNHANDLED,
        now_epoch=WHEN.timestamp(),
    )
    return json.dumps(body).encode()


class MemoryS3:
    """The S3 calls the failed-batch bucket makes, over a dict of objects and their tags."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.tag_sets: dict[str, list[dict[str, str]]] = {}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        objects = self.objects

        class Pages:
            def paginate(self, *, Bucket: str, Prefix: str) -> list[dict[str, Any]]:  # noqa: N803
                keys = [k for k in sorted(objects) if k.startswith(Prefix)]
                return [{"Contents": [{"Key": k} for k in keys]}]

        return Pages()

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        if Key not in self.objects:
            error: Any = {"Error": {"Code": "NoSuchKey", "Message": "The key does not exist."}}
            raise ClientError(error, "GetObject")
        return {"Body": io.BytesIO(self.objects[Key])}

    def get_object_tagging(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        return {"TagSet": list(self.tag_sets.get(Key, []))}

    def put_object_tagging(self, *, Bucket: str, Key: str, Tagging: dict[str, Any]) -> None:  # noqa: N803
        self.tag_sets[Key] = list(Tagging["TagSet"])


def test_given_lambdas_s3_document_when_parsed_then_records_come_back_in_order_unchanged():
    items = [("SKU-1#L1", b'{"event_id":"a"}'), ("SKU-2#L1", b"\x00\xff binary")]
    key = s3_failure_key(MAPPING, SHARD, WHEN.timestamp())

    batch = parse_failed_batch(key, document(100, items), bucket=BUCKET)

    assert key.startswith(FAILED_BATCH_PREFIX) and FAILED_BATCH_PREFIX == S3_FAILURE_PREFIX
    assert (batch.key, batch.stream_name, batch.shard_id, batch.start_sequence_number) == (
        key,
        STREAM,
        SHARD,
        "100",
    )
    assert batch.condition == "RetryAttemptsExhausted"
    assert batch.records == tuple(items)


def test_given_a_document_when_written_then_it_has_lambdas_fields_and_the_event_as_a_string():
    records = kinesis_records(7, [("K#L", b"x")])

    body = s3_failure_document(
        MAPPING,
        SHARD,
        records,
        condition=RETRY_ATTEMPTS_EXHAUSTED,
        attempts=6,
        function_error=FunctionError.UNHANDLED,
        now_epoch=WHEN.timestamp(),
    )

    # Everything an SQS or SNS destination gets, plus the event: the documented S3 shape.
    metadata = failure_record(
        MAPPING,
        SHARD,
        records,
        condition=RETRY_ATTEMPTS_EXHAUSTED,
        attempts=6,
        function_error=FunctionError.UNHANDLED,
        now_epoch=WHEN.timestamp(),
    )
    assert (
        set(body)
        == {*metadata, "payload"}
        == {
            "requestContext",
            "responseContext",
            "version",
            "timestamp",
            "KinesisBatchInfo",
            "payload",
        }
    )
    assert body["KinesisBatchInfo"] == metadata["KinesisBatchInfo"]
    assert json.loads(body["payload"]) == {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "K#L",
                    "sequenceNumber": "7",
                    "data": "eA==",
                    "approximateArrivalTimestamp": WHEN.timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{SHARD}:7",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/IngestStreamFunction-role",
                "awsRegion": "us-east-1",
                "eventSourceARN": MAPPING.stream_arn,
            }
        ]
    }


def sqs_record() -> bytes:
    body = failure_record(
        MAPPING,
        SHARD,
        kinesis_records(1, [("K#L", b"x")]),
        condition=RETRY_ATTEMPTS_EXHAUSTED,
        attempts=1,
        function_error=None,
        now_epoch=WHEN.timestamp(),
    )
    return json.dumps(body).encode()


def with_payload(payload: Any, batch_size: int = 1) -> bytes:
    body = json.loads(sqs_record())
    body["payload"] = payload
    body["KinesisBatchInfo"]["batchSize"] = batch_size
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON (Expecting value: line 1 column 1 (char 0))"),
        (b"[1, 2]", "not a JSON object"),
        (b"{}", "no KinesisBatchInfo with streamArn, shardId and sequences"),
        (sqs_record(), "no payload (an SQS or SNS record holds none)"),
        (
            with_payload('{"Records": [{"kinesis": {"partitionKey": "K#L", "data": "!!"}}]}'),
            "payload is not a Kinesis event (Error: Only base64 data is allowed)",
        ),
        (
            with_payload(json.dumps({"Records": []})),
            "payload holds no records with partition keys",
        ),
        (
            with_payload('{"Records": [{"kinesis": {"partitionKey": "K#L", "data": "eA=="}}]}', 2),
            "payload holds 1 records, batchSize says 2",
        ),
    ],
    ids=["not-json", "a-list", "no-batch-info", "sqs-record", "bad-base64", "empty", "short"],
)
def test_given_something_else_when_parsed_then_invalid_input_naming_the_object(body, why):
    with pytest.raises(InvalidInputError) as caught:
        parse_failed_batch("aws/lambda/x", body, bucket=BUCKET)

    assert str(caught.value) == f"s3://{BUCKET}/aws/lambda/x is not a failed-batch document: {why}"


def stored(fake: FakeKinesis) -> list[tuple[str, bytes]]:
    return [record for shard in fake.shards.values() for record in shard]


def test_given_batches_listed_out_of_order_when_replayed_then_they_go_by_sequence_number():
    s3, kinesis = MemoryS3(), FakeKinesis()
    # The later batch has the smaller key: key order is not the shard's order.
    s3.objects["aws/lambda/u/s/2026/03/04/a"] = document(200, [("K#L", b"3"), ("K#L", b"4")])
    s3.objects["aws/lambda/u/s/2026/03/04/b"] = document(100, [("K#L", b"1"), ("K#L", b"2")])
    s3.objects["replayed-elsewhere/c"] = b"not listed: outside aws/lambda/"

    report = replay_failed_batches(
        FailedBatchBucket(s3, BUCKET), Producer(kinesis, STREAM), now=lambda: WHEN
    )

    assert stored(kinesis) == [("K#L", b"1"), ("K#L", b"2"), ("K#L", b"3"), ("K#L", b"4")]
    assert report.replayed == ["aws/lambda/u/s/2026/03/04/b", "aws/lambda/u/s/2026/03/04/a"]
    assert report.records == 4
    assert s3.tag_sets["aws/lambda/u/s/2026/03/04/a"] == [
        {"Key": REPLAYED_TAG, "Value": "2026-03-04T05:06:07+00:00"}
    ]


def test_given_replayed_batches_when_replayed_again_then_nothing_is_put_twice():
    s3, kinesis = MemoryS3(), FakeKinesis()
    s3.objects["aws/lambda/u/s/1"] = document(1, [("K#L", b"1")])
    bucket, producer = FailedBatchBucket(s3, BUCKET), Producer(kinesis, STREAM)
    replay_failed_batches(bucket, producer, now=lambda: WHEN)
    s3.objects["aws/lambda/u/s/2"] = document(2, [("K#L", b"2")])

    again = replay_failed_batches(bucket, producer, now=lambda: WHEN)

    assert stored(kinesis) == [("K#L", b"1"), ("K#L", b"2")]
    assert (again.replayed, again.already_replayed, again.records) == (
        ["aws/lambda/u/s/2"],
        ["aws/lambda/u/s/1"],
        1,
    )


def test_given_partial_put_failures_when_replayed_then_only_failed_records_go_again_in_key_order():
    s3 = MemoryS3()
    items = [(f"K{i % 2}#L", str(i).encode()) for i in range(6)]
    s3.objects["aws/lambda/u/s/1"] = document(1, items)
    # The first call fails the head of key K0; K1's records go on meanwhile.
    kinesis = FakeKinesis(
        fail=lambda call, record: (
            "ProvisionedThroughputExceededException"
            if call == 0 and record["PartitionKey"] == "K0#L"
            else None
        )
    )
    producer = Producer(kinesis, STREAM, sleep=lambda _s: None)

    replay_failed_batches(FailedBatchBucket(s3, BUCKET), producer, now=lambda: WHEN)

    records = stored(kinesis)
    assert sorted(records) == sorted(items)  # each once: the accepted ones were not resent
    for key in ("K0#L", "K1#L"):
        assert [d for k, d in records if k == key] == [d for k, d in items if k == key]


def test_given_a_kpl_aggregate_when_replayed_then_it_goes_back_byte_for_byte():
    agg = AggRecord()
    agg.add_user_record("A#L", b'{"event_id":"1"}')
    agg.add_user_record("B#L", b'{"event_id":"2"}')
    key, _, data = agg.get_contents()
    s3, kinesis = MemoryS3(), FakeKinesis()
    s3.objects["aws/lambda/u/s/1"] = document(1, [(key, data)])

    replay_failed_batches(FailedBatchBucket(s3, BUCKET), Producer(kinesis, STREAM))

    assert stored(kinesis) == [(key, data)]


def test_given_a_batch_of_another_stream_when_replayed_then_refused_and_nothing_put():
    s3, kinesis = MemoryS3(), FakeKinesis()
    s3.objects["aws/lambda/u/s/1"] = document(1, [("K#L", b"1")])

    with pytest.raises(InvalidInputError) as caught:
        replay_failed_batches(FailedBatchBucket(s3, BUCKET), Producer(kinesis, "other"))

    assert str(caught.value) == (
        f"s3://{BUCKET}/aws/lambda/u/s/1 is a batch of stream {STREAM}, not of other"
    )
    assert stored(kinesis) == []
    assert s3.tag_sets == {}


def test_given_an_unknown_key_when_replayed_then_not_found():
    with pytest.raises(NotFoundError) as caught:
        replay_failed_batches(
            FailedBatchBucket(MemoryS3(), BUCKET), Producer(FakeKinesis(), STREAM), key="nope"
        )

    assert str(caught.value) == f"no failed-batch object s3://{BUCKET}/nope"
