"""What crosses the integration: the REST proxy event in, the proxy response out."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from pipeline.api.routes import STAGE
from pipeline.local.template import ACCOUNT_ID
from pipeline.settings import LOOPBACK_HOST

if TYPE_CHECKING:
    from pipeline.local.gateway.routes import ApiRoute


def proxy_event(
    *,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    route: ApiRoute,
    path_parameters: dict[str, str],
    claims: dict[str, str] | None,
    source_ip: str = LOOPBACK_HOST,
) -> dict[str, Any]:
    """The REST API (v1 payload) proxy event API Gateway sends the function."""
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        multi_query.setdefault(name, []).append(value)
    try:
        text: str | None = body.decode() if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = time.time()
    context: dict[str, Any] = {
        "resourceId": "local",
        "resourcePath": route.resource,
        "httpMethod": method,
        "path": f"/{STAGE}{path}",
        "stage": STAGE,
        "accountId": ACCOUNT_ID,
        "apiId": "local",
        "protocol": "HTTP/1.1",
        "requestId": str(uuid.uuid4()),
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": source_ip, "userAgent": multi_headers.get("User-Agent", [""])[-1]},
        "domainName": LOOPBACK_HOST,
    }
    if claims is not None:
        context["authorizer"] = {"claims": claims}
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": context,
        "body": text,
        "isBase64Encoded": encoded,
    }


@dataclass(frozen=True)
class HttpAnswer:
    """What the gateway writes back: status, headers and body bytes."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def message(cls, status: int, message: str) -> HttpAnswer:
        body = json.dumps({"message": message}).encode()
        return cls(status, [("Content-Type", "application/json")], body)


def http_answer(response: Any) -> HttpAnswer:
    """The HTTP answer of a proxy response; a malformed one is a 502, as on API Gateway."""
    if not isinstance(response, Mapping) or not isinstance(response.get("statusCode"), int):
        return HttpAnswer.message(502, "Internal server error")
    headers = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    raw = response.get("body") or ""
    body = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
    return HttpAnswer(response["statusCode"], headers, body)


__all__ = ["HttpAnswer", "http_answer", "proxy_event"]
