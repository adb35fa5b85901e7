"""The Glue half of the deployment artifacts: the job scripts and a wheel of the package.

Glue runs a job's ``ScriptLocation`` and pip-installs its ``--additional-python-modules``
(the template lists this wheel and the pinned third-party modules, with ``--no-deps``, so
the job definition alone says what the job can import). The wheel is built from a copy
of the sources, never from the working tree in place, so a stale ``build/lib`` can never
slip a deleted module into it. Builds are cached by a digest of the sources.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Final

from pipeline.errors import ConfigurationError

ROOT: Final = Path(__file__).resolve().parents[2]
SCRIPTS: Final = ("compact_sales.py", "forecast_demand.py")
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


def build_glue_artifacts(out: Path, *, root: Path = ROOT) -> list[Path]:
    """Write ``out/glue/``: each job script and the wheel; returns their paths.

    Nothing is rebuilt when the sources have not changed since the last build there.
    """
    target = out / "glue"
    artifacts = [target / name for name in SCRIPTS] + [target / wheel_name(root)]
    digest = sources_digest(root)
    stamp = target / _STAMP
    if stamp.is_file() and stamp.read_text() == digest and all(p.is_file() for p in artifacts):
        return artifacts
    staging = Path(tempfile.mkdtemp(prefix=".glue-", dir=out if out.is_dir() else None))
    try:
        for name in SCRIPTS:
            shutil.copy2(root / "glue_jobs" / name, staging / name)
        _build_wheel(root, staging)
        (staging / _STAMP).write_text(digest)
        # Swap the whole directory so a reader never sees half a build.
        if target.exists():
            shutil.rmtree(target)
        out.mkdir(parents=True, exist_ok=True)
        staging.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return artifacts
