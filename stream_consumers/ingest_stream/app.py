"""IngestStreamFunction: Kinesis event in, raw/quarantine objects and EMF metrics out.

Wiring only: settings are read once at import (the template sets the variables), AWS
clients are built on the first invocation and reused by later ones, and the logic is
:func:`pipeline.ingest.ingest_batch`. A batch whose objects could not be stored is handed
back whole through ``batchItemFailures`` so Lambda retries it; bad data never is.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from pipeline.errors import PipelineError
from pipeline.ingest import (
    IngestMetrics,
    InventoryState,
    RawStore,
    from_lambda_event,
    ingest_batch,
    sequence_numbers,
)
from pipeline.ingest.adapters import build_adapters
from pipeline.settings import IngestSettings

logger = Logger()
settings = IngestSettings.from_env()


@cache
def _adapters() -> tuple[RawStore, InventoryState | None]:
    # Built lazily (boto3 clients cost ~0.2 s) but once per container.
    return build_adapters(settings)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """Ingest one Kinesis batch; report every record as failed if it is not durable."""
    store, inventory = _adapters()
    metrics = IngestMetrics()
    try:
        result = ingest_batch(from_lambda_event(event), store=store, inventory=inventory)
    except PipelineError as e:
        # Nothing of this batch is acknowledged: Lambda retries from its lowest sequence
        # number, and the retry overwrites the same deterministic keys.
        logger.warning("batch not stored; handing it back for retry", extra={"error": str(e)})
        metrics.record_failed_batch()
        metrics.flush()
        return {"batchItemFailures": [{"itemIdentifier": s} for s in sequence_numbers(event)]}
    logger.info(
        "batch stored",
        extra={
            "records": result.records,
            "valid": result.valid,
            "quarantined": dict(result.quarantined),
            "raw_keys": list(result.raw_keys),
        },
    )
    metrics.record(result)
    metrics.flush()
    return {"batchItemFailures": []}
