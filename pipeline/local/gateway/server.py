"""The gateway itself: routes, authorises and invokes each request, and serves on 127.0.0.1."""

from __future__ import annotations

import functools
import logging
import threading
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from pipeline.api.routes import STAGE
from pipeline.errors import ConfigurationError
from pipeline.local.gateway.events import HttpAnswer, http_answer, proxy_event
from pipeline.local.gateway.framing import request_handler
from pipeline.local.gateway.pool import HandlerPool
from pipeline.local.gateway.routes import REST_API, api_routes, match_route
from pipeline.local.gateway.tokens import CognitoTokenVerifier, Unauthorized, authorizer_claims
from pipeline.settings import LOOPBACK_HOST

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from pipeline.local.invoke import Handler
    from pipeline.local.stack import LocalStack

logger = logging.getLogger(__name__)


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
            self._server = ThreadingHTTPServer((LOOPBACK_HOST, port), request_handler(self))
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


__all__ = ["LocalGateway"]
