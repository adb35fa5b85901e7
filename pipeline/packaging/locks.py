"""Every environment the project creates installs from a committed, hash-checked lock.

The locks are pip requirement files written by ``uv pip compile --generate-hashes`` (a
well-kept resolver; none of our own). This module names each lock and its sources, refreshes
them all (``make lock``), reads them back, and says when one no longer satisfies its sources
(a stale lock), which a unit test asserts never happens on a commit.

===========  ===================================  =============================================
lock         file                                 sources (ranges)
===========  ===================================  =============================================
dev          locks/dev.txt                        pyproject (+dev), build system, pip
build        locks/build.txt                      pip, setuptools, wheel at the dev lock's pins
bench        locks/bench.txt                      pyproject (+dev, +bench), build system, pip
tools        locks/tools.txt                      locks/tools.in (checkov)
sam          locks/sam.txt                        locks/sam.in (aws-sam-cli)
layer        infra/layer/requirements.txt         infra/layer/requirements.in, for the
                                                  template's Lambda runtime and architecture
glue-5.1     infra/glue/lock-5.1.txt              Glue 5.1's provided modules, its Spark and the
                                                  template's ``--additional-python-modules``
===========  ===================================  =============================================

The development locks are universal (one file for every Python >= 3.11 and platform, with
markers where a package differs); the layer's is resolved for the Lambda platform; the Glue
lock adds no dependency of its own (``--no-deps``): Glue's list is what Glue has installed,
and the jobs install their modules without dependencies, as Glue is told to.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pipeline.packaging.exceptions import ArtifactError

ROOT: Final = Path(__file__).resolve().parents[2]
LOCKS_DIR: Final = ROOT / "locks"
PYPROJECT: Final = ROOT / "pyproject.toml"
BUILD_IN: Final = LOCKS_DIR / "build.in"
LAYER_IN: Final = ROOT / "infra" / "layer" / "requirements.in"
GLUE_DIR: Final = ROOT / "infra" / "glue"
#: The Spark of each Glue version, which a glueetl job imports as ``pyspark`` (it is the
#: runtime, not one of the listed modules): Glue 5.0 runs Spark 3.5.4, Glue 5.1 3.5.6.
SPARK_OF_GLUE: Final = {
    "5.0": ("pyspark==3.5.4", "py4j==0.10.9.7"),
    "5.1": ("pyspark==3.5.6", "py4j==0.10.9.7"),
}
#: Lambda's architectures as uv's platform names (manylinux2014: glibc 2.17, every Amazon
#: Linux that Lambda runs).
_UV_PLATFORMS: Final = {"arm64": "aarch64-manylinux2014", "x86_64": "x86_64-manylinux2014"}

_PIN: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*$")
_HASH: Final = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    """One locked distribution: exact version, hashes, and the environments it is for."""

    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]
    line: str

    def applies(self, environment: dict[str, str] | None = None) -> bool:
        """Whether the pin is for ``environment`` (default: the running interpreter)."""
        if self.marker is None:
            return True
        from packaging.markers import Marker

        return bool(Marker(self.marker).evaluate(environment))


@dataclass(frozen=True)
class Lock:
    """A lock file and what it is resolved from."""

    name: str
    path: Path
    sources: tuple[Path, ...] = ()
    extras: tuple[str, ...] = ()
    #: uv's target options: the platform and Python the lock is resolved for.
    target: tuple[str, ...] = ("--universal", "--python-version", "3.11")
    no_deps: bool = False
    #: Locks whose versions this one must take (the build tools come from the dev lock).
    constraints: tuple[Path, ...] = ()
    #: Requirements computed from the project (the template's modules), not read from a file.
    computed: tuple[str, ...] = field(default=())

    def pins(self) -> list[Pin]:
        return read_pins(self.path)

    def requirements(self) -> list[str]:
        """Every requirement the lock must satisfy: its sources' and the computed ones."""
        found: list[str] = []
        for source in self.sources:
            if source.name == "pyproject.toml":
                found += _pyproject_requirements(source, self.extras)
            else:
                found += _requirement_lines(source)
        return found + list(self.computed)


def normalise(name: str) -> str:
    """A project name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> list[Pin]:
    """The pins of a requirements file in pip's hash-checking format (uv's output)."""
    text = path.read_text()
    logical = re.sub(r"\\\n", " ", text).splitlines()
    pins: list[Pin] = []
    for number, raw in enumerate(logical, start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, _, options = line.partition(" --hash")
        match = _PIN.match(requirement.strip())
        if match is None:
            raise ArtifactError(f"{path}: entry {number} is not an exact pin: {line[:120]}")
        hashes = tuple(_HASH.findall("--hash" + options)) if options else ()
        name, version, marker = match[1], match[2], match[3]
        pins.append(Pin(normalise(name), version, marker, hashes, requirement.strip()))
    return pins


def read_lock(path: Path) -> dict[str, str]:
    """Name -> version of the pins of ``path`` that apply to the running interpreter."""
    return {p.name: p.version for p in read_pins(path) if p.applies()}


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def _pyproject_requirements(path: Path, extras: tuple[str, ...]) -> list[str]:
    data = tomllib.loads(path.read_text())
    project = data["project"]
    found = list(project["dependencies"]) + list(data["build-system"]["requires"])
    for extra in extras:
        found += project["optional-dependencies"][extra]
    return found


def glue_declared_modules(glue_version: str) -> tuple[str, ...]:
    """Each ``name==version`` the template's Glue jobs of that version install.

    A job's ``--additional-python-modules`` names wheelhouse wheels (their file names carry
    name and version) and, until ``make lock`` pins it, a plain ``name==version``; the
    project's own wheel is not locked here.
    """
    from pipeline.local.template import load_template
    from pipeline.packaging.wheelhouse import LockedWheel, job_modules

    template = load_template(ROOT / "infra" / "template.yaml")
    modules: set[str] = set()
    for logical_id, entries in job_modules(template).items():
        props = template["Resources"][logical_id].get("Properties", {})
        if str(props.get("GlueVersion")) != glue_version:
            continue
        for entry in entries:
            wheel = LockedWheel.from_module(entry)
            if wheel is not None:
                modules.add(wheel.requirement)
            elif not entry.startswith("s3://"):
                modules.add(entry)
    return tuple(sorted(modules))


def layer_target() -> tuple[str, ...]:
    """uv's options for the template's Lambda runtime and architecture."""
    from pipeline.local.template import load_template
    from pipeline.packaging.functions import lambda_functions

    template_path = ROOT / "infra" / "template.yaml"
    functions = lambda_functions(load_template(template_path), template_path)
    spec = next(iter(functions.values()))
    return (
        "--python-platform",
        _UV_PLATFORMS[spec.architecture],
        "--python-version",
        spec.runtime.removeprefix("python"),
    )


def all_locks() -> list[Lock]:
    """Every lock of the project, with its sources."""
    glue = "5.1"
    return [
        Lock("dev", LOCKS_DIR / "dev.txt", (PYPROJECT, BUILD_IN), ("dev",)),
        # Installed first in every virtualenv, so that sdists build without fetching a backend.
        Lock("build", LOCKS_DIR / "build.txt", (BUILD_IN,), constraints=(LOCKS_DIR / "dev.txt",)),
        Lock(
            "bench",
            LOCKS_DIR / "bench.txt",
            (PYPROJECT, BUILD_IN),
            ("dev", "bench"),
            constraints=(LOCKS_DIR / "dev.txt",),
        ),
        Lock("tools", LOCKS_DIR / "tools.txt", (LOCKS_DIR / "tools.in", BUILD_IN)),
        Lock("sam", LOCKS_DIR / "sam.txt", (LOCKS_DIR / "sam.in", BUILD_IN)),
        Lock("layer", LAYER_IN.with_name("requirements.txt"), (LAYER_IN,), target=layer_target()),
        Lock(
            f"glue-{glue}",
            glue_lock(glue),
            (GLUE_DIR / f"python-modules-{glue}.txt",),
            target=("--python-platform", "x86_64-manylinux2014", "--python-version", "3.11"),
            no_deps=True,
            computed=(*SPARK_OF_GLUE[glue], *glue_declared_modules(glue)),
        ),
    ]


def glue_lock(glue_version: str) -> Path:
    """The hash lock of a Glue version's provided modules, Spark and the jobs' modules."""
    return GLUE_DIR / f"lock-{glue_version}.txt"


def lock_named(name: str) -> Lock:
    for lock in all_locks():
        if lock.name == name:
            return lock
    raise ArtifactError(f"no lock named {name}")


def refresh(lock: Lock, uv: str | None = None, *, upgrade: bool = True) -> None:
    """Re-resolve ``lock`` from its sources with uv (newest versions the ranges allow)."""
    beside = Path(sys.executable).with_name("uv")
    uv = uv or (str(beside) if beside.is_file() else shutil.which("uv"))
    if uv is None:
        raise ArtifactError("no `uv` to resolve with: `make install` puts one in .venv/bin")
    with tempfile.TemporaryDirectory() as tmp:
        sources = [str(s) for s in lock.sources]
        if lock.computed:
            extra = Path(tmp) / "computed.in"
            extra.write_text("".join(f"{r}\n" for r in lock.computed))
            sources.append(str(extra))
        command = [
            uv,
            "pip",
            "compile",
            "--quiet",
            *sources,
            *(f"--extra={e}" for e in lock.extras),
            *lock.target,
            *(["--no-deps"] if lock.no_deps else []),
            *(f"--constraint={c}" for c in lock.constraints),
            *(["--upgrade"] if upgrade else []),
            # One version of a package for every Python where one will do.
            *(["--fork-strategy", "fewest"] if "--universal" in lock.target else []),
            "--generate-hashes",
            "--no-annotate",
            "--custom-compile-command",
            "make lock",
            "--output-file",
            str(lock.path),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise ArtifactError(f"uv could not lock {lock.name}:\n{done.stderr[-4000:]}")


def stale(lock: Lock) -> list[str]:
    """Why ``lock`` no longer satisfies its sources (empty when it does).

    Each requirement whose marker holds anywhere must have a pin of its name, hashed, whose
    version is in its range; an ``==`` requirement must be pinned exactly.
    """
    from packaging.requirements import Requirement

    pins: dict[str, list[Pin]] = {}
    for pin in lock.pins():
        pins.setdefault(pin.name, []).append(pin)
    problems = [
        f"{p.name}=={p.version} has no hash" for ps in pins.values() for p in ps if not p.hashes
    ]
    for text in lock.requirements():
        requirement = Requirement(text)
        name = normalise(requirement.name)
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({"python_version": v, "python_full_version": f"{v}.0"})
            for v in ("3.11", "3.12", "3.13", "3.14")
        ):
            continue
        if name not in pins:
            problems.append(f"{text}: not in {lock.path.name}")
            continue
        outside = [p.version for p in pins[name] if p.version not in requirement.specifier]
        if outside:
            problems.append(f"{text}: {lock.path.name} pins {', '.join(outside)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """``[--check] [NAME ...]``: refresh (or only check) the named locks, by default all.

    Refreshing them all (``make lock``) also rewrites the KCL jar lock.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="make lock")
    parser.add_argument("names", nargs="*", help="locks to refresh (default: every lock)")
    parser.add_argument("--check", action="store_true", help="only report stale locks")
    args = parser.parse_args(argv)
    locks = [lock_named(n) for n in args.names] if args.names else all_locks()
    status = 0
    for lock in locks:
        if not args.check:
            refresh(lock)
        problems = stale(lock)
        for problem in problems:
            print(f"{lock.name}: {problem}", file=sys.stderr)  # noqa: T201 - a command's report
        status |= bool(problems)
        if not problems:
            print(f"{lock.name}: {lock.path.relative_to(ROOT)}: {len(lock.pins())} pins")  # noqa: T201
        if not problems and lock.name.startswith("glue-") and not args.check:
            # A module written as name==version in a job's list becomes its wheelhouse key.
            from pipeline.packaging.wheelhouse import pin_template

            pinned = pin_template(ROOT / "infra" / "template.yaml", lock.path)
            print(f"{lock.name}: {pinned} modules pinned to wheelhouse keys")  # noqa: T201
    if not args.check and not args.names:
        # The jars amazon-kclpy fetches follow its version in the dev lock.
        from pipeline.kcl.jars import JARS_LOCK, relock

        kclpy = next(p for p in read_pins(LOCKS_DIR / "dev.txt") if p.name == "amazon-kclpy")
        count = relock(" ".join([kclpy.line, *(f"--hash={h}" for h in kclpy.hashes)]))
        print(f"kcl-jars: {JARS_LOCK.relative_to(ROOT)}: {count} jars")  # noqa: T201
        # The Iceberg jars follow Glue's version (the lock names it): their checksums only.
        from pipeline.spark.jars import ICEBERG_LOCK
        from pipeline.spark.jars import relock as relock_iceberg

        count = relock_iceberg()
        print(f"iceberg-jars: {ICEBERG_LOCK.relative_to(ROOT)}: {count} jars")  # noqa: T201
    return status


if __name__ == "__main__":
    sys.exit(main())
