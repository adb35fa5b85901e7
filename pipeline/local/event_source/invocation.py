"""One invocation of the function for a batch, and what Lambda makes of its outcome.

An invocation ends in one of three results, as Lambda reads them:

- :class:`Succeeded`: the handler returned, and reported no failed item (or the mapping
  does not ask for item failures);
- :class:`PartiallyFailed`: ``batchItemFailures`` named records; everything before the
  lowest of them is done and delivery resumes from it;
- :class:`Failed`: the whole batch failed, with Lambda's ``functionError``: the handler
  raised (``Unhandled``) or its partial batch response was invalid (``InvalidResponse``).
"""

from __future__ import annotations

import enum
import io
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.local.event_source.output import capture_stdout, lag_values
from pipeline.local.invoke import Handler, LocalContext

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.local.event_source.payloads import Record


class FunctionError(enum.StrEnum):
    """Lambda's ``functionError`` for a batch that failed as a whole."""

    UNHANDLED = "Unhandled"
    INVALID_RESPONSE = "InvalidResponse"


@dataclass(frozen=True)
class Succeeded:
    """Every record of the batch is done."""


@dataclass(frozen=True)
class PartiallyFailed:
    """The records before ``resume_at`` (an index into the batch) are done; the rest are not."""

    resume_at: int


@dataclass(frozen=True)
class Failed:
    """No record of the batch is done."""

    error: FunctionError


InvocationResult = Succeeded | PartiallyFailed | Failed


@dataclass(frozen=True)
class Invocation:
    """What one invocation did: its result, its stdout, and how long the handler ran."""

    shard_id: str
    records: int
    result: InvocationResult
    output: str
    #: The handler's traceback when it raised.
    traceback: str | None
    duration_s: float
    #: The ``StreamLagMilliseconds`` values the handler's EMF lines carried.
    lags_ms: tuple[float, ...]


def invoke(
    handler: Handler,
    event: dict[str, Any],
    batch: Sequence[Record],
    *,
    shard_id: str,
    function_name: str,
    report_batch_item_failures: bool,
) -> Invocation:
    """Run ``handler`` on ``event`` (built from ``batch``) with this thread's stdout captured."""
    out = io.StringIO()
    response: Any = None
    error: str | None = None
    context = LocalContext(function_name=function_name)
    began = time.monotonic()
    with capture_stdout(out):
        try:
            response = handler(event, context)
        except Exception:  # noqa: BLE001 - any handler error is a function error
            error = traceback.format_exc()
    duration_s = time.monotonic() - began
    result: InvocationResult
    if error is not None:
        result = Failed(FunctionError.UNHANDLED)
    elif not report_batch_item_failures or response is None:
        result = Succeeded()
    else:
        result = read_batch_response(response, batch)
    output = out.getvalue()
    lags = tuple(lag for line in output.splitlines() for lag in lag_values(line))
    return Invocation(shard_id, len(batch), result, output, error, duration_s, lags)


def read_batch_response(response: Any, batch: Sequence[Record]) -> InvocationResult:
    """Lambda's reading of a partial batch response (``ReportBatchItemFailures``)."""
    if not isinstance(response, dict):
        return Failed(FunctionError.INVALID_RESPONSE)
    failures = response.get("batchItemFailures")
    if not failures:
        return Succeeded()
    positions = {r["SequenceNumber"]: i for i, r in enumerate(batch)}
    lowest = len(batch)
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in positions:
            # An empty, null or unknown identifier fails the whole batch.
            return Failed(FunctionError.INVALID_RESPONSE)
        lowest = min(lowest, positions[identifier])
    return PartiallyFailed(lowest)
