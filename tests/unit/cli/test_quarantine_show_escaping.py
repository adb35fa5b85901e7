"""``fmcg quarantine show`` prints a producer's bytes as inert text."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import quarantine
from pipeline.cli.console import console, printable
from pipeline.cli.main import app

HOSTILE = (
    b'{"event_id":"\x1b]0;owned\x07\x1b[2J[/][bold red]x[/bold red]:smile:\xc2\x9b31m'
    b'\xe2\x80\xaeevil\\n"}'
)


class _S3:
    class exceptions:  # noqa: N801 - the shape of a boto3 client's attribute
        NoSuchKey = KeyError

    def __init__(self, body: bytes) -> None:
        self.body = body

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's
        return {"Body": io.BytesIO(self.body)}


def _line(**fields: Any) -> bytes:
    entry = {
        "reason": "invalid_json",
        "detail": "Expecting ',' delimiter: [/] \x1b[5m",
        "shard_id": "shardId-000000000000",
        "sequence_number": "1",
        "sub_sequence": None,
        "approximate_arrival": "2025-03-01T09:00:00+00:00",
        "data_b64": base64.b64encode(HOSTILE).decode(),
    }
    entry.update(fields)
    return json.dumps(entry).encode() + b"\n"


@pytest.fixture
def show(monkeypatch: pytest.MonkeyPatch) -> Any:
    def run(body: bytes) -> Any:
        monkeypatch.setattr(quarantine, "current_stack", lambda: None)
        monkeypatch.setattr(quarantine, "_raw_bucket_objects", lambda _: (_S3(body), "raw"))
        monkeypatch.setattr(console, "width", 1000)
        return CliRunner().invoke(app, ["quarantine", "show", "quarantine/x.json"])

    return run


def test_given_terminal_escapes_and_markup_in_a_record_then_show_prints_them_inert(
    show: Any,
) -> None:
    result = show(_line(reason="x[/]"))

    assert result.exit_code == 0, result.output
    out = result.output
    assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) <= 0x9F for c in out)
    assert "\u202e" not in out
    (row,) = [line for line in out.splitlines() if "shardId-000000000000:1" in line]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells == [
        "shardId-000000000000:1",
        "x[/]",
        "Expecting ',' delimiter: [/] \\x1b[5m",
        '{"event_id":"\\x1b]0;owned\\x07\\x1b[2J[/][bold red]x[/bold red]:smile:\\x9b31m'
        '\\u202eevil\\\\n"}',
    ]


def test_given_text_then_printable_escapes_controls_and_backslashes_only() -> None:
    assert printable("a\tb\\c\x00\x7f\u0085\u200b\u2028é\U000e0001") == (
        "a\\x09b\\\\c\\x00\\x7f\\x85\\u200b\\u2028é\\U000e0001"
    )
