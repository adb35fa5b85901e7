"""The one AWS error rule, the backoff helper and the client factory, without AWS."""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.validate import ParamValidationDecorator

from pipeline.aws_errors import (
    AwsError,
    AwsTerminalError,
    AwsTransientError,
    Backoff,
    client,
    error_code,
    translate,
    translated,
)
from pipeline.errors import TerminalError, TransientError
from pipeline.local.emulator import aws_session


def _client_error(code: str, status: int | None, operation: str = "PutObject") -> ClientError:
    response: dict[str, object] = {"Error": {"Code": code, "Message": f"{code} says no"}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, operation)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("InternalServerError", 500, True),  # the forecast writer used to call this terminal
        ("Whatever", 503, True),  # any 5xx, whatever the code
        ("SlowDown", 503, True),
        ("ThrottlingException", 400, True),
        ("ProvisionedThroughputExceededException", 400, True),
        ("BandwidthLimitExceeded", 400, True),  # from botocore's throttling list
        ("RequestTimeoutException", 408, True),  # from botocore's transient list
        ("TransactionConflictException", 400, True),
        ("InternalFailure", None, True),  # a Kinesis per-record code has no status
        ("AccessDenied", 403, False),
        ("ValidationException", 400, False),
        ("ResourceNotFoundException", 400, False),
        ("NoSuchBucket", 404, False),
    ],
)
def test_given_a_service_error_when_translated_then_the_one_rule_decides_and_fields_are_kept(
    code: str, status: int | None, transient: bool
) -> None:
    error = translate(
        _client_error(code, status), "put s3://b/k", service="s3", resource="s3://b/k"
    )

    assert type(error) is (AwsTransientError if transient else AwsTerminalError)
    assert isinstance(error, TransientError if transient else TerminalError)
    assert str(error) == f"put s3://b/k: {code} ({status or 0})"
    assert (error.service, error.operation, error.code, error.status, error.resource) == (
        "s3",
        "PutObject",
        code,
        status or 0,
        "s3://b/k",
    )
    assert error.aws_message == f"{code} says no"


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ConnectTimeoutError(endpoint_url="http://x"), True),
        (ReadTimeoutError(endpoint_url="http://x"), True),
        (ConnectionClosedError(endpoint_url="http://x"), True),
        # The compaction store and the API used to retry these; no retry can fix them.
        (NoCredentialsError(), False),
        (ParamValidationError(report="Bucket is missing"), False),
    ],
)
def test_given_a_botocore_error_when_translated_then_only_connections_and_timeouts_are_transient(
    error: Exception, transient: bool
) -> None:
    translated_error = translate(error, "list s3://b/", service="s3")  # type: ignore[arg-type]

    assert isinstance(translated_error, AwsTransientError if transient else AwsTerminalError)
    name = type(error).__name__
    assert str(translated_error) == f"list s3://b/: {name}: {error}"
    assert (translated_error.code, translated_error.status) == (name, 0)


def test_given_a_block_that_fails_when_translated_then_the_error_is_raised_from_the_sdk_one() -> (
    None
):
    cause = _client_error("AccessDenied", 403, "GetItem")
    with pytest.raises(AwsTerminalError) as raised, translated("read order", service="dynamodb"):
        raise cause

    assert str(raised.value) == "read order: AccessDenied (403)"
    assert raised.value.__cause__ is cause
    assert raised.value.operation == "GetItem"


def test_given_a_block_that_raises_something_else_when_translated_then_it_passes_through() -> None:
    with pytest.raises(ValueError, match="^not AWS$"), translated("anything"):
        raise ValueError("not AWS")


def test_given_errors_when_asking_their_code_then_only_a_client_error_has_one() -> None:
    assert error_code(_client_error("NoSuchKey", 404)) == "NoSuchKey"
    assert error_code(ClientError({}, "GetObject")) == ""
    assert error_code(NoCredentialsError()) == ""


def test_given_an_error_when_retitled_then_class_and_fields_stay() -> None:
    error = translate(_client_error("ThrottlingException", 400), "BatchWriteItem on t")

    again = error.retitled("BatchWriteItem throttled: ThrottlingException")

    assert type(again) is AwsTransientError
    assert str(again) == "BatchWriteItem throttled: ThrottlingException"
    assert (again.code, again.status, again.operation) == ("ThrottlingException", 400, "PutObject")
    assert isinstance(again, AwsError)


def test_given_no_jitter_when_backing_off_then_the_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0, jitter="none")

    assert [backoff.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.delay(10_000) == 1.0  # no overflow for a long run of retries
    assert backoff.delay(0) == 0.0


@pytest.mark.parametrize(("jitter", "low"), [("full", 0.0), ("equal", 0.5)])
def test_given_jitter_when_backing_off_then_each_delay_lies_in_its_range(
    jitter: str, low: float
) -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0, jitter=jitter, rng=random.Random(7))  # type: ignore[arg-type]

    for retry in range(1, 8):
        ceiling = min(1.0, 0.1 * 2 ** (retry - 1))
        delays = [backoff.delay(retry) for _ in range(200)]
        assert all(low * ceiling <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling * (1 - low) / 2  # spread, not a constant


def test_given_a_sleep_when_waiting_then_it_gets_the_delay() -> None:
    slept: list[float] = []
    Backoff(base_s=0.25, cap_s=2.0, jitter="none", sleep=slept.append).wait(3)
    assert slept == [1.0]


def test_given_attempts_and_timeouts_when_building_a_client_then_one_config_carries_them() -> None:
    s3 = client(
        aws_session("http://127.0.0.1:9"),
        "s3",
        max_attempts=3,
        connect_timeout=2,
        read_timeout=8,
        max_pool_connections=4,
    )

    config = s3.meta.config
    assert config.retries == {
        "mode": "standard",
        "total_max_attempts": 4,
    }  # botocore counts the first try
    assert (config.connect_timeout, config.read_timeout, config.max_pool_connections) == (2, 8, 4)


def test_given_no_attempts_when_building_a_client_then_the_sessions_retry_config_is_kept() -> None:
    dynamodb = client(aws_session("http://127.0.0.1:9"), "dynamodb", parameter_validation=False)

    config = dynamodb.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 6}
    # botocore applies the setting when it builds the serializer (meta.config keeps True).
    assert not isinstance(dynamodb._serializer, ParamValidationDecorator)
    assert dynamodb.meta.endpoint_url == "http://127.0.0.1:9"
