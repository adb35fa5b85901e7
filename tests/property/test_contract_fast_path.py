"""The fast path of ``parse_event`` agrees with the full JSON Schema validation.

:func:`parse_plain` (one orjson decode, then :func:`accept_plain`) may only answer for a
record the reference path accepts, and then with exactly its event and object; for
everything else it answers None and never raises. The reference here is ``json.loads``
and :func:`validate_with_schema` (the compiled published schema plus the extra checks).
What it returns, ``orjson.dumps`` writes back exactly (the ingest core's raw line relies
on that), and the one regex that checks the four text fields agrees with the four
patterns it joins.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import orjson
from fastjsonschema.draft04 import CodeGeneratorDraft04
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.contracts import load_schema, parse_event, parse_plain
from pipeline.contracts.sales_event import _PLAIN_TEXT_FIELDS, validate_with_schema
from pipeline.errors import RejectedRecord
from tests.support.sales_events import AWKWARD_JSON, NEAR_MISSES, near_misses, valid_events

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROPERTIES = load_schema()["properties"]


def _finite(text: str) -> float:
    value = float(text)
    if value in {float("inf"), float("-inf")}:
        raise RejectedRecord("non_finite_number", text)
    return value


def reference(data: bytes) -> tuple[str, Any]:
    """json.loads and the full schema validation, as parse_event did before any fast path
    (and refusing a number beyond a double, as parse_event does since)."""
    try:
        obj = json.loads(data, parse_float=_finite)
    except RejectedRecord:
        return ("rejected", "non_finite_number")
    except (ValueError, RecursionError):
        return ("rejected", "invalid_json")
    if not isinstance(obj, dict):
        return ("rejected", "not_an_object")
    try:
        return ("ok", (validate_with_schema(obj, now=NOW), obj))
    except RejectedRecord as e:
        return ("rejected", (e.reason, e.detail))


def _repr(value: Any) -> str:
    # repr tells 1 from 1.0 and 0.0 from -0.0, which == does not.
    return repr(value)


documents = st.one_of(
    valid_events().map(lambda e: json.dumps(e).encode()),
    valid_events().map(lambda e: json.dumps(e, separators=(",", ":")).encode()),
    near_misses().map(lambda e: json.dumps(e).encode()),
    st.builds(
        lambda e, big: json.dumps({**e, "till": big}).encode(),
        valid_events(),
        st.integers(-(2**80), 2**80),
    ),
    st.builds(
        lambda e, field, value: json.dumps({**e, field: value}).encode(),
        valid_events(),
        st.sampled_from(sorted(NEAR_MISSES)),
        st.integers(-(2**80), 2**80) | st.floats(allow_nan=False),
    ),
    st.sampled_from(AWKWARD_JSON),
    st.binary(max_size=40),
)


@SETTINGS
@given(documents)
@example(
    b'{"event_id":"e","event_type":"sale","sku_id":"S","location_id":"L","quantity":1,'
    b'"event_time":"2026-11-25T10:15:00Z","till":123456789012345678901}'
)
@example(
    b'{"event_id":"e","event_type":"sale","sku_id":"S","location_id":"L","quantity":1,'
    b'"event_time":"2026-11-25T10:15:00Z","unit_price":123456789012345678901}'
)
@example(
    b'{"event_id":"e","event_type":"sale","sku_id":"S","location_id":"L","quantity":1,'
    b'"event_time":"2026-11-25T10:15:00Z","quantity":-1}'
)
def test_given_any_document_when_the_fast_path_answers_then_it_is_the_reference_answer(
    data: bytes,
) -> None:
    plain = parse_plain(data, NOW)
    expected = reference(data)
    if plain is not None:
        assert _repr(("ok", plain)) == _repr(expected)
        # What parse_event returns is then the fast path's answer too.
        assert _repr(parse_event(data, now=NOW)) == _repr(plain)


@SETTINGS
@given(valid_events())
def test_given_a_plain_valid_event_then_the_fast_path_answers_it(event: dict[str, Any]) -> None:
    # Only the contract's own fields (the common record): the fast path must not give up.
    plain_event = {k: v for k, v in event.items() if k in PROPERTIES}
    data = json.dumps(plain_event).encode()
    if len(data) < 1024:
        assert parse_plain(data, NOW) is not None


@SETTINGS
@given(documents)
def test_given_a_fast_path_object_when_written_by_orjson_then_it_reads_back_the_same(
    data: bytes,
) -> None:
    plain = parse_plain(data, NOW)
    if plain is not None:
        assert _repr(json.loads(orjson.dumps(plain[1]))) == _repr(plain[1])


def _pattern(field: str) -> re.Pattern[str]:
    return re.compile(PROPERTIES[field]["pattern"].removeprefix("^").removesuffix("$"))


DATE_TIME = re.compile(CodeGeneratorDraft04.FORMAT_REGEXS["date-time"])
PIECES = st.text("AZaz09_-.:/ \n#T+Z٣", max_size=12) | st.sampled_from(
    [t for t in NEAR_MISSES["event_time"] if isinstance(t, str)]
    + ["2026-11-25T10:15:00Z", "2026-11-25T10:15:00.250+01:00", "evt-1", "SKU_055", "a/b"]
)


@SETTINGS
@given(PIECES, PIECES, PIECES, PIECES)
def test_given_four_texts_then_the_joined_regex_matches_exactly_when_each_pattern_does(
    event_id: str, sku_id: str, location_id: str, event_time: str
) -> None:
    each = bool(
        _pattern("event_id").fullmatch(event_id)
        and _pattern("sku_id").fullmatch(sku_id)
        and _pattern("location_id").fullmatch(location_id)
        and DATE_TIME.match(event_time)
    )
    joined = _PLAIN_TEXT_FIELDS.fullmatch(f"{event_id}/{sku_id}/{location_id}/{event_time}")
    assert bool(joined) == each
