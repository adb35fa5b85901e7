"""The local gateway refuses a request whose Content-Length it cannot honour."""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.local.gateway import CognitoTokenVerifier, LocalGateway
from pipeline.local.stack import LocalStack
from pipeline.local.template import DEFAULT_TEMPLATE

if TYPE_CHECKING:
    from collections.abc import Iterator

ENDPOINT = "http://127.0.0.1:9"  # never contacted: the spec route needs no token


def _spec_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps({"path": event["path"]})}


@pytest.fixture(scope="module")
def gateway() -> Iterator[LocalGateway]:
    stack = LocalStack(ENDPOINT, "t", str(DEFAULT_TEMPLATE), {}, {})
    verifier = CognitoTokenVerifier(jwks_url=f"{ENDPOINT}/jwks", issuer="local", client_id="c")
    with LocalGateway(stack, _spec_handler, verifier=verifier) as running:  # type: ignore[arg-type]
        yield running


def _exchange(gateway: LocalGateway, request: bytes) -> tuple[bytes, bytes]:
    """Send raw bytes; return the first response's head and whatever follows it."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):  # the gateway closes the connection
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head, rest


@pytest.mark.parametrize("length", ["-1", "-100", "+5", "5_0", "abc", "1e3", "٣"])
def test_given_a_content_length_that_is_not_a_size_then_400_and_the_connection_closes(
    gateway: LocalGateway, length: str
) -> None:
    request = (
        f"POST /v1/openapi.json HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
        "GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
    ).encode()

    head, rest = _exchange(gateway, request)

    assert head.split(b"\r\n")[0] == b"HTTP/1.1 400 Bad Request"
    assert b"Connection: close" in head
    assert rest == b'{"message": "Invalid Content-Length"}'  # and no second response


def test_given_a_content_length_past_the_limit_then_413_without_reading_it(
    gateway: LocalGateway,
) -> None:
    head, rest = _exchange(
        gateway, b"POST /v1/openapi.json HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000
        + b"\r\n\r\n",
    )  # fmt: skip

    assert head.split(b"\r\n")[0] == b"HTTP/1.1 413 Request Entity Too Large"
    assert rest == b'{"message": "Request Too Long"}'


SMUGGLED = "GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        "Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "transfer-encoding: chunked\r\n",
        # Transfer-Encoding overrides Content-Length (RFC 9112 section 6.3): still refused.
        f"Transfer-Encoding: chunked\r\nContent-Length: {len(SMUGGLED)}\r\n",
    ],
)
def test_given_a_chunked_body_then_411_and_the_connection_closes_before_it_is_parsed(
    gateway: LocalGateway, framing: str
) -> None:
    # The chunk holds a whole request: read as the next one, it would be answered too.
    chunked = f"{len(SMUGGLED):x}\r\n{SMUGGLED}\r\n0\r\n\r\n"
    request = f"POST /v1/openapi.json HTTP/1.1\r\nHost: x\r\n{framing}\r\n{chunked}".encode()

    head, rest = _exchange(gateway, request)

    assert head.split(b"\r\n")[0] == b"HTTP/1.1 411 Length Required"
    assert b"Connection: close" in head
    assert json.loads(rest) == {  # and no second response
        "message": "Transfer-Encoding is not supported; send the body with a Content-Length"
    }
