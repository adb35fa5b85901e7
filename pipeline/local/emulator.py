"""The embedded AWS emulator: moto in server mode on 127.0.0.1, as a background process.

The server is moto's own application served by Hypercorn (``pipeline.local.server``) rather
than moto's werkzeug server, because the KCL's Java client speaks HTTP/2 and werkzeug
cannot; every other client keeps using HTTP/1.1 on the same port.

Everything talks to it over HTTP through the standard ``AWS_ENDPOINT_URL``, exactly as it
would talk to AWS. It binds loopback only and picks a free port.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.loaders
import botocore.session

from pipeline.aws_errors import default_config
from pipeline.errors import ConfigurationError, TransientError
from pipeline.local.private_files import open_private_log
from pipeline.settings import LOOPBACK_HOST

REGION = "us-east-1"
#: ``python -m`` of the emulator process: how ``fmcg local down`` recognises it.
SERVER_MODULE = "pipeline.local.server"
#: The emulator accepts any credentials; these make sure no real ones are ever picked up.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def local_environment(endpoint_url: str) -> dict[str, str]:
    """Environment variables that point any AWS SDK at the emulator."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        **LOCAL_CREDENTIALS,
        # Never read the user's profiles: a typo must not reach a real account.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class EndpointSession(boto3.session.Session):
    """A boto3 session whose clients and resources all go to one endpoint URL."""

    def __init__(self, endpoint_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint_url = endpoint_url

    # Libraries such as awswrangler pass ``endpoint_url=None`` explicitly: treat it as unset.
    def client(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["endpoint_url"] = kwargs.get("endpoint_url") or self.endpoint_url
        return super().client(*args, **kwargs)

    def resource(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["endpoint_url"] = kwargs.get("endpoint_url") or self.endpoint_url
        return super().resource(*args, **kwargs)


@functools.cache
def _service_models() -> botocore.loaders.Loader:
    """One loader of botocore's service models for every session of this process: a new
    session would parse the same JSON models again (a stack's eight clients took 0.20 s
    from a new session, 0.04 s with the shared loader)."""
    return botocore.loaders.create_loader(os.environ.get("AWS_DATA_PATH"))


def aws_session(endpoint_url: str | None) -> boto3.session.Session:
    """A boto3 session whose clients all go to ``endpoint_url`` (AWS when ``None``).

    Uses botocore's standard retry mode, so throttling and 5xx are retried with backoff.
    """
    core = botocore.session.Session()
    core.register_component("data_loader", _service_models())
    core.set_default_client_config(default_config(max_attempts=5))
    if endpoint_url is None:
        return boto3.session.Session(botocore_session=core)
    return EndpointSession(
        endpoint_url,
        botocore_session=core,
        region_name=REGION,
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def wait_ready(endpoint_url: str, timeout_s: float = 30.0) -> None:
    """Block until the emulator answers HTTP, or raise :class:`TransientError`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{endpoint_url}/moto-api/data.json", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise TransientError(f"emulator at {endpoint_url} did not become ready in {timeout_s}s")


def start_server(log_path: Path | None = None, port: int | None = None) -> tuple[int, str]:
    """Start ``moto.server`` on 127.0.0.1 in its own session; return (pid, endpoint_url)."""
    port = port or free_port()
    endpoint_url = f"http://{LOOPBACK_HOST}:{port}"
    log: Any = open_private_log(log_path) if log_path else subprocess.DEVNULL
    env = {**os.environ, **LOCAL_CREDENTIALS}
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-m", SERVER_MODULE, "--host", LOOPBACK_HOST, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    if log_path:
        log.close()  # the child has its own copy of the descriptor
    try:
        wait_ready(endpoint_url)
    except TransientError:
        proc.kill()
        raise
    return proc.pid, endpoint_url


def loopback_url(url: object) -> str:
    """``url`` if it is ``http://<loopback IP>:<port>``, else :class:`ConfigurationError`.

    The state file names the endpoint every command sends requests (and the emulator's
    fixed credentials) to: a host name could resolve anywhere, so only an IP literal.
    """
    try:
        parts = urlsplit(str(url)) if isinstance(url, str) else None
        port = parts.port if parts else None
        loopback = parts is not None and ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        parts, port, loopback = None, None, False
    if (
        parts is None
        or parts.scheme != "http"
        or not loopback
        or port is None
        or parts.path not in {"", "/"}
        or parts.username is not None
        or parts.query
        or parts.fragment
    ):
        raise ConfigurationError(
            f"endpoint {url!r} is not a loopback URL (http://127.0.0.1:<port>)"
        )
    return str(url)


def _command_line(pid: int) -> list[str] | None:
    """The argv of process ``pid`` (None when there is no such process)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self/cmdline").exists():
        try:
            return proc.read_bytes().decode(errors="replace").split("\0")
        except (FileNotFoundError, ProcessLookupError):
            return None
    listed = subprocess.run(  # noqa: S603 - fixed argv; no /proc (macOS, BSD)
        ["/bin/ps", "-o", "args=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    return listed.stdout.split() if listed.returncode == 0 else None


def is_emulator(pid: int, endpoint_url: str) -> bool:
    """Whether ``pid`` is the emulator serving ``endpoint_url``: ``python -m
    pipeline.local.server`` on that port, as :func:`start_server` runs it."""
    argv = _command_line(pid)
    if not argv:
        return False
    port = str(urlsplit(endpoint_url).port)
    pairs = set(zip(argv, argv[1:], strict=False))
    return {("-m", SERVER_MODULE), ("--host", LOOPBACK_HOST), ("--port", port)} <= pairs


def stop_server(pid: int, timeout_s: float = 10.0) -> None:
    """Stop the emulator process (TERM, then KILL)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_running(pid):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def is_running(pid: int) -> bool:
    """Whether ``pid`` is alive (and not a zombie we started)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError as e:
        raise ConfigurationError(f"process {pid} belongs to someone else") from e
    return True
