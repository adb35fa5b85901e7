"""Sales events for the contract's property tests: hypothesis strategies and edge cases.

Valid events in the shapes producers send, near misses one step outside the contract, and
byte strings that JSON decoders disagree on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from pipeline.contracts import load_schema

PROPERTIES = load_schema()["properties"]
ID_ALPHABET = "ABCXYZabcxyz0189_-"
EVENT_ID_ALPHABET = ID_ALPHABET + ".:"

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
