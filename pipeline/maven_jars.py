"""Jars from Maven Central, pinned in a committed lock and checked against it.

A lock (``locks/*-jars.txt``) holds one ``<sha1>  group:artifact:version`` line per jar:
the SHA-1 that Maven Central publishes beside the jar. :func:`verify` compares a
directory of installed jars with it (missing, changed or extra jars); :func:`install`
downloads the jars a directory lacks (or holds changed) and checks each one before it is
moved into place, so a directory never holds a jar the lock does not vouch for. Only
:func:`install` and :func:`published_sha1` touch the network; nothing downloads at run time.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pipeline.errors import ConfigurationError

MAVEN_CENTRAL: Final = "https://repo1.maven.org/maven2"
_ENTRY: Final = re.compile(r"^([0-9a-f]{40})\s+([\w.-]+):([\w.-]+):([\w.-]+)$")
_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class LockedJar:
    """One jar of a lock: its coordinates and the SHA-1 Maven Central published for it."""

    group: str
    artifact: str
    version: str
    sha1: str

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def url(self) -> str:
        return jar_url(self.group, self.artifact, self.version)


def jar_url(group: str, artifact: str, version: str) -> str:
    """The jar's address on Maven Central."""
    path = f"{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"
    return f"{MAVEN_CENTRAL}/{path}"


def read_lock(lock: Path) -> list[LockedJar]:
    """The jars of ``lock``, in its order; a clear error naming a malformed line."""
    jars = []
    for number, raw in enumerate(lock.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENTRY.match(line)
        if match is None:
            raise ConfigurationError(f"{lock}:{number}: not `<sha1> group:artifact:version`")
        sha1, group, artifact, version = match.groups()
        jars.append(LockedJar(group, artifact, version, sha1))
    return jars


def locked_jars(lock: Path) -> dict[str, str]:
    """Jar file name -> the SHA-1 Maven Central published for it."""
    return {jar.file_name: jar.sha1 for jar in read_lock(lock)}


def file_sha1(path: Path) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(directory: Path, lock: Path) -> list[str]:
    """Each problem with the jars in ``directory`` against ``lock``: missing, changed or extra."""
    expected = locked_jars(lock)
    found = {p.name: p for p in directory.glob("*.jar")} if directory.is_dir() else {}
    problems = [f"{name}: missing from {directory}" for name in sorted(set(expected) - set(found))]
    problems += [f"{name}: not in {lock.name}" for name in sorted(set(found) - set(expected))]
    for name in sorted(set(expected) & set(found)):
        actual = file_sha1(found[name])
        if actual != expected[name]:
            problems.append(f"{name}: SHA-1 {actual}, Maven Central published {expected[name]}")
    return problems


def install(directory: Path, lock: Path) -> list[str]:
    """Download into ``directory`` each jar of ``lock`` it lacks or holds changed, and
    remove jars the lock does not name; the file names downloaded.

    A download is checked against the lock before it replaces anything: a jar whose SHA-1
    differs raises :class:`~pipeline.errors.ConfigurationError` and is not kept.
    """
    directory.mkdir(parents=True, exist_ok=True)
    jars = read_lock(lock)
    names = {jar.file_name for jar in jars}
    for extra in directory.glob("*.jar"):
        if extra.name not in names:
            extra.unlink()
    downloaded = []
    for jar in jars:
        target = directory / jar.file_name
        if target.is_file() and file_sha1(target) == jar.sha1:
            continue
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".part", delete=False) as part:
            partial = Path(part.name)
            try:
                with urllib.request.urlopen(jar.url, timeout=120) as response:  # noqa: S310 - https only
                    while chunk := response.read(_CHUNK):
                        part.write(chunk)
            except BaseException:
                partial.unlink()
                raise
        actual = file_sha1(partial)
        if actual != jar.sha1:
            partial.unlink()
            raise ConfigurationError(
                f"{jar.file_name}: downloaded SHA-1 {actual}, {lock.name} pins {jar.sha1}"
            )
        partial.chmod(0o644)  # a temporary file is private; a jar is read by any user
        partial.replace(target)
        downloaded.append(jar.file_name)
    return downloaded


def published_sha1(group: str, artifact: str, version: str) -> str:
    """The SHA-1 Maven Central publishes beside the jar (``<jar>.sha1``)."""
    url = f"{jar_url(group, artifact, version)}.sha1"
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - https only
        return str(response.read().decode().split()[0])


def lock_lines(coordinates: list[tuple[str, str, str]]) -> list[str]:
    """Lock lines (``<sha1>  group:artifact:version``) for ``coordinates``, from Maven Central."""
    return [f"{published_sha1(*c)}  {':'.join(c)}\n" for c in sorted(coordinates)]
