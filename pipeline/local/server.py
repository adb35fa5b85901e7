"""The emulator process: moto's WSGI app under Hypercorn, HTTP/1.1 and cleartext HTTP/2.

The KCL's Java Kinesis client is Netty-based and speaks HTTP/2 with prior knowledge even
on ``http://`` endpoints; moto's own (werkzeug) server answers the HTTP/2 preface with an
HTTP/1.1 error page, so the daemon never gets a shard list. Hypercorn serves the very same
moto application and speaks both protocols on one port, so every other client (boto3,
the CLI) works against it unchanged. ``pipeline.local.emulator.start_server`` runs it as
``python -m pipeline.local.server --port N``; it binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

HOST = "127.0.0.1"


def ensure_a_body_chunk(app: Any) -> Any:
    """Wrap a WSGI app so every response yields at least one (possibly empty) body chunk.

    Hypercorn's WSGI adapter only sends the status line with the first body chunk, so a
    response with an empty body (moto's 404 to a HEAD request, say) would never start and
    would surface as a 500.
    """

    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        body = app(environ, start_response)
        try:
            empty = True
            for chunk in body:
                empty = False
                yield chunk
            if empty:
                yield b""
        finally:
            if hasattr(body, "close"):
                body.close()

    return wrapped


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
    app = ensure_a_body_chunk(DomainDispatcherApplication(create_backend_app))
    asyncio.run(hypercorn_serve(app, config, mode="wsgi"))


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--host`` (loopback by default) and ``--port``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
