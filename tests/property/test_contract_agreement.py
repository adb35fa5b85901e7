"""The plain-Python fast path of the sales event contract agrees with the published schema.

:func:`accept_plain` may only accept, and only what :func:`validate_with_schema` (the
compiled published schema plus the extra checks) accepts, with the same typed event;
:func:`validate_event` then gives exactly the reference outcome (event, or reason code and
message) for valid events, near misses and arbitrary JSON alike. ``parse_event`` (one
shared decoder instead of ``json.loads`` per record) decodes exactly as ``json.loads`` did,
except that it refuses a number no double can hold (``1e400``) wherever it is.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.contracts import load_schema, parse_event, validate_event
from pipeline.contracts.sales_event import accept_plain, validate_with_schema
from pipeline.errors import RejectedRecord

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PROPERTIES = load_schema()["properties"]
ID_ALPHABET = "ABCXYZabcxyz0189_-"
EVENT_ID_ALPHABET = ID_ALPHABET + ".:"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    """An RFC 3339 time within the accepted range, in the shapes producers send."""
    moment = draw(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2026, 11, 25)))
    offset = timedelta(minutes=draw(st.integers(-23 * 60 - 59, 23 * 60 + 59)))
    local = moment.replace(tzinfo=UTC).astimezone(timezone(offset))
    digits = draw(st.sampled_from([0, 3, 6]))
    text = local.isoformat(timespec={0: "seconds", 3: "milliseconds", 6: "microseconds"}[digits])
    if offset == timedelta(0) and draw(st.booleans()):
        text = text.removesuffix("+00:00") + "Z"
    return text


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(PROPERTIES["event_type"]["enum"]))
    event: dict[str, Any] = {
        "event_id": draw(st.text(EVENT_ID_ALPHABET, min_size=1, max_size=128)),
        "event_type": event_type,
        "sku_id": draw(st.text(ID_ALPHABET, min_size=1, max_size=64)),
        "location_id": draw(st.text(ID_ALPHABET, min_size=1, max_size=64)),
        "quantity": draw(st.integers(0, PROPERTIES["quantity"]["maximum"])),
        "event_time": draw(rfc3339()),
    }
    if event_type == "stock_count" or draw(st.booleans()):
        event["stock_on_hand"] = draw(st.integers(0, PROPERTIES["stock_on_hand"]["maximum"]))
    if draw(st.booleans()):
        event["unit_price"] = draw(
            st.floats(0, PROPERTIES["unit_price"]["maximum"]) | st.integers(0, 10**9)
        )
    event.update(draw(st.dictionaries(st.sampled_from(["till", "note", "x"]), json_values)))
    return event


#: Values one step outside the contract, or inside it in an unusual form.
NEAR_MISSES: dict[str, list[Any]] = {
    "event_id": ["", "a" * 129, "a b", "evt\n", "évt", 7, None, "a/b", "a#b"],
    "event_type": ["Sale", "theft", "", None, ["sale"], {"sale": 1}],
    "sku_id": ["", "S" * 65, "SKU#1", "SKU/1", "SKU_1\n", "SKU.1", "٣", 1],
    "location_id": ["", "L" * 65, "LON 01", "LON:1", True],
    "quantity": [-1, 10**9 + 1, 1.5, 2.0, -0.0, True, False, "1", None, float("nan"), 10**30],
    "stock_on_hand": [-1, 10**12, 10**12 + 1, 0.0, 3.5, True, None, "0", float("inf")],
    "unit_price": [-0.01, 10**9, 10**9 + 0.5, float("nan"), float("inf"), True, "1.2", None],
    "event_time": [
        "2026-11-25T10:15:00",
        "2026-11-25 10:15:00+00:00",
        "2026-11-25t10:15:00z",
        "2026-11-25T10:15:60+00:00",
        "2026-11-25T24:00:00+00:00",
        "2026-11-25T10:15:00+24:00",
        "2026-11-25T10:15:00+0100",
        "2026-11-25T10:15:00.1234567+00:00",
        "2026-11-25T10:15:00.+00:00",
        "2025-02-29T10:15:00+00:00",
        "2024-02-29T10:15:00+00:00",
        "2026-04-31T10:15:00+00:00",
        "0000-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "2026-11-27T12:00:00Z",
        "9999-12-31T23:59:59Z",
        "٢٠٢٦-11-25T10:15:00+00:00",
        "2026-11-25",
        "",
        20261125,
    ],
}


@st.composite
def near_misses(draw: st.DrawFn) -> dict[str, Any]:
    event = draw(valid_events())
    for _ in range(draw(st.integers(1, 2))):
        field = draw(st.sampled_from(sorted(NEAR_MISSES)))
        action = draw(st.sampled_from(["value", "delete", "arbitrary"]))
        if action == "delete":
            event.pop(field, None)
        elif action == "value":
            event[field] = draw(st.sampled_from(NEAR_MISSES[field]))
        else:
            event[field] = draw(json_values)
    return event


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


@SETTINGS
@given(valid_events())
def test_given_valid_events_when_validated_then_the_fast_path_accepts_what_the_schema_does(
    event: dict[str, Any],
) -> None:
    expected = reference(event)
    assert expected[0] == "ok"
    assert accept_plain(event, NOW) == expected[1]
    assert outcome(event) == expected


@SETTINGS
@given(near_misses() | st.dictionaries(st.sampled_from(sorted(NEAR_MISSES)), json_values))
def test_given_near_misses_when_validated_then_the_outcome_is_the_schemas_exactly(
    event: dict[str, Any],
) -> None:
    expected = reference(event)
    fast = accept_plain(event, NOW)
    assert fast is None or ("ok", fast) == expected
    assert outcome(event) == expected


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


AWKWARD_JSON = [
    b"\xef\xbb\xbf{}",
    b'{"a": NaN}',
    b'{"a": -Infinity}',
    b"[1]",
    b"",
    b"{",
    b'"\\ud800"',
    b"  {} ",
    b"-Infinity",
    b'{"a":1,"a":2}',
    b'{"a":18446744073709551616}',
    b'{"a":18446744073709551615}',
    b'{"a":-9223372036854775809}',
    b'{"a":1e400}',
    b'{"a":"\xff"}',
    b'{"a":"\xed\xa0\x80"}',
    b'{"a":"\xc0\xaf"}',
    b'{"a":"\xef\xbf\xbe"}',
    b"[" * 511 + b"]" * 511,
    b'{"a":9223372036854775808}',
    b'{"a":-9223372036854775808}',
    b'{"a":123456789012345678}',
    b'{"a":0.1000000000000000055511151231257827}',
    b'{"a":1.23456789012345678e-300}',
    b'{"a":1.7976931348623157e308}',
    b'{"a":5e-324}',
    b'{"a":1e-400}',
    b'{"a":-1e400}',
    b'{"a":{"b":[1,2E999]}}',
    b'{"a":1e308,"b":1.8e308}',
    b'{"a":-0}',
    b'{"a":-0.0}',
    b'{"a":1E2}',
    b'{"a":01}',
    b'{"a":1.}',
    b'{"a":.5}',
    b'{"a":+1}',
    b'{"a":"\t"}',
    b'{"a":"\x01"}',
    b'{"a":"\\ud83d\\ude00"}',
    b'{"a":"\\ud83d"}',
    b'{"a":"\xc3\xa9"}',
    b"{'a':1}",
    b'{"a":1,}',
    b'{"a":1}\n\t ',
    b'{"a":1} x',
    b'{"a":[' + b"[" * 97 + b"]" * 97 + b"]}",
    b'{"a":[' + b"[" * 98 + b"]" * 98 + b"]}",
    b'{"a":' + b"[" * 3000 + b"]" * 3000 + b"}",
]


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
    assert outcome(event) == expected
