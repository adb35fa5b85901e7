"""Run a Glue job of the template locally as Glue runs it: from its artifacts, in its runtime.

What Glue does with a job definition, done here against the emulator:

1. it fetches ``Command.ScriptLocation`` from S3 (the artifacts bucket; ``fmcg`` uploads
   the built artifacts there first, as the deploy commands do on AWS);
2. it starts the ``GlueVersion``'s Python with the modules that version provides
   (infra/glue/python-modules-<version>.txt, copied from the Glue documentation) and
   pip-installs ``--additional-python-modules`` with ``--python-modules-installer-option``;
3. it runs the script with ``--JOB_NAME``, ``--JOB_RUN_ID``, its own run arguments and the
   job's arguments.

The environment of step 2 is a virtualenv cached under build/local/glue by a digest of
what makes it; S3 wheels (the project's own) are installed into a directory of their own
per content digest, so a code change costs one small install, not a new environment. The
process sees nothing of the working tree: a module the definition does not provide fails
here with :class:`JobImportError`, naming the module and the job, as it would on AWS.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pipeline.errors import ConfigurationError, PipelineError
from pipeline.job_protocol import Progress, null_progress, parse_line
from pipeline.packaging.glue_artifacts import ROOT, build_glue_artifacts
from pipeline.packaging.locks import SPARK_OF_GLUE, glue_lock, normalise, read_pins
from pipeline.packaging.requirements import pip_install

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from pipeline.local.stack import LocalStack

CACHE: Final = ROOT / "build" / "local" / "glue"
MODULE_LISTS: Final = ROOT / "infra" / "glue"
#: The Python each Glue version runs (AWS Glue release notes).
PYTHON_OF_GLUE: Final = {"5.0": (3, 11), "5.1": (3, 11)}
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
    def from_stack(cls, stack: LocalStack, logical_id: str) -> GlueJobDefinition:
        from pipeline.local.template import resolve

        spec = stack.template["Resources"].get(logical_id)
        if spec is None or spec["Type"] != "AWS::Glue::Job":
            raise ConfigurationError(f"{logical_id} is not a Glue job in {stack.template_path}")
        props = resolve(spec["Properties"], stack.context())
        return cls(
            logical_id=logical_id,
            name=str(props["Name"]),
            glue_version=str(props.get("GlueVersion", "")),
            script_location=str(props["Command"]["ScriptLocation"]),
            arguments={k: str(v) for k, v in props.get("DefaultArguments", {}).items()},
        )

    @property
    def modules(self) -> list[str]:
        """``--additional-python-modules``: requirement specifiers and ``s3://`` wheels."""
        value = self.arguments.get(MODULES_ARGUMENT, "")
        return [m.strip() for m in value.split(",") if m.strip()]

    @property
    def installer_options(self) -> list[str]:
        return self.arguments.get(INSTALLER_ARGUMENT, "").split()

    def check(self) -> None:
        """Refuse a definition Glue would run differently from what it says."""
        if any(m.startswith("s3://") for m in self.modules) and (
            "--no-deps" not in self.installer_options
        ):
            raise ConfigurationError(
                f"{self.logical_id}: an S3 wheel in {MODULES_ARGUMENT} without "
                f"{INSTALLER_ARGUMENT} --no-deps would also install every dependency the "
                "wheel declares (the whole development tree) on Glue"
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


def _split_s3(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ConfigurationError(f"not an S3 object URL: {url!r}")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (pytest workers build the same environment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [*pip_install(python), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ConfigurationError(f"pip install {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def _base_python(version: tuple[int, int]) -> str:
    """A Python of the version the job's Glue version runs."""
    if sys.version_info[:2] == version:
        return getattr(sys, "_base_executable", sys.executable)
    found = shutil.which(f"python{version[0]}.{version[1]}")
    if found is None:
        raise ConfigurationError(
            f"the job's Glue version runs Python {version[0]}.{version[1]}, "
            f"which this machine does not have"
        )
    return found


def job_environment(definition: GlueJobDefinition, cache: Path = CACHE) -> Path:
    """The Python of the job's runtime: its Glue version's modules plus its PyPI modules.

    Every package comes from the Glue version's hash lock (``make lock``), installed with
    ``--require-hashes``; a module the job declares that the lock does not hold fails here,
    naming it. Built once per digest of (Glue version, locked lines, installer options).
    """
    provided = definition.provided_modules()
    requirements = [m for m in definition.modules if not m.startswith("s3://")]
    locked = _locked_lines(definition, [*_requirement_lines(provided), *requirements])
    key = hashlib.sha256(
        "\n".join([definition.glue_version, *locked, "--", *definition.installer_options]).encode()
    ).hexdigest()[:16]
    env = cache / f"env-{definition.glue_version}-{key}"
    python = env / "bin" / "python"
    with _locked(cache / f"{env.name}.lock"):
        if (env / ".complete").is_file():
            return python
        shutil.rmtree(env, ignore_errors=True)
        base = _base_python(PYTHON_OF_GLUE[definition.glue_version])
        subprocess.run([base, "-m", "venv", str(env)], check=True, capture_output=True)
        requirements_file = env / "requirements.txt"
        requirements_file.write_text("".join(f"{line}\n" for line in locked))
        # The provided list is complete (it is what Glue has installed), and Glue installs
        # the job's modules with the job's installer options (--no-deps): no resolution.
        _pip(python, "--no-deps", "--require-hashes", "-r", str(requirements_file))
        # Nothing was resolved, so the set must already be consistent: say so if it is not.
        check = subprocess.run(
            [str(python), "-m", "pip", "check"], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise ConfigurationError(
                f"the Glue {definition.glue_version} environment of {definition.logical_id} "
                f"is inconsistent (pip check):\n{check.stdout.strip()[-2000:]}"
            )
        (env / ".complete").write_text(key)
    return python


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _locked_lines(definition: GlueJobDefinition, requirements: list[str]) -> list[str]:
    """The lock's hashed line for each exact requirement (``name==version``) and for Spark."""
    lock = glue_lock(definition.glue_version)
    pins = {(p.name, p.version): p for p in read_pins(lock)}
    lines = []
    for requirement in [*requirements, *SPARK_OF_GLUE[definition.glue_version]]:
        name, _, version = requirement.partition("==")
        pin = pins.get((normalise(name), version.strip()))
        if pin is None:
            raise ConfigurationError(
                f"{definition.logical_id}: {requirement} is not in {lock.name} "
                "(declare modules as name==version and run `make lock`)"
            )
        lines.append(" ".join([pin.line, *(f"--hash={h}" for h in pin.hashes)]))
    return sorted(set(lines))


def _fetch(s3: Any, url: str, into: Path) -> Path:
    bucket, key = _split_s3(url)
    into.mkdir(parents=True, exist_ok=True)
    path = into / Path(key).name
    try:
        s3.download_file(bucket, key, str(path))
    except Exception as e:  # noqa: BLE001 - any failure to fetch means the artifact is absent
        raise ConfigurationError(f"cannot fetch {url}: {e}") from e
    return path


def install_s3_wheels(
    definition: GlueJobDefinition, python: Path, s3: Any, cache: Path = CACHE
) -> list[Path]:
    """Each ``s3://`` wheel of the job installed into a directory of its own (by digest)."""
    targets = []
    for url in (m for m in definition.modules if m.startswith("s3://")):
        download = cache / "downloads" / uuid.uuid4().hex
        wheel = _fetch(s3, url, download)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()[:16]
        target = cache / "wheels" / f"{wheel.stem}-{digest}"
        with _locked(cache / "wheels" / f"{target.name}.lock"):
            if not (target / ".complete").is_file():
                shutil.rmtree(target, ignore_errors=True)
                _pip(python, "--no-deps", "--target", str(target), str(wheel))
                (target / ".complete").write_text(digest)
        shutil.rmtree(download, ignore_errors=True)
        targets.append(target)
    return targets


def publish_artifacts(stack: LocalStack, definition: GlueJobDefinition) -> None:
    """Build the Glue artifacts and upload them where the job definition looks for them,
    as the deploy commands do on AWS (infra/README.md)."""
    bucket, key = _split_s3(definition.script_location)
    prefix = key.rpartition("/")[0]
    s3 = stack.session().client("s3")
    with _locked(CACHE / "build.lock"):
        artifacts = build_glue_artifacts(ROOT / "build")
    for path in artifacts:
        s3.upload_file(str(path), bucket, f"{prefix}/{path.name}" if prefix else path.name)


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
    definition = GlueJobDefinition.from_stack(stack, logical_id)
    definition.check()
    publish_artifacts(stack, definition)
    python = job_environment(definition)
    s3 = stack.session().client("s3")
    paths = install_s3_wheels(definition, python, s3)
    run_dir = CACHE / "runs" / uuid.uuid4().hex
    script = _fetch(s3, definition.script_location, run_dir)
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
