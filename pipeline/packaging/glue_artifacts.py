"""The Glue half of the deployment artifacts: the job scripts, a wheel, the wheelhouse.

Glue runs a job's ``ScriptLocation`` and pip-installs its ``--additional-python-modules``:
S3 wheels only, at content-addressed keys, with ``--no-deps --no-index``, so the job
definition alone says what the job can import and nothing comes from an index
(:mod:`pipeline.packaging.wheelhouse`). The wheel is built from a copy of the sources, never
from the working tree in place, so a stale ``build/lib`` can never slip a deleted module
into it. Builds are cached by a digest of the sources; :func:`publish_glue_artifacts` is
the upload both the deploy step and the local runtime use.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from pipeline.errors import ConfigurationError
from pipeline.packaging.exceptions import ArtifactError
from pipeline.packaging.locks import glue_lock
from pipeline.packaging.wheelhouse import (
    WHEEL_DIGEST_PARAMETER,
    declared_wheels,
    download_wheelhouse,
    sha256_of,
    unlocked,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

ROOT: Final = Path(__file__).resolve().parents[2]
SCRIPTS: Final = ("compact_sales.py", "forecast_demand.py", "import_history.py")
#: What goes into the wheel's build: the package and the files its metadata reads.
_WHEEL_SOURCES: Final = ("pipeline", "pyproject.toml", "README.md")
_STAMP: Final = ".sources-digest"


def wheel_name(root: Path = ROOT) -> str:
    """The file name pip gives the project's wheel (the template names it too)."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return f"{project['name'].replace('-', '_')}-{project['version']}-py3-none-any.whl"


def _source_files(root: Path) -> list[Path]:
    files = [root / "glue_jobs" / name for name in SCRIPTS]
    for name in _WHEEL_SOURCES:
        path = root / name
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            )
        else:
            files.append(path)
    return files


def sources_digest(root: Path = ROOT) -> str:
    """A digest of every file the Glue artifacts are made from."""
    digest = hashlib.sha256()
    for path in _source_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _build_wheel(root: Path, out: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="fmcg-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in _WHEEL_SOURCES:
            path = root / name
            if path.is_dir():
                shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, src / name)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "-w",
                str(out),
                str(src),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    wheel = out / wheel_name(root)
    if done.returncode != 0 or not wheel.is_file():
        raise ConfigurationError(f"building {wheel.name} failed:\n{done.stderr[-2000:]}")
    return wheel


@dataclass(frozen=True)
class GlueArtifacts:
    """``out/glue/`` laid out as the artifacts bucket's ``glue/`` prefix.

    The scripts at fixed keys, the project's wheel at ``wheels/<sha256>/`` and the
    wheelhouse at ``wheelhouse/<sha256>/``; ``parameters.txt`` holds what the deploy step
    passes to the template (``PipelineWheelSha256=<sha256>``).
    """

    root: Path
    scripts: tuple[Path, ...]
    wheel: Path
    wheelhouse: tuple[Path, ...]

    @property
    def wheel_sha256(self) -> str:
        return self.wheel.parent.name

    def parameters(self) -> dict[str, str]:
        """The template parameters these artifacts need (the deploy step passes them)."""
        return {WHEEL_DIGEST_PARAMETER: self.wheel_sha256}

    def files(self) -> list[Path]:
        return [*self.scripts, self.wheel, *self.wheelhouse]

    def key(self, path: Path) -> str:
        """The object key of an artifact in the artifacts bucket."""
        return f"glue/{path.relative_to(self.root).as_posix()}"

    def content_addressed(self, path: Path) -> bool:
        return path == self.wheel or path in self.wheelhouse


def build_glue_artifacts(
    out: Path, *, root: Path = ROOT, template: Mapping[str, Any] | None = None
) -> GlueArtifacts:
    """Write ``out/glue/``: the job scripts, the wheel, and the jobs' wheelhouse.

    The wheelhouse holds each wheel the template's jobs name (``template``, by default the
    project's), downloaded by its one locked hash for Glue's platform; a wheel the Glue lock
    does not hold fails the build, named. Nothing is rebuilt or downloaded again when the
    sources have not changed since the last build there.
    """
    from pipeline.local.template import load_template

    spec = template if template is not None else load_template(root / "infra" / "template.yaml")
    wheels = declared_wheels(spec)
    problems = unlocked(wheels, glue_lock("5.1"))
    if problems:
        raise ArtifactError("the Glue jobs name wheels the lock does not: " + "; ".join(problems))
    target = out / "glue"
    code = _build_code(out, target, root)
    wheelhouse = download_wheelhouse(wheels, target / "wheelhouse")
    artifacts = GlueArtifacts(target, code[:-1], code[-1], tuple(wheelhouse))
    parameters = "".join(f"{k}={v}\n" for k, v in artifacts.parameters().items())
    (target / "parameters.txt").write_text(parameters)
    return artifacts


def _build_code(out: Path, target: Path, root: Path) -> tuple[Path, ...]:
    """The scripts and the wheel (last), rebuilt only when the sources changed."""
    digest = sources_digest(root)
    stamp = target / _STAMP
    name = wheel_name(root)
    if stamp.is_file() and stamp.read_text() == digest:
        built = sorted((target / "wheels").glob(f"*/{name}"))
        scripts = tuple(target / s for s in SCRIPTS)
        if len(built) == 1 and all(p.is_file() for p in scripts):
            return (*scripts, built[0])
    staging = Path(tempfile.mkdtemp(prefix=".glue-", dir=out if out.is_dir() else None))
    try:
        for script in SCRIPTS:
            shutil.copy2(root / "glue_jobs" / script, staging / script)
        wheel = _build_wheel(root, staging)
        placed = staging / "wheels" / sha256_of(wheel) / wheel.name
        placed.parent.mkdir(parents=True)
        wheel.replace(placed)
        (staging / _STAMP).write_text(digest)
        # The downloaded wheelhouse does not depend on the sources: keep it.
        if (target / "wheelhouse").is_dir():
            (target / "wheelhouse").replace(staging / "wheelhouse")
        # Swap the whole directory so a reader never sees half a build.
        if target.exists():
            shutil.rmtree(target)
        out.mkdir(parents=True, exist_ok=True)
        staging.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return (*(target / s for s in SCRIPTS), target / placed.relative_to(staging))


def publish_glue_artifacts(artifacts: GlueArtifacts, s3: Any, bucket: str) -> list[str]:
    """Upload the artifacts to ``bucket``; the keys written (those already there are not).

    A content-addressed key that exists already holds these bytes, so it is left alone;
    a new one is created with ``If-None-Match: *`` (never replacing an object, which the
    bucket policy requires) and the SHA-256, which S3 checks against the bytes it receives.
    The scripts, at fixed keys, are replaced.
    """
    written = []
    for path in artifacts.files():
        key = artifacts.key(path)
        if not artifacts.content_addressed(path):
            s3.upload_file(str(path), bucket, key)
            written.append(key)
            continue
        if _exists(s3, bucket, key):
            continue
        checksum = base64.b64encode(bytes.fromhex(path.parent.name)).decode()
        try:
            with path.open("rb") as body:
                s3.put_object(
                    Bucket=bucket, Key=key, Body=body, ChecksumSHA256=checksum, IfNoneMatch="*"
                )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "PreconditionFailed":
                raise
            continue  # another publisher created it first: same key, same bytes
        written.append(key)
    return written


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True
