"""The emulator over HTTP/1.1 and cleartext HTTP/2 (h2c): moto's WSGI app under Hypercorn.

The KCL's Java Kinesis client is Netty-based and speaks HTTP/2 with prior knowledge even
on ``http://`` endpoints; moto's own (werkzeug) server answers the HTTP/2 preface with an
HTTP/1.1 error page, so the daemon never gets a shard list. Hypercorn serves the very same
moto application and speaks both protocols on one port, so every other client (boto3,
the CLI) works against it unchanged. Run as ``python -m pipeline.kcl.h2c_server``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from pipeline.errors import TransientError
from pipeline.local.emulator import HOST, LOCAL_CREDENTIALS, free_port, wait_ready

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


def serve(host: str, port: int) -> None:
    """Serve moto's application on ``host:port`` until the process is terminated."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    # moto builds absolute URLs (queue URLs and the like) from this port.
    os.environ.setdefault("MOTO_PORT", str(port))
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    # Kinesis GetRecords and S3 PutObject bodies stay far below this; the default (16 MiB)
    # would reject a large multipart part.
    config.wsgi_max_body_size = 128 * 1024 * 1024
    app = DomainDispatcherApplication(create_backend_app)
    asyncio.run(hypercorn_serve(app, config, mode="wsgi"))


def start(log_path: Path | None = None, port: int | None = None) -> tuple[int, str]:
    """Start the h2c emulator on 127.0.0.1 in its own session; return (pid, endpoint_url)."""
    port = port or free_port()
    endpoint_url = f"http://{HOST}:{port}"
    log: Any = log_path.open("ab") if log_path else subprocess.DEVNULL
    env = {**os.environ, **LOCAL_CREDENTIALS}
    proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, "-m", "pipeline.kcl.h2c_server", "--host", HOST, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        wait_ready(endpoint_url)
    except TransientError:
        proc.kill()
        proc.wait()
        raise
    return proc.pid, endpoint_url


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--host`` (loopback by default) and ``--port``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
