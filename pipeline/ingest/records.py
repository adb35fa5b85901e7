"""Kinesis records as the ingest core sees them, built from the real Lambda event shape.

The Lambda event (``event["Records"][i]["kinesis"]``) carries the data blob base64-encoded,
the shard in ``eventID`` (``"shardId-000000000000:<sequence number>"``) and the arrival
time as epoch seconds. A blob that is not valid base64 cannot be decoded, but it must not
fail the batch either: it becomes a record with a ``defect`` that the core quarantines.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamEvent,
    KinesisStreamRecord,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One Kinesis record (or one user record of a KPL aggregate when ``sub_sequence`` is set).

    ``defect`` is the reason code of a record that could not even be decoded (its ``data``
    then holds the blob exactly as received); the core quarantines such records.
    """

    shard_id: str
    sequence_number: str
    approximate_arrival: datetime
    data: bytes
    partition_key: str
    sub_sequence: int | None = None
    defect: str | None = None
    defect_detail: str = ""


def _shard_id(event_id: str) -> str:
    # eventID is "<shardId>:<sequenceNumber>"; the shard id itself never contains ":".
    return event_id.partition(":")[0]


def _arrival(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def from_lambda_record(record: KinesisStreamRecord) -> StreamRecord:
    """Build a :class:`StreamRecord` from one record of a Lambda Kinesis event."""
    payload = record.kinesis
    blob = payload.data
    shard_id = _shard_id(record.event_id)
    sequence_number = payload.sequence_number
    arrival = _arrival(payload.approximate_arrival_timestamp)
    partition_key = payload.partition_key
    try:
        # strict_mode rejects characters outside the alphabet instead of skipping them,
        # which b64decode's default does silently.
        data = binascii.a2b_base64(blob, strict_mode=True)
    except (binascii.Error, ValueError, TypeError) as e:
        raw = blob.encode("utf-8", "surrogatepass") if isinstance(blob, str) else b""
        return StreamRecord(
            shard_id,
            sequence_number,
            arrival,
            raw,
            partition_key,
            defect="invalid_base64",
            defect_detail=str(e)[:200],
        )
    return StreamRecord(shard_id, sequence_number, arrival, data, partition_key)


def from_lambda_event(event: Mapping[str, Any]) -> list[StreamRecord]:
    """All records of a Lambda Kinesis event, in delivery order."""
    return [from_lambda_record(r) for r in KinesisStreamEvent(dict(event)).records]


def sequence_numbers(event: Mapping[str, Any]) -> list[str]:
    """The sequence numbers of a Lambda Kinesis event (for ``batchItemFailures``)."""
    records: Iterable[Mapping[str, Any]] = event.get("Records", [])
    return [r["kinesis"]["sequenceNumber"] for r in records]
