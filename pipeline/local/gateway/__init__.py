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

One module per step: :mod:`.routes` (1), :mod:`.tokens` (2), :mod:`.events` (3 and 4),
:mod:`.pool` (the warm handlers), :mod:`.framing` (where one request ends on the
connection) and :mod:`.server` (:class:`LocalGateway`, which runs them in order).

Each route goes to the function whose ``Api`` event declares it (the template deploys the
same API code as ``GetForecastFunction`` and ``AdminApiFunction``, with different roles);
a mock method of the API's ``DefinitionBody`` (``GET /openapi.json``) is answered by the
gateway itself from its templates (:mod:`pipeline.local.mock_integration`), as API Gateway
answers it.
Handlers are like Lambda containers: each runs one request at a time, so the gateway keeps
a pool of up to ``concurrency`` of them per function, built on demand by
``handler_factory(logical_id)``.
"""

from pipeline.local.gateway.events import HttpAnswer, http_answer, proxy_event
from pipeline.local.gateway.framing import LENGTH_REQUIRED, MAX_BODY_BYTES
from pipeline.local.gateway.pool import HandlerPool
from pipeline.local.gateway.routes import API_FUNCTION, REST_API, ApiRoute, api_routes, match_route
from pipeline.local.gateway.server import LocalGateway
from pipeline.local.gateway.tokens import CognitoTokenVerifier, Unauthorized, authorizer_claims

__all__ = [
    "API_FUNCTION",
    "LENGTH_REQUIRED",
    "MAX_BODY_BYTES",
    "REST_API",
    "ApiRoute",
    "CognitoTokenVerifier",
    "HandlerPool",
    "HttpAnswer",
    "LocalGateway",
    "Unauthorized",
    "api_routes",
    "authorizer_claims",
    "http_answer",
    "match_route",
    "proxy_event",
]
