"""Translate botocore failures into the pipeline's transient / terminal error branches.

Only adapters call this; the core sees :class:`TransientError` (Lambda re-delivers the
batch) or :class:`TerminalError` and never an AWS error code.
"""

from __future__ import annotations

from typing import Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from pipeline.errors import PipelineError, TerminalError, TransientError

#: Error codes that may succeed on retry even though the HTTP status is not 5xx.
TRANSIENT_CODES: Final = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "TransactionInProgressException",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
    }
)

_TRANSIENT_BOTOCORE = (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)


def translate(error: ClientError | BotoCoreError, action: str) -> PipelineError:
    """The pipeline error for a botocore failure of ``action`` (raise it ``from error``)."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"{action}: {code} ({status})"
        if status >= 500 or code in TRANSIENT_CODES:
            return TransientError(message)
        return TerminalError(message)
    if isinstance(error, _TRANSIENT_BOTOCORE):
        return TransientError(f"{action}: {type(error).__name__}: {error}")
    return TerminalError(f"{action}: {type(error).__name__}: {error}")
