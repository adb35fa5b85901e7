"""The layer's third-party packages: an exact lock, installed for a target platform with pip.

``infra/layer/requirements.in`` names what the functions import directly, with the ranges
of ``pyproject.toml``; ``infra/layer/requirements.txt`` pins every package of the resolved
set with its hashes, for the template's runtime and architecture (one of the project's
locks: :mod:`pipeline.packaging.locks`, ``make lock``). :func:`install` installs it with
hash checking, for the Lambda platform (pip's ``--platform`` / ``--python-version`` /
``--only-binary``: no Docker, no matching local Python) or for the running interpreter,
and refuses a result that is not exactly the lock.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pipeline.packaging.exceptions import ArtifactError
from pipeline.packaging.locks import normalise, read_lock

LAYER_DIR: Final = Path(__file__).resolve().parents[2] / "infra" / "layer"
REQUIREMENTS_IN: Final = LAYER_DIR / "requirements.in"
LOCK: Final = LAYER_DIR / "requirements.txt"
#: Lambda's names for architectures, as pip's manylinux platform tags spell them.
_MACHINES: Final = {"arm64": "aarch64", "x86_64": "x86_64"}


@dataclass(frozen=True)
class TargetPlatform:
    """Where installed packages will run; ``platform=None`` is the running interpreter."""

    platform: str | None = None
    python_version: str | None = None

    @classmethod
    def lambda_runtime(cls, runtime: str, architecture: str) -> TargetPlatform:
        """The platform of a Lambda runtime (``python3.12``) and architecture (``arm64``)."""
        if not runtime.startswith("python") or architecture not in _MACHINES:
            raise ArtifactError(f"no pip platform for Lambda runtime {runtime} on {architecture}")
        # manylinux2014 (glibc 2.17) wheels run on every Amazon Linux that Lambda uses.
        return cls(f"manylinux2014_{_MACHINES[architecture]}", runtime.removeprefix("python"))

    @property
    def key(self) -> str:
        """What installed packages depend on, for cache keys."""
        if self.platform is None:
            return f"host-{sys.implementation.cache_tag}-{sys.platform}-{_host_machine()}"
        return f"{self.platform}-cp{self.python_version}"

    def pip_arguments(self) -> list[str]:
        if self.platform is None:
            return []
        assert self.python_version is not None
        return [
            "--platform",
            self.platform,
            "--implementation",
            "cp",
            "--python-version",
            self.python_version,
            "--only-binary=:all:",
        ]


def _host_machine() -> str:
    import platform

    return platform.machine()


def pip_install(python: str | Path = sys.executable) -> list[str]:
    """The start of a quiet, non-interactive ``pip install`` with ``python``'s pip."""
    return [
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
    ]


def install(target: Path, platform: TargetPlatform, lock: Path = LOCK) -> None:
    """Install exactly the packages of ``lock`` into ``target`` (a fresh directory).

    Every package is pinned, so pip's resolver only confirms the set; a dependency that is
    missing from the lock would be installed unpinned, so it is refused instead.
    """
    pins = read_lock(lock)
    command = [
        *pip_install(),
        "--target",
        str(target),
        *platform.pip_arguments(),
        # Byte code compiled by this interpreter would be for its version, not the target's.
        *(["--no-compile"] if platform.platform else []),
        "--require-hashes",
        "--requirement",
        str(lock),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ArtifactError(
            f"pip could not install {lock} for {platform.key}:\n{result.stderr.strip()[-4000:]}"
        )
    installed = installed_distributions(target)
    unpinned = sorted(set(installed) - set(pins))
    if unpinned:
        raise ArtifactError(
            f"{lock} is not a complete lock: pip also installed {', '.join(unpinned)} "
            "(re-run `make lock`)"
        )


def installed_distributions(target: Path) -> dict[str, str]:
    """Name -> version of the distributions installed in ``target`` (their .dist-info)."""
    found: dict[str, str] = {}
    for info in target.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        found[normalise(name)] = version
    return found


__all__ = [
    "LOCK",
    "REQUIREMENTS_IN",
    "TargetPlatform",
    "install",
    "installed_distributions",
    "normalise",
    "read_lock",
]
