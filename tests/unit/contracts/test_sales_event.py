"""The published schema and the typed model of sales event v1."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime

import jsonschema
import pytest

from pipeline.contracts import SalesEvent, load_schema, parse_event, parse_plain, validate_event
from pipeline.errors import RejectedRecord

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
GOOD = {
    "event_id": "evt-1",
    "event_type": "sale",
    "sku_id": "SKU_055",
    "location_id": "LON_01",
    "quantity": 3,
    "unit_price": 1.25,
    "event_time": "2026-11-25T10:15:00+01:00",
    "till": 7,
}


def test_the_published_schema_is_a_valid_draft7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(load_schema())


def test_given_a_valid_event_when_parsed_then_typed_model_in_utc_and_extra_fields_kept() -> None:
    event, original = parse_event(json.dumps(GOOD).encode(), now=NOW)
    assert event == SalesEvent(
        event_id="evt-1",
        event_type="sale",
        sku_id="SKU_055",
        location_id="LON_01",
        quantity=3,
        unit_price=1.25,
        event_time=datetime(2026, 11, 25, 9, 15, tzinfo=UTC),
    )
    assert original["till"] == 7
    assert event.partition_key == "SKU_055#LON_01"


def test_given_model_when_serialised_then_it_validates_against_the_published_schema() -> None:
    event = validate_event(GOOD, now=NOW)
    jsonschema.validate(event.to_json_dict(), load_schema())
    assert validate_event(event.to_json_dict(), now=NOW) == event


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event_type": "theft"}, "schema_violation"),
        ({"sku_id": "SKU#1"}, "schema_violation"),
        ({"location_id": "LON/01"}, "schema_violation"),
        ({"sku_id": "SKU_1\n"}, "schema_violation"),
        ({"quantity": -1}, "schema_violation"),
        ({"quantity": 1.5}, "schema_violation"),
        ({"event_time": "2026-11-25T10:15:00"}, "invalid_event_time"),
        ({"event_time": "9999-12-31T00:00:00+00:00"}, "event_time_out_of_range"),
        ({"event_type": "stock_count"}, "schema_violation"),
    ],
)
def test_given_a_contract_violation_when_validated_then_rejected_with_reason(
    change: dict[str, object], reason: str
) -> None:
    with pytest.raises(RejectedRecord) as info:
        validate_event({**GOOD, **change}, now=NOW)
    assert info.value.reason == reason


def test_given_nan_when_parsed_then_invalid_json() -> None:
    with pytest.raises(RejectedRecord) as info:
        parse_event(b'{"quantity": NaN}', now=NOW)
    assert (info.value.reason, info.value.detail) == (
        "invalid_json",
        "non-finite number NaN is not JSON",
    )


@pytest.mark.parametrize(
    ("fragment", "number"),
    [
        (b'"till":1e400', "1e400"),
        (b'"till":{"lines":[1,-1E999]}', "-1E999"),
        (b'"unit_price":1e400', "1e400"),
        (b'"till":' + b"9" * 400 + b".5", "9" * 40),
    ],
    ids=["unknown field", "nested", "known field", "400 digits"],
)
def test_given_a_number_beyond_a_double_when_parsed_then_refused_wherever_it_is(
    fragment: bytes, number: str
) -> None:
    data = json.dumps({k: v for k, v in GOOD.items() if k not in {"till", "unit_price"}})
    with pytest.raises(RejectedRecord) as info:
        parse_event(data.encode()[:-1] + b", " + fragment + b"}", now=NOW)
    assert (info.value.reason, info.value.detail) == (
        "non_finite_number",
        f"{number} is beyond the range of a double",
    )


def test_given_a_number_that_underflows_when_parsed_then_it_is_a_finite_zero() -> None:
    data = json.dumps(GOOD).encode()[:-1] + b', "tiny": 1e-400}'
    assert parse_event(data, now=NOW)[1]["tiny"] == 0.0


def test_given_a_plain_valid_record_when_parsed_fast_then_a_real_frozen_sales_event() -> None:
    plain = parse_plain(json.dumps(GOOD).encode(), NOW)
    assert plain is not None
    event, original = plain
    assert type(event) is SalesEvent
    assert (event, original) == parse_event(json.dumps(GOOD).encode(), now=NOW)
    assert hash(event) == hash(parse_event(json.dumps(GOOD).encode(), now=NOW)[0])
    with pytest.raises(FrozenInstanceError):
        event.quantity = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    "data",
    [
        json.dumps({**GOOD, "quantity": -1}).encode(),  # a rejection
        json.dumps({**GOOD, "till": 2**70}).encode(),  # orjson would make it a float
        json.dumps({**GOOD, "note": "x" * 2000}).encode(),  # past the orjson size limit
        b"\xef\xbb\xbf" + json.dumps(GOOD).encode(),
        b"[1]",
        b"",
    ],
)
def test_given_anything_not_plainly_valid_when_parsed_fast_then_none_never_a_raise(
    data: bytes,
) -> None:
    assert parse_plain(data, NOW) is None
