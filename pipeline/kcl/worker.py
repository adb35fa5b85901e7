"""Start and stop a KCL worker: the real MultiLangDaemon (Java) over the project's processor.

The worker runs in its own process group (the JVM and the one Python processor per shard
it starts), so stopping it, or killing it to test failover, never leaves orphans behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import pipeline
from pipeline.kcl import properties
from pipeline.kcl.jars import DAEMON_CLASS, classpath, java_executable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: The repository root: ``stream_consumers`` lives beside the installed ``pipeline`` package.
PROJECT_ROOT: Final = Path(pipeline.__file__).resolve().parent.parent
PROCESSOR_MODULE: Final = "stream_consumers.kcl.app"

#: JVM flags. CBOR off: the emulator speaks Kinesis' JSON protocol only. EC2 metadata off:
#: no credential or region lookup may leave the machine.
JVM_FLAGS: Final = (
    "-Daws.cborEnabled=false",
    "-Daws.disableEc2Metadata=true",
    "-Djava.net.preferIPv4Stack=true",
    "-Xss512k",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
)

_LOGBACK = """<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{20} - %msg%n</pattern></encoder>
  </appender>
  <logger name="software.amazon.awssdk" level="WARN"/>
  <logger name="io.netty" level="WARN"/>
  <logger name="org.apache.http" level="WARN"/>
  <root level="{level}"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def processor_command(python: str | None = None) -> list[str]:
    """The record processor the daemon starts per shard: this interpreter, our module."""
    return [python or sys.executable, "-m", PROCESSOR_MODULE]


@dataclass(frozen=True)
class WorkerFiles:
    """The files one worker reads: its properties and its logging configuration."""

    properties: Path
    logback: Path


def write_files(
    config: properties.KclConfig, directory: Path, *, log_level: str = "INFO"
) -> WorkerFiles:
    """Write the properties and logback files of one worker into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    props = properties.write(config, directory / "kcl.properties")
    logback = directory / "logback.xml"
    logback.write_text(_LOGBACK.replace("{level}", log_level))
    return WorkerFiles(props, logback)


def daemon_command(files: WorkerFiles, *, java: str | None = None) -> list[str]:
    """The JVM command line of the MultiLangDaemon for ``files``."""
    return [
        java or java_executable(),
        *JVM_FLAGS,
        f"-Dlogback.configurationFile={files.logback}",
        "-cp",
        classpath(files.properties.parent),
        DAEMON_CLASS,
        "--properties-file",
        str(files.properties),
    ]


def worker_environment(
    base: Mapping[str, str], names: Mapping[str, str], *, project_root: Path = PROJECT_ROOT
) -> dict[str, str]:
    """The daemon's environment (inherited by its processors): ``base`` plus ``names``.

    ``PYTHONPATH`` gains the project root so ``python -m stream_consumers.kcl.app`` resolves.
    """
    env = {**base, **names}
    paths = [str(project_root), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(
    files: WorkerFiles,
    env: Mapping[str, str],
    *,
    log: IO[bytes] | None = None,
    command: Sequence[str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the daemon in a new process group; its output goes to ``log`` (or is dropped)."""
    out: Any = log if log is not None else subprocess.DEVNULL
    return subprocess.Popen(  # noqa: S603 - argv built here, no shell
        list(command or daemon_command(files)),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=dict(env),
        cwd=str(files.properties.parent),
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes], *, timeout_s: float = 10.0) -> int | None:
    """Stop the worker's whole process group: TERM (graceful lease hand-off), then KILL."""
    _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    # KILL the group even when the JVM is gone: its processor children may linger.
    _signal_group(process, signal.SIGKILL)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None


def kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the worker's process group at once (a crashed machine: no lease hand-off)."""
    _signal_group(process, signal.SIGKILL)
    process.wait(timeout=10)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
