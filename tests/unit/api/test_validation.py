"""Input checks: each bad input fails with its exact message."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.api.errors import BadRequest
from pipeline.api.forecasts import ForecastQuery, parse_date_sort_key, parse_sort_key
from pipeline.api.orders import check_idempotency_key, order_id
from pipeline.api.users import check_group, check_username
from pipeline.api.validation import check_id, check_range, parse_date


@pytest.mark.parametrize("value", ["SKU-1", "a", "A_b-9", "x" * 64])
def test_given_a_contract_id_when_checked_then_it_is_returned(value: str) -> None:
    assert check_id("sku_id", value) == value


@pytest.mark.parametrize("value", ["", "x" * 65, "SKU#1", "a/b", "é", "a b"])
def test_given_an_id_breaking_the_contract_when_checked_then_bad_request(value: str) -> None:
    with pytest.raises(BadRequest) as e:
        check_id("sku_id", value)
    assert e.value.message == "sku_id must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -"
    assert e.value.status == 400


def test_given_a_wrongly_written_date_when_parsed_then_bad_request() -> None:
    with pytest.raises(BadRequest) as e:
        parse_date("from", "01/02/2025")
    assert e.value.message == "from must be a date written yyyy-mm-dd, got '01/02/2025'"


def test_given_an_impossible_date_when_parsed_then_bad_request() -> None:
    with pytest.raises(BadRequest) as e:
        parse_date("to", "2025-02-29")
    assert e.value.message == "to is not a calendar date: '2025-02-29'"


def test_given_to_before_from_when_checked_then_bad_request() -> None:
    with pytest.raises(BadRequest) as e:
        check_range(date(2025, 3, 2), date(2025, 3, 1))
    assert e.value.message == "to (2025-03-01) is before from (2025-03-02)"


def test_given_a_range_of_366_days_when_checked_then_accepted_and_367_refused() -> None:
    assert check_range(date(2024, 1, 1), date(2024, 12, 31)) == 366
    with pytest.raises(BadRequest) as e:
        check_range(date(2024, 1, 1), date(2025, 1, 1))
    assert e.value.message == "from..to spans 367 days; at most 366 are allowed"


def test_given_a_query_with_a_location_then_the_sort_key_range_is_between_its_dates() -> None:
    query = ForecastQuery.parse(sku_id="S1", location_id="L1", start="2025-01-01", end="2025-01-28")
    assert query.partition == "SKU#S1"
    assert query.index is None
    assert query.key_condition() == (
        "PK = :pk AND SK BETWEEN :lo AND :hi",
        {
            ":pk": {"S": "SKU#S1"},
            ":lo": {"S": "LOC#L1#DATE#2025-01-01"},
            ":hi": {"S": "LOC#L1#DATE#2025-01-28"},
        },
    )
    assert query.matches("LOC#L1#DATE#2025-01-28")
    assert not query.matches("LOC#L2#DATE#2025-01-05")
    assert not query.matches("LOC#L1#DATE#2025-01-29")


def test_given_a_query_without_location_then_the_date_range_is_a_key_condition_on_by_date() -> None:
    query = ForecastQuery.parse(sku_id="S1", location_id=None, start="2025-01-01", end="2025-01-02")
    assert query.index == "ByDate"
    assert query.key_condition() == (
        "PK = :pk AND DateSK BETWEEN :lo AND :hi",
        {
            ":pk": {"S": "SKU#S1"},
            ":lo": {"S": "DATE#2025-01-01#LOC#"},
            ":hi": {"S": "DATE#2025-01-02#LOC#~"},
        },
    )
    low, high = query.sort_key_bounds()
    # Every id character sorts between the bounds: the first and last day are whole.
    assert low < "DATE#2025-01-01#LOC#-"
    assert "DATE#2025-01-02#LOC#zzzz" < high
    assert not low <= "DATE#2025-01-03#LOC#A" <= high
    assert query.matches("LOC#L2#DATE#2025-01-02")
    assert not query.matches("LOC#L2#DATE#2025-01-03")
    assert not query.matches("garbage")


def test_given_a_limit_out_of_bounds_when_parsed_then_bad_request() -> None:
    with pytest.raises(BadRequest) as e:
        ForecastQuery.parse(
            sku_id="S", location_id=None, start="2025-01-01", end="2025-01-01", limit=0
        )
    assert e.value.message == "limit must be between 1 and 1000"


def test_given_sort_keys_when_parsed_then_location_and_day() -> None:
    assert parse_sort_key("LOC#L-1#DATE#2025-01-01") == ("L-1", "2025-01-01")
    assert parse_date_sort_key("DATE#2025-01-01#LOC#L-1") == ("L-1", "2025-01-01")
    assert parse_sort_key("DATE#2025-01-01") is None


@pytest.mark.parametrize(
    "sort_key",
    [
        "LOC#L#1#DATE#2025-01-01",  # '#' is a delimiter, never an id character
        "LOC#L 1#DATE#2025-01-01",
        "LOC##DATE#2025-01-01",
        f"LOC#{'L' * 65}#DATE#2025-01-01",
        "LOC#L1#DATE#2025-02-30",  # not a calendar date
        "LOC#L1#DATE#2025-1-01",
        "LOC#L1#DATE#2025-01-01#",
        "LOC#L1#DATE#2025-01-01\n",
        "LOC#L1#DATE#２０２５-01-01",  # other Unicode digits
    ],
)
def test_given_a_sort_key_off_the_id_or_date_pattern_when_parsed_then_none(sort_key: str) -> None:
    assert parse_sort_key(sort_key) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "the Idempotency-Key header is required"),
        ("", "the Idempotency-Key header is required"),
        ("has space", "Idempotency-Key must be 1 to 128 characters of A-Z, a-z, 0-9, _ . : or -"),
        ("k" * 129, "Idempotency-Key must be 1 to 128 characters of A-Z, a-z, 0-9, _ . : or -"),
    ],
)
def test_given_a_bad_idempotency_key_when_checked_then_bad_request(
    value: str | None, message: str
) -> None:
    with pytest.raises(BadRequest) as e:
        check_idempotency_key(value)
    assert e.value.message == message


def test_given_the_same_key_from_two_callers_then_two_order_ids() -> None:
    assert order_id("alice", "k1") == order_id("alice", "k1")
    assert order_id("alice", "k1") != order_id("bob", "k1")


def test_given_unknown_group_or_bad_username_when_checked_then_bad_request() -> None:
    with pytest.raises(BadRequest) as e:
        check_group("RootGroup")
    assert e.value.message == "group must be one of AdminGroup, PlannerGroup, ViewerGroup"
    with pytest.raises(BadRequest) as e:
        check_username("a/b")
    assert e.value.message == "username must be 1 to 128 characters of A-Z, a-z, 0-9, _ . @ + or -"
