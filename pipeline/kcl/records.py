"""KCL MultiLang records as the ingest core sees them.

The MultiLangDaemon hands each record to the processor as a JSON object: ``data`` base64,
``sequenceNumber``, ``subSequenceNumber`` (set on the user records of a KPL aggregate, which
the daemon de-aggregates itself), ``partitionKey`` and ``approximateArrivalTimestamp`` in
epoch milliseconds. The shard is not on the record: it comes from ``initialize``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipeline.ingest.records import StreamRecord, decode_data

if TYPE_CHECKING:
    from collections.abc import Iterable


def _field(record: Any, name: str) -> Any:
    # amazon_kclpy decodes records into ``messages.Record`` (item access by wire name);
    # tests and other callers may pass the plain JSON dict. Both support ``record[name]``.
    return record[name]


def from_kcl_record(record: Any, shard_id: str) -> StreamRecord:
    """Build a :class:`StreamRecord` from one MultiLang record of ``shard_id``.

    The arrival time is taken from the epoch milliseconds as UTC (``kclpy``'s own
    ``approximate_arrival_timestamp`` is a naive local time). A blob that is not valid
    base64 becomes a record with the ``invalid_base64`` defect, which the core quarantines.
    """
    blob = _field(record, "data")
    sequence_number = str(_field(record, "sequenceNumber"))
    sub = _field(record, "subSequenceNumber")
    arrival = datetime.fromtimestamp(int(_field(record, "approximateArrivalTimestamp")) / 1000, UTC)
    partition_key = str(_field(record, "partitionKey"))
    # The daemon sends 0 for a record that was not aggregated; only KPL user records carry a
    # meaningful sub-sequence, and the core numbers those itself when it de-aggregates.
    sub_sequence = int(sub) if sub else None
    data, invalid = decode_data(blob)
    if invalid is not None:
        return StreamRecord(
            shard_id,
            sequence_number,
            arrival,
            data,
            partition_key,
            sub_sequence=sub_sequence,
            defect="invalid_base64",
            defect_detail=invalid,
        )
    return StreamRecord(
        shard_id, sequence_number, arrival, data, partition_key, sub_sequence=sub_sequence
    )


def from_kcl_records(records: Iterable[Any], shard_id: str) -> list[StreamRecord]:
    """All records of one ``processRecords`` action, in delivery order."""
    return [from_kcl_record(r, shard_id) for r in records]
