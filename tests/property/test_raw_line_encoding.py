"""Raw NDJSON lines hold exactly the validated values, whichever encoder wrote them.

The ingest core writes a raw line with orjson when it can and with json otherwise (lone
surrogates, integers beyond 64 bits, non-ASCII, non-finite floats). Either way the line is
one ASCII line that json.loads reads back to the very object that was validated.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.ingest.core import _raw_line

any_text = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None), max_size=6
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(any_text, json_values, max_size=6))
@example({"x": float("nan")})
@example({"x": [float("inf"), -float("inf")]})
@example({"x": "\ud800", "y": "é"})
@example({"x": 2**64, "y": -(2**63) - 1})
@example({"x\x7f": "\x7f\x00\n"})
@example({"x": -0.0, "y": 1e-05, "z": 1e16, "w": None})
def test_given_any_json_object_when_written_as_a_raw_line_then_it_reads_back_the_same(
    obj: dict[str, Any],
) -> None:
    line = _raw_line(obj)
    assert line.isascii()
    assert b"\n" not in line
    # repr tells 1 from 1.0, 0.0 from -0.0 and keeps key order; nan reprs equal.
    assert repr(json.loads(line)) == repr(obj)


def test_given_a_plain_sales_event_when_written_then_the_line_is_compact_json() -> None:
    obj = {"event_id": "evt-1", "quantity": 3, "unit_price": 1.25, "note": None, "ok": True}
    assert _raw_line(obj) == json.dumps(obj, separators=(",", ":")).encode()
    assert (
        _raw_line({**obj, "note": "é"})
        == json.dumps({**obj, "note": "é"}, separators=(",", ":")).encode()
    )
