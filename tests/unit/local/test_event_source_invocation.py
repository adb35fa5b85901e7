"""Invocation results, Lambda payloads, checkpoints and captured output, without AWS."""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.local.event_source import CheckpointStore, EventSourceMapping
from pipeline.local.event_source.invocation import (
    Failed,
    FunctionError,
    PartiallyFailed,
    Succeeded,
    invoke,
    read_batch_response,
)
from pipeline.local.event_source.output import lag_values
from pipeline.local.event_source.payloads import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    failure_record,
    lambda_event,
)

ARN = "arn:aws:kinesis:eu-west-1:111122223333:stream/sales"
MAPPING = EventSourceMapping(function_name="Ingest", stream_arn=ARN)
BATCH = [
    {
        "Data": f"r{i}".encode(),
        "PartitionKey": f"k{i}",
        "SequenceNumber": f"{i:056d}",
        "ApproximateArrivalTimestamp": datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC),
    }
    for i in range(3)
]
SEQ = [r["SequenceNumber"] for r in BATCH]


@pytest.mark.parametrize(
    ("response", "result"),
    [
        ({}, Succeeded()),
        ({"batchItemFailures": []}, Succeeded()),
        (
            {"batchItemFailures": [{"itemIdentifier": SEQ[2]}, {"itemIdentifier": SEQ[1]}]},
            PartiallyFailed(1),
        ),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, Failed(FunctionError.INVALID_RESPONSE)),
        ({"batchItemFailures": [{"itemIdentifier": "9"}]}, Failed(FunctionError.INVALID_RESPONSE)),
        ({"batchItemFailures": ["not an item"]}, Failed(FunctionError.INVALID_RESPONSE)),
        ("not a dict", Failed(FunctionError.INVALID_RESPONSE)),
    ],
)
def test_given_a_partial_batch_response_when_read_then_lambda_s_result(response, result):
    assert read_batch_response(response, BATCH) == result


def invoke_with(handler: Any, *, report: bool = True) -> Any:
    event = lambda_event(MAPPING, "shardId-1", BATCH)
    return invoke(
        handler,
        event,
        BATCH,
        shard_id="shardId-1",
        function_name="Ingest",
        report_batch_item_failures=report,
    )


def test_given_a_handler_that_raises_when_invoked_then_unhandled_with_its_traceback():
    def boom(event: dict[str, Any], context: Any) -> None:
        print("before")
        raise ValueError("boom")

    invocation = invoke_with(boom)

    assert invocation.result == Failed(FunctionError.UNHANDLED)
    assert invocation.traceback is not None and "ValueError: boom" in invocation.traceback
    assert invocation.output == "before\n"
    assert invocation.records == 3


def test_given_no_item_failure_reporting_when_a_response_names_records_then_it_is_ignored():
    def fail_one(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": SEQ[0]}]}

    assert invoke_with(fail_one, report=False).result == Succeeded()
    assert invoke_with(fail_one, report=True).result == PartiallyFailed(0)


def test_given_emf_lines_when_invoked_then_their_lags_are_the_invocation_s(capsys):
    def emit(event: dict[str, Any], context: Any) -> None:
        print(json.dumps({"_aws": {}, "StreamLagMilliseconds": [1, 2.5]}))
        print(json.dumps({"_aws": {}, "StreamLagMilliseconds": 7}))

    stdout = sys.stdout
    invocation = invoke_with(emit)

    assert invocation.lags_ms == (1.0, 2.5, 7.0)
    assert sys.stdout is stdout
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "line",
    [
        "StreamLagMilliseconds 5",
        '{"StreamLagMilliseconds": 5}',  # not EMF: no _aws
        '{"_aws": {}, "StreamLagMilliseconds": "5"}',
        '{"_aws": {}, "StreamLagMilliseconds": 5',
    ],
)
def test_given_lines_that_are_not_emf_lag_values_when_read_then_none(line):
    assert lag_values(line) == []


def test_given_a_batch_when_shaped_then_lambda_s_kinesis_event():
    [first, *_] = lambda_event(MAPPING, "shardId-1", BATCH)["Records"]

    assert first == {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "k0",
            "sequenceNumber": SEQ[0],
            "data": base64.b64encode(b"r0").decode(),
            "approximateArrivalTimestamp": BATCH[0]["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-1:{SEQ[0]}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::111122223333:role/Ingest-role",
        "awsRegion": "eu-west-1",
        "eventSourceARN": ARN,
    }


@pytest.mark.parametrize(
    ("error", "function_error"),
    [(FunctionError.UNHANDLED, "Unhandled"), (None, "PartialBatchFailure")],
)
def test_given_exhausted_retries_when_reported_then_the_response_context_names_the_error(
    error, function_error
):
    body = failure_record(
        MAPPING,
        "shardId-1",
        BATCH,
        condition=RETRY_ATTEMPTS_EXHAUSTED,
        attempts=3,
        function_error=error,
        now_epoch=0.0,
    )

    assert json.loads(json.dumps(body))["responseContext"]["functionError"] == function_error
    assert body["requestContext"]["functionArn"] == (
        "arn:aws:lambda:eu-west-1:111122223333:function:Ingest"
    )
    assert body["KinesisBatchInfo"]["approximateArrivalOfLastRecord"] == (
        "2026-01-01T00:00:02.000Z"
    )


def test_given_expired_records_when_reported_then_no_response_context():
    body = failure_record(
        MAPPING,
        "shardId-1",
        BATCH[:1],
        condition=RECORD_AGE_EXCEEDED,
        attempts=0,
        function_error=None,
        now_epoch=0.0,
    )

    assert "responseContext" not in body
    assert body["timestamp"] == "1970-01-01T00:00:00.000Z"
    assert body["KinesisBatchInfo"]["batchSize"] == 1


def test_given_a_checkpoint_file_when_reopened_then_positions_resume_for_its_stream_only(
    tmp_path,
):
    path = tmp_path / "state" / "checkpoints.json"
    store = CheckpointStore(ARN, path)
    store.save("shardId-0", "1")
    store.save("shardId-0", "5")
    store.save("shardId-1", "2")

    assert CheckpointStore(ARN, path).positions() == {"shardId-0": "5", "shardId-1": "2"}
    assert CheckpointStore(ARN.replace("sales", "other"), path).positions() == {}
    assert CheckpointStore(ARN).get("shardId-0") is None  # no file: memory only
