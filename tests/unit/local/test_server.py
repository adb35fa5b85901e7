"""The emulator's WSGI wrappers, without a server."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline.local.server import one_request_at_a_time


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
