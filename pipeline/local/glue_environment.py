"""Step 2 of a Glue run, locally: the job's Python, its Glue version's modules and its wheels.

Glue's own modules (what its image has installed: infra/glue/python-modules-<version>.txt and
its Spark) come from the Glue version's hash lock with ``--require-hashes``; the job's
modules come from the wheelhouse objects in the artifacts bucket only, each checked against
the digest in its key (one of the lock's) and installed with the job's installer options,
``--no-deps --no-index``, as Glue installs them. Both are virtualenvs cached under
build/local/glue by a digest of what makes them, the job's on top of its version's image;
the project's wheel goes into a directory of its own per digest.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pipeline.errors import ConfigurationError
from pipeline.local.template import load_template
from pipeline.packaging.glue_artifacts import ROOT
from pipeline.packaging.locks import SPARK_OF_GLUE, glue_lock, normalise, read_pins
from pipeline.packaging.requirements import pip_install
from pipeline.packaging.wheelhouse import (
    MODULES_ARGUMENT,
    LockedWheel,
    declared_wheels,
    download_wheelhouse,
    job_modules,
    unlocked,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pipeline.local.glue_runtime import GlueJobDefinition

CACHE: Final = ROOT / "build" / "local" / "glue"
MODULE_LISTS: Final = ROOT / "infra" / "glue"
#: Where the Glue artifacts build puts the wheelhouse (:mod:`pipeline.packaging.glue_artifacts`).
WHEELHOUSE: Final = ROOT / "build" / "glue" / "wheelhouse"
#: The Python each Glue version runs (AWS Glue release notes).
PYTHON_OF_GLUE: Final = {"5.0": (3, 11), "5.1": (3, 11)}
#: The digest segment of a content-addressed key (``glue/wheels/<sha256>/<file>``).
DIGEST_IN_KEY: Final = re.compile(r"/([0-9a-f]{64})/[^/]+$")


class WheelMissing(ConfigurationError):
    """A wheel the job's definition names is not in the artifacts bucket."""

    def __init__(self, job: str, url: str) -> None:
        super().__init__(
            f"{job}: {url.rpartition('/')[2]} is missing from the artifacts bucket ({url}); "
            "Glue would fail installing it: publish the Glue artifacts (infra/README.md)"
        )
        self.job, self.url = job, url


def split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ConfigurationError(f"not an S3 object URL: {url!r}")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
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
    missing one fails (:class:`WheelMissing`) even when the environment is cached.

    Two layers, as on Glue: the version's image (:func:`glue_image`, about 1 GB with Spark,
    shared by every job of that version) and, on top of it, a virtualenv per digest of (image,
    wheel digests, installer options) holding only the job's wheels, which shadow the image's
    modules of the same name as ``--additional-python-modules`` do.
    """
    for url, _ in definition.wheelhouse:
        _require(s3, definition, url)
    return _environment(definition, lambda url, _, into: fetch_object(s3, url, into), cache)


#: Where a wheelhouse wheel comes from: (its URL, the wheel, a directory to put it in).
WheelSource = Callable[[str, LockedWheel, Path], Path]


def _environment(definition: GlueJobDefinition, source: WheelSource, cache: Path) -> Path:
    """The job's virtualenv over its image (see :func:`job_environment`), built once per
    digest with each wheel from ``source``; pip checks every file against its digest."""
    wheels = definition.wheelhouse
    problems = unlocked([w for _, w in wheels], glue_lock(definition.glue_version))
    if problems:
        raise ConfigurationError(f"{definition.logical_id}: " + "; ".join(problems))
    image = glue_image(definition, cache)
    key = _digest(
        str(image), "--", *(w.key for _, w in wheels), "--", *definition.installer_options
    )
    env = cache / f"env-{definition.glue_version}-{key}"
    python = env / "bin" / "python"
    with file_lock(cache / f"{env.name}.lock"):
        if (env / ".complete").is_file():
            return python
        _new_venv(env, definition.glue_version)
        # The image's modules, behind the job's own: a .pth line appends them to sys.path.
        (_site_packages(env, definition.glue_version) / "glue_image.pth").write_text(
            f"{_site_packages(image, definition.glue_version)}\n"
        )
        # The job's modules, as Glue installs them: the fetched files, no index.
        downloads = env / "wheelhouse"
        lines = [
            f"{source(url, wheel, downloads / wheel.sha256)} --hash=sha256:{wheel.sha256}"
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


def glue_image(definition: GlueJobDefinition, cache: Path = CACHE) -> Path:
    """A virtualenv holding what the job's Glue version's image has installed (its provided
    modules and Spark, every line hash-locked), built once per digest of those lines
    (``make install`` builds the template's: :func:`main`)."""
    provided = _locked_lines(definition, _requirement_lines(definition.provided_modules()))
    image = cache / f"image-{definition.glue_version}-{_digest(*provided)}"
    with file_lock(cache / f"{image.name}.lock"):
        if (image / ".complete").is_file():
            return image
        _new_venv(image, definition.glue_version)
        # The provided list is complete: no resolution.
        requirements_file = image / "provided.txt"
        requirements_file.write_text("".join(f"{line}\n" for line in provided))
        _pip(
            image / "bin" / "python", "--no-deps", "--require-hashes", "-r", str(requirements_file)
        )
        (image / ".complete").write_text("")
    return image


def _digest(*lines: str) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _new_venv(path: Path, glue_version: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    base = _base_python(PYTHON_OF_GLUE[glue_version])
    subprocess.run([base, "-m", "venv", str(path)], check=True, capture_output=True)


def _site_packages(env: Path, glue_version: str) -> Path:
    major, minor = PYTHON_OF_GLUE[glue_version]
    return env / "lib" / f"python{major}.{minor}" / "site-packages"


def _require(s3: Any, definition: GlueJobDefinition, url: str) -> None:
    """:class:`WheelMissing` unless the object at ``url`` exists."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3_url(url)
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


def fetch_object(s3: Any, url: str, into: Path) -> Path:
    bucket, key = split_s3_url(url)
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
        found = DIGEST_IN_KEY.search(url)
        if found is None:
            raise ConfigurationError(f"{definition.logical_id}: {url} has no digest in its key")
        digest = found[1]
        target = cache / "wheels" / f"{Path(url).stem}-{digest[:16]}"
        with file_lock(cache / "wheels" / f"{target.name}.lock"):
            if not (target / ".complete").is_file():
                shutil.rmtree(target, ignore_errors=True)
                download = cache / "downloads" / uuid.uuid4().hex
                wheel = fetch_object(s3, url, download)
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


def template_images(cache: Path = CACHE) -> list[Path]:
    """The image of each Glue version the template's jobs name (see :func:`glue_image`)."""
    return sorted({glue_image(d, cache) for d in _template_jobs(load_template())})


def template_environments(cache: Path = CACHE, wheelhouse: Path = WHEELHOUSE) -> list[Path]:
    """The environment of each Glue job of the template (see :func:`job_environment`), its
    wheels from the local wheelhouse the artifacts build downloads (the same files, checked
    against the same digests, as the bucket's objects): the digest a run computes finds it
    built. A run still looks each wheel up in the bucket."""
    template = load_template()
    download_wheelhouse(declared_wheels(template), wheelhouse)
    local: WheelSource = lambda _, wheel, __: wheelhouse / wheel.sha256 / wheel.filename  # noqa: E731
    return [_environment(d, local, cache) for d in _template_jobs(template)]


def _template_jobs(template: dict[str, Any]) -> list[GlueJobDefinition]:
    """The template's Glue jobs as far as their runtime goes (version, wheelhouse, installer
    options), read without a stack: the wheelhouse keys do not depend on one."""
    from pipeline.local.glue_runtime import INSTALLER_ARGUMENT, GlueJobDefinition

    jobs = []
    for logical_id, modules in sorted(job_modules(template).items()):
        spec = template["Resources"][logical_id]["Properties"]
        options = spec.get("DefaultArguments", {}).get(INSTALLER_ARGUMENT, "")
        arguments = {MODULES_ARGUMENT: ",".join(modules), INSTALLER_ARGUMENT: str(options)}
        version = str(spec.get("GlueVersion", ""))
        jobs.append(GlueJobDefinition(logical_id, logical_id, version, "", arguments))
    return jobs


def main() -> int:
    """``make install``: build the Glue images the template's jobs run on and each job's
    environment over it, as a machine that runs Glue's container pulls its image once,
    rather than in the first job's run."""
    pythons = template_environments()
    for path in [*template_images(), *sorted({p.parents[1] for p in pythons})]:
        print(f"glue-runtime: {path.relative_to(ROOT)} ready")  # noqa: T201 - install step
    return 0


if __name__ == "__main__":
    sys.exit(main())
