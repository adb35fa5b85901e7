"""The compaction Glue script's own arguments: a bad value is a usage error naming it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
REQUIRED = ["--raw_bucket", "r", "--curated_bucket", "c", "--database", "d"]


def _script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "compact_sales", REPO / "glue_jobs" / "compact_sales.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (
            ["--maintenance", "sometimes"],
            "--maintenance must be one of off, after, only, not 'sometimes'",
        ),
        (
            ["--maintenance", "only", "--snapshot_retention_days", "0"],
            "--snapshot_retention_days must be a whole number >= 1, not '0'",
        ),
        (
            ["--raw_queue_url", "https://q", "--raw_discovery", "notify"],
            "--raw_discovery must be one of queue, listing, not 'notify'",
        ),
    ],
)
def test_given_a_bad_maintenance_argument_when_the_job_starts_then_it_is_a_usage_error(
    argument: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _script().main([*REQUIRED, *argument])

    assert status == 2
    assert capsys.readouterr().err.startswith(message)


@pytest.mark.parametrize(
    ("options", "queue"),
    [
        ({"raw_queue_url": "https://q"}, "https://q"),
        ({"raw_queue_url": "https://q", "raw_discovery": "queue"}, "https://q"),
        ({"raw_queue_url": "https://q", "raw_discovery": "listing"}, None),
        ({}, None),
        ({"raw_queue_url": ""}, None),
    ],
    ids=["queue", "queue-named", "sweep", "no-queue", "empty-queue"],
)
def test_given_the_discovery_arguments_then_the_run_drains_the_queue_unless_it_sweeps(
    options: dict[str, str], queue: str | None
) -> None:
    assert _script()._raw_queue(options) == queue
