"""``fmcg local invoke``: a template function from its built artifact with the template's env."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import ConfigurationError
from pipeline.local.invoke import handler_location, invoke_function

REPO = Path(__file__).resolve().parents[3]
EVENTS = REPO / "infra" / "events"


def test_given_the_sample_kinesis_event_when_invoked_then_raw_and_quarantine_land(stack):
    event = json.loads((EVENTS / "kinesis_sales.json").read_text())

    response = invoke_function(stack, "IngestStreamFunction", event)

    assert response == {"batchItemFailures": []}
    s3 = stack.session().client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.ref("RawBucket"))["Contents"]]
    assert sum(k.startswith("sales/") for k in keys) == 1
    assert sum(k.startswith("quarantine/") for k in keys) == 1


def test_given_an_unknown_logical_id_when_invoked_then_configuration_error(stack) -> None:
    with pytest.raises(ConfigurationError, match="RawBucket is not a function in"):
        handler_location(stack, "RawBucket")


def test_given_the_cli_when_invoking_with_an_event_file_then_it_prints_the_json_response(
    stack, tmp_path
) -> None:
    state = tmp_path / "state"
    stack.save(state / "local.json")  # the CLI finds the stack through its state file
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli.main",
            "local",
            "invoke",
            "GetForecastFunction",
            "--event",
            str(EVENTS / "api_get_forecasts.json"),
        ],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"FMCG_HOME": str(state), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["items"] == []


def test_given_an_event_the_function_rejects_when_invoked_by_the_cli_then_one_line_names_its_error(
    stack, tmp_path
) -> None:
    state = tmp_path / "state"
    stack.save(state / "local.json")
    event = tmp_path / "not_kinesis.json"
    event.write_text('{"detail": "no Records"}')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli.main",
            "local",
            "invoke",
            "IngestStreamFunction",
            "--event",
            str(event),
        ],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"FMCG_HOME": str(state), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"error: IngestStreamFunction raised KeyError: 'Records' (on the event in {event})\n"
    )
