"""Checkpointing per the KCL contract, over the MultiLang checkpointer.

The daemon answers a checkpoint request with the name of the Java exception it hit, which
``amazon_kclpy`` raises as ``CheckpointError(value)``. What each one means:

* ``ThrottlingException``: DynamoDB throttled the lease table; retry with backoff.
* ``ShutdownException``: the lease is gone (another worker owns the shard now); stop, the
  new owner resumes from the last checkpoint.
* ``InvalidStateException``: the lease table is missing or unusable; retrying cannot fix
  it, so log and stop (the records are re-processed from the last good checkpoint).
* anything else: log and stop.

A failed checkpoint never loses data: the batch is already durable, so the worst case is a
re-delivery that overwrites the same deterministic raw key.
"""

from __future__ import annotations

import enum
import time
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.aws_errors import KCL_INVALID_STATE, KCL_SHUTDOWN, THROTTLING_EXCEPTION, Backoff
from pipeline.kcl.log import logger

if TYPE_CHECKING:
    from collections.abc import Callable


class Checkpointer(Protocol):
    """The part of ``amazon_kclpy.kcl.Checkpointer`` the processor uses."""

    def checkpoint(
        self, sequence_number: str | None = None, sub_sequence_number: int | None = None
    ) -> None:
        """Record progress up to and including the given position (the batch end if None)."""


class CheckpointOutcome(enum.Enum):
    """How a checkpoint attempt ended."""

    DONE = "done"
    SHUTDOWN = "shutdown"
    INVALID_STATE = "invalid_state"
    THROTTLED = "throttled"
    FAILED = "failed"


def error_name(error: BaseException) -> str:
    """The daemon's exception name carried by a ``CheckpointError`` (its ``value``)."""
    value: Any = getattr(error, "value", None)
    return str(value) if value is not None else str(error)


def checkpoint(
    checkpointer: Checkpointer,
    sequence_number: str | None = None,
    sub_sequence_number: int | None = None,
    *,
    attempts: int = 5,
    backoff_s: float = 0.2,
    max_backoff_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckpointOutcome:
    """Checkpoint at the given position, handling the daemon's answers per the KCL contract.

    Retries ``ThrottlingException`` up to ``attempts`` times with exponential backoff (capped
    at ``max_backoff_s``); every
    other error ends the attempt and is reported through the returned outcome, never raised:
    the caller's data is already durable, so a lost checkpoint means re-delivery, not loss.
    """
    from amazon_kclpy.checkpoint_error import CheckpointError

    # No jitter, as before: the waits are short and one processor checkpoints serially.
    backoff = Backoff(base_s=backoff_s, cap_s=max_backoff_s, jitter="none", sleep=sleep)
    for attempt in range(1, attempts + 1):
        try:
            checkpointer.checkpoint(sequence_number, sub_sequence_number)
        except CheckpointError as e:
            name = error_name(e)
            if name == THROTTLING_EXCEPTION:
                if attempt < attempts:
                    backoff.wait(attempt)
                    continue
                logger.warning("checkpoint throttled; giving up", extra={"attempts": attempts})
                return CheckpointOutcome.THROTTLED
            if name == KCL_SHUTDOWN:
                logger.info("lease lost while checkpointing; the new owner resumes")
                return CheckpointOutcome.SHUTDOWN
            if name == KCL_INVALID_STATE:
                logger.error("the daemon reported an invalid lease state while checkpointing")
                return CheckpointOutcome.INVALID_STATE
            logger.error("checkpoint failed", extra={"error": name})
            return CheckpointOutcome.FAILED
        return CheckpointOutcome.DONE
    return CheckpointOutcome.THROTTLED  # pragma: no cover - the loop always returns
