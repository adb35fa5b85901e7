"""What the mapping sends: the Lambda Kinesis event, and the on-failure destination's record.

Records are as Kinesis ``GetRecords`` returns them (``Data`` bytes, ``SequenceNumber``,
``PartitionKey``, ``ApproximateArrivalTimestamp``); the shapes are those of the AWS
documentation for Kinesis event source mappings ("Retain discarded batch records for a
Kinesis Data Streams event source in Lambda"): the invocation record, which for an S3
destination also carries the whole invocation event as an escaped JSON string under
``payload``, in an object named
``aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>``.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.local.event_source.invocation import FunctionError
    from pipeline.local.event_source.mapping import EventSourceMapping

#: A record as Kinesis ``GetRecords`` returns it.
Record = dict[str, Any]

#: Lambda's synchronous invocation payload limit; a batch never exceeds it.
MAX_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
#: Our estimate of the JSON envelope of one record in the event, beyond its data.
_RECORD_OVERHEAD: Final = 400

#: Where Lambda writes in an S3 on-failure destination.
S3_FAILURE_PREFIX: Final = "aws/lambda/"

RECORD_AGE_EXCEEDED: Final = "RecordAgeExceeded"
RETRY_ATTEMPTS_EXHAUSTED: Final = "RetryAttemptsExhausted"


def payload_bytes(record: Record) -> int:
    """What ``record`` adds to the event: its data base64-encoded plus the envelope."""
    return (len(record["Data"]) * 4) // 3 + _RECORD_OVERHEAD


def lambda_event(
    mapping: EventSourceMapping, shard_id: str, batch: Sequence[Record]
) -> dict[str, Any]:
    """The event Lambda hands the function for ``batch``, read from ``shard_id``."""
    return {"Records": [_lambda_record(mapping, shard_id, record) for record in batch]}


def _lambda_record(mapping: EventSourceMapping, shard_id: str, record: Record) -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": record["SequenceNumber"],
            "data": base64.b64encode(record["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": arrival_epoch(record),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{record['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{mapping.account}:role/{mapping.function_name}-role",
        "awsRegion": mapping.region,
        "eventSourceARN": mapping.stream_arn,
    }


def failure_record(
    mapping: EventSourceMapping,
    shard_id: str,
    batch: Sequence[Record],
    *,
    condition: str,
    attempts: int,
    function_error: FunctionError | None,
    now_epoch: float,
) -> dict[str, Any]:
    """The JSON Lambda sends to an on-failure destination for a skipped batch.

    ``condition`` is :data:`RECORD_AGE_EXCEEDED` or :data:`RETRY_ATTEMPTS_EXHAUSTED`;
    ``function_error`` is that of the last invocation (None after a partial failure).
    """
    body: dict[str, Any] = {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": mapping.function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "version": "1.0",
        "timestamp": _iso(now_epoch),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": batch[0]["SequenceNumber"],
            "endSequenceNumber": batch[-1]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _iso(arrival_epoch(batch[0])),
            "approximateArrivalOfLastRecord": _iso(arrival_epoch(batch[-1])),
            "batchSize": len(batch),
            "streamArn": mapping.stream_arn,
        },
    }
    if condition == RETRY_ATTEMPTS_EXHAUSTED:
        body["responseContext"] = {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": function_error.value if function_error else "PartialBatchFailure",
        }
    return body


def s3_failure_document(
    mapping: EventSourceMapping,
    shard_id: str,
    batch: Sequence[Record],
    *,
    condition: str,
    attempts: int,
    function_error: FunctionError | None,
    now_epoch: float,
) -> dict[str, Any]:
    """What Lambda writes to an S3 on-failure destination: the invocation record and event.

    ``payload`` is the event the function was given for ``batch``, as a JSON string (the
    documented shape), so the records survive the stream's retention.
    """
    body = failure_record(
        mapping,
        shard_id,
        batch,
        condition=condition,
        attempts=attempts,
        function_error=function_error,
        now_epoch=now_epoch,
    )
    body["payload"] = json.dumps(lambda_event(mapping, shard_id, batch))
    return body


def s3_failure_key(mapping: EventSourceMapping, shard_id: str, now_epoch: float) -> str:
    """The documented key of an S3 destination's object, in UTC, with a random suffix."""
    moment = datetime.fromtimestamp(now_epoch, UTC)
    return (
        f"{S3_FAILURE_PREFIX}{mapping.uuid}/{shard_id}/{moment:%Y/%m/%d}/"
        f"{moment:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
    )


def arrival_epoch(record: Record) -> float:
    """When ``record`` reached Kinesis, in epoch seconds (boto3 parses it to a datetime)."""
    arrival = record["ApproximateArrivalTimestamp"]
    if isinstance(arrival, datetime):
        return arrival.timestamp()
    return float(arrival)


def _iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
