"""The local Glue runtime runs what a job's definition gives it, and nothing else."""

from __future__ import annotations

import hashlib
import re
import subprocess
import uuid
from typing import TYPE_CHECKING

import pytest

from pipeline.errors import ConfigurationError
from pipeline.local.glue_environment import WheelMissing, job_environment, template_environments
from pipeline.local.glue_runtime import (
    GlueJobDefinition,
    JobImportError,
    publish_artifacts,
    run_glue_job,
)
from pipeline.local.stack import LocalStack
from pipeline.local.template import DEFAULT_TEMPLATE, load_template
from pipeline.packaging.glue_artifacts import wheel_name

if TYPE_CHECKING:
    from pathlib import Path

JOBS = ("CompactSalesJob", "ForecastDemandJob", "ImportHistoryJob")


def _wheelhouse_entry(filename_start: str) -> str:
    """The first job's wheelhouse entry of a module, as the template writes it."""
    found = re.search(
        r'\n +- !Sub "s3://\$\{ArtifactsBucket\}/glue/wheelhouse/[0-9a-f]{64}/'
        rf'{re.escape(filename_start)}[^"]*\.whl"',
        DEFAULT_TEMPLATE.read_text(),
    )
    assert found is not None
    return found[0]


#: The compaction job's single engine imports PyIceberg; the Spark engine only awswrangler.
PYICEBERG = _wheelhouse_entry("pyiceberg-0.12.0-")
AWSWRANGLER = _wheelhouse_entry("awswrangler-3.17.1-")


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
    template = _template_with(tmp_path, PYICEBERG, "")
    stack = LocalStack.create(
        emulator_url, stack_name=f"g{uuid.uuid4().hex[:8]}", template_path=template
    )

    with pytest.raises(JobImportError) as raised:
        run_glue_job(stack, "CompactSalesJob")

    assert raised.value.module == "pyiceberg"
    assert str(raised.value).startswith(
        "CompactSalesJob imports 'pyiceberg', which its job definition does not provide "
        "(neither its Glue version's modules nor --additional-python-modules):\n"
    )


def test_given_installer_options_without_no_index_when_run_then_it_is_refused_before_installing(
    emulator_url: str, tmp_path: Path
) -> None:
    template = _template_with(
        tmp_path,
        '"--python-modules-installer-option": "--no-deps --no-index"',
        '"--python-modules-installer-option": "--no-deps"',
    )
    stack = LocalStack.create(
        emulator_url, stack_name=f"g{uuid.uuid4().hex[:8]}", template_path=template
    )

    with pytest.raises(ConfigurationError) as raised:
        run_glue_job(stack, "CompactSalesJob")

    assert str(raised.value) == (
        "CompactSalesJob: --python-modules-installer-option lacks --no-index: pip on Glue "
        "would install the S3 wheels' dependencies from the package index"
    )


def test_given_a_module_from_the_package_index_when_run_then_it_is_refused_naming_it(
    emulator_url: str, tmp_path: Path
) -> None:
    template = _template_with(tmp_path, AWSWRANGLER, '\n            - "awswrangler==3.17.1"')
    stack = LocalStack.create(
        emulator_url, stack_name=f"g{uuid.uuid4().hex[:8]}", template_path=template
    )

    with pytest.raises(ConfigurationError) as raised:
        run_glue_job(stack, "CompactSalesJob")

    assert str(raised.value) == (
        "CompactSalesJob: awswrangler==3.17.1 in --additional-python-modules would be "
        "installed from the package index at every start; name its wheelhouse key "
        "(`make lock` writes it)"
    )


def test_given_a_wheel_missing_from_the_wheelhouse_when_the_job_installs_then_it_fails_naming_it(
    emulator_url: str,
) -> None:
    stack = LocalStack.create(emulator_url, stack_name=f"g{uuid.uuid4().hex[:8]}")
    deployed = publish_artifacts(stack)
    definition = GlueJobDefinition.from_stack(stack, "CompactSalesJob", deployed)
    url, wheel = next((u, w) for u, w in definition.wheelhouse if w.name == "pyiceberg")
    s3 = stack.session().client("s3")
    s3.delete_object(Bucket=stack.ref("ArtifactsBucket"), Key=wheel.key)

    with pytest.raises(WheelMissing) as raised:
        job_environment(definition, s3)

    assert str(raised.value) == (
        f"CompactSalesJob: {wheel.filename} is missing from the artifacts bucket ({url}); "
        "Glue would fail installing it: publish the Glue artifacts (infra/README.md)"
    )


def test_given_the_template_then_each_job_installs_content_addressed_wheels_without_an_index(
    emulator_url: str,
) -> None:
    stack = LocalStack.create(emulator_url, stack_name=f"g{uuid.uuid4().hex[:8]}")
    bucket = stack.ref("ArtifactsBucket")
    deployed = publish_artifacts(stack)
    digest = deployed["PipelineWheelSha256"]
    s3 = stack.session().client("s3")
    for job in JOBS:
        definition = GlueJobDefinition.from_stack(stack, job, deployed)
        assert definition.own_wheels == [f"s3://{bucket}/glue/wheels/{digest}/{wheel_name()}"]
        assert len(definition.wheelhouse) + 1 == len(definition.modules)
        for url, wheel in definition.wheelhouse:
            assert url == f"s3://{bucket}/glue/wheelhouse/{wheel.sha256}/{wheel.filename}"
        assert definition.installer_options == ["--no-deps", "--no-index"]
        assert definition.script_location.startswith(f"s3://{bucket}/glue/")
        spec = load_template()["Resources"][job]["Properties"]
        assert (spec["GlueVersion"], spec["Command"]["Name"]) == ("5.1", "glueetl")
        # Each object published is the wheel its key names.
        for url in definition.modules:
            body = s3.get_object(Bucket=bucket, Key=url.split("/", 3)[3])["Body"].read()
            assert hashlib.sha256(body).hexdigest() == url.split("/")[-2]


#: What the jobs use of PyIceberg: the Glue catalog, Arrow file IO, expressions and commits.
PYICEBERG_IMPORTS = (
    "import pyiceberg.catalog.glue, pyiceberg.io.pyarrow, pyiceberg.expressions, "
    "pyiceberg.table; import importlib.metadata as m; print(m.version('pyiceberg'))"
)


@pytest.mark.parametrize("job", JOBS)
def test_given_a_jobs_wheelhouse_when_its_environment_is_built_then_pyiceberg_imports(
    emulator_url: str, job: str
) -> None:
    # job_environment runs pip check on the --no-deps install: a dependency of PyIceberg
    # that neither Glue 5.1 nor the job provides fails the build, naming it. `make install`
    # builds the same environment (template_environments) from the local wheelhouse: a run
    # finds it by its digest.
    stack = LocalStack.create(emulator_url, stack_name=f"g{uuid.uuid4().hex[:8]}")
    deployed = publish_artifacts(stack)
    definition = GlueJobDefinition.from_stack(stack, job, deployed)
    python = job_environment(definition, stack.session().client("s3"))

    assert python == template_environments()[JOBS.index(job)]
    done = subprocess.run(
        [str(python), "-c", PYICEBERG_IMPORTS], capture_output=True, text=True, check=False
    )

    assert (done.returncode, done.stdout.strip()) == (0, "0.12.0"), done.stderr[-2000:]
