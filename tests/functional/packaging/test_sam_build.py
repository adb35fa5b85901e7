"""`sam build` of infra/template.yaml without Docker and without a python3.12 on the PATH.

Every function and the layer use BuildMethod: makefile (infra/sam.mk), which copies what
`python -m pipeline.packaging` built: SAM's output must be exactly that tree.
"""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.local.template import DEFAULT_TEMPLATE
from pipeline.packaging import build_lambda_artifacts

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SAM = ROOT / ".venv-sam" / "bin" / "sam"


def same_tree(left: Path, right: Path) -> bool:
    compared = filecmp.dircmp(left, right)
    if compared.left_only or compared.right_only or compared.diff_files or compared.funny_files:
        return False
    return all(same_tree(left / d, right / d) for d in compared.common_dirs)


def test_given_no_docker_and_no_python_3_12_when_sam_builds_then_it_ships_the_project_build(
    tmp_path: Path,
) -> None:
    assert SAM.is_file(), f"{SAM} is missing: run `make install`"
    out = tmp_path / "build"
    artifacts = build_lambda_artifacts(out)  # first, so that SAM's build is a cache hit
    command = f"{sys.executable} -m pipeline.packaging --out {out} --only lambda --quiet"
    env = {
        # No pyenv shims, no python3.12: only make and the system's tools.
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SAM_CLI_TELEMETRY": "0",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "BUILD_LAMBDA": f"cd {ROOT} && {command}",
        "BUILT": str(artifacts.root),
    }
    result = subprocess.run(
        [str(SAM), "build", "--template-file", str(DEFAULT_TEMPLATE),
         "--build-dir", str(tmp_path / "sam"), "--region", "us-east-1"],
        capture_output=True, text=True, check=False, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Build Succeeded" in result.stdout
    built = tmp_path / "sam"
    assert same_tree(built / "SharedLayer", artifacts.layer)
    for logical_id in artifacts.functions:
        assert same_tree(built / logical_id, artifacts.code_dir(logical_id))
    assert not any(os.access(Path(d) / "python3.12", os.X_OK) for d in env["PATH"].split(":"))
