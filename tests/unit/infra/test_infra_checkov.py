"""checkov on infra/template.yaml: no failed check, every deliberate skip justified inline.

checkov pins many dependencies (boto3 among them) that conflict with the project's, so it
lives in its own virtualenv, `.venv-tools`, which `make install` (and so `make test`)
creates. It runs offline: no platform download, no update check, and a dead proxy on
loopback so that nothing it might still try leaves the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline.local.template import DEFAULT_TEMPLATE

ROOT = Path(__file__).resolve().parents[3]
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"
OFFLINE_ENV = {
    "BC_SKIP_MAPPING": "TRUE",
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "",
}


def run_checkov(template: Path) -> dict[str, Any]:
    """checkov's JSON report of one CloudFormation template."""
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: run `make install`"
    proc = subprocess.run(
        [
            str(CHECKOV),
            "-f",
            str(template),
            "--framework",
            "cloudformation",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **OFFLINE_ENV},
    )
    # Exit code 1 means failed checks; anything else non-zero is a crash.
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run_checkov(DEFAULT_TEMPLATE)


def test_given_the_template_when_scanned_then_no_check_fails(report: dict[str, Any]) -> None:
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 100


def test_given_the_template_when_scanned_then_every_skip_has_a_reason(
    report: dict[str, Any],
) -> None:
    skipped = report["results"]["skipped_checks"]
    unjustified = [
        (c["check_id"], c["resource"])
        for c in skipped
        if len(c["check_result"].get("suppress_comment", "").strip()) < 20
    ]
    assert skipped
    assert unjustified == []
