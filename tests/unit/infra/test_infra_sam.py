"""`sam validate --lint` on infra/template.yaml (aws-sam-cli from PyPI, in `.venv-sam`).

aws-sam-cli pins its own dependencies, so it has a virtualenv of its own that `make install`
(and so `make test`) creates, as checkov does. No telemetry, and a dead proxy on loopback.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipeline.local.template import DEFAULT_TEMPLATE

ROOT = Path(__file__).resolve().parents[3]
SAM = ROOT / ".venv-sam" / "bin" / "sam"
OFFLINE_ENV = {
    "SAM_CLI_TELEMETRY": "0",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "",
}


def test_given_the_template_when_sam_validates_with_lint_then_it_is_valid() -> None:
    assert SAM.is_file(), f"{SAM} is missing: run `make install`"
    result = subprocess.run(
        [str(SAM), "validate", "--lint", "--template-file", str(DEFAULT_TEMPLATE),
         "--region", "us-east-1"],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, **OFFLINE_ENV},
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{DEFAULT_TEMPLATE} is a valid SAM Template" in result.stdout
