"""Build the Lambda Kinesis event shape (as in the AWS documentation) from plain records.

For tests and benchmarks: what Lambda's event source mapping would hand the function for
records read from one shard, without a stream (the local poller builds the same shape from
the records it reads).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.local.template import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_SHARD_ID = "shardId-000000000000"
DEFAULT_STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/fmcg-sales"


@dataclass(frozen=True, slots=True)
class KinesisPut:
    """One record as it sits in a shard."""

    data: bytes
    partition_key: str
    sequence_number: str
    arrival_epoch_s: float


def sequence_number(index: int) -> str:
    """A Kinesis-like sequence number (56 digits, ordered like the integer ``index``)."""
    return f"4954{index:052d}"


def kinesis_lambda_record(
    put: KinesisPut,
    *,
    shard_id: str = DEFAULT_SHARD_ID,
    stream_arn: str = DEFAULT_STREAM_ARN,
    data_b64: str | None = None,
) -> dict[str, Any]:
    """One entry of ``event["Records"]``; ``data_b64`` overrides the encoded blob."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": put.partition_key,
            "sequenceNumber": put.sequence_number,
            "data": data_b64 if data_b64 is not None else base64.b64encode(put.data).decode(),
            "approximateArrivalTimestamp": put.arrival_epoch_s,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{put.sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT_ID}:role/lambda-role",
        "awsRegion": REGION,
        "eventSourceARN": stream_arn,
    }


def kinesis_lambda_event(
    puts: Iterable[KinesisPut], *, shard_id: str = DEFAULT_SHARD_ID
) -> dict[str, Any]:
    """A whole Lambda Kinesis event for ``puts`` read from ``shard_id``."""
    return {"Records": [kinesis_lambda_record(p, shard_id=shard_id) for p in puts]}
