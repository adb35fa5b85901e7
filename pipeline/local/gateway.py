"""A local API Gateway with a Cognito authorizer, in front of the API handler, on 127.0.0.1.

It does what API Gateway does for the REST API of ``infra/template.yaml``:

1. match the request to a route declared by the function's ``Api`` events (``403 Missing
   Authentication Token`` when none matches, as API Gateway answers);
2. unless the route says ``Auth: Authorizer: NONE``, verify the Cognito token of the
   ``Authorization`` header: RS256 signature against the user pool's JWKS (PyJWT), ``exp``,
   ``iss`` (the pool), ``token_use == "id"`` and ``aud`` (the app client), as the REST
   Cognito authorizer without scopes does; ``401 Unauthorized`` on any failure;
3. build the REST proxy event (stage ``v1``, ``requestContext.authorizer.claims`` with
   string values, as the REST authorizer passes them) and invoke the function;
4. turn the proxy response into the HTTP answer (``502`` if the handler raises).

Each route goes to the function whose ``Api`` event declares it (the template deploys the
same API code as ``GetForecastFunction`` and ``AdminApiFunction``, with different roles);
a mock method of the API's ``DefinitionBody`` (``GET /openapi.json``) is answered by the
gateway itself from its templates (:mod:`pipeline.local.mock_integration`), as API Gateway
answers it.
Handlers are like Lambda containers: each runs one request at a time, so the gateway keeps
a pool of up to ``concurrency`` of them per function, built on demand by
``handler_factory(logical_id)``.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt

from pipeline.api.routes import STAGE
from pipeline.errors import ConfigurationError
from pipeline.local.mock_integration import MockIntegration, mock_methods
from pipeline.local.template import ACCOUNT_ID
from pipeline.settings import LOOPBACK_HOST

if TYPE_CHECKING:
    from types import TracebackType

    from pipeline.local.invoke import Handler
    from pipeline.local.stack import LocalStack

logger = logging.getLogger(__name__)

API_FUNCTION: Final = "GetForecastFunction"
REST_API: Final = "FmcgApi"
MAX_BODY_BYTES: Final = 10 * 1024 * 1024  # API Gateway's payload limit
LENGTH_REQUIRED: Final = "Transfer-Encoding is not supported; send the body with a Content-Length"


# ---------------------------------------------------------------------- routes
@dataclass(frozen=True)
class ApiRoute:
    """One route: method, resource template, public or not, and what answers it.

    A function's ``Api`` event names the function; a mock method of the API definition
    has ``mock`` set instead, and no function is invoked for it.
    """

    method: str
    resource: str
    public: bool
    function: str | None = API_FUNCTION
    mock: MockIntegration | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}/]+\})", self.resource)
        regex = "".join(
            f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts
        )
        return re.compile(f"^{regex}$")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when ``method path`` is this route, else ``None``."""
        if self.method not in (method, "ANY"):
            return None
        found = self.pattern.match(path)
        if found is None:
            return None
        return {k: unquote(v) for k, v in found.groupdict().items()}


def api_routes(template: Mapping[str, Any], rest_api: str = REST_API) -> list[ApiRoute]:
    """The routes of ``rest_api`` in the template: its functions' ``Api`` events and the
    mock methods of its ``DefinitionBody``."""
    routes = []
    for logical_id, spec in template["Resources"].items():
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (spec.get("Properties") or {}).get("Events", {}).values():
            props = event.get("Properties") or {}
            if event.get("Type") != "Api" or props.get("RestApiId", {"Ref": rest_api}) != {
                "Ref": rest_api
            }:
                continue
            authorizer = (props.get("Auth") or {}).get("Authorizer")
            routes.append(
                ApiRoute(
                    method=str(props["Method"]).upper(),
                    resource=str(props["Path"]),
                    public=authorizer == "NONE",
                    function=logical_id,
                )
            )
    if not routes:
        raise ConfigurationError(f"no function declares a route on {rest_api} in the template")
    api = template["Resources"].get(rest_api) or {}
    for mock in mock_methods(api.get("Properties") or {}):
        routes.append(
            ApiRoute(mock.method, mock.path, public=mock.public, function=None, mock=mock.answer)
        )
    return routes


def match_route(
    routes: list[ApiRoute], method: str, path: str
) -> tuple[ApiRoute, dict[str, str]] | None:
    """The route of ``method path`` and its path parameters (static routes win)."""
    for route in sorted(routes, key=lambda r: "{" in r.resource):
        params = route.match(method, path)
        if params is not None:
            return route, params
    return None


# ---------------------------------------------------------------------- tokens
class Unauthorized(Exception):  # noqa: N818 - named after the HTTP answer it becomes
    """A token the authorizer refuses; ``reason`` is logged, the client only sees 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CognitoTokenVerifier:
    """Verifies Cognito id tokens like the REST API's Cognito user pool authorizer."""

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        client_id: str,
        jwk_client: jwt.PyJWKClient | None = None,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.jwk_client = jwk_client or jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5)

    @classmethod
    def for_stack(cls, stack: LocalStack) -> CognitoTokenVerifier:
        """The verifier of the stack's user pool and app client, JWKS served by the emulator."""
        pool_id = stack.ref("UserPool")
        return cls(
            jwks_url=f"{stack.endpoint_url}/{pool_id}/.well-known/jwks.json",
            issuer=stack.resources["UserPool"].attributes["ProviderURL"],
            client_id=stack.ref("UserPoolClient"),
        )

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The claims of the ``Authorization`` header's token, or :class:`Unauthorized`."""
        if not authorization:
            raise Unauthorized("no Authorization header")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256":
                raise Unauthorized(f"algorithm {header.get('alg')!r} is not RS256")
            key = self.jwk_client.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "token_use"]},
            )
        except jwt.PyJWTError as e:
            raise Unauthorized(f"{type(e).__name__}: {e}") from e
        if claims.get("token_use") != "id":
            raise Unauthorized(f"token_use is {claims.get('token_use')!r}, not 'id'")
        return claims


def authorizer_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as the REST Cognito authorizer passes them: every value a string.

    Lists (``cognito:groups``) become comma-separated, as in ``"AdminGroup,PlannerGroup"``.
    """
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in claims.items()}


# ---------------------------------------------------------------------- events
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


# ---------------------------------------------------------------------- server
class HandlerPool:
    """Up to ``size`` handler instances, each serving one request at a time (like containers)."""

    def __init__(self, factory: Callable[[], Handler], size: int, *, owned: bool = True) -> None:
        self._factory = factory
        self._owned = owned  # whether close() stops the instances (not a caller's handler)
        self._idle: queue.LifoQueue[Handler] = queue.LifoQueue()
        self._slots = threading.Semaphore(size)
        self._lock = threading.Lock()
        self._built: list[Handler] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        """Run ``event`` on an idle instance, building one if the pool is not full."""
        with self._slots:
            try:
                handler = self._idle.get_nowait()
            except queue.Empty:
                with self._lock:  # imports are not safe to run concurrently
                    handler = self._factory()
                    if self._owned:
                        self._built.append(handler)
            try:
                return handler(event, None)
            finally:
                self._idle.put(handler)

    def close(self) -> None:
        """Stop the instances this pool built (their worker processes), if they can be."""
        with self._lock:
            built, self._built = self._built, []
        for handler in built:
            close = getattr(handler, "close", None)
            if close is not None:
                close()


class LocalGateway:
    """The local API Gateway on ``127.0.0.1``; ``url`` ends with the stage (``/v1``).

    ``handler`` serves every route as the only instance; ``handler_factory(logical_id)``
    builds up to ``concurrency`` instances per function on demand (typically
    ``lambda fn: pipeline.local.invoke.load_handler(stack, fn)``).
    """

    def __init__(
        self,
        stack: LocalStack,
        handler: Handler | None = None,
        *,
        handler_factory: Callable[[str], Handler] | None = None,
        concurrency: int = 1,
        port: int = 0,
        rest_api: str = REST_API,
        verifier: CognitoTokenVerifier | None = None,
    ) -> None:
        self.routes = api_routes(stack.template, rest_api)
        self.verifier = verifier or CognitoTokenVerifier.for_stack(stack)
        self.pools: dict[str, HandlerPool] = {}
        if handler is not None and handler_factory is None:
            shared = HandlerPool(lambda: handler, 1, owned=False)
            self.pools = {route.function: shared for route in self.routes if route.function}
        elif handler_factory is not None and handler is None:
            for function in {route.function for route in self.routes if route.function}:
                self.pools[function] = HandlerPool(
                    functools.partial(handler_factory, function), concurrency
                )
        else:
            raise ConfigurationError("give the gateway either a handler or a handler_factory")
        try:
            self._server = ThreadingHTTPServer((LOOPBACK_HOST, port), _request_handler(self))
        except OSError as e:  # in use, or a privileged port
            raise ConfigurationError(
                f"cannot listen on {LOOPBACK_HOST}:{port}: {e.strerror}"
            ) from e
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL of the stage, e.g. ``http://127.0.0.1:8080/v1``."""
        return f"http://{LOOPBACK_HOST}:{self.port}/{STAGE}"

    def answer(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> HttpAnswer:
        """Route, authorise and invoke one request (the server calls this per request)."""
        split = urlsplit(target)
        stage_prefix = f"/{STAGE}"
        if split.path != stage_prefix and not split.path.startswith(stage_prefix + "/"):
            return HttpAnswer.message(403, "Forbidden")
        path = split.path[len(stage_prefix) :] or "/"
        matched = match_route(self.routes, method, path)
        if matched is None:
            return HttpAnswer.message(403, "Missing Authentication Token")
        route, params = matched
        claims: dict[str, str] | None = None
        if not route.public:
            authorization = next((v for k, v in headers if k.lower() == "authorization"), None)
            try:
                claims = authorizer_claims(self.verifier.verify(authorization))
            except Unauthorized as e:
                logger.info("401 %s %s: %s", method, path, e.reason)
                return HttpAnswer.message(401, "Unauthorized")
        if route.mock is not None:
            return HttpAnswer(
                route.mock.status, [("Content-Type", route.mock.content_type)], route.mock.body
            )
        event = proxy_event(
            method=method,
            path=unquote(path),
            query=split.query,
            headers=headers,
            body=body,
            route=route,
            path_parameters=params,
            claims=claims,
        )
        try:
            return http_answer(self.pools[str(route.function)].invoke(event))
        except Exception:
            logger.exception("the handler failed on %s %s", method, path)
            return HttpAnswer.message(502, "Internal server error")

    # -------------------------------------------------------------- lifecycle
    def start(self) -> LocalGateway:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-gateway", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        for pool in {id(p): p for p in self.pools.values()}.values():
            pool.close()

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _request_handler(gateway: LocalGateway) -> type[BaseHTTPRequestHandler]:
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
