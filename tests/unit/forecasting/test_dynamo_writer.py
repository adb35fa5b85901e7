"""The BatchWriter without AWS: item serialisation, client settings, exactly-once delivery."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError, NoCredentialsError

from pipeline.aws_errors import AwsTransientError
from pipeline.errors import TerminalError, TransientError
from pipeline.forecasting.dynamo import (
    BatchWriter,
    ForecastRow,
    NonFiniteForecast,
    attribute_value,
    forecast_item,
)
from pipeline.local.emulator import aws_session


@pytest.mark.parametrize(
    "value",
    [
        "SKU#A",
        "",
        0,
        -7,
        1_767_225_600,
        Decimal("3.1416"),
        Decimal("-0.5"),
        Decimal("1E+3"),
        True,
        None,
        b"\x00\x01",
        ["a", 1],
        {"k": Decimal("2")},
        {"x", "y"},
    ],
)
def test_given_a_value_when_serialising_then_it_matches_boto3s_type_serializer(
    value: Any,
) -> None:
    assert attribute_value(value) == TypeSerializer().serialize(value)


def test_given_a_float_when_serialising_then_type_error_as_boto3_raises() -> None:
    with pytest.raises(TypeError, match="Float types are not supported"):
        attribute_value(1.5)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("NaN"), "NaN"),
        (Decimal("Infinity"), "Infinity"),
        (Decimal("-Infinity"), "-Infinity"),
    ],
)
def test_given_a_number_dynamodb_cannot_hold_when_serialising_then_terminal_error(
    value: Decimal, shown: str
) -> None:
    with pytest.raises(TerminalError) as raised:
        attribute_value(value)
    assert str(raised.value) == f"DynamoDB cannot store the number {shown}"


@pytest.mark.parametrize("field", ["forecast_val", "confidence_lower", "confidence_upper"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_given_a_non_finite_forecast_when_building_its_item_then_terminal_error_names_the_series(
    field: str, bad: float
) -> None:
    numbers = {"forecast_val": 2.0, "confidence_lower": 1.0, "confidence_upper": 3.0, field: bad}
    row = ForecastRow(sku_id="SKU-1", location_id="L-9", day=date(2026, 3, 4), **numbers)

    with pytest.raises(NonFiniteForecast) as raised:
        forecast_item(row, now=datetime(2026, 3, 1, tzinfo=UTC), run_id="r")

    assert str(raised.value) == (
        f"forecast of sku_id=SKU-1 location_id=L-9 for 2026-03-04 is not finite: {field}={bad}"
    )
    assert isinstance(raised.value, TerminalError)


def test_given_workers_when_building_the_client_then_one_pooled_connection_per_worker() -> None:
    writer = BatchWriter("t", session=aws_session("http://127.0.0.1:9"), workers=6)

    config = writer.client.meta.config
    assert config.max_pool_connections == 6
    assert config.retries["mode"] == "standard"  # the session's retry mode is kept


class FlakyClient:
    """Throttles every 4th call and leaves the last 3 requests of every other accepted batch
    unprocessed; records every request it accepts. Called from several threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.written: dict[tuple[str, str], int] = {}

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            self.calls += 1
            call = self.calls
        if call % 4 == 0:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "slow down"}},
                "BatchWriteItem",
            )
        ((table, requests),) = RequestItems.items()
        cut = len(requests) - 3 if call % 2 and len(requests) > 3 else len(requests)
        with self.lock:
            for request in requests[:cut]:
                item = request["PutRequest"]["Item"]
                key = (item["PK"]["S"], item["SK"]["S"])
                self.written[key] = self.written.get(key, 0) + 1
        return {"UnprocessedItems": {table: requests[cut:]} if requests[cut:] else {}}


def _items(count: int) -> list[dict[str, Any]]:
    return [
        {"PK": f"SKU#{i % 37}", "SK": f"LOC#L#DATE#{i}", "forecast_val": Decimal("1.5")}
        for i in range(count)
    ]


def test_given_parallel_throttling_and_leftovers_when_writing_then_each_item_lands_once() -> None:
    client = FlakyClient()
    writer = BatchWriter("t", dynamodb_client=client, workers=4, sleep=lambda _: None)
    seen: list[tuple[int, int]] = []

    written = writer.write(_items(1000), progress=lambda done, total: seen.append((done, total)))

    assert written == 1000
    assert len(client.written) == 1000
    assert set(client.written.values()) == {1}
    assert client.calls > 40  # 40 batches, and retries happened
    assert seen[-1] == (1000, 1000)


def test_given_throttling_that_never_ends_when_writing_then_transient_error() -> None:
    class Throttled:
        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "no"}},
                "BatchWriteItem",
            )

    delays: list[float] = []
    writer = BatchWriter(
        "t", dynamodb_client=Throttled(), workers=2, max_attempts=5, sleep=delays.append
    )
    with pytest.raises(
        TransientError, match="^BatchWriteItem throttled: ProvisionedThroughputExceededException$"
    ):
        writer.write(_items(3))
    assert len(delays) == 4
    assert all(0.05 * 2**i / 2 <= d <= 0.05 * 2**i for i, d in enumerate(delays))


class Failing:
    """Answers the first ``failures`` calls with ``error``, then writes everything."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return {"UnprocessedItems": {}}


def _server_error() -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "InternalServerError", "Message": "oops"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        },
        "BatchWriteItem",
    )


def test_given_a_500_when_writing_then_the_batch_is_retried_and_lands() -> None:
    # The writer used to treat a 500 InternalServerError as terminal; by the one rule of
    # pipeline.aws_errors a 5xx is transient.
    client = Failing(_server_error(), failures=2)
    delays: list[float] = []
    writer = BatchWriter("t", dynamodb_client=client, workers=1, sleep=delays.append)

    assert writer.write(_items(3)) == 3
    assert client.calls == 3
    assert len(delays) == 2


def test_given_500s_that_never_end_when_writing_then_transient_error_with_its_fields() -> None:
    writer = BatchWriter(
        "t",
        dynamodb_client=Failing(_server_error(), failures=99),
        workers=1,
        max_attempts=3,
        sleep=lambda _: None,
    )
    with pytest.raises(AwsTransientError) as raised:
        writer.write(_items(3))
    assert str(raised.value) == "BatchWriteItem on t: InternalServerError (500)"
    error = raised.value
    assert (error.service, error.operation, error.code, error.status, error.resource) == (
        "dynamodb",
        "BatchWriteItem",
        "InternalServerError",
        500,
        "t",
    )


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            ClientError(
                {
                    "Error": {"Code": "ValidationException", "Message": "bad"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "BatchWriteItem",
            ),
            "BatchWriteItem on t: ValidationException (400)",
        ),
        (
            NoCredentialsError(),
            "BatchWriteItem on t: NoCredentialsError: Unable to locate credentials",
        ),
    ],
)
def test_given_a_terminal_error_when_writing_then_it_is_raised_without_a_retry(
    error: Exception, message: str
) -> None:
    client = Failing(error, failures=99)
    writer = BatchWriter("t", dynamodb_client=client, workers=1, sleep=lambda _: None)

    with pytest.raises(TerminalError) as raised:
        writer.write(_items(3))
    assert str(raised.value) == message
    assert client.calls == 1


def test_given_a_row_when_building_its_item_then_the_by_date_key_names_the_same_forecast() -> None:
    row = ForecastRow(
        sku_id="SKU-1",
        location_id="L-9",
        day=date(2026, 3, 4),
        forecast_val=2.0,
        confidence_lower=1.0,
        confidence_upper=3.0,
    )
    item = forecast_item(row, now=datetime(2026, 3, 1, tzinfo=UTC), run_id="r")
    assert (item["PK"], item["SK"], item["DateSK"]) == (
        "SKU#SKU-1",
        "LOC#L-9#DATE#2026-03-04",
        "DATE#2026-03-04#LOC#L-9",
    )
