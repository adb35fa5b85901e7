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

The job's modules come from the wheelhouse objects in the emulator's artifacts bucket only,
installed with ``--no-index`` and each wheel's hash (the digest in its key, which must be
one of the Glue lock's): a wheel missing there fails with :class:`WheelMissing`, naming it,
before anything runs. The Glue version's own modules (what Glue's image has installed) come
from the lock with ``--require-hashes``, once. The environment of step 2 is a virtualenv
cached under build/local/glue by a digest of what makes it; the project's wheel is
installed into a directory of its own per content digest, so a code change costs one small
install, not a new environment. The process sees nothing of the working tree: a module the
definition does not provide fails here with :class:`JobImportError`, naming the module and
the job, as it would on AWS.
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
from pipeline.packaging.glue_artifacts import ROOT, build_glue_artifacts, publish_glue_artifacts
from pipeline.packaging.locks import SPARK_OF_GLUE, glue_lock, normalise, read_pins
from pipeline.packaging.requirements import pip_install
from pipeline.packaging.wheelhouse import INSTALLER_OPTIONS, LockedWheel, unlocked

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
#: The digest segment of a content-addressed key (``glue/wheels/<sha256>/<file>``).
_DIGEST_IN_KEY = re.compile(r"/([0-9a-f]{64})/[^/]+$")


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


class WheelMissing(ConfigurationError):
    """A wheel the job's definition names is not in the artifacts bucket."""

    def __init__(self, job: str, url: str) -> None:
        super().__init__(
            f"{job}: {url.rpartition('/')[2]} is missing from the artifacts bucket ({url}); "
            "Glue would fail installing it: publish the Glue artifacts (infra/README.md)"
        )
        self.job, self.url = job, url


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
        unnamed = [m for m in self.own_wheels if not _DIGEST_IN_KEY.search(m)]
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


def job_environment(definition: GlueJobDefinition, s3: Any, cache: Path = CACHE) -> Path:
    """The Python of the job's runtime: its Glue version's modules plus its wheelhouse.

    Glue's own modules come from the Glue version's hash lock (``make lock``) with
    ``--require-hashes``; the job's modules only from the wheelhouse objects in the artifacts
    bucket, each hash-checked against the digest in its key, which must be one of the lock's,
    and installed with ``--no-index``. Every wheel is looked up in the bucket at each run, so a
    missing one fails (:class:`WheelMissing`) even when the environment is cached. Built once
    per digest of (Glue version, locked lines, wheel digests, installer options).
    """
    provided = _locked_lines(definition, _requirement_lines(definition.provided_modules()))
    wheels = definition.wheelhouse
    problems = unlocked([w for _, w in wheels], glue_lock(definition.glue_version))
    if problems:
        raise ConfigurationError(f"{definition.logical_id}: " + "; ".join(problems))
    for url, _ in wheels:
        _require(s3, definition, url)
    key = hashlib.sha256(
        "\n".join(
            [
                definition.glue_version,
                *provided,
                "--",
                *(w.key for _, w in wheels),
                "--",
                *definition.installer_options,
            ]
        ).encode()
    ).hexdigest()[:16]
    env = cache / f"env-{definition.glue_version}-{key}"
    python = env / "bin" / "python"
    with _locked(cache / f"{env.name}.lock"):
        if (env / ".complete").is_file():
            return python
        shutil.rmtree(env, ignore_errors=True)
        base = _base_python(PYTHON_OF_GLUE[definition.glue_version])
        subprocess.run([base, "-m", "venv", str(env)], check=True, capture_output=True)
        # What Glue's image has installed: the provided list is complete, no resolution.
        requirements_file = env / "provided.txt"
        requirements_file.write_text("".join(f"{line}\n" for line in provided))
        _pip(python, "--no-deps", "--require-hashes", "-r", str(requirements_file))
        # The job's modules, as Glue installs them: the fetched files, no index.
        downloads = env / "wheelhouse"
        lines = [
            f"{_fetch(s3, url, downloads / wheel.sha256)} --hash=sha256:{wheel.sha256}"
            for url, wheel in wheels
        ]
        (env / "wheelhouse.txt").write_text("".join(f"{line}\n" for line in lines))
        _pip(
            python,
            *definition.installer_options,
            "--require-hashes",
            "-r",
            str(env / "wheelhouse.txt"),
        )
        shutil.rmtree(downloads, ignore_errors=True)
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


def _require(s3: Any, definition: GlueJobDefinition, url: str) -> None:
    """:class:`WheelMissing` unless the object at ``url`` exists."""
    from botocore.exceptions import ClientError

    bucket, key = _split_s3(url)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise WheelMissing(definition.logical_id, url) from None
        raise


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


def install_own_wheels(
    definition: GlueJobDefinition, python: Path, s3: Any, cache: Path = CACHE
) -> list[Path]:
    """The project's wheel, each into a directory of its own (by digest), hash-checked.

    The digest is the one in its key (``glue/wheels/<sha256>/``), checked by pip
    (``--require-hashes``) with the job's installer options (``--no-index``).
    """
    targets = []
    for url in definition.own_wheels:
        _require(s3, definition, url)
        found = _DIGEST_IN_KEY.search(url)
        if found is None:
            raise ConfigurationError(f"{definition.logical_id}: {url} has no digest in its key")
        digest = found[1]
        target = cache / "wheels" / f"{Path(url).stem}-{digest[:16]}"
        with _locked(cache / "wheels" / f"{target.name}.lock"):
            if not (target / ".complete").is_file():
                shutil.rmtree(target, ignore_errors=True)
                download = cache / "downloads" / uuid.uuid4().hex
                wheel = _fetch(s3, url, download)
                requirements = download / "requirements.txt"
                requirements.write_text(f"{wheel} --hash=sha256:{digest}\n")
                try:
                    _pip(
                        python,
                        *definition.installer_options,
                        "--require-hashes",
                        "--target",
                        str(target),
                        "-r",
                        str(requirements),
                    )
                finally:
                    shutil.rmtree(download, ignore_errors=True)
                (target / ".complete").write_text(digest)
        targets.append(target)
    return targets


def publish_artifacts(stack: LocalStack) -> dict[str, str]:
    """Build the Glue artifacts for the stack's template and publish them to its artifacts
    bucket, as the deploy step does on AWS (infra/README.md); the parameters it passes."""
    s3 = stack.session().client("s3")
    with _locked(CACHE / "build.lock"):
        artifacts = build_glue_artifacts(ROOT / "build", template=stack.template)
        publish_glue_artifacts(artifacts, s3, stack.ref("ArtifactsBucket"))
    return artifacts.parameters()


def _job_process_env(stack: LocalStack, paths: list[Path]) -> dict[str, str]:
    # Nothing of this interpreter's environment that would change what the job imports.
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "AWS_", "FMCG_"))
    }
    return {
        **inherited,
        **stack.environment(),
        "PYTHONPATH": os.pathsep.join(str(p) for p in paths),
        "PYTHONNOUSERSITE": "1",
    }


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
            env=_job_process_env(stack, paths),
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
