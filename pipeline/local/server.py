"""The emulator process: moto's WSGI app under Hypercorn, HTTP/1.1 and cleartext HTTP/2.

The KCL's Java Kinesis client is Netty-based and speaks HTTP/2 with prior knowledge even
on ``http://`` endpoints; moto's own (werkzeug) server answers the HTTP/2 preface with an
HTTP/1.1 error page, so the daemon never gets a shard list. Hypercorn serves the very same
moto application and speaks both protocols on one port, so every other client (boto3,
the CLI) works against it unchanged. ``pipeline.local.emulator.start_server`` runs it as
``python -m pipeline.local.server --port N``; it binds 127.0.0.1 only.

It counts the requests it serves per service and operation, with their bytes and the time
moto took, and answers ``GET /_fmcg/requests`` with the counts (:func:`counting_requests`):
benchmarks read them before and after a run, whichever client (boto3, Java, C++) sent them.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from pipeline.settings import LOOPBACK_HOST

if TYPE_CHECKING:
    from collections.abc import Sequence

#: Debugging memory: a directory to write a tracemalloc snapshot to every
#: ``FMCG_EMULATOR_TRACEMALLOC_EVERY_S`` seconds (60 by default); compare two with
#: ``tracemalloc.Snapshot.load(a).compare_to(tracemalloc.Snapshot.load(b), "traceback")``.
TRACEMALLOC_DIR_ENV = "FMCG_EMULATOR_TRACEMALLOC"
TRACEMALLOC_EVERY_ENV = "FMCG_EMULATOR_TRACEMALLOC_EVERY_S"
#: ``GET`` here answers with the requests served so far (:class:`RequestCounts`, as JSON);
#: no bucket can be named ``_fmcg``, so no S3 path is shadowed.
REQUESTS_PATH = "/_fmcg/requests"
#: S3 query parameters that name no sub-resource (unlike ``?tagging``, ``?uploads``, ...).
_S3_LISTING_PARAMETERS = frozenset(
    {
        "prefix",
        "delimiter",
        "marker",
        "max-keys",
        "list-type",
        "continuation-token",
        "start-after",
        "fetch-owner",
        "encoding-type",
        "versionId",
        "x-id",
    }
)
_S3_OBJECT_OPERATIONS = {
    "GET": "GetObject",
    "HEAD": "HeadObject",
    "PUT": "PutObject",
    "DELETE": "DeleteObject",
    "POST": "PostObject",
}
_S3_UPLOAD_OPERATIONS = {
    "PUT": "UploadPart",
    "POST": "CompleteMultipartUpload",
    "DELETE": "AbortMultipartUpload",
    "GET": "ListParts",
}


def one_request_at_a_time(app: Any) -> Any:
    """Wrap a WSGI app so that requests run one after the other.

    Hypercorn runs each WSGI request in a worker thread, and moto's backends are not
    thread-safe: two concurrent PutRecords on a shard can draw the same sequence number,
    and a cancelled TransactWriteItems that restores its items can undo a write another
    request committed in between. AWS never loses writes that way, so the emulator must
    not either; the whole response is produced under the lock. (moto's work is pure Python
    under the GIL, so this costs little throughput.)

    An empty body comes back as one empty chunk: Hypercorn's WSGI adapter only sends the
    status line with the first body chunk, so a response with no chunk at all (moto's 404
    to a HEAD request, say) would never start and would surface as a 500.
    """
    lock = threading.Lock()

    def wrapped(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:
            body = app(environ, start_response)
            try:
                return list(body) or [b""]
            finally:
                if hasattr(body, "close"):
                    body.close()

    return wrapped


def chunked_bodies_sized(app: Any) -> Any:
    """Wrap a WSGI app so that a ``Transfer-Encoding: chunked`` request body is read.

    Hypercorn passes such a body on already de-chunked, but without ``CONTENT_LENGTH``
    or ``wsgi.input_terminated``, so werkzeug reads it as empty. The AWS SDK
    for C++ (pyarrow's S3 filesystem, which PyIceberg writes through) sends its
    ``UploadPart`` bodies that way: moto stored empty parts. The body is read whole and
    its length set, as a server in front of S3 would.
    """

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            body = environ["wsgi.input"].read()
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            # werkzeug ignores CONTENT_LENGTH beside a chunked transfer encoding.
            environ["wsgi.input_terminated"] = True
        return app(environ, start_response)

    return wrapped


class RequestCounts:
    """The requests an emulator served, per ``service:operation``: how many, the bytes of
    their bodies in and out, and the seconds moto spent producing their responses (the
    HTTP layer around it not included)."""

    FIELDS = ("requests", "bytes_in", "bytes_out", "seconds")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_operation: dict[str, list[float]] = {}

    def add(self, operation: str, bytes_in: int, bytes_out: int, seconds: float) -> None:
        with self._lock:
            row = self._by_operation.setdefault(operation, [0, 0, 0, 0.0])
            row[0] += 1
            row[1] += bytes_in
            row[2] += bytes_out
            row[3] += seconds

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {
                op: dict(zip(self.FIELDS, row, strict=True))
                for op, row in sorted(self._by_operation.items())
            }


def _signing_service(authorization: str) -> str | None:
    """The service of a SigV4 ``Authorization`` header's credential scope
    (``Credential=<key>/<date>/<region>/<service>/aws4_request``), as moto routes it."""
    _, found, rest = authorization.partition("Credential=")
    scope = rest.split(",", 1)[0].split("/") if found else []
    return scope[3].lower() if len(scope) == 5 else None


def _s3_operation(environ: dict[str, Any]) -> str:
    """The S3 operation of a path-style request (``GetObject``, ``UploadPart``, ...)."""
    method = str(environ.get("REQUEST_METHOD", ""))
    bucket, _, key = environ.get("PATH_INFO", "").lstrip("/").partition("/")
    query = {part.partition("=")[0] for part in environ.get("QUERY_STRING", "").split("&")}
    sub = sorted(query - _S3_LISTING_PARAMETERS - {""})
    if not bucket:
        return "ListBuckets" if method == "GET" else method
    if key:
        if "uploadId" in query:
            return _S3_UPLOAD_OPERATIONS.get(method, method)
        if "uploads" in query and method == "POST":
            return "CreateMultipartUpload"
        if method == "PUT" and environ.get("HTTP_X_AMZ_COPY_SOURCE"):
            return "CopyObject"
        operation = _S3_OBJECT_OPERATIONS.get(method, method)
        return f"{operation}?{sub[0]}" if sub else operation
    if sub:
        return "DeleteObjects" if method == "POST" and sub == ["delete"] else f"{method}?{sub[0]}"
    if method == "GET":
        return "ListObjectsV2" if "list-type" in query else "ListObjects"
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(
        method, method
    )


def operation_of(environ: dict[str, Any]) -> str:
    """``service:operation`` of a request, from its headers and path only (its body is
    not read): the JSON protocols' ``X-Amz-Target``, S3's method and path, else the method."""
    if str(environ.get("PATH_INFO", "")).startswith("/moto-api/"):
        return "moto-api:" + str(environ["PATH_INFO"])[len("/moto-api/") :]
    service = _signing_service(environ.get("HTTP_AUTHORIZATION", ""))
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        prefix, _, operation = target.rpartition(".")
        return f"{service or prefix}:{operation}"
    if service in (None, "s3"):
        return f"{service or 'unsigned'}:{_s3_operation(environ)}"
    action = next(
        (
            part.partition("=")[2]
            for part in environ.get("QUERY_STRING", "").split("&")
            if part.startswith("Action=")
        ),
        None,
    )
    return f"{service}:{action or environ.get('REQUEST_METHOD', '')}"


def counting_requests(app: Any, counts: RequestCounts) -> Any:
    """Wrap a WSGI app so that ``counts`` records every request it serves, and a ``GET`` of
    :data:`REQUESTS_PATH` answers with ``counts`` (itself not counted).

    The response body is produced inside the timer (moto's bodies are in memory anyway);
    the request's size is read after ``app`` ran, once :func:`chunked_bodies_sized` has set
    it. Benchmarks read the counts before and after a run (Java clients' requests never
    pass through boto3, so the server is where all of them can be counted).
    """

    def wrapped(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == REQUESTS_PATH and environ.get("REQUEST_METHOD") == "GET":
            body = json.dumps({"operations": counts.snapshot()}).encode()
            start_response(
                "200 OK",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        started = time.perf_counter()
        response = app(environ, start_response)
        try:
            chunks = list(response)
        finally:
            if hasattr(response, "close"):
                response.close()
        elapsed = time.perf_counter() - started
        try:
            bytes_in = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            bytes_in = 0
        counts.add(operation_of(environ), bytes_in, sum(map(len, chunks)), elapsed)
        return chunks

    return wrapped


def start_tracemalloc_snapshots(directory: str, every_s: float, frames: int = 12) -> None:
    """Trace allocations and dump a snapshot to ``directory`` every ``every_s`` seconds.

    Tracing slows the emulator down several times: for finding what it retains, not for
    timing anything.
    """
    import tracemalloc
    from pathlib import Path

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(frames)

    def dump() -> None:
        n = 0
        while True:
            time.sleep(every_s)
            tracemalloc.take_snapshot().dump(str(out / f"snapshot-{n:03d}.pickle"))
            n += 1

    threading.Thread(target=dump, name="tracemalloc-snapshots", daemon=True).start()


def serve(host: str, port: int) -> None:
    """Serve moto's application on ``host:port`` until the process is terminated."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from pipeline.local import (
        cognito_patches,
        emulator_patches,
        glue_patches,
        s3_notification_patches,
    )

    # moto keeps and copies more than a long soak can afford (see the module).
    emulator_patches.apply()
    # botocore's Athena protocol is REST-JSON now; moto routes only its old path.
    emulator_patches.route_athena_rest_json()
    # The user pool enforces what the template declares (auth flows, SRP, MFA, lifetimes).
    cognito_patches.apply()
    # Iceberg's optimistic locking: a Glue UpdateTable at a stale VersionId is refused.
    glue_patches.apply()
    # S3 event notifications carry S3's sequencer (the compaction job orders events by it).
    s3_notification_patches.apply()
    # moto builds absolute URLs (queue URLs and the like) from this port.
    os.environ.setdefault("MOTO_PORT", str(port))
    if os.environ.get(TRACEMALLOC_DIR_ENV):
        every_s = float(os.environ.get(TRACEMALLOC_EVERY_ENV, "60"))
        start_tracemalloc_snapshots(os.environ[TRACEMALLOC_DIR_ENV], every_s)
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    # Kinesis GetRecords and S3 PutObject bodies stay far below this; the default (16 MiB)
    # would reject a large multipart part.
    config.wsgi_max_body_size = 128 * 1024 * 1024
    moto_app = DomainDispatcherApplication(create_backend_app)
    app = one_request_at_a_time(counting_requests(chunked_bodies_sized(moto_app), RequestCounts()))
    asyncio.run(hypercorn_serve(app, config, mode="wsgi"))


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--host`` (loopback by default) and ``--port``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default=LOOPBACK_HOST)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
