"""A BatchWriteItem timeout that outlasts botocore's retries becomes a TransientError.

Found by the fault injector: ``BatchWriter`` used to catch only ``ClientError``, so a lost
response left the Glue job with a raw botocore exception that a scheduler re-running on
transient failures would not recognise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pipeline.errors import TransientError
from pipeline.faults import FaultPlan, FaultRule, inject
from pipeline.forecasting.dynamo import BatchWriter

if TYPE_CHECKING:
    from pipeline.local.stack import LocalStack


def test_given_every_batch_write_response_lost_when_writing_then_transient_error(
    stack: LocalStack,
) -> None:
    client = stack.session().client("dynamodb")
    inject(client, FaultPlan((FaultRule("dynamodb.BatchWriteItem", "response_lost", rate=1.0),)))
    writer = BatchWriter(
        stack.ref("ForecastTable"), dynamodb_client=client, workers=1, max_attempts=2
    )
    with pytest.raises(TransientError, match=r"^BatchWriteItem on .*-forecasts: "):
        writer.write([{"PK": "SKU#A", "SK": "LOC#L1#DATE#2026-01-01", "forecast_val": 1}])


def test_given_one_batch_write_response_lost_when_writing_then_the_item_lands_once(
    stack: LocalStack,
) -> None:
    client = stack.session().client("dynamodb")
    inject(
        client,
        FaultPlan((FaultRule("dynamodb.BatchWriteItem", "response_lost", calls=frozenset({1})),)),
    )
    writer = BatchWriter(stack.ref("ForecastTable"), dynamodb_client=client, workers=1)
    item = {"PK": "SKU#A", "SK": "LOC#L1#DATE#2026-01-01", "forecast_val": 1}
    assert writer.write([item]) == 1
    items = client.scan(TableName=stack.ref("ForecastTable"))["Items"]
    assert [(i["PK"]["S"], i["SK"]["S"]) for i in items] == [(item["PK"], item["SK"])]
