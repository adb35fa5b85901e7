"""Ingest stage: Kinesis records -> validated NDJSON in the raw zone, quarantine, metrics."""

from pipeline.ingest.core import IngestResult, ingest_batch, quarantine_line
from pipeline.ingest.decode import KPL_MAGIC, deaggregate, is_aggregate
from pipeline.ingest.inventory import (
    DynamoInventory,
    InMemoryInventory,
    InventoryState,
    PairState,
    StockObservation,
    observations,
    transition,
)
from pipeline.ingest.metrics import IngestMetrics
from pipeline.ingest.records import (
    StreamRecord,
    from_lambda_event,
    from_lambda_record,
    sequence_numbers,
)
from pipeline.ingest.store import InMemoryRawStore, RawStore, S3RawStore

__all__ = [
    "KPL_MAGIC",
    "DynamoInventory",
    "InMemoryInventory",
    "InMemoryRawStore",
    "IngestMetrics",
    "IngestResult",
    "InventoryState",
    "PairState",
    "RawStore",
    "S3RawStore",
    "StockObservation",
    "StreamRecord",
    "deaggregate",
    "from_lambda_event",
    "from_lambda_record",
    "ingest_batch",
    "is_aggregate",
    "observations",
    "quarantine_line",
    "sequence_numbers",
    "transition",
]
