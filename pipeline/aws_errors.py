"""AWS errors, retries and clients, once: every adapter translates, backs off and builds
its botocore clients here.

**The one rule.** A botocore failure is *transient* (:class:`AwsTransientError`, a
:class:`~pipeline.errors.TransientError`: Lambda re-delivers the batch, Glue re-runs the job,
a writer retries) when

- the HTTP status is 500 or more, or
- its error code is one botocore's standard retry mode retries (its throttling and transient
  code lists, :data:`THROTTLING_CODES` and :data:`TRANSIENT_CODES`), or one of the few codes
  in :data:`MORE_TRANSIENT_CODES` that arrive without a 5xx status (Kinesis' per-record
  ``InternalFailure``, a DynamoDB transaction conflict), or
- it is a botocore ``ConnectionError`` or ``HTTPClientError`` (which cover the connect and
  read timeouts and a connection closed mid-response);

everything else is *terminal* (:class:`AwsTerminalError`): a missing resource, access denied,
a validation error, missing credentials, a parameter botocore refused. Before this module
the copies disagreed: the compaction store, the Glue catalogs, the API, the producer and the
forecast writer treated every ``BotoCoreError`` as transient (a ``NoCredentialsError`` was
retried until the budget ran out, or answered 503), the forecast writer treated a 500
``InternalServerError`` as terminal, and each kept its own list of codes.

Both error classes carry ``service``, ``operation``, ``code``, ``status`` and ``resource``
(where the caller knows them); the message is ``"{action}: {code} ({status})"`` for a service
error and ``"{action}: {ExceptionName}: {error}"`` for a botocore one. The core sees only the
two branches and never an AWS error code: code comparisons go through :func:`error_code`
against the constants named here. (The producer appends the service's message to its
errors, as it did.)

Backoff between retries is :class:`Backoff` (exponential, capped, full jitter by default;
the forecast writer keeps its waits in ``[d/2, d]``, the KCL processor and checkpoints keep
theirs unjittered) and clients come from :func:`client`, which builds the botocore
``Config`` (standard retry mode) in one place.
"""

from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

from pipeline.errors import PipelineError, TerminalError, TransientError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import boto3

# botocore keeps its lists on the checker classes; reading them keeps the rule in step with
# the SDK's own retries instead of a hand-copied list that drifts (a botocore that renames
# them fails this import, loudly, rather than silently changing the rule).
#: Codes botocore's standard retry mode treats as throttling.
THROTTLING_CODES: Final[frozenset[str]] = frozenset(
    vars(ThrottledRetryableChecker)["_THROTTLED_ERROR_CODES"]
)
#: Codes botocore's standard retry mode treats as transient (besides 5xx statuses).
TRANSIENT_CODES: Final[frozenset[str]] = frozenset(
    vars(TransientRetryableChecker)["_TRANSIENT_ERROR_CODES"]
)
#: Codes that may succeed on retry but can arrive without a 5xx status: Kinesis' per-record
#: result codes (a PutRecords result has no status), DynamoDB transaction conflicts, S3's
#: clock skew (botocore corrects its clock and the next attempt succeeds), and the 5xx codes
#: themselves for responses that lost their status.
MORE_TRANSIENT_CODES: Final[frozenset[str]] = frozenset(
    {
        "InternalFailure",
        "KMSThrottlingException",
        "TransactionConflictException",
        "RequestTimeTooSkewed",
        "InternalError",
        "InternalServerError",
        "InternalErrorException",
        "ServiceUnavailable",
    }
)
RETRYABLE_CODES: Final[frozenset[str]] = THROTTLING_CODES | TRANSIENT_CODES | MORE_TRANSIENT_CODES

# Codes callers branch on (an expected outcome, not a failure), named once.
#: S3 GetObject / HeadObject of a key that does not exist.
MISSING_OBJECT_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})
CONDITIONAL_CHECK_FAILED: Final = "ConditionalCheckFailedException"
TRANSACTION_CANCELED: Final = "TransactionCanceledException"
VALIDATION: Final = "ValidationException"
RESOURCE_NOT_FOUND: Final = "ResourceNotFoundException"
RESOURCE_IN_USE: Final = "ResourceInUseException"
EXPIRED_ITERATOR: Final = "ExpiredIteratorException"
USER_NOT_FOUND: Final = "UserNotFoundException"
USERNAME_EXISTS: Final = "UsernameExistsException"
NOT_AUTHORIZED: Final = "NotAuthorizedException"
INVALID_PASSWORD: Final = "InvalidPasswordException"
PROVISIONED_THROUGHPUT_EXCEEDED: Final = "ProvisionedThroughputExceededException"
THROTTLING_EXCEPTION: Final = "ThrottlingException"
#: Lambda's error type for a payload that is not JSON (the local worker answers with it).
INVALID_REQUEST_CONTENT: Final = "InvalidRequestContentException"
#: Kinesis' per-record code a whole failed PutRecords call stands for (the producer's own).
CALL_FAILED: Final = "CallFailed"
#: The server errors the fault injector answers with: S3's, DynamoDB's, and the JSON
#: services' (Kinesis, ...); and S3's throttling answer.
S3_INTERNAL_ERROR: Final = "InternalError"
DYNAMODB_INTERNAL_SERVER_ERROR: Final = "InternalServerError"
INTERNAL_FAILURE: Final = "InternalFailure"
S3_SLOW_DOWN: Final = "SlowDown"
#: The KCL MultiLangDaemon's answers to a checkpoint (the Java exception's name; it answers
#: a throttled lease table with :data:`THROTTLING_EXCEPTION`): the lease is gone, or the
#: lease table is missing or unusable.
KCL_SHUTDOWN: Final = "ShutdownException"
KCL_INVALID_STATE: Final = "InvalidStateException"

_TRANSIENT_BOTOCORE: Final = (BotoConnectionError, HTTPClientError)


class AwsError(PipelineError):
    """A translated AWS failure with what is known about it.

    ``service`` (``"s3"``, ``"dynamodb"``, empty when the caller did not say), ``operation``
    (``"PutObject"``), ``code`` (the AWS error code, or the botocore exception's name),
    ``status`` (HTTP, 0 when there was no response) and ``resource`` (a bucket/key, table or
    stream, empty when not known).
    """

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        operation: str = "",
        code: str = "",
        status: int = 0,
        resource: str = "",
        aws_message: str = "",
    ) -> None:
        super().__init__(message)
        self.service = service
        self.operation = operation
        self.code = code
        self.status = status
        self.resource = resource
        self.aws_message = aws_message

    def retitled(self, message: str) -> AwsError:
        """The same error (class and every attribute, a subclass's too) with another message."""
        clone = type(self).__new__(type(self))
        clone.args = (message,)
        clone.__dict__.update(self.__dict__)
        return clone


class AwsTransientError(AwsError, TransientError):
    """An AWS failure that may go away on retry (see the module's rule)."""


class AwsTerminalError(AwsError, TerminalError):
    """An AWS failure that retrying cannot fix (see the module's rule)."""


def error_code(error: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (empty for anything else)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "") or "")
    return ""


def http_status(error: BaseException) -> int:
    """The HTTP status of a ``ClientError`` (0 when there was none)."""
    if isinstance(error, ClientError):
        return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def is_transient_code(code: str, status: int = 0) -> bool:
    """Whether a service error of ``code`` (with HTTP ``status``) may succeed on retry."""
    return status >= 500 or code in RETRYABLE_CODES


def is_transient(error: BaseException) -> bool:
    """Whether a botocore failure may succeed on retry (the module's rule)."""
    if isinstance(error, ClientError):
        return is_transient_code(error_code(error), http_status(error))
    return isinstance(error, _TRANSIENT_BOTOCORE)


def translate(
    error: ClientError | BotoCoreError,
    action: str,
    *,
    service: str = "",
    resource: str = "",
) -> AwsTransientError | AwsTerminalError:
    """The pipeline error for a botocore failure of ``action`` (raise it ``from error``)."""
    cls = AwsTransientError if is_transient(error) else AwsTerminalError
    if isinstance(error, ClientError):
        code = error_code(error)
        status = http_status(error)
        return cls(
            f"{action}: {code} ({status})",
            service=service,
            operation=str(error.operation_name or ""),
            code=code,
            status=status,
            resource=resource,
            aws_message=str(error.response.get("Error", {}).get("Message", "") or ""),
        )
    name = type(error).__name__
    return cls(
        f"{action}: {name}: {error}",
        service=service,
        code=name,
        resource=resource,
        aws_message=str(error),
    )


@contextmanager
def translated(action: str, *, service: str = "", resource: str = "") -> Iterator[None]:
    """Re-raise botocore failures inside the block as :func:`translate` says."""
    try:
        yield
    except (ClientError, BotoCoreError) as e:
        raise translate(e, action, service=service, resource=resource) from e


Jitter = Literal["full", "equal", "none"]
RetryMode = Literal["legacy", "standard", "adaptive"]


@dataclass
class Backoff:
    """Exponential backoff, capped: retry ``n`` (1-based) waits up to
    ``min(cap_s, base_s * 2**(n-1))``.

    ``jitter`` spreads the wait: ``"full"`` uniform in ``[0, ceiling]`` (the default: retries
    of many writers after one throttle do not land together), ``"equal"`` uniform in
    ``[ceiling/2, ceiling]`` (a wait never much shorter than the ceiling), ``"none"`` the
    ceiling itself. ``rng`` and ``sleep`` are injectable for tests.
    """

    base_s: float = 0.05
    cap_s: float = 5.0
    jitter: Jitter = "full"
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry ``retry`` (1-based)."""
        if retry < 1:
            return 0.0
        # The exponent is bounded: past 2**64 every sane cap has long been reached.
        return float(min(self.cap_s, self.base_s * 2 ** min(retry - 1, 64)))

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry ``retry`` (1-based)."""
        ceiling = self.ceiling(retry)
        if self.jitter == "full":
            return self.rng.uniform(0.0, ceiling)
        if self.jitter == "equal":
            return self.rng.uniform(ceiling / 2, ceiling)
        return ceiling

    def wait(self, retry: int) -> None:
        """Sleep before retry ``retry`` (1-based)."""
        self.sleep(self.delay(retry))


def client(
    session: boto3.session.Session,
    service: str,
    *,
    max_attempts: int | None = None,
    mode: RetryMode = "standard",
    **config: Any,
) -> Any:
    """A botocore client of ``service`` from ``session``, its ``Config`` built here.

    ``max_attempts`` sets botocore's retries in ``mode`` (standard: throttling and 5xx retried
    with jittered backoff, the same rule as :func:`is_transient`), counted as botocore's
    ``retries["max_attempts"]`` counts them: retries after the first call, so a call is sent
    at most ``max_attempts + 1`` times. ``None`` keeps what the session's default config
    says. Other keywords (``connect_timeout``, ``read_timeout``,
    ``max_pool_connections``, ``parameter_validation``, ...) go to ``botocore.config.Config``;
    ``endpoint_url`` and ``region_name`` go to the client.
    """
    return session.client(service, **client_kwargs(max_attempts=max_attempts, mode=mode, **config))  # type: ignore[call-overload]


def client_kwargs(
    *, max_attempts: int | None = None, mode: RetryMode = "standard", **config: Any
) -> dict[str, Any]:
    """The keywords of ``session.client`` :func:`client` passes (for a resource or a test)."""
    from botocore.config import Config

    kwargs: dict[str, Any] = {
        k: config.pop(k) for k in ("endpoint_url", "region_name") if k in config
    }
    if max_attempts is not None:
        config["retries"] = {"mode": mode, "max_attempts": max_attempts}
    if config:
        kwargs["config"] = Config(**config)
    return kwargs


def default_config(*, max_attempts: int, mode: RetryMode = "standard") -> Any:
    """The ``Config`` a session gives every client it builds (``set_default_client_config``)."""
    from botocore.config import Config

    return Config(retries={"mode": mode, "max_attempts": max_attempts})


__all__ = [
    "CALL_FAILED",
    "CONDITIONAL_CHECK_FAILED",
    "DYNAMODB_INTERNAL_SERVER_ERROR",
    "EXPIRED_ITERATOR",
    "INTERNAL_FAILURE",
    "INVALID_PASSWORD",
    "INVALID_REQUEST_CONTENT",
    "KCL_INVALID_STATE",
    "KCL_SHUTDOWN",
    "MISSING_OBJECT_CODES",
    "MORE_TRANSIENT_CODES",
    "NOT_AUTHORIZED",
    "PROVISIONED_THROUGHPUT_EXCEEDED",
    "RESOURCE_IN_USE",
    "RESOURCE_NOT_FOUND",
    "RETRYABLE_CODES",
    "S3_INTERNAL_ERROR",
    "S3_SLOW_DOWN",
    "THROTTLING_CODES",
    "THROTTLING_EXCEPTION",
    "TRANSACTION_CANCELED",
    "TRANSIENT_CODES",
    "USERNAME_EXISTS",
    "USER_NOT_FOUND",
    "VALIDATION",
    "AwsError",
    "AwsTerminalError",
    "AwsTransientError",
    "Backoff",
    "Jitter",
    "RetryMode",
    "client",
    "client_kwargs",
    "default_config",
    "error_code",
    "http_status",
    "is_transient",
    "is_transient_code",
    "translate",
    "translated",
]
