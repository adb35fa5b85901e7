"""What ``GET /forecasts`` asks DynamoDB for: bounded reads, checked tokens, refusals as 400.

botocore's Stubber stands in for DynamoDB at the transport: the client validates every
request against the service model as it would against AWS, and each expected request is
asserted exactly (``expected_params``).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from pipeline.api.errors import BadRequest
from pipeline.api.forecasts import MAX_READS, ForecastQuery, query_forecasts, to_forecast
from pipeline.api.pagination import INVALID_TOKEN, decode_token, encode_token
from pipeline.api.routes import ApiClients, build_resolver, handle
from pipeline.settings import ApiSettings

TABLE = "forecasts"
PROJECTION = (
    "PK, SK, DateSK, forecast_val, confidence_lower, confidence_upper, run_id, generated_at"
)


def _client() -> Any:
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url="http://127.0.0.1:9",  # never reached: the Stubber answers
    )


def _query(location_id: str | None = None, limit: int = 4) -> ForecastQuery:
    return ForecastQuery.parse(
        sku_id="S1", location_id=location_id, start="2025-01-01", end="2025-01-31", limit=limit
    )


def _item(location: str, day: str) -> dict[str, Any]:
    return {
        "PK": {"S": "SKU#S1"},
        "SK": {"S": f"LOC#{location}#DATE#{day}"},
        "DateSK": {"S": f"DATE#{day}#LOC#{location}"},
        "forecast_val": {"N": "3"},
        "confidence_lower": {"N": "1"},
        "confidence_upper": {"N": "5"},
    }


def _by_date_request(limit: int, start_key: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "TableName": TABLE,
        "IndexName": "ByDate",
        "KeyConditionExpression": "PK = :pk AND DateSK BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {
            ":pk": {"S": "SKU#S1"},
            ":lo": {"S": "DATE#2025-01-01#LOC#"},
            ":hi": {"S": "DATE#2025-01-31#LOC#~"},
        },
        "ProjectionExpression": PROJECTION,
        "Limit": limit,
    }
    if start_key is not None:
        params["ExclusiveStartKey"] = start_key
    return params


def _key(location: str, day: str) -> dict[str, Any]:
    item = _item(location, day)
    return {k: item[k] for k in ("PK", "SK", "DateSK")}


def test_given_no_location_when_read_then_one_query_on_by_date_and_a_token_for_the_rest() -> None:
    client = _client()
    items = [_item(loc, "2025-01-02") for loc in ("A", "B", "C", "D", "E")]
    with Stubber(client) as stub:
        stub.add_response(
            "query",
            {"Items": items, "LastEvaluatedKey": _key("E", "2025-01-02")},
            _by_date_request(limit=5),
        )
        page = query_forecasts(client, TABLE, _query(limit=4))
        stub.assert_no_pending_responses()
    assert [i["location_id"] for i in page.items] == ["A", "B", "C", "D"]
    assert page.next_token is not None
    key = decode_token(
        page.next_token,
        partition="SKU#S1",
        attributes=("PK", "SK", "DateSK"),
        key_ok=lambda _: True,
    )
    assert key == {k: v["S"] for k, v in _key("D", "2025-01-02").items()}


def test_given_dynamodb_returns_short_pages_when_read_then_at_most_max_reads_queries() -> None:
    # DynamoDB stops at 1 MB a call; however short the pages, one request stays bounded.
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "query",
            {"Items": [_item("A", "2025-01-01")], "LastEvaluatedKey": _key("A", "2025-01-01")},
            _by_date_request(limit=5),
        )
        for n in range(1, MAX_READS):
            stub.add_response(
                "query",
                {"Items": [], "LastEvaluatedKey": _key(f"Z{n}", "2025-01-09")},
                _by_date_request(
                    limit=4,
                    start_key=_key("A", "2025-01-01")
                    if n == 1
                    else _key(f"Z{n - 1}", "2025-01-09"),
                ),
            )
        page = query_forecasts(client, TABLE, _query(limit=4))
        stub.assert_no_pending_responses()
    assert [i["location_id"] for i in page.items] == ["A"]
    assert page.next_token == encode_token(
        {k: v["S"] for k, v in _key(f"Z{MAX_READS - 1}", "2025-01-09").items()}
    )


def test_given_a_token_dynamodb_rejects_when_read_then_bad_request_not_a_server_error() -> None:
    client = _client()
    token = encode_token({k: v["S"] for k, v in _key("B", "2025-01-03").items()})
    with Stubber(client) as stub:
        stub.add_client_error(
            "query",
            service_error_code="ValidationException",
            service_message="The provided starting key is invalid",
            http_status_code=400,
            expected_params=_by_date_request(limit=5, start_key=_key("B", "2025-01-03")),
        )
        with pytest.raises(BadRequest) as e:
            query_forecasts(client, TABLE, _query(limit=4), token)
    assert e.value.message == INVALID_TOKEN


@pytest.mark.parametrize(
    ("location_id", "key"),
    [
        (None, {"PK": "SKU#S1", "SK": "LOC#A#DATE#2025-01-03"}),  # no index key
        (None, {**_key("B", "2025-01-03"), "DateSK": {"S": "DATE#2025-01-03#LOC#C"}}),
        (None, {**_key("B", "2025-01-03"), "SK": {"S": "LOC#B#DATE#2025-02-03"}}),
        (None, _key("B#x", "2025-01-03")),
        (None, _key("B", "2025-01-32")),
        (None, _key("B", "2024-12-31")),  # before the range
        ("A", {"PK": "SKU#S1", "SK": "LOC#B#DATE#2025-01-03"}),  # another location
        ("A", {"PK": "SKU#S1", "SK": "LOC#A#DATE#2025-1-3"}),
        ("A", {"PK": "SKU#S1", "SK": "LOC#A#DATE#2025-01-03", "DateSK": "x"}),
    ],
)
def test_given_a_token_off_the_key_patterns_when_read_then_refused_before_any_query(
    location_id: str | None, key: dict[str, Any]
) -> None:
    plain = {k: v["S"] if isinstance(v, dict) else v for k, v in key.items()}
    client = _client()
    with Stubber(client), pytest.raises(BadRequest) as e:  # no response queued: no call
        query_forecasts(client, TABLE, _query(location_id), encode_token(plain))
    assert e.value.message == INVALID_TOKEN


def _forecasts_event(query: dict[str, str]) -> dict[str, Any]:
    return {
        "resource": "/forecasts",
        "path": "/forecasts",
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "pathParameters": None,
        "requestContext": {
            "resourcePath": "/forecasts",
            "httpMethod": "GET",
            "stage": "v1",
            "authorizer": {"claims": {"cognito:groups": "ViewerGroup"}},
        },
        "body": None,
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    ("error_code", "status", "message"),
    [
        ("ValidationException", 400, INVALID_TOKEN),
        ("AccessDeniedException", 500, "the request could not be served; it was logged"),
    ],
)
def test_given_dynamodb_refuses_when_routed_then_an_answer_with_a_message_not_a_crash(
    error_code: str, status: int, message: str
) -> None:
    client = _client()
    token = encode_token({k: v["S"] for k, v in _key("B", "2025-01-03").items()})
    app = build_resolver(ApiSettings(forecast_table=TABLE), ApiClients(lambda _: client))
    event = _forecasts_event(
        {"sku_id": "S1", "from": "2025-01-01", "to": "2025-01-31", "next_token": token}
    )
    with Stubber(client) as stub:
        stub.add_client_error("query", service_error_code=error_code, http_status_code=400)
        response = handle(app, event, None)
    assert (response["statusCode"], json.loads(response["body"])) == (status, {"message": message})


def test_given_an_item_of_a_stamped_run_when_shaped_then_its_run_id_and_time_are_returned() -> None:
    item = {
        **_item("A", "2025-01-02"),
        "run_id": {"S": "jr_0123"},
        "generated_at": {"S": "2025-01-01T06:00:00+00:00"},
    }
    assert to_forecast(item) == {
        "sku_id": "S1",
        "location_id": "A",
        "date": "2025-01-02",
        "forecast_val": 3.0,
        "confidence_lower": 1.0,
        "confidence_upper": 5.0,
        "run_id": "jr_0123",
        "generated_at": "2025-01-01T06:00:00+00:00",
    }


def test_given_an_item_written_before_runs_were_stamped_when_shaped_then_they_are_null() -> None:
    shaped = to_forecast(_item("A", "2025-01-02"))
    assert (shaped["run_id"], shaped["generated_at"]) == (None, None)
