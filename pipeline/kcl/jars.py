"""Where the MultiLangDaemon's jars are and how to start the JVM on them.

``amazon-kclpy`` fetches the jars its ``pom.xml`` pins from Maven Central while its wheel
is built (``pip install`` of the project does it) and installs them in
``amazon_kclpy/jars``. Nothing here downloads anything.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Final

from pipeline.errors import ConfigurationError

DAEMON_CLASS: Final = "software.amazon.kinesis.multilang.MultiLangDaemon"
#: The jar without which nothing runs; its absence means the install step did not fetch jars.
DAEMON_JAR_PREFIX: Final = "amazon-kinesis-client-multilang-"
JAVA_HOME = "JAVA_HOME"


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
