"""The history import Glue script's own arguments: a bad value is a usage error naming it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
REQUIRED = [
    "--source", "s3://b/imports/h.csv", "--curated_bucket", "c", "--database", "d",
    "--sku_id", "s", "--location_id", "l", "--date", "d", "--units", "u",
]  # fmt: skip


def _script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "import_history", REPO / "glue_jobs" / "import_history.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (["--engine", "gpu"], "--engine must be one of single, spark, got 'gpu'"),
        (["--format", "xlsx"], "--format must be one of csv, parquet, not 'xlsx'"),
    ],
)
def test_given_a_bad_argument_when_the_job_starts_then_it_is_a_usage_error(
    argument: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _script().main([*REQUIRED, *argument])

    assert status == 2
    assert capsys.readouterr().err == message + "\n"


def test_given_a_missing_mapped_column_argument_when_the_job_starts_then_it_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = _script().main(REQUIRED[:-2])

    assert status == 2
    assert "--units" in capsys.readouterr().err
