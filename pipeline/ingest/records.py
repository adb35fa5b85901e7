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

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
        KinesisStreamRecord,
    )


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


class _UnfrozenRecord:
    """StreamRecord's very slots without its frozen ``__setattr__``, to build one cheaply.

    A frozen dataclass's ``__init__`` stores each field through ``object.__setattr__``;
    plain slot stores here cost a fifth of that, once per record of a batch, and the
    instance then becomes a :class:`StreamRecord` by ``__class__`` assignment, which
    CPython allows between classes of one layout (same base, same slots).
    """

    __slots__ = StreamRecord.__slots__

    def __init__(
        self,
        shard_id: str,
        sequence_number: str,
        approximate_arrival: datetime,
        data: bytes,
        partition_key: str,
    ) -> None:
        self.shard_id = shard_id
        self.sequence_number = sequence_number
        self.approximate_arrival = approximate_arrival
        self.data = data
        self.partition_key = partition_key
        self.sub_sequence = None
        self.defect = None
        self.defect_detail = ""


def _shard_id(event_id: str) -> str:
    # eventID is "<shardId>:<sequenceNumber>"; the shard id itself never contains ":".
    return event_id.partition(":")[0]


def _arrival(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def from_lambda_record(record: KinesisStreamRecord) -> StreamRecord:
    """Build a :class:`StreamRecord` from one record of a Lambda Kinesis event."""
    return _from_record_dict(record.raw_event)


def _from_record_dict(
    record: Mapping[str, Any], arrivals: dict[Any, datetime] | None = None
) -> StreamRecord:
    # Plain dict access (the keys Powertools' KinesisStreamRecord properties read): its
    # wrapper objects cost a third of a 10,000-record batch's decoding time.
    payload = record["kinesis"]
    stamp = payload["approximateArrivalTimestamp"]
    # Records put in the same millisecond share one datetime (``arrivals`` remembers them).
    arrival = arrivals.get(stamp) if arrivals is not None else None
    if arrival is None:
        arrival = _arrival(float(stamp))
        if arrivals is not None:
            arrivals[stamp] = arrival
    blob = payload["data"]
    try:
        data = binascii.a2b_base64(blob, strict_mode=True)  # as decode_data, inlined
    except (binascii.Error, ValueError, TypeError):
        data, invalid = decode_data(blob)
        return StreamRecord(
            _shard_id(record["eventID"]),
            payload["sequenceNumber"],
            arrival,
            data,
            payload["partitionKey"],
            defect="invalid_base64",
            defect_detail=invalid or "",
        )
    unfrozen: Any = _UnfrozenRecord(
        _shard_id(record["eventID"]),
        payload["sequenceNumber"],
        arrival,
        data,
        payload["partitionKey"],
    )
    unfrozen.__class__ = StreamRecord
    built: StreamRecord = unfrozen  # typing.cast would cost a call a record
    return built


def decode_data(blob: Any) -> tuple[bytes, str | None]:
    """A record's base64 data blob decoded, and ``None``; or, when it is not base64, the
    blob's own bytes (kept for the quarantine) and why (``invalid_base64``)."""
    try:
        # strict_mode rejects characters outside the alphabet instead of skipping them,
        # which b64decode's default does silently.
        return binascii.a2b_base64(blob, strict_mode=True), None
    except (binascii.Error, ValueError, TypeError) as e:
        raw = blob.encode("utf-8", "surrogatepass") if isinstance(blob, str) else b""
        return raw, str(e)[:200]


def from_lambda_event(event: Mapping[str, Any]) -> list[StreamRecord]:
    """All records of a Lambda Kinesis event, in delivery order."""
    arrivals: dict[Any, datetime] = {}
    return [_from_record_dict(r, arrivals) for r in event["Records"]]


def sequence_numbers(event: Mapping[str, Any]) -> list[str]:
    """The sequence numbers of a Lambda Kinesis event (for ``batchItemFailures``)."""
    records: Iterable[Mapping[str, Any]] = event.get("Records", [])
    return [r["kinesis"]["sequenceNumber"] for r in records]
