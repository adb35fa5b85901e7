"""The local SQL engine never fetches or loads a DuckDB extension behind the SQL's back.

(No test names an ``https://`` file: were autoinstall ever on again, DuckDB would fetch
httpfs from the internet, and tests talk to 127.0.0.1 only.)
"""

from __future__ import annotations

import pytest

from pipeline.errors import InvalidInputError
from pipeline.local.emulator import aws_session
from pipeline.query.duckdb_engine import run_duckdb

# run_duckdb builds a pyarrow S3 filesystem for this endpoint; no table, so it is never used.
SESSION = aws_session("http://127.0.0.1:9")


def _run(sql: str) -> list[tuple[object, ...]]:
    frame = run_duckdb(sql, tables=[], session=SESSION, database="lake")
    return list(frame.itertuples(index=False, name=None))


def test_given_a_connection_then_extension_autoinstall_and_autoload_are_off() -> None:
    assert _run(
        "SELECT current_setting('autoinstall_known_extensions'), "
        "current_setting('autoload_known_extensions'), "
        "current_setting('allow_community_extensions'), current_setting('TimeZone')"
    ) == [(False, False, False, "UTC")]


def test_given_sql_that_turns_autoload_back_on_then_the_locked_configuration_refuses_it() -> None:
    with pytest.raises(InvalidInputError) as info:
        _run("SET autoload_known_extensions = true")
    assert str(info.value) == (
        'query: Invalid Input Error: Cannot change configuration option "autoload_known_extensions"'
        " - the configuration has been locked"
    )
