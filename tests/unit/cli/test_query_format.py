"""``fmcg query --format`` refuses a format it does not know before touching any AWS."""

from __future__ import annotations

from typer.testing import CliRunner

from pipeline.cli.main import app


def test_given_an_unknown_format_when_querying_then_a_usage_error_naming_the_formats() -> None:
    result = CliRunner().invoke(app, ["query", "SELECT 1", "--format", "xml"], prog_name="fmcg")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: Invalid value for --format: 'xml' is not one of table, csv, json "
        "(see `fmcg query --help`)\n"
    )
