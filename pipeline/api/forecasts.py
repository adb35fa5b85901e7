"""``GET /forecasts``: one SKU's forecasts for a date range, from the Forecasts table.

Items are keyed ``PK = SKU#<sku>``, ``SK = LOC#<location>#DATE#<yyyy-mm-dd>``, and carry
``DateSK = DATE#<yyyy-mm-dd>#LOC#<location>``, the sort key of the ``ByDate`` index. Either
way the date range is a key condition, so DynamoDB reads exactly the items returned:

- with a location, ``SK BETWEEN`` on the table (items in date order);
- without one, ``DateSK BETWEEN`` on ``ByDate`` (items by date, then location).

Each request makes at most :data:`MAX_READS` Query calls and returns a ``next_token``
whenever more items may follow, so no request reads more than it returns plus one item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from pipeline.api.errors import BadRequest
from pipeline.api.pagination import INVALID_TOKEN, Key, decode_token, encode_token
from pipeline.api.validation import DATE_PATTERN, ID_PATTERN, check_id, check_range, parse_date
from pipeline.aws_errors import VALIDATION, error_code, translated
from pipeline.lake.layout import BY_DATE_INDEX, DATE_SORT_KEY

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_LIMIT: Final = 500
MAX_LIMIT: Final = 1000
#: Query calls per request. One normally fills a page (1,000 items are ~150 KB, under
#: DynamoDB's 1 MB a call); the others only follow a page DynamoDB cut short.
MAX_READS: Final = 3
NUMBERS: Final = ("forecast_val", "confidence_lower", "confidence_upper")
#: Which forecast job run wrote the item, and when it ran (ISO-8601 UTC). Items written
#: before the job stamped its runs lack them (``null``) until their TTL removes them.
PROVENANCE: Final = ("run_id", "generated_at")

_ID = ID_PATTERN.removeprefix("^").removesuffix("$")
_DAY = DATE_PATTERN.removeprefix("^").removesuffix("$")
_SORT_KEY = re.compile(rf"LOC#(?P<location>{_ID})#DATE#(?P<day>{_DAY})")
_DATE_SORT_KEY = re.compile(rf"DATE#(?P<day>{_DAY})#LOC#(?P<location>{_ID})")
#: Above every id character (``[A-Za-z0-9_-]``): ``DATE#<day>#LOC#~`` ends a day's keys.
_AFTER_IDS: Final = "~"


def _parsed(pattern: re.Pattern[str], key: str) -> tuple[str, str] | None:
    found = pattern.fullmatch(key)
    if found is None:
        return None
    try:
        date.fromisoformat(found["day"])
    except ValueError:
        return None
    return found["location"], found["day"]


def parse_sort_key(sort_key: str) -> tuple[str, str] | None:
    """``(location_id, yyyy-mm-dd)`` of ``LOC#<location>#DATE#<day>``, or ``None``.

    Only contract ids and calendar dates parse: the key of a page token is checked here.
    """
    return _parsed(_SORT_KEY, sort_key)


def parse_date_sort_key(date_sort_key: str) -> tuple[str, str] | None:
    """``(location_id, yyyy-mm-dd)`` of ``DATE#<day>#LOC#<location>``, or ``None``."""
    return _parsed(_DATE_SORT_KEY, date_sort_key)


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

    @property
    def index(self) -> str | None:
        """``ByDate`` without a location, the table itself (``None``) with one."""
        return BY_DATE_INDEX if self.location_id is None else None

    @property
    def key_attributes(self) -> tuple[str, ...]:
        """The attributes of a key to resume from (an index adds its own sort key)."""
        return ("PK", "SK") if self.index is None else ("PK", "SK", DATE_SORT_KEY)

    def sort_key_bounds(self) -> tuple[str, str]:
        """The ``BETWEEN`` bounds of the sort key (``SK`` or ``DateSK``); dates sort as text."""
        start, end = self.start.isoformat(), self.end.isoformat()
        if self.location_id is None:
            return f"DATE#{start}#LOC#", f"DATE#{end}#LOC#{_AFTER_IDS}"
        prefix = f"LOC#{self.location_id}#DATE#"
        return prefix + start, prefix + end

    def key_condition(self) -> tuple[str, dict[str, Any]]:
        """``KeyConditionExpression`` and its values: the partition and the date range."""
        sort_key = "SK" if self.index is None else DATE_SORT_KEY
        low, high = self.sort_key_bounds()
        return f"PK = :pk AND {sort_key} BETWEEN :lo AND :hi", {
            ":pk": {"S": self.partition},
            ":lo": {"S": low},
            ":hi": {"S": high},
        }

    def matches(self, sort_key: str) -> bool:
        """Whether a table sort key is one this query returns."""
        parsed = parse_sort_key(sort_key)
        if parsed is None:
            return False
        location, day = parsed
        if self.location_id is not None and location != self.location_id:
            return False
        return self.start.isoformat() <= day <= self.end.isoformat()

    def may_resume_after(self, key: Key) -> bool:
        """Whether a page token's key is one this query could have issued.

        Each sort key must be a contract id and a calendar date in this query's range (and
        location); an index key must name the same forecast as the table key. Anything
        else would reach DynamoDB as a start key outside the query, which it rejects.
        """
        if not self.matches(key["SK"]):
            return False
        if self.index is None:
            return True
        return parse_date_sort_key(key[DATE_SORT_KEY]) == parse_sort_key(key["SK"])


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


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return None if value is None else str(value)


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
        **{name: _text(item, name) for name in PROVENANCE},
    }


def _query(dynamodb: DynamoDBClient, kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        return dict(dynamodb.query(**kwargs))
    except ClientError as e:
        # The request's other inputs were validated, so DynamoDB refusing the call with a
        # start key means the token: the client's mistake, not a server error.
        if "ExclusiveStartKey" in kwargs and error_code(e) == VALIDATION:
            raise BadRequest(INVALID_TOKEN) from e
        with translated("query forecasts", service="dynamodb"):
            raise


def _key(item: dict[str, Any], attributes: tuple[str, ...]) -> Key:
    return {name: item[name]["S"] for name in attributes}


def query_forecasts(
    dynamodb: DynamoDBClient, table: str, query: ForecastQuery, token: str | None = None
) -> ForecastPage:
    """Read one page of ``query`` from ``table``, resuming after ``token`` when given."""
    attributes = query.key_attributes
    start_key: Key | None = None
    if token is not None:
        start_key = decode_token(
            token, partition=query.partition, attributes=attributes, key_ok=query.may_resume_after
        )
    expression, values = query.key_condition()
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": expression,
        "ExpressionAttributeValues": values,
        "ProjectionExpression": ", ".join((*attributes, *NUMBERS, *PROVENANCE)),
    }
    if query.index is not None:
        kwargs["IndexName"] = query.index
    items: list[dict[str, Any]] = []
    for _ in range(MAX_READS):
        if start_key is not None:
            kwargs["ExclusiveStartKey"] = {k: {"S": v} for k, v in start_key.items()}
        # One more than needed: it tells whether a next page exists.
        kwargs["Limit"] = query.limit - len(items) + 1
        response = _query(dynamodb, kwargs)
        for item in response.get("Items", []):
            if len(items) == query.limit:
                return ForecastPage(
                    [to_forecast(i) for i in items], encode_token(_key(items[-1], attributes))
                )
            items.append(item)
        last_key = response.get("LastEvaluatedKey")
        if not last_key:
            return ForecastPage([to_forecast(i) for i in items], None)
        start_key = _key(last_key, attributes)
    # Every read was cut short by DynamoDB's 1 MB: what was read, and where to go on from.
    return ForecastPage(
        [to_forecast(i) for i in items], encode_token(start_key) if start_key else None
    )
