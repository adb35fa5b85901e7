"""HTTP/1.1 request framing: how much of the connection is this request's body.

The body is read by its ``Content-Length`` and nothing else. A request whose body cannot
be delimited that way (a bad or oversized length, a ``Transfer-Encoding``) is refused with
``Connection: close``: its unread bytes would otherwise be parsed as the next request.
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Final

from pipeline.local.gateway.events import HttpAnswer

if TYPE_CHECKING:
    from pipeline.local.gateway.server import LocalGateway

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 10 * 1024 * 1024  # API Gateway's payload limit
LENGTH_REQUIRED: Final = "Transfer-Encoding is not supported; send the body with a Content-Length"


def request_handler(gateway: LocalGateway) -> type[BaseHTTPRequestHandler]:
    """The request handler class of a server in front of ``gateway``."""

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, keep-alive clients wait
        # ~40 ms for the delayed ACK before the body arrives.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            declared = (self.headers.get("Content-Length") or "0").strip()
            # Digits only: int() would take "-1" (and read(-1) waits for the client to
            # close), "+5" or "5_000", and raise past 4,300 digits.
            refused = True
            if "Transfer-Encoding" in self.headers:
                # The gateway reads a body by its Content-Length only; a chunked body left
                # unread would be parsed as the next request (smuggled past the
                # authorizer). 411, not 501: RFC 9112 section 6.3 lets a server require a
                # Content-Length this way, and it tells the client what to send instead.
                # Content-Length beside it is no help: Transfer-Encoding would override it.
                answer = HttpAnswer.message(411, LENGTH_REQUIRED)
            elif not (declared.isascii() and declared.isdigit()):
                answer = HttpAnswer.message(400, "Invalid Content-Length")
            elif (
                len(declared.lstrip("0")) > len(str(MAX_BODY_BYTES))
                or int(declared) > MAX_BODY_BYTES
            ):
                answer = HttpAnswer.message(413, "Request Too Long")
            else:
                refused = False
                length = int(declared)
                body = self.rfile.read(length) if length else b""
                answer = gateway.answer(self.command, self.path, list(self.headers.items()), body)
            self.send_response(answer.status)
            for name, value in answer.headers:
                if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                    self.send_header(name, value)
            if refused:
                # The refused body is still unread: it would be parsed as the next request.
                self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            logger.debug("%s " + format, self.address_string(), *args)

    return _Handler


__all__ = ["LENGTH_REQUIRED", "MAX_BODY_BYTES", "request_handler"]
