"""``fmcg produce --from``: its options checked before any AWS, and its rejects file's lines."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.cli.stream import reject_record
from pipeline.produce.ndjson import Refused


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--from", "-", "--rate", "10"],
            "error: Invalid value for --from: --rate shape synthetic events; --from sends the "
            "events of its input (see `fmcg produce --help`)\n",
        ),
        (
            ["--from", "x.ndjson", "--duration", "1", "--seed", "3"],
            "error: Invalid value for --from: --duration, --seed shape synthetic events; --from "
            "sends the events of its input (see `fmcg produce --help`)\n",
        ),
        (
            ["--rejects", "bad.ndjson"],
            "error: Invalid value for --rejects: only with --from (see `fmcg produce --help`)\n",
        ),
    ],
)
def test_given_options_that_do_not_go_together_when_producing_then_a_usage_error(
    args: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, ["produce", *args], prog_name="fmcg")

    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)


def test_given_refused_lines_then_the_rejects_file_keeps_text_bytes_or_neither() -> None:
    text = Refused(3, "invalid_json", "Expecting value", b'{"a": "\xc3\xa9"')
    binary = Refused(4, "invalid_utf8", "'utf-8' codec can't decode", b"\xff{}")
    too_long = Refused(5, "record_too_large", "line of 2000000 bytes > 1048576", None)

    assert [json.loads(reject_record(r)) for r in (text, binary, too_long)] == [
        {"line": 3, "reason": "invalid_json", "detail": "Expecting value", "data": '{"a": "é"'},
        {
            "line": 4,
            "reason": "invalid_utf8",
            "detail": "'utf-8' codec can't decode",
            "data_b64": "/3t9",
        },
        {"line": 5, "reason": "record_too_large", "detail": "line of 2000000 bytes > 1048576"},
    ]
    assert reject_record(text).endswith("}\n")
    assert reject_record(text).count("\n") == 1
