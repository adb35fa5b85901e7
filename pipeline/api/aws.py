"""Translate AWS SDK errors into the pipeline's error root, at the adapter."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import TerminalError, TransientError

if TYPE_CHECKING:
    from collections.abc import Iterator

_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalErrorException",
        "ServiceUnavailable",
        "TooManyRequestsException",
        "SlowDown",
    }
)


def error_code(error: ClientError) -> str:
    """The AWS error code of a ``ClientError``."""
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Re-raise SDK failures of ``action`` as :class:`TransientError` or :class:`TerminalError`."""
    try:
        yield
    except ClientError as e:
        code = error_code(e)
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _TRANSIENT_CODES or status >= 500:
            raise TransientError(f"{action}: {code}") from e
        raise TerminalError(f"{action}: {code}") from e
    except BotoCoreError as e:
        raise TransientError(f"{action}: {e}") from e
