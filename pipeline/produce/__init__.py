"""The producer: PutRecords within Kinesis' limits, partial-failure retries, KPL aggregation."""

from pipeline.produce.producer import (
    MAX_CALL_BYTES,
    MAX_CALL_RECORDS,
    MAX_RECORD_BYTES,
    Producer,
    ProduceReport,
    partition_key,
)

__all__ = [
    "MAX_CALL_BYTES",
    "MAX_CALL_RECORDS",
    "MAX_RECORD_BYTES",
    "ProduceReport",
    "Producer",
    "partition_key",
]
