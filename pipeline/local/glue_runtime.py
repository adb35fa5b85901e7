"""Run a Glue job of the template locally as Glue runs it: from its artifacts, in its runtime.

What Glue does with a job definition, done here against the emulator:

1. it fetches ``Command.ScriptLocation`` from S3 (the artifacts bucket; ``fmcg`` publishes
   the built artifacts there first, as the deploy step does on AWS, and resolves the job
   with the parameters the deploy passes: the project wheel's digest);
2. it starts the ``GlueVersion``'s Python with the modules that version provides
   (infra/glue/python-modules-<version>.txt, copied from the Glue documentation) and
   pip-installs the S3 wheels of ``--additional-python-modules`` with
   ``--python-modules-installer-option`` (``--no-deps --no-index``);
3. it runs the script with ``--JOB_NAME``, ``--JOB_RUN_ID``, its own run arguments and the
   job's arguments.

Step 2 is :mod:`pipeline.local.glue_environment`: the job's modules come from the
wheelhouse objects in the emulator's artifacts bucket only, installed with ``--no-index`` and
each wheel's hash (the digest in its key, which must be one of the Glue lock's); a wheel
missing there fails with ``WheelMissing``, naming it, before anything runs. The process sees
nothing of the working tree: a module the definition does not provide fails here with
:class:`JobImportError`, naming the module and the job, as it would on AWS.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pipeline.errors import ConfigurationError, PipelineError
from pipeline.job_protocol import Progress, null_progress, parse_line
from pipeline.local.glue_environment import (
    CACHE,
    DIGEST_IN_KEY,
    MODULE_LISTS,
    PYTHON_OF_GLUE,
    fetch_object,
    file_lock,
    install_own_wheels,
    job_environment,
)
from pipeline.packaging.glue_artifacts import ROOT, build_glue_artifacts, publish_glue_artifacts
from pipeline.packaging.wheelhouse import INSTALLER_OPTIONS, LockedWheel

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from pipeline.local.stack import LocalStack

#: What Glue adds to every run of a job without bookmarks.
GLUE_RUN_ARGUMENTS: Final = ("--job-bookmark-option", "job-bookmark-disable")
MODULES_ARGUMENT: Final = "--additional-python-modules"
INSTALLER_ARGUMENT: Final = "--python-modules-installer-option"
_MISSING_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")


class JobFailed(PipelineError):
    """The job process exited with an error; ``output`` holds its last lines."""

    def __init__(self, job: str, returncode: int, output: str) -> None:
        super().__init__(f"{job} exited with status {returncode}:\n{output}")
        self.job = job
        self.returncode = returncode
        self.output = output


class JobImportError(JobFailed):
    """The job imported a module its definition does not provide."""

    def __init__(self, job: str, returncode: int, output: str, module: str) -> None:
        PipelineError.__init__(
            self,
            f"{job} imports {module!r}, which its job definition does not provide "
            f"(neither its Glue version's modules nor {MODULES_ARGUMENT}):\n{output}",
        )
        self.job, self.returncode, self.output, self.module = job, returncode, output, module


@dataclass(frozen=True)
class GlueJobDefinition:
    """The parts of an ``AWS::Glue::Job`` that decide how it runs, resolved to local names."""

    logical_id: str
    name: str
    glue_version: str
    script_location: str
    arguments: dict[str, str]

    @classmethod
    def from_stack(
        cls, stack: LocalStack, logical_id: str, parameters: Mapping[str, str] | None = None
    ) -> GlueJobDefinition:
        """The job as deployed with ``parameters`` (the deploy step's) over the stack's."""
        from pipeline.local.template import resolve

        spec = stack.template["Resources"].get(logical_id)
        if spec is None or spec["Type"] != "AWS::Glue::Job":
            raise ConfigurationError(f"{logical_id} is not a Glue job in {stack.template_path}")
        context = stack.context()
        context.parameters.update(parameters or {})
        props = resolve(spec["Properties"], context)
        return cls(
            logical_id=logical_id,
            name=str(props["Name"]),
            glue_version=str(props.get("GlueVersion", "")),
            script_location=str(props["Command"]["ScriptLocation"]),
            arguments={k: str(v) for k, v in props.get("DefaultArguments", {}).items()},
        )

    @property
    def modules(self) -> list[str]:
        """``--additional-python-modules``: ``s3://`` wheels (or requirement specifiers)."""
        value = self.arguments.get(MODULES_ARGUMENT, "")
        return [m.strip() for m in value.split(",") if m.strip()]

    @property
    def installer_options(self) -> list[str]:
        return self.arguments.get(INSTALLER_ARGUMENT, "").split()

    @property
    def wheelhouse(self) -> list[tuple[str, LockedWheel]]:
        """The third-party wheels (URL, wheel) at wheelhouse keys."""
        found = ((m, LockedWheel.from_module(m)) for m in self.modules)
        return [(url, wheel) for url, wheel in found if wheel is not None]

    @property
    def own_wheels(self) -> list[str]:
        """The other S3 wheels: the project's own."""
        return [m for m in self.modules if LockedWheel.from_module(m) is None]

    def check(self) -> None:
        """Refuse a definition Glue would run differently from what it says."""
        from_index = [m for m in self.modules if not m.startswith("s3://")]
        if from_index:
            raise ConfigurationError(
                f"{self.logical_id}: {', '.join(from_index)} in {MODULES_ARGUMENT} would be "
                "installed from the package index at every start; name its wheelhouse key "
                "(`make lock` writes it)"
            )
        absent = [o for o in INSTALLER_OPTIONS if o not in self.installer_options]
        if absent:
            raise ConfigurationError(
                f"{self.logical_id}: {INSTALLER_ARGUMENT} lacks {' '.join(absent)}: pip on Glue "
                "would install the S3 wheels' dependencies from the package index"
            )
        unnamed = [m for m in self.own_wheels if not DIGEST_IN_KEY.search(m)]
        if unnamed:
            raise ConfigurationError(
                f"{self.logical_id}: {', '.join(unnamed)} is not at a content-addressed key "
                "(glue/wheels/<sha256>/<file>)"
            )

    def provided_modules(self) -> Path:
        """The list of modules the job's Glue version provides."""
        path = MODULE_LISTS / f"python-modules-{self.glue_version}.txt"
        if self.glue_version not in PYTHON_OF_GLUE or not path.is_file():
            raise ConfigurationError(
                f"{self.logical_id}: Glue version {self.glue_version!r} cannot run locally "
                f"(known: {', '.join(sorted(PYTHON_OF_GLUE))})"
            )
        return path


def publish_artifacts(stack: LocalStack) -> dict[str, str]:
    """Build the Glue artifacts for the stack's template and publish them to its artifacts
    bucket, as the deploy step does on AWS (infra/README.md); the parameters it passes."""
    s3 = stack.session().client("s3")
    with file_lock(CACHE / "build.lock"):
        artifacts = build_glue_artifacts(ROOT / "build", template=stack.template)
        publish_glue_artifacts(artifacts, s3, stack.ref("ArtifactsBucket"))
    return artifacts.parameters()


def _job_process_env(
    stack: LocalStack, paths: list[Path], arguments: Mapping[str, str] | None = None
) -> dict[str, str]:
    # Nothing of this interpreter's environment that would change what the job imports.
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "AWS_", "FMCG_"))
    }
    return {
        **inherited,
        **stack.environment(),
        **datalake_jars(arguments or {}),
        "PYTHONPATH": os.pathsep.join(str(p) for p in paths),
        "PYTHONNOUSERSITE": "1",
    }


def datalake_jars(arguments: Mapping[str, str]) -> dict[str, str]:
    """What ``--datalake-formats iceberg`` does on Glue, for a local run: Iceberg's jars on
    the Spark session's class path (the locked ones ``make install`` put in this
    virtualenv: the version Glue 5.1 ships)."""
    formats = {f.strip() for f in arguments.get("--datalake-formats", "").split(",")}
    if "iceberg" not in formats:
        return {}
    from pipeline.spark.jars import JARS_VARIABLE, jar_directory

    return {JARS_VARIABLE: str(jar_directory())}


def run_glue_job(
    stack: LocalStack,
    logical_id: str,
    *,
    arguments: Mapping[str, str] | None = None,
    progress: Progress = null_progress,
) -> dict[str, Any]:
    """Run the job once from its artifacts; its report (raises :class:`JobFailed`).

    ``arguments`` override the job's ``DefaultArguments``, as job-run arguments do.
    """
    deployed = publish_artifacts(stack)
    definition = GlueJobDefinition.from_stack(stack, logical_id, deployed)
    definition.check()
    s3 = stack.session().client("s3")
    python = job_environment(definition, s3)
    paths = install_own_wheels(definition, python, s3)
    run_dir = CACHE / "runs" / uuid.uuid4().hex
    script = fetch_object(s3, definition.script_location, run_dir)
    merged = {**definition.arguments, **(arguments or {})}
    command = [
        str(python),
        "-s",
        str(script),
        "--JOB_NAME",
        definition.name,
        # Glue names each run (jr_ and 64 hex digits) and passes the name to the script.
        "--JOB_RUN_ID",
        f"jr_{secrets.token_hex(32)}",
        *GLUE_RUN_ARGUMENTS,
        *[part for name, value in merged.items() for part in (name, value)],
    ]
    tail: deque[str] = deque(maxlen=40)
    report: dict[str, Any] | None = None
    try:
        with subprocess.Popen(
            command,
            env=_job_process_env(stack, paths, merged),
            cwd=run_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as proc:
            assert proc.stdout is not None  # noqa: S101 - PIPE was requested
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                parsed = parse_line(line)
                if parsed is None:
                    tail.append(line)
                elif parsed[0] == "progress":
                    body = parsed[1]
                    progress(str(body["step"]), int(body["done"]), int(body["total"]))
                else:
                    report = parsed[1]
            returncode = proc.wait()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    if returncode != 0 or report is None:
        output = "\n".join(tail)
        missing = _MISSING_MODULE.search(output)
        if missing:
            raise JobImportError(logical_id, returncode, output, missing.group(1))
        raise JobFailed(logical_id, returncode, output)
    return report
