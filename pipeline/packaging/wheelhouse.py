"""The Glue jobs' wheelhouse: the locked wheel of each module, under content-addressed keys.

A Glue job installs nothing from an index. Its ``--additional-python-modules`` lists S3
wheels only, each at a key that carries the wheel's SHA-256:
``glue/wheelhouse/<sha256>/<wheel file>`` for the third-party modules (one of the Glue lock's
hashes of its ``name==version``, the file pip picks for Glue 5.1's platform) and
``glue/wheels/<sha256>/<project wheel>`` for the project's own, whose digest the template
takes from the ``PipelineWheelSha256`` parameter because it changes with every build. Glue
downloads each listed object and pip-installs the files with the job's
``--python-modules-installer-option``, ``--no-deps --no-index``: no resolution, no index.

Why S3 wheels and not ``--no-index --find-links``: pip's ``--find-links`` takes a local
directory or an HTTP(S) page, not an ``s3://`` prefix, and the bucket is private; Glue
fetches exactly the S3 objects ``--additional-python-modules`` names (documented for wheel
files since Glue 2.0), so naming each wheel is what Glue 5.1 supports. A key never holds two
different objects: the digest is in it, uploads are conditional (``If-None-Match``, which the
bucket policy requires) and only the deploy role may write there.

The third-party keys change only with the lock, so they are written into the template, not
passed in: a ``name==version`` entry in a job's list is pinned to its key by
:func:`pin_template` (``make lock``), and a unit test holds every key to the lock.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pipeline.packaging.exceptions import ArtifactError
from pipeline.packaging.locks import normalise, read_pins

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

#: Where Glue 5.1 runs the modules: CPython 3.11 on Amazon Linux 2023 (x86_64, glibc 2.34).
#: pip takes each manylinux tag a glibc 2.34 system accepts (it widens none but the legacy
#: ``manylinux2014`` to 2010 and 1), so a wheel built for 2.28, as LightGBM's, is found.
GLUE_PIP_TARGET: Final = (
    *(f"--platform=manylinux_2_{minor}_x86_64" for minor in range(34, 16, -1)),
    "--platform=manylinux2014_x86_64",
    "--implementation=cp",
    "--python-version=3.11",
    "--only-binary=:all:",
)
WHEELHOUSE_PREFIX: Final = "glue/wheelhouse"
PROJECT_WHEELS_PREFIX: Final = "glue/wheels"
#: The template parameter naming the project wheel's digest (the deploy step passes it).
WHEEL_DIGEST_PARAMETER: Final = "PipelineWheelSha256"
#: What Glue's pip is told: install the listed files, resolve nothing, ask no index.
INSTALLER_OPTIONS: Final = ("--no-deps", "--no-index")
MODULES_ARGUMENT: Final = "--additional-python-modules"
_KEY: Final = re.compile(r"glue/wheelhouse/([0-9a-f]{64})/([^/]+\.whl)")
_PIN: Final = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class LockedWheel:
    """One wheel of the wheelhouse: its file name and the digest of its bytes."""

    filename: str
    sha256: str

    @property
    def name(self) -> str:
        return normalise(self.filename.split("-", 1)[0])

    @property
    def version(self) -> str:
        return self.filename.split("-")[1]

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def key(self) -> str:
        """Its object key in the artifacts bucket."""
        return f"{WHEELHOUSE_PREFIX}/{self.sha256}/{self.filename}"

    @classmethod
    def from_module(cls, module: str) -> LockedWheel | None:
        """The wheel a ``--additional-python-modules`` entry names, if a wheelhouse key."""
        found = _KEY.search(module)
        return cls(found[2], found[1]) if found and module.startswith("s3://") else None


def project_wheel_key(digest: str, filename: str) -> str:
    """The object key of the project's wheel with that digest."""
    return f"{PROJECT_WHEELS_PREFIX}/{digest}/{filename}"


def job_modules(template: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each Glue job's ``--additional-python-modules`` entries, as the template writes them."""
    found: dict[str, list[str]] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Glue::Job":
            continue
        value = resource.get("Properties", {}).get("DefaultArguments", {}).get(MODULES_ARGUMENT)
        found[logical_id] = _entries(value)
    return found


def _entries(value: Any) -> list[str]:
    """The entries of a list written as one string, a ``!Sub`` or a ``!Join [",", [...]]``."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return [entry for item in value["Fn::Join"][1] for entry in _entries(item)]
    if isinstance(value, dict):
        value = value.get("Fn::Sub", "")
    return [m.strip() for m in str(value or "").split(",") if m.strip()]


def declared_wheels(template: Mapping[str, Any]) -> list[LockedWheel]:
    """Every wheelhouse wheel any Glue job of the template names, once, sorted."""
    wheels = {
        wheel
        for modules in job_modules(template).values()
        for wheel in map(LockedWheel.from_module, modules)
        if wheel is not None
    }
    return sorted(wheels, key=lambda w: w.key)


def unlocked(wheels: Iterable[LockedWheel], lock: Path) -> list[str]:
    """Why each wheel is not the lock's (empty when every digest is a hash of its pin)."""
    hashes = {(p.name, p.version): set(p.hashes) for p in read_pins(lock)}
    problems = []
    for wheel in wheels:
        pinned = hashes.get((wheel.name, wheel.version))
        if pinned is None:
            problems.append(f"{wheel.filename}: {wheel.requirement} is not in {lock.name}")
        elif f"sha256:{wheel.sha256}" not in pinned:
            problems.append(
                f"{wheel.filename}: sha256 {wheel.sha256} is not a hash {lock.name} "
                f"holds for {wheel.requirement}"
            )
    return problems


def _pip_download(lines: list[str], dest: Path, target: tuple[str, ...]) -> None:
    with tempfile.TemporaryDirectory(prefix="fmcg-wheelhouse-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(f"{line}\n" for line in lines))
        done = subprocess.run(
            [
                *_pip("download"),
                "--no-deps",
                "--require-hashes",
                *target,
                "--dest",
                str(dest),
                "--requirement",
                str(requirements),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise ArtifactError(f"pip could not download the wheelhouse:\n{done.stderr[-3000:]}")


def _pip(command: str) -> list[str]:
    return [sys.executable, "-m", "pip", command, "--quiet", "--disable-pip-version-check"]


def download_wheelhouse(
    wheels: Iterable[LockedWheel], dest: Path, target: tuple[str, ...] = GLUE_PIP_TARGET
) -> list[Path]:
    """Each wheel at ``dest/<sha256>/<file>``, downloaded by its one hash (kept if present).

    pip is given ``name==version --hash=sha256:<digest>`` with ``--no-deps`` and the Glue
    platform, so it can only accept that one file; each result is checked again here.
    """
    wanted = list(wheels)
    missing = [w for w in wanted if not _holds(dest / w.sha256 / w.filename, w.sha256)]
    if missing:
        with tempfile.TemporaryDirectory(prefix="fmcg-wheelhouse-", dir=_parent(dest)) as tmp:
            lines = [f"{w.requirement} --hash=sha256:{w.sha256}" for w in missing]
            _pip_download(lines, Path(tmp), target)
            for wheel in missing:
                got = Path(tmp) / wheel.filename
                if not _holds(got, wheel.sha256):
                    raise ArtifactError(
                        f"pip did not download {wheel.filename} with sha256 {wheel.sha256} "
                        "for Glue's platform"
                    )
                (dest / wheel.sha256).mkdir(parents=True, exist_ok=True)
                got.replace(dest / wheel.sha256 / wheel.filename)
    return [dest / w.sha256 / w.filename for w in wanted]


def _parent(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def _holds(path: Path, digest: str) -> bool:
    return path.is_file() and sha256_of(path) == digest


def lock_wheels(
    requirements: Iterable[str], lock: Path, target: tuple[str, ...] = GLUE_PIP_TARGET
) -> dict[str, LockedWheel]:
    """``name==version`` -> the wheel pip installs on Glue, chosen from the lock's hashes."""
    pins = {(p.name, p.version): p for p in read_pins(lock)}
    wanted: dict[str, str] = {}
    for requirement in requirements:
        found = _PIN.fullmatch(requirement)
        pin = pins.get((normalise(found[1]), found[2])) if found else None
        if pin is None:
            raise ArtifactError(f"{requirement} is not in {lock.name} (run `make lock`)")
        wanted[requirement] = " ".join([pin.line, *(f"--hash={h}" for h in pin.hashes)])
    if not wanted:
        return {}
    with tempfile.TemporaryDirectory(prefix="fmcg-wheelhouse-") as tmp:
        _pip_download(list(wanted.values()), Path(tmp), target)
        files = {}
        for path in Path(tmp).glob("*.whl"):
            wheel = LockedWheel(path.name, sha256_of(path))
            files[wheel.requirement] = wheel
    result = {}
    for requirement in wanted:
        found = _PIN.fullmatch(requirement)
        assert found is not None  # noqa: S101 - matched above
        key = f"{normalise(found[1])}=={found[2]}"
        if key not in files:
            raise ArtifactError(f"pip downloaded no wheel of {requirement} for Glue's platform")
        result[requirement] = files[key]
    return result


def pin_template(template_path: Path, lock: Path) -> int:
    """Rewrite each ``name==version`` entry of the Glue jobs' modules as its wheelhouse URL.

    How a module is added or upgraded: write ``name==version`` in the job's list, then
    ``make lock`` resolves it into the lock and this pins it. Returns how many were pinned.
    """
    text = template_path.read_text()
    from pipeline.local.template import load_template

    entries = {m for modules in job_modules(load_template(template_path)).values() for m in modules}
    requirements = sorted(m for m in entries if _PIN.fullmatch(m))
    wheels = lock_wheels(requirements, lock)
    for requirement, wheel in wheels.items():
        entry = f'!Sub "s3://${{ArtifactsBucket}}/{wheel.key}"'
        for written in (f'!Sub "{requirement}"', f'"{requirement}"'):
            text = text.replace(written, entry)
    template_path.write_text(text)
    return len(wheels)


__all__ = [
    "GLUE_PIP_TARGET",
    "INSTALLER_OPTIONS",
    "PROJECT_WHEELS_PREFIX",
    "WHEELHOUSE_PREFIX",
    "WHEEL_DIGEST_PARAMETER",
    "LockedWheel",
    "declared_wheels",
    "download_wheelhouse",
    "job_modules",
    "lock_wheels",
    "pin_template",
    "project_wheel_key",
    "sha256_of",
    "unlocked",
]
