"""The plain-Python fast path of the sales event contract agrees with the published schema.

:func:`accept_plain` may only accept, and only what :func:`validate_with_schema` (the
compiled published schema plus the extra checks) accepts, with the same typed event.
Neither may accept what the published schema refuses, checked by an independent oracle: the
schema validated by ``jsonschema`` (another implementation than the fastjsonschema code the
pipeline compiles, with its own RFC 3339 ``date-time`` check), for valid events, near
misses and arbitrary JSON alike; an accepted event carries the object's fields. ``parse_event`` (one
shared decoder instead of ``json.loads`` per record) decodes exactly as ``json.loads`` did,
except that it refuses a number no double can hold (``1e400``) wherever it is.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, FormatChecker
from rfc3339_validator import validate_rfc3339

from pipeline.contracts import parse_event, validate_event
from pipeline.contracts.sales_event import (
    SalesEvent,
    accept_plain,
    load_schema,
    validate_with_schema,
)
from pipeline.errors import RejectedRecord
from tests.support.sales_events import (
    AWKWARD_JSON,
    NEAR_MISSES,
    json_values,
    near_misses,
    valid_events,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: A UTC offset without its colon (``+0100``), at the end of a date-time.
_OFFSET_WITHOUT_COLON = re.compile(r"([+-]\d\d)(\d\d)$")
_FORMATS = FormatChecker(Draft7Validator.FORMAT_CHECKER.checkers)


@_FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    """RFC 3339, but for one leniency of the pipeline's compiled schema: fastjsonschema's
    ``date-time`` accepts an offset without its colon (``10:15:00+0100``), which RFC 3339
    (and so a producer validating with another library) refuses. Known and kept, for the
    producers that send it; any other difference fails the tests below."""
    if not isinstance(value, str):
        return True
    return bool(validate_rfc3339(_OFFSET_WITHOUT_COLON.sub(r"\1:\2", value)))


#: The published schema through another validator than the pipeline's (the oracle).
ORACLE = Draft7Validator(load_schema(), format_checker=_FORMATS)


def reference(obj: dict[str, Any]) -> tuple[str, Any]:
    try:
        return ("ok", validate_with_schema(obj, now=NOW))
    except RejectedRecord as e:
        return ("rejected", (e.reason, e.detail))


def outcome(obj: dict[str, Any]) -> tuple[str, Any]:
    try:
        return ("ok", validate_event(obj, now=NOW))
    except RejectedRecord as e:
        return ("rejected", (e.reason, e.detail))


def assert_the_oracle_agrees(obj: dict[str, Any], fast: SalesEvent | None) -> str:
    """Nothing the published schema refuses is accepted, by the fast path or
    :func:`validate_event`; an accepted event carries ``obj``'s own fields. The case, for
    the statistics."""
    valid = ORACLE.is_valid(obj)
    got = outcome(obj)
    if not valid:
        assert fast is None
        assert got[0] == "rejected"
    if got[0] == "ok":
        assert valid
        typed = got[1]
        fields = {**typed.to_json_dict(), "event_time": typed.event_time}
        assert fields == {
            **{k: obj[k] for k in fields if k != "event_time"},
            "event_time": datetime.fromisoformat(obj["event_time"]),
        }
    fast_path = "accepts" if fast else "passes"
    return f"oracle: {'valid' if valid else 'invalid'}, outcome: {got[0]}, fast path: {fast_path}"


@SETTINGS
@given(valid_events())
def test_given_valid_events_when_validated_then_the_fast_path_accepts_what_the_schema_does(
    obj: dict[str, Any],
) -> None:
    expected = reference(obj)
    assert expected[0] == "ok"
    fast = accept_plain(obj, NOW)
    assert fast == expected[1]
    assert ORACLE.is_valid(obj)
    event(assert_the_oracle_agrees(obj, fast))


@SETTINGS
@given(near_misses() | st.dictionaries(st.sampled_from(sorted(NEAR_MISSES)), json_values))
def test_given_near_misses_when_validated_then_the_outcome_is_the_schemas_exactly(
    obj: dict[str, Any],
) -> None:
    expected = reference(obj)
    fast = accept_plain(obj, NOW)
    assert fast is None or ("ok", fast) == expected
    event(assert_the_oracle_agrees(obj, fast))


def _old_parse(data: bytes) -> tuple[str, Any]:
    """parse_event as it was: json.loads per record, then the reference validation.

    Since the security review, a number beyond a double (``1e400``) is refused as it is
    decoded, whichever field holds it: ``json.loads`` would make it ``inf``.
    """

    def reject_constant(name: str) -> Any:
        raise RejectedRecord("invalid_json", f"non-finite number {name} is not JSON")

    def finite_float(text: str) -> float:
        value = float(text)
        if value in {float("inf"), float("-inf")}:
            raise RejectedRecord(
                "non_finite_number", f"{text[:40]} is beyond the range of a double"
            )
        return value

    try:
        text = data.decode("utf-8")
        try:
            obj = json.loads(text, parse_constant=reject_constant, parse_float=finite_float)
        except RejectedRecord:
            raise
        except (ValueError, RecursionError) as e:
            raise RejectedRecord("invalid_json", str(e)[:200]) from e
        if not isinstance(obj, dict):
            raise RejectedRecord("not_an_object", f"got JSON {type(obj).__name__}")
        return ("ok", (validate_with_schema(obj, now=NOW), obj))
    except RejectedRecord as e:
        return ("rejected", (e.reason, e.detail))
    except UnicodeDecodeError:
        return ("rejected", ("invalid_utf8", "<same>"))


def _canonical(result: tuple[str, Any]) -> str:
    # repr tells 1 from 1.0 and 0.0 from -0.0, which == does not.
    return repr(result)


@SETTINGS
@given(
    st.one_of(
        valid_events().map(lambda e: json.dumps(e).encode()),
        near_misses().map(lambda e: json.dumps(e).encode()),
        st.builds(
            lambda e, extra: json.dumps({**e, "extra": extra}).encode(), valid_events(), json_values
        ),
        st.sampled_from(AWKWARD_JSON),
        st.text(max_size=20).map(str.encode),
        st.binary(max_size=20),
    )
)
def test_given_any_bytes_when_parsed_then_decoding_matches_json_loads(data: bytes) -> None:
    try:
        got: tuple[str, Any] = ("ok", parse_event(data, now=NOW))
    except RejectedRecord as e:
        got = ("rejected", (e.reason, "<same>" if e.reason == "invalid_utf8" else e.detail))
    assert _canonical(got) == _canonical(_old_parse(data))


@pytest.mark.parametrize("data", AWKWARD_JSON)
def test_given_awkward_json_when_parsed_then_the_outcome_is_json_loads(data: bytes) -> None:
    event = dict(BASES[0])
    wrapped = json.dumps(event).encode()[:-1] + b',"extra":' + data + b"}"
    for doc in (data, wrapped):
        try:
            got: tuple[str, Any] = ("ok", parse_event(doc, now=NOW))
        except RejectedRecord as e:
            got = ("rejected", (e.reason, "<same>" if e.reason == "invalid_utf8" else e.detail))
        assert _canonical(got) == _canonical(_old_parse(doc))


BASES = [
    {
        "event_id": "evt-1",
        "event_type": "sale",
        "sku_id": "SKU_055",
        "location_id": "LON_01",
        "quantity": 3,
        "stock_on_hand": 12,
        "unit_price": 1.25,
        "event_time": "2026-11-25T10:15:00.250+01:00",
    },
    {
        "event_id": "count:7",
        "event_type": "stock_count",
        "sku_id": "SKU_055",
        "location_id": "LON_01",
        "quantity": 0,
        "stock_on_hand": 0,
        "event_time": "2026-11-25T10:15:00Z",
    },
]
EDGES = [
    (base, field, value)
    for base in BASES
    for field, values in NEAR_MISSES.items()
    for value in [*values, "<deleted>"]
]


@pytest.mark.parametrize(("base", "field", "value"), EDGES)
def test_given_each_edge_value_when_validated_then_the_outcome_is_the_schemas_exactly(
    base: dict[str, Any], field: str, value: Any
) -> None:
    event = {**base, field: value}
    if value == "<deleted>":
        del event[field]
    expected = reference(event)
    fast = accept_plain(event, NOW)
    assert fast is None or ("ok", fast) == expected
    assert_the_oracle_agrees(event, fast)
