"""The local Glue runtime runs what a job's definition gives it, and nothing else."""

from __future__ import annotations

import re
import subprocess
import uuid
from typing import TYPE_CHECKING

import pytest

from pipeline.errors import ConfigurationError
from pipeline.local.glue_runtime import (
    GlueJobDefinition,
    JobImportError,
    job_environment,
    run_glue_job,
)
from pipeline.local.stack import LocalStack
from pipeline.local.template import DEFAULT_TEMPLATE, load_template
from pipeline.packaging.glue_artifacts import wheel_name

if TYPE_CHECKING:
    from pathlib import Path

JOBS = ("CompactSalesJob", "ForecastDemandJob")
AWSWRANGLER = ",awswrangler==3.17.1"


def _template_with(tmp_path: Path, old: str, new: str) -> Path:
    """The template with the first ``old`` (in CompactSalesJob, the first job) replaced."""
    text = DEFAULT_TEMPLATE.read_text()
    assert old in text
    path = tmp_path / "template.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_given_a_job_whose_definition_lacks_a_module_when_run_then_the_error_names_both(
    emulator_url: str, tmp_path: Path
) -> None:
    template = _template_with(tmp_path, AWSWRANGLER, "")
    stack = LocalStack.create(
        emulator_url, stack_name=f"g{uuid.uuid4().hex[:8]}", template_path=template
    )

    with pytest.raises(JobImportError) as raised:
        run_glue_job(stack, "CompactSalesJob")

    assert raised.value.module == "awswrangler"
    assert str(raised.value).startswith(
        "CompactSalesJob imports 'awswrangler', which its job definition does not provide "
        "(neither its Glue version's modules nor --additional-python-modules):\n"
    )


def test_given_an_s3_wheel_without_no_deps_when_run_then_it_is_refused_before_installing(
    emulator_url: str, tmp_path: Path
) -> None:
    template = _template_with(
        tmp_path,
        '"--python-modules-installer-option": "--no-deps"',
        '"--python-modules-installer-option": ""',
    )
    stack = LocalStack.create(
        emulator_url, stack_name=f"g{uuid.uuid4().hex[:8]}", template_path=template
    )

    with pytest.raises(ConfigurationError, match=r"^CompactSalesJob: an S3 wheel in "):
        run_glue_job(stack, "CompactSalesJob")


def test_given_the_template_then_each_job_ships_the_built_wheel_and_pins_every_module(
    emulator_url: str,
) -> None:
    stack = LocalStack.create(emulator_url, stack_name=f"g{uuid.uuid4().hex[:8]}")
    bucket = stack.ref("ArtifactsBucket")
    for job in JOBS:
        definition = GlueJobDefinition.from_stack(stack, job)
        wheels = [m for m in definition.modules if m.startswith("s3://")]
        others = [m for m in definition.modules if not m.startswith("s3://")]
        assert wheels == [f"s3://{bucket}/glue/{wheel_name()}"]
        assert others and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][^,]*", m) for m in others)
        assert definition.installer_options == ["--no-deps"]
        assert definition.script_location.startswith(f"s3://{bucket}/glue/")
        spec = load_template()["Resources"][job]["Properties"]
        assert (spec["GlueVersion"], spec["Command"]["Name"]) == ("5.1", "glueetl")


#: What the jobs use of PyIceberg: the Glue catalog, Arrow file IO, expressions and commits.
PYICEBERG_IMPORTS = (
    "import pyiceberg.catalog.glue, pyiceberg.io.pyarrow, pyiceberg.expressions, "
    "pyiceberg.table; import importlib.metadata as m; print(m.version('pyiceberg'))"
)


@pytest.mark.parametrize("job", JOBS)
def test_given_a_jobs_declared_modules_when_its_environment_is_built_then_pyiceberg_imports(
    emulator_url: str, job: str
) -> None:
    # job_environment runs pip check on the --no-deps install: a dependency of PyIceberg
    # that neither Glue 5.1 nor the job provides fails the build, naming it.
    stack = LocalStack.create(emulator_url, stack_name=f"g{uuid.uuid4().hex[:8]}")
    python = job_environment(GlueJobDefinition.from_stack(stack, job))

    done = subprocess.run(
        [str(python), "-c", PYICEBERG_IMPORTS], capture_output=True, text=True, check=False
    )

    assert (done.returncode, done.stdout.strip()) == (0, "0.12.0"), done.stderr[-2000:]
