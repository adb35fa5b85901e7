"""Every ``fmcg`` command answers bad input with one line and a non-zero status.

Driven through the real command tree (typer's CliRunner), against a stack provisioned on
the session's emulator, plus a couple through a real process to see that no traceback
reaches the terminal. Status 1 is an error the pipeline raised, 2 a command line that does
not parse.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.local.stack import STATE_DIR_VARIABLE, LocalStack

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[3]
EVENTS = REPO / "infra" / "events"
USAGE, ERROR = 2, 1


@pytest.fixture(scope="module")
def cli_stack(emulator_url: str) -> LocalStack:
    return LocalStack.create(emulator_url, stack_name=f"cli{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bad input files: not JSON, JSON but not an object, not UTF-8, not YAML, not Parquet."""
    directory = tmp_path_factory.mktemp("inputs")
    (directory / "not.json").write_text("not json\n")
    (directory / "list.json").write_text("[1, 2]\n")
    (directory / "empty.json").write_text("{}\n")
    (directory / "binary.json").write_bytes(b"\xff\xfe{}")
    (directory / "bad.yaml").write_text("Resources: [\n")
    (directory / "not.parquet").write_text("id,date,sales\n")
    return directory


@pytest.fixture
def home(tmp_path: Path, cli_stack: LocalStack) -> Path:
    """A state directory whose state file names the module's stack."""
    cli_stack.save(tmp_path / "local.json")
    return tmp_path


def fmcg(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, list(args), env={STATE_DIR_VARIABLE: str(home)}, prog_name="fmcg"
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_given_bad_sql_or_a_bad_engine_when_querying_then_one_line(home: Path) -> None:
    assert fmcg(home, "query", "SELEC 1") == (
        ERROR,
        'error: query: Parser Error: syntax error at or near "SELEC"\n',
    )
    assert fmcg(home, "query", "SELECT * FROM no_such_table")[1].startswith(
        "error: query: Catalog Error: Table with name no_such_table does not exist!"
    )
    assert fmcg(home, "query", "--named", "nope") == (
        ERROR,
        "error: no named query 'nope' in the template (known: daily-sales-by-sku-location, "
        "forecast-vs-actual, yesterdays-stockouts)\n",
    )
    assert fmcg(home, "query") == (ERROR, "error: give either SQL or --named <name>\n")
    assert fmcg(home, "query", "SELECT 1", "--engine", "sqlite") == (
        ERROR,
        "error: unknown engine 'sqlite' (use one of duckdb, athena)\n",
    )
    assert fmcg(home, "query", "SELECT 1", "--engine", "athena") == (
        ERROR,
        "error: --engine athena needs AWS (set GLUE_DATABASE and CURATED_BUCKET): the local "
        "emulator's Athena does not run SQL; use --engine duckdb locally\n",
    )


def test_given_an_unknown_series_when_plotting_then_no_chart_and_one_line(
    home: Path, cli_stack: LocalStack, tmp_path: Path
) -> None:
    out = tmp_path / "chart.png"

    status, output = fmcg(home, "forecast", "plot", "NOPE", "NOPE", "--out", str(out))

    assert (status, output) == (
        ERROR,
        f"error: no series NOPE at NOPE: no daily demand in s3://{cli_stack.ref('CuratedBucket')}"
        f" and no forecast in {cli_stack.ref('ForecastTable')}\n",
    )
    assert not out.exists()


def test_given_bad_dates_or_data_when_forecasting_then_one_line(home: Path, files: Path) -> None:
    assert fmcg(home, "forecast", "--as-of", "2025-13-01") == (
        USAGE,
        "error: Invalid value for --as-of: not a date (yyyy-mm-dd): '2025-13-01' "
        "(see `fmcg forecast --help`)\n",
    )
    assert fmcg(home, "forecast", "--as-of", "2999-01-01") == (
        USAGE,
        "error: Invalid value for --as-of: 2999-01-01 is after today "
        "(see `fmcg forecast --help`)\n",
    )
    outputs = ["--json", str(home / "s.json"), "--predictions", str(home / "p.parquet")]
    assert fmcg(home, "forecast", "backtest", "--data", str(home / "nope"), *outputs) == (
        ERROR,
        f"error: no such data file: {home / 'nope'}\n",
    )
    bad = files / "not.parquet"
    assert fmcg(home, "forecast", "backtest", "--data", str(bad), *outputs) == (
        ERROR,
        f"error: cannot read {bad} as Parquet with columns id, date, sales: Could not open "
        f"Parquet input source '{bad}': Parquet magic bytes not found in footer. Either the "
        "file is corrupted or this is not a parquet file.\n",
    )
    assert fmcg(home, "forecast", "backtest", "--data", str(bad), *outputs, "--cutoff", "x") == (
        USAGE,
        "error: Invalid value for --cutoff: not a date (yyyy-mm-dd): 'x' "
        "(see `fmcg forecast backtest --help`)\n",
    )


def test_given_a_bad_event_file_when_invoking_then_it_is_refused_before_the_handler_runs(
    home: Path, files: Path
) -> None:
    def invoke(name: str) -> tuple[int, str]:
        return fmcg(home, "local", "invoke", "IngestStreamFunction", "--event", str(files / name))

    assert invoke("not.json") == (
        ERROR,
        f"error: event file {files / 'not.json'} is not JSON: Expecting value: line 1 column 1 "
        "(char 0)\n",
    )
    assert invoke("list.json") == (
        ERROR,
        f"error: event file {files / 'list.json'} holds a JSON list; a Lambda event is an object\n",
    )
    assert invoke("binary.json") == (
        ERROR,
        f"error: event file {files / 'binary.json'} is not UTF-8 text: invalid start byte\n",
    )
    assert invoke("empty.json") == (
        ERROR,
        f"error: IngestStreamFunction raised KeyError: 'Records' (on the event in "
        f"{files / 'empty.json'})\n",
    )
    assert invoke("missing.json") == (
        USAGE,
        f"error: Invalid value for '--event': file '{files / 'missing.json'}' does not exist. "
        "(see `fmcg local invoke --help`)\n",
    )
    assert fmcg(home, "local", "invoke", "NoSuchFunction", "--event", str(files / "empty.json"))[
        1
    ].startswith("error: NoSuchFunction is not a function in ")


def test_given_a_bad_template_or_stack_name_when_up_then_no_emulator_starts(
    tmp_path: Path, files: Path
) -> None:
    assert fmcg(tmp_path, "local", "up", "--template", str(files / "bad.yaml")) == (
        ERROR,
        f"error: {files / 'bad.yaml'} is not a YAML template: while parsing a flow node "
        f"expected the node content, but found '<stream end>' in \"{files / 'bad.yaml'}\", "
        "line 2, column 1\n",
    )
    assert fmcg(tmp_path, "local", "up", "--template", str(tmp_path / "none.yaml")) == (
        ERROR,
        f"error: template not found: {tmp_path / 'none.yaml'}\n",
    )
    assert fmcg(tmp_path, "local", "up", "--stack-name", "Bad Name") == (
        ERROR,
        "error: stack name 'Bad Name' must be 1 to 28 lower-case letters, digits and hyphens, "
        "starting with a letter and not ending with a hyphen (bucket names derive from it)\n",
    )
    assert list(tmp_path.iterdir()) == []  # no state, no log: nothing was started


def test_given_a_running_stack_when_up_asks_for_another_then_it_says_so(
    home: Path, cli_stack: LocalStack
) -> None:
    assert fmcg(home, "local", "up", "--stack-name", "other") == (
        ERROR,
        f"error: the emulator is already up with stack {cli_stack.stack_name!r} from "
        f"{cli_stack.template_path}; run `fmcg local down` first to use another\n",
    )


def test_given_a_broken_state_file_when_down_then_it_says_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "local.json").write_text('{"endpoint_url": "http://example.com:80"}')

    status, output = fmcg(tmp_path, "local", "down")

    assert status == ERROR
    assert output.startswith(f"error: {tmp_path / 'local.json'} is not a local stack state file (")


@pytest.mark.parametrize(
    "args",
    [
        ["local", "status"],
        ["query", "SELECT 1"],
        ["forecast"],
        ["forecast", "plot", "S", "L"],
        ["compact"],
        ["quarantine", "list"],
        ["quarantine", "show", "x.json"],
        ["quarantine", "replay", "x.json"],
        ["replay-failed"],
        ["produce"],
        ["consume"],
        ["users", "create", "bob"],
        ["token", "bob"],
        ["api", "serve"],
        ["kcl", "leases"],
        ["kcl", "properties"],
        ["kcl", "run"],
        ["local", "invoke", "IngestStreamFunction", "--event", str(EVENTS / "kinesis_sales.json")],
    ],
    ids=" ".join,
)
def test_given_no_local_stack_when_a_command_needs_one_then_it_says_to_start_it(
    tmp_path: Path, args: list[str]
) -> None:
    assert fmcg(tmp_path, *args) == (
        ERROR,
        f"error: no local stack: {tmp_path / 'local.json'} is missing (run `fmcg local up`)\n",
    )


def test_given_bad_names_when_managing_users_then_one_line(home: Path) -> None:
    assert fmcg(home, "users", "create", "bob", "--group", "NoSuchGroup") == (
        ERROR,
        "error: cannot add bob to NoSuchGroup: An error occurred (ResourceNotFoundException) "
        "when calling the AdminAddUserToGroup operation: NoSuchGroup\n",
    )
    assert fmcg(home, "users", "create", "carol", "--password", "short") == (
        ERROR,
        "error: password refused for carol: The provided password does not confirm to the "
        "configured password policy\n",
    )
    assert fmcg(home, "token", "nobody") == (
        ERROR,
        "error: cannot sign in nobody: NotAuthorizedException\n",
    )


def test_given_unknown_quarantine_objects_then_not_found(
    home: Path, cli_stack: LocalStack, files: Path
) -> None:
    missing = f"s3://{cli_stack.ref('RawBucket')}/quarantine/nope.json"
    assert fmcg(home, "quarantine", "show", "nope.json") == (
        ERROR,
        f"error: no quarantine object {missing}\n",
    )
    assert fmcg(home, "quarantine", "replay", "nope.json") == (
        ERROR,
        f"error: no quarantine object {missing}\n",
    )


def test_given_an_unknown_key_or_not_a_failed_batch_when_replaying_then_one_line(
    home: Path, cli_stack: LocalStack
) -> None:
    bucket = cli_stack.ref("FailedBatchesBucket")
    cli_stack.session().client("s3").put_object(
        Bucket=bucket, Key="aws/lambda/u/not-a-batch", Body=b'{"requestContext": {}}'
    )

    assert fmcg(home, "replay-failed", "aws/lambda/u/nope") == (
        ERROR,
        f"error: no failed-batch object s3://{bucket}/aws/lambda/u/nope\n",
    )
    assert fmcg(home, "replay-failed", "aws/lambda/u/not-a-batch") == (
        ERROR,
        f"error: s3://{bucket}/aws/lambda/u/not-a-batch is not a failed-batch document: no "
        "KinesisBatchInfo with streamArn, shardId and sequences\n",
    )


def test_given_a_port_in_use_when_serving_then_one_line(home: Path, busy_port: int) -> None:
    assert fmcg(home, "api", "serve", "--port", str(busy_port)) == (
        ERROR,
        f"error: cannot listen on 127.0.0.1:{busy_port}: Address already in use\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "No such command 'nope'. (see `fmcg --help`)"),
        (
            ["local", "status", "--bogus"],
            "No such option: --bogus (see `fmcg local status --help`)",
        ),
        (["local", "invoke"], "Missing argument 'logical_id'. (see `fmcg local invoke --help`)"),
        (
            ["api", "serve", "--port", "70000"],
            "Invalid value for '--port': Input should be less than or equal to 65535 "
            "(see `fmcg api serve --help`)",
        ),
        (
            ["kcl", "run", "--log-level", "LOUD"],
            "Invalid value for --log-level: 'LOUD' is not one of TRACE, DEBUG, INFO, WARN, "
            "ERROR, OFF (see `fmcg kcl run --help`)",
        ),
        (
            ["produce", "--rate", "0"],
            "Invalid value for '--rate': Input should be greater than or equal to 1 "
            "(see `fmcg produce --help`)",
        ),
        (
            ["consume", "--timeout", "-1"],
            "Invalid value for '--timeout': Input should be greater than or equal to 0 "
            "(see `fmcg consume --help`)",
        ),
        (
            ["demo", "--weeks", "0"],
            "Invalid value for '--weeks': Input should be greater than or equal to 1 "
            "(see `fmcg demo --help`)",
        ),
        (
            ["quarantine", "replay", "k", "--fix-file", "/no/such/file"],
            "Invalid value for '--fix-file': file '/no/such/file' does not exist. "
            "(see `fmcg quarantine replay --help`)",
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_given_a_command_line_that_does_not_parse_then_one_line_and_status_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    assert fmcg(tmp_path, *args) == (USAGE, f"error: {message}\n")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["query", "SELEC 1"], 'error: query: Parser Error: syntax error at or near "SELEC"'),
        (
            ["local", "invoke", "IngestStreamFunction", "--event", "{not_json}"],
            "error: event file {not_json} is not JSON: Expecting value: line 1 column 1 (char 0)",
        ),
    ],
    ids=["query", "invoke"],
)
def test_given_bad_input_in_a_real_process_then_stderr_is_one_line_without_a_traceback(
    home: Path, files: Path, args: list[str], line: str
) -> None:
    args = [a.replace("{not_json}", str(files / "not.json")) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli.main", *args],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
        env={STATE_DIR_VARIABLE: str(home), "PATH": "/usr/bin:/bin", "COLUMNS": "80"},
    )  # fmt: skip

    assert result.returncode == ERROR
    assert result.stderr == line.replace("{not_json}", str(files / "not.json")) + "\n"
    assert result.stdout == ""
