"""The KCL record processor: the Lambda consumer's ingest core under the MultiLangDaemon.

One processor serves one shard. Each ``processRecords`` batch goes through
:func:`pipeline.ingest.ingest_batch` (decode, validate, quarantine, write the raw object
under its deterministic key) and only once that returned is the batch checkpointed at its
last (sub-)sequence number. So a checkpoint never runs ahead of durable data.

A batch that cannot be stored is retried here with backoff. When the retries are spent the
processor exits its process (:class:`BatchNotStored`): ``amazon_kclpy.kcl.KCLProcess``
swallows exceptions and acknowledges the action anyway, which would let the daemon deliver
the next batch and a later checkpoint would then cover the unstored one. A dead child makes
the daemon give the shard up instead, and whoever takes the lease next resumes from the last
checkpoint; the deterministic raw key makes the replay overwrite rather than duplicate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from amazon_kclpy.v3.processor import RecordProcessorBase

from pipeline.aws_errors import Backoff, Jitter
from pipeline.errors import PipelineError, TransientError
from pipeline.ingest.core import IngestResult, ingest_batch
from pipeline.kcl.checkpoint import CheckpointOutcome, checkpoint
from pipeline.kcl.log import logger
from pipeline.kcl.records import from_kcl_records

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pipeline.ingest.inventory import InventoryState
    from pipeline.ingest.records import StreamRecord
    from pipeline.ingest.store import RawStore

#: Exit status of a processor that gave up on a batch (see :class:`BatchNotStored`).
EXIT_BATCH_NOT_STORED = 75  # EX_TEMPFAIL: the failure is expected to be temporary


class BatchNotStored(SystemExit):
    """Ends the processor process when a batch could not be made durable.

    A ``SystemExit`` because it is the one exception ``KCLProcess`` lets through; any other
    would be logged and the batch acknowledged as if it had been processed.
    """

    def __init__(self, shard_id: str, error: BaseException) -> None:
        super().__init__(EXIT_BATCH_NOT_STORED)
        self.shard_id = shard_id
        self.error = error

    def __str__(self) -> str:
        return f"batch of {self.shard_id} not stored: {self.error}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a batch whose store failed transiently is retried."""

    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 5.0
    #: No jitter by default, as before; "full" spreads the retries of many shards.
    jitter: Jitter = "none"

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed ``attempt`` (1-based): exponential, capped."""
        return Backoff(self.backoff_s, self.max_backoff_s, self.jitter).delay(attempt)


class IngestRecordProcessor(RecordProcessorBase):  # type: ignore[misc]  # kclpy is untyped
    """A v3 ``RecordProcessorBase`` that stores each batch, then checkpoints it.

    ``on_result`` receives every stored batch's :class:`IngestResult` (metrics);
    ``sleep`` is injectable so tests do not wait out the backoff.
    """

    def __init__(
        self,
        *,
        store: RawStore,
        inventory: InventoryState | None = None,
        retry: RetryPolicy | None = None,
        on_result: Callable[[IngestResult], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._inventory = inventory
        self._retry = retry or RetryPolicy()
        self._on_result = on_result
        self._sleep = sleep
        self.shard_id = ""
        #: The position of the last durable record: (sequence number, sub-sequence).
        self.durable: tuple[str, int | None] | None = None
        #: The position of the last successful checkpoint.
        self.checkpointed: tuple[str, int | None] | None = None

    # ------------------------------------------------------------------ lifecycle
    def initialize(self, initialize_input: Any) -> None:
        """Remember the shard; the daemon resumes it after ``sequence_number``."""
        self.shard_id = str(initialize_input.shard_id)
        start = initialize_input.sequence_number
        if start is not None:
            self.checkpointed = (str(start), initialize_input.sub_sequence_number or None)
        logger.info("shard assigned", extra={"shard_id": self.shard_id, "resume_after": start})

    def process_records(self, process_records_input: Any) -> None:
        """Store the batch (with retries), then checkpoint at its last record."""
        records = from_kcl_records(process_records_input.records, self.shard_id)
        if not records:
            return
        result = self._ingest_with_retry(records)
        last = records[-1]
        self.durable = (last.sequence_number, last.sub_sequence)
        logger.info(
            "batch stored",
            extra={
                "shard_id": self.shard_id,
                "records": result.records,
                "valid": result.valid,
                "quarantined": dict(result.quarantined),
                "raw_keys": list(result.raw_keys),
                "millis_behind_latest": process_records_input.millis_behind_latest,
            },
        )
        if self._on_result is not None:
            self._on_result(result)
        self._checkpoint_durable(process_records_input.checkpointer)

    def lease_lost(self, lease_lost_input: Any) -> None:
        """Another worker owns the shard now; checkpointing is no longer allowed."""
        logger.info("lease lost", extra={"shard_id": self.shard_id, "durable": self.durable})

    def shard_ended(self, shard_ended_input: Any) -> None:
        """Checkpoint at the shard end so the daemon can start its child shards."""
        outcome = checkpoint(shard_ended_input.checkpointer, sleep=self._sleep)
        logger.info("shard ended", extra={"shard_id": self.shard_id, "checkpoint": outcome.value})

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        """The worker is shutting down: checkpoint whatever is durable and not yet recorded."""
        outcome = self._checkpoint_durable(shutdown_requested_input.checkpointer)
        logger.info(
            "shutdown requested",
            extra={"shard_id": self.shard_id, "checkpoint": outcome.value if outcome else None},
        )

    # ------------------------------------------------------------------ internals
    def _ingest_with_retry(self, records: Sequence[StreamRecord]) -> IngestResult:
        attempts = self._retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                return ingest_batch(records, store=self._store, inventory=self._inventory)
            except TransientError as e:
                if attempt == attempts:
                    logger.error(
                        "batch not stored after retries; exiting so the lease is retried",
                        extra={"shard_id": self.shard_id, "attempts": attempts, "error": str(e)},
                    )
                    raise BatchNotStored(self.shard_id, e) from e
                delay = self._retry.delay(attempt)
                logger.warning(
                    "batch not stored; retrying",
                    extra={"shard_id": self.shard_id, "attempt": attempt, "delay_s": delay},
                )
                self._sleep(delay)
            except PipelineError as e:
                # Terminal (bad configuration, access denied): retrying here cannot help,
                # but acknowledging would skip the batch; hand the shard back instead.
                logger.error(
                    "batch not stored; exiting so the lease is retried",
                    extra={"shard_id": self.shard_id, "error": str(e)},
                )
                raise BatchNotStored(self.shard_id, e) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _checkpoint_durable(self, checkpointer: Any) -> CheckpointOutcome | None:
        if self.durable is None or self.durable == self.checkpointed:
            return None
        sequence_number, sub_sequence = self.durable
        outcome = checkpoint(checkpointer, sequence_number, sub_sequence, sleep=self._sleep)
        if outcome is CheckpointOutcome.DONE:
            self.checkpointed = self.durable
        return outcome
