"""Apache Iceberg's jars for a local Spark session: pinned, checksummed, installed once.

On AWS Glue 5.1 ``--datalake-formats iceberg`` puts Iceberg 1.10.0 on the class path.
Anywhere else the same version's Spark runtime and AWS bundle come from Maven Central,
pinned with the SHA-1 published beside each in ``locks/iceberg-jars.txt``:
``python -m pipeline.spark.jars --install`` (run by ``make install``) downloads what is
missing into the virtualenv and checks every jar. A session never downloads: without the
jars it fails with an error naming that command.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Final

from pipeline import maven_jars
from pipeline.errors import ConfigurationError

#: A directory holding the locked jars, instead of this interpreter's (the local Glue
#: runtime, whose job environment is another virtualenv, points it at the project's).
JARS_VARIABLE: Final = "FMCG_ICEBERG_JARS"
ROOT: Final = Path(__file__).resolve().parents[2]
ICEBERG_LOCK: Final = ROOT / "locks" / "iceberg-jars.txt"
INSTALL_COMMAND: Final = "python -m pipeline.spark.jars --install"


def jar_directory() -> Path:
    """Where the jars are installed: beside this interpreter's packages (``make clean``
    removes them with the virtualenv), or where ``FMCG_ICEBERG_JARS`` says."""
    given = os.environ.get(JARS_VARIABLE)
    return Path(given) if given else Path(sys.prefix) / "share" / "fmcg" / "iceberg-jars"


def iceberg_jars(directory: Path | None = None, lock: Path = ICEBERG_LOCK) -> list[Path]:
    """The locked jars, each present (checked by name: ``make install`` checked the bytes).

    A job run from its artifacts has the project's wheel, not its ``locks/``: there the
    local Glue runtime's ``FMCG_ICEBERG_JARS`` stands in for ``--datalake-formats iceberg``
    and every jar in that directory (the ones ``make install`` checked) is taken.
    """
    directory = directory or jar_directory()
    if not lock.is_file() and os.environ.get(JARS_VARIABLE):
        given = sorted(directory.glob("*.jar"))
        if not given:
            raise ConfigurationError(f"no Iceberg jars in {directory}; run `make install`")
        return given
    paths = [directory / name for name in maven_jars.locked_jars(lock)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise ConfigurationError(
            f"Iceberg jars missing from {directory}: {', '.join(missing)}; run `make install` "
            f"(or `{INSTALL_COMMAND}`)"
        )
    return paths


def relock(lock: Path = ICEBERG_LOCK) -> int:
    """Refresh the checksums of the lock's coordinates from Maven Central (its header kept)."""
    text = lock.read_text()
    header = [line + "\n" for line in text.splitlines() if line.startswith("#")]
    jars = maven_jars.read_lock(lock)
    lines = maven_jars.lock_lines([(j.group, j.artifact, j.version) for j in jars])
    lock.write_text("".join(header + lines))
    return len(lines)


def main(argv: list[str] | None = None) -> int:
    """``--install``: download what is missing, then check; ``--verify``: only check."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.spark.jars")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--install", action="store_true")
    action.add_argument("--verify", action="store_true")
    args = parser.parse_args(argv)
    directory = jar_directory()
    if args.install:
        for name in maven_jars.install(directory, ICEBERG_LOCK):
            print(f"iceberg-jars: {name} downloaded and checked")  # noqa: T201 - install step
    problems = maven_jars.verify(directory, ICEBERG_LOCK)
    for problem in problems:
        print(f"error: Iceberg jar {problem}", file=sys.stderr)  # noqa: T201 - install step
    if problems:
        print(f"error: run `{INSTALL_COMMAND}`", file=sys.stderr)  # noqa: T201
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
