"""``GET /forecasts``: one SKU's forecasts for a date range, from the Forecasts table.

Items are keyed ``PK = SKU#<sku>``, ``SK = LOC#<location>#DATE#<yyyy-mm-dd>``. With a
location the date range is a sort-key range (``BETWEEN``), so DynamoDB reads exactly the
items returned. Without one, every location of the SKU is read from the one partition and
the dates are filtered here: DynamoDB filter expressions cannot use key attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pipeline.api.aws import aws_errors
from pipeline.api.errors import BadRequest
from pipeline.api.pagination import Key, decode_token, encode_token
from pipeline.api.validation import check_id, check_range, parse_date

if TYPE_CHECKING:
    from datetime import date

    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_LIMIT: Final = 500
MAX_LIMIT: Final = 1000


@dataclass(frozen=True)
class ForecastQuery:
    """A validated request: the SKU, an optional location, the dates and the page."""

    sku_id: str
    location_id: str | None
    start: date
    end: date
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(
        cls,
        *,
        sku_id: str,
        location_id: str | None,
        start: str,
        end: str,
        limit: int | None = None,
    ) -> ForecastQuery:
        """Validate raw query parameters; raises :class:`BadRequest` with the reason."""
        query = cls(
            sku_id=check_id("sku_id", sku_id),
            location_id=None if location_id is None else check_id("location_id", location_id),
            start=parse_date("from", start),
            end=parse_date("to", end),
            limit=DEFAULT_LIMIT if limit is None else limit,
        )
        check_range(query.start, query.end)
        if not 1 <= query.limit <= MAX_LIMIT:
            raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
        return query

    @property
    def partition(self) -> str:
        return f"SKU#{self.sku_id}"

    def sort_key_bounds(self) -> tuple[str, str] | None:
        """The ``BETWEEN`` bounds when a location is given (dates sort as text)."""
        if self.location_id is None:
            return None
        prefix = f"LOC#{self.location_id}#DATE#"
        return prefix + self.start.isoformat(), prefix + self.end.isoformat()

    def matches(self, sort_key: str) -> bool:
        """Whether an item's sort key is one this query returns."""
        parsed = parse_sort_key(sort_key)
        if parsed is None:
            return False
        location, day = parsed
        if self.location_id is not None and location != self.location_id:
            return False
        return self.start.isoformat() <= day <= self.end.isoformat()

    def may_resume_after(self, sort_key: str) -> bool:
        """Whether a page token's sort key lies inside this query (a guard on tampering)."""
        if self.location_id is None:
            return parse_sort_key(sort_key) is not None
        return self.matches(sort_key)


def parse_sort_key(sort_key: str) -> tuple[str, str] | None:
    """``(location_id, yyyy-mm-dd)`` of ``LOC#<location>#DATE#<day>``, or ``None``."""
    head, sep, day = sort_key.rpartition("#DATE#")
    if not sep or not head.startswith("LOC#"):
        return None
    return head.removeprefix("LOC#"), day


@dataclass(frozen=True)
class ForecastPage:
    """One page of forecasts and the token of the next one (``None`` on the last page)."""

    items: list[dict[str, Any]]
    next_token: str | None

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "count": len(self.items), "next_token": self.next_token}


def _number(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name, {}).get("N")
    return None if value is None else float(value)


def to_forecast(item: dict[str, Any]) -> dict[str, Any]:
    """The public shape of one Forecasts item."""
    sku = item["PK"]["S"].removeprefix("SKU#")
    location, day = parse_sort_key(item["SK"]["S"]) or ("", "")
    return {
        "sku_id": sku,
        "location_id": location,
        "date": day,
        "forecast_val": _number(item, "forecast_val"),
        "confidence_lower": _number(item, "confidence_lower"),
        "confidence_upper": _number(item, "confidence_upper"),
    }


def query_forecasts(
    dynamodb: DynamoDBClient, table: str, query: ForecastQuery, token: str | None = None
) -> ForecastPage:
    """Read one page of ``query`` from ``table``, resuming after ``token`` when given."""
    start_key: Key | None = None
    if token is not None:
        start_key = decode_token(
            token, partition=query.partition, sort_key_ok=query.may_resume_after
        )
    kwargs: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": "PK, SK, forecast_val, confidence_lower, confidence_upper",
        "ExpressionAttributeValues": {":pk": {"S": query.partition}},
    }
    bounds = query.sort_key_bounds()
    if bounds is None:
        kwargs["KeyConditionExpression"] = "PK = :pk AND begins_with(SK, :loc)"
        kwargs["ExpressionAttributeValues"][":loc"] = {"S": "LOC#"}
    else:
        kwargs["KeyConditionExpression"] = "PK = :pk AND SK BETWEEN :lo AND :hi"
        kwargs["ExpressionAttributeValues"].update(
            {":lo": {"S": bounds[0]}, ":hi": {"S": bounds[1]}}
        )
    items: list[dict[str, Any]] = []
    while True:
        if start_key is not None:
            kwargs["ExclusiveStartKey"] = {k: {"S": v} for k, v in start_key.items()}
        # Ask for one more than needed: it tells whether a next page exists.
        kwargs["Limit"] = query.limit - len(items) + 1
        with aws_errors("query forecasts"):
            response = dynamodb.query(**kwargs)
        for item in response.get("Items", []):
            if not query.matches(item["SK"]["S"]):
                continue
            if len(items) == query.limit:
                last = items[-1]
                return ForecastPage(
                    items, encode_token({"PK": query.partition, "SK": _sort_key(last)})
                )
            items.append(to_forecast(item))
        last_key = response.get("LastEvaluatedKey")
        if not last_key:
            return ForecastPage(items, None)
        start_key = {"PK": last_key["PK"]["S"], "SK": last_key["SK"]["S"]}  # type: ignore[index]


def _sort_key(forecast: dict[str, Any]) -> str:
    return f"LOC#{forecast['location_id']}#DATE#{forecast['date']}"
