"""Where the MultiLangDaemon's jars are, that they are the published ones, and how to start
the JVM on them.

``amazon-kclpy`` fetches the jars its ``pom.xml`` pins from Maven Central while its wheel
is built (``pip install`` of the project does it) and installs them in
``amazon_kclpy/jars``. ``locks/kcl-jars.txt`` holds each jar's Maven coordinates and the
SHA-1 that Maven Central publishes beside it; ``python -m pipeline.kcl.jars --verify`` (run
by ``make install``) fails naming any jar that is missing, extra or changed, and
``make lock`` rewrites the file (:func:`relock`) from the pom of the locked amazon-kclpy.
Only :func:`relock` downloads anything.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Final

from pipeline.errors import ConfigurationError

DAEMON_CLASS: Final = "software.amazon.kinesis.multilang.MultiLangDaemon"
#: The jar without which nothing runs; its absence means the install step did not fetch jars.
DAEMON_JAR_PREFIX: Final = "amazon-kinesis-client-multilang-"
JAVA_HOME = "JAVA_HOME"
ROOT: Final = Path(__file__).resolve().parents[2]
JARS_LOCK: Final = ROOT / "locks" / "kcl-jars.txt"
MAVEN_CENTRAL: Final = "https://repo1.maven.org/maven2"
_POM: Final = "{http://maven.apache.org/POM/4.0.0}"
_ENTRY: Final = re.compile(r"^([0-9a-f]{40})\s+([\w.-]+):([\w.-]+):([\w.-]+)$")


def jar_directory() -> Path:
    """The installed ``amazon_kclpy/jars`` directory, checked to hold the daemon's jar."""
    directory = Path(str(resources.files("amazon_kclpy"))) / "jars"
    if not any(directory.glob(f"{DAEMON_JAR_PREFIX}*.jar")):
        raise ConfigurationError(
            f"no MultiLangDaemon jar in {directory}: reinstall amazon-kclpy (`make install`)"
        )
    return directory


def classpath(*extra: Path) -> str:
    """The JVM class path: every daemon jar, then ``extra`` directories (properties, logback)."""
    jars = sorted(str(p) for p in jar_directory().glob("*.jar"))
    return os.pathsep.join([*jars, *(str(p) for p in extra)])


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` or ``java`` on ``PATH``; a clear error when there is none."""
    home = os.environ.get(JAVA_HOME)
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise ConfigurationError("no `java` on PATH (the KCL MultiLangDaemon needs Java 11+)")
    return found


def locked_jars(lock: Path = JARS_LOCK) -> dict[str, str]:
    """Jar file name -> the SHA-1 Maven Central published for it."""
    jars: dict[str, str] = {}
    for number, raw in enumerate(lock.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENTRY.match(line)
        if match is None:
            raise ConfigurationError(f"{lock}:{number}: not `<sha1> group:artifact:version`")
        sha1, _group, artifact, version = match.groups()
        jars[f"{artifact}-{version}.jar"] = sha1
    return jars


def verify(directory: Path | None = None, lock: Path = JARS_LOCK) -> list[str]:
    """Each problem with the installed jars against the lock: missing, changed or extra."""
    directory = directory or Path(str(resources.files("amazon_kclpy"))) / "jars"
    expected = locked_jars(lock)
    found = {p.name: p for p in directory.glob("*.jar")} if directory.is_dir() else {}
    problems = [f"{name}: missing from {directory}" for name in sorted(set(expected) - set(found))]
    problems += [f"{name}: not in {lock.name}" for name in sorted(set(found) - set(expected))]
    for name in sorted(set(expected) & set(found)):
        actual = hashlib.sha1(found[name].read_bytes(), usedforsecurity=False).hexdigest()
        if actual != expected[name]:
            problems.append(f"{name}: SHA-1 {actual}, Maven Central published {expected[name]}")
    return problems


def pom_dependencies(pom: Path) -> list[tuple[str, str, str]]:
    """(group, artifact, version) of each dependency, as amazon-kclpy's setup.py reads them."""
    root = ET.parse(pom).getroot()  # noqa: S314 - the pom of a hash-locked sdist
    properties = {f"${{{c.tag.removeprefix(_POM)}}}": c.text or "" for c in root.iter()}
    found = []
    for dependency in root.iter(f"{_POM}dependency"):
        values = [
            dependency.findtext(f"{_POM}{a}", "") for a in ("groupId", "artifactId", "version")
        ]
        group, artifact, version = (properties.get(v, v) for v in values)
        found.append((group, artifact, version))
    return found


def _published_sha1(group: str, artifact: str, version: str) -> str:
    url = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"
    with urllib.request.urlopen(f"{url}.sha1", timeout=60) as response:  # noqa: S310 - https only
        return str(response.read().decode().split()[0])


def relock(requirement: str, lock: Path = JARS_LOCK) -> int:
    """Rewrite ``lock`` from the pom of amazon-kclpy ``requirement`` and Maven Central.

    ``requirement`` is the dev lock's entry (``amazon-kclpy==V --hash=...``), so the pom read
    is the one of the hash-checked sdist that ``make install`` builds.
    """
    with tempfile.TemporaryDirectory() as tmp:
        wanted = Path(tmp) / "kclpy.txt"
        wanted.write_text(requirement + "\n")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
             ":all:", "--require-hashes", "--dest", tmp, "-r", str(wanted)],
            check=True,
        )  # fmt: skip
        import tarfile

        sdist = next(Path(tmp).glob("*.tar.gz"))
        version = sdist.name.removesuffix(".tar.gz").rpartition("-")[2]
        with tarfile.open(sdist) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("/pom.xml"))
            archive.extract(member, tmp, filter="data")
        dependencies = pom_dependencies(Path(tmp) / member.name)
    lines = [f"{_published_sha1(*d)}  {':'.join(d)}\n" for d in sorted(dependencies)]
    lock.write_text(
        f"# The MultiLangDaemon jars amazon-kclpy {version} fetches (its pom.xml), each\n"
        "# with the SHA-1 Maven Central publishes beside it. Generated by `make lock`.\n"
        + "".join(lines)
    )
    return len(lines)


def main(argv: list[str] | None = None) -> int:
    """``--verify``: the installed jars against the lock (``make lock`` rewrites it)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.kcl.jars")
    parser.add_argument("--verify", action="store_true", required=True)
    parser.parse_args(argv)
    problems = verify()
    for problem in problems:
        print(f"error: KCL jar {problem}", file=sys.stderr)  # noqa: T201 - install step's report
    if problems:
        print("error: reinstall amazon-kclpy, or `make lock` if its pom changed", file=sys.stderr)  # noqa: T201
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
