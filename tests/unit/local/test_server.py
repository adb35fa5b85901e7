"""The emulator's WSGI wrappers, without a server."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline.local.server import (
    REQUESTS_PATH,
    RequestCounts,
    counting_requests,
    one_request_at_a_time,
    operation_of,
)


class SlowApp:
    """A WSGI app that records how many requests are inside it at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.closed = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.01)
        start_response("200 OK", [])
        app = self

        class Body(list[bytes]):
            def close(self) -> None:
                with app._lock:
                    app.inside -= 1
                    app.closed += 1

        return Body([b"a", b"b"])


def test_given_concurrent_requests_when_serialised_then_one_runs_at_a_time_and_bodies_close() -> (
    None
):
    inner = SlowApp()
    app = one_request_at_a_time(inner)

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: app({}, lambda *a: None), range(32)))

    assert inner.most_inside == 1
    assert inner.closed == 32
    assert bodies == [[b"a", b"b"]] * 32


def test_given_an_empty_body_when_served_then_one_empty_chunk_is_returned() -> None:
    def empty(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("404 Not Found", [])
        return []

    assert list(one_request_at_a_time(empty)({}, lambda *a: None)) == [b""]


def _scoped(service: str) -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential=testing/20240603/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )


def test_given_requests_when_classified_then_service_and_operation_come_from_headers() -> None:
    s3 = {"HTTP_AUTHORIZATION": _scoped("s3")}
    assert operation_of({**s3, "REQUEST_METHOD": "GET", "PATH_INFO": "/b/k/x.json"}) == (
        "s3:GetObject"
    )
    assert (
        operation_of(
            {
                **s3,
                "REQUEST_METHOD": "PUT",
                "PATH_INFO": "/b/k",
                "QUERY_STRING": "partNumber=1&uploadId=u",
            }
        )
        == "s3:UploadPart"
    )
    assert (
        operation_of(
            {
                **s3,
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/b",
                "QUERY_STRING": "list-type=2&prefix=a",
            }
        )
        == "s3:ListObjectsV2"
    )
    glue = {"HTTP_AUTHORIZATION": _scoped("glue"), "HTTP_X_AMZ_TARGET": "AWSGlue.GetTable"}
    assert operation_of({**glue, "REQUEST_METHOD": "POST", "PATH_INFO": "/"}) == "glue:GetTable"


def test_given_a_counting_app_when_served_then_counts_are_served_at_their_path() -> None:
    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["CONTENT_LENGTH"] = "3"  # as chunked_bodies_sized sets it
        start_response("200 OK", [])
        return [b"abcd"]

    counts = RequestCounts()
    app = counting_requests(inner, counts)
    request = {"HTTP_AUTHORIZATION": _scoped("s3"), "REQUEST_METHOD": "GET", "PATH_INFO": "/b/k"}
    assert app(dict(request), lambda *a: None) == [b"abcd"]
    assert app(dict(request), lambda *a: None) == [b"abcd"]

    served = app({"REQUEST_METHOD": "GET", "PATH_INFO": REQUESTS_PATH}, lambda *a: None)

    row = json.loads(b"".join(served))["operations"]["s3:GetObject"]
    assert (row["requests"], row["bytes_in"], row["bytes_out"]) == (2, 6, 8)
    assert row["seconds"] >= 0
