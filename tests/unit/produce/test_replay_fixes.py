"""Fix files for ``fmcg quarantine replay``: refused whole when they cannot be events."""

from __future__ import annotations

import pytest

from pipeline.errors import TerminalError
from pipeline.produce.replay import load_fixes


@pytest.mark.parametrize(
    "text",
    ['[{"event_id": "e", "till": 1e400}]', '{"event_id": "e"}\n{"till": {"x": [-2E999]}}\n'],
    ids=["array", "json lines"],
)
def test_given_a_number_beyond_a_double_in_a_fix_file_then_it_is_refused(text: str) -> None:
    number = "1e400" if text.startswith("[") else "-2E999"
    with pytest.raises(TerminalError) as info:
        load_fixes(text)
    assert str(info.value) == f"fix file holds {number}, beyond the range of a double"


def test_given_a_fix_file_that_is_not_json_then_the_message_says_so() -> None:
    with pytest.raises(TerminalError) as info:
        load_fixes("{not json")
    assert str(info.value) == (
        "fix file is neither a JSON array nor JSON lines: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
