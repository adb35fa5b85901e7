"""The fault injector on a client that never reaches the network: wire faults replace every
HTTP attempt, so each test sees exactly the error botocore would parse from the service."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from pipeline.faults import FaultInjector, FaultPlan, FaultRule, inject

# Port 9 (discard) on loopback: nothing answers, so only an injected response can come back.
_ENDPOINT = "http://127.0.0.1:9"
_NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1)


def _client(service: str) -> object:
    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).client(service, endpoint_url=_ENDPOINT, config=_NO_RETRIES)


def test_given_s3_server_error_rule_when_put_then_client_error_internal_error_500() -> None:
    s3 = _client("s3")
    injector = inject(
        s3, FaultPlan((FaultRule("s3.PutObject", "server_error", calls=frozenset({1})),))
    )
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket="b", Key="k", Body=b"x")  # type: ignore[attr-defined]
    assert caught.value.response["Error"]["Code"] == "InternalError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert injector.injected == {"s3.PutObject:server_error": 1}


def test_given_dynamodb_throttle_rule_when_put_item_then_provisioned_throughput_exceeded() -> None:
    ddb = _client("dynamodb")
    inject(ddb, FaultPlan((FaultRule("dynamodb.PutItem", "throttle", rate=1.0),)))
    with pytest.raises(ClientError) as caught:
        ddb.put_item(TableName="t", Item={"PK": {"S": "a"}})  # type: ignore[attr-defined]
    assert caught.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_given_kinesis_throttle_rule_when_put_records_then_provisioned_throughput_exceeded() -> (
    None
):
    kinesis = _client("kinesis")
    inject(kinesis, FaultPlan((FaultRule("kinesis.PutRecords", "throttle", rate=1.0),)))
    with pytest.raises(ClientError) as caught:
        kinesis.put_records(  # type: ignore[attr-defined]
            StreamName="s", Records=[{"Data": b"x", "PartitionKey": "k"}]
        )
    assert caught.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"


@pytest.mark.parametrize(
    ("kind", "error"),
    [("read_timeout", ReadTimeoutError), ("connect_timeout", ConnectTimeoutError)],
)
def test_given_timeout_rule_when_called_then_botocore_timeout_error(
    kind: str, error: type[Exception]
) -> None:
    s3 = _client("s3")
    inject(s3, FaultPlan((FaultRule("s3.GetObject", kind, rate=1.0),)))  # type: ignore[arg-type]
    with pytest.raises(error, match="127.0.0.1:9"):
        s3.get_object(Bucket="b", Key="k")  # type: ignore[attr-defined]


def test_given_retrying_client_and_two_scheduled_faults_when_called_then_retries_count_calls() -> (
    None
):
    """botocore retries the first injected 500 and gets the second: two attempts, two faults."""
    s3 = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=_ENDPOINT,
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1),
    )
    injector = inject(
        s3, FaultPlan((FaultRule("s3.PutObject", "server_error", calls=frozenset({1, 2})),))
    )
    with pytest.raises(ClientError):
        s3.put_object(Bucket="b", Key="k", Body=b"x")
    assert injector.calls["attempt:s3.PutObject"] == 2
    assert injector.total_injected == 2


def test_given_limit_when_rate_one_then_faults_stop_at_limit() -> None:
    ddb = _client("dynamodb")
    injector = inject(
        ddb, FaultPlan((FaultRule("dynamodb.GetItem", "throttle", rate=1.0, limit=1),))
    )
    with pytest.raises(ClientError):
        ddb.get_item(TableName="t", Key={"PK": {"S": "a"}})  # type: ignore[attr-defined]
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the real (refused) connection
        ddb.get_item(TableName="t", Key={"PK": {"S": "a"}})  # type: ignore[attr-defined]
    assert not isinstance(caught.value, ClientError)
    assert injector.total_injected == 1


def test_given_reset_when_new_plan_then_counters_start_over() -> None:
    injector = FaultInjector(FaultPlan((FaultRule("s3.PutObject", "kill", rate=1.0),)))
    injector.injected["s3.PutObject:kill"] = 3
    injector.reset(FaultPlan())
    assert injector.total_injected == 0
    assert injector.plan == FaultPlan()


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (lambda: FaultRule("PutObject", "kill"), "operation must be '<service>.<Operation>'"),
        (lambda: FaultRule("s3.PutObject", "kill", rate=1.5), "rate must be within [0, 1]"),
        (lambda: FaultRule("s3.PutObject", "partial"), "partial faults apply to"),
        (lambda: FaultRule("kinesis.PutRecords", "partial", share=0), "share must be"),
    ],
)
def test_given_invalid_rule_when_built_then_value_error(rule: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        rule()  # type: ignore[operator]
