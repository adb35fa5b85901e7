"""The API's routes on a Powertools ``APIGatewayRestResolver``, and its one entry point.

:func:`handle` is what the Lambda handler calls: it authorises the caller by group first
(:mod:`pipeline.api.access`, before any input is parsed, so a caller without the right gets
403 whatever it sends), then lets the resolver route and validate. Client mistakes become
400/404/409 with a message; AWS hiccups become 503; a server-side fault is a 500 with a
message; nothing a client sends gives a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query

from pipeline.api import users
from pipeline.api.access import caller_may, claims_of
from pipeline.api.audit import MembershipAudit, Requester
from pipeline.api.errors import BadRequest, Forbidden, RequestError
from pipeline.api.forecasts import DEFAULT_LIMIT, MAX_LIMIT, ForecastQuery, query_forecasts
from pipeline.api.orders import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    OrderRequest,
    check_idempotency_key,
    place_order,
)
from pipeline.api.status import pipeline_status
from pipeline.api.users import USERNAME_PATTERN, list_users
from pipeline.api.validation import DATE_PATTERN, ID_PATTERN
from pipeline.errors import ConfigurationError, TerminalError, TransientError

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from pipeline.settings import ApiSettings

API_TITLE: Final = "FMCG forecasts API"
API_VERSION: Final = "1.0.0"
#: The API Gateway stage (``StageName`` in infra/template.yaml); every path starts with it.
STAGE: Final = "v1"
JSON: Final = "application/json"
logger = logging.getLogger(__name__)
_SECURITY: Final[list[dict[str, list[str]]]] = [{"cognito": []}]


@dataclass
class ApiClients:
    """The AWS clients the routes use, each built on first use from ``factory(service)``.

    The handler module builds one of these at import so warm invocations reuse clients;
    tests pass a factory bound to the emulator.
    """

    factory: Callable[[str], Any]
    _built: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, service: str) -> Any:
        """The client of ``service`` (``dynamodb``, ``s3``, ``cognito-idp``)."""
        client = self._built.get(service)
        if client is None:
            with self._lock:
                client = self._built.get(service)
                if client is None:
                    client = self._built[service] = self.factory(service)
        return client


def _json(status: int, body: Any) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=json.dumps(body, default=str))


def _error(status: int, message: str) -> Response[str]:
    return _json(status, {"message": message})


def _validation_message(error: RequestValidationError) -> str:
    """One readable sentence per failed field: ``query.sku_id: String should match ...``."""
    parts = []
    for detail in error.errors():
        if detail.get("type") == "json_invalid":
            parts.append("body: is not valid JSON")
            continue
        location = ".".join(str(p) for p in detail.get("loc", ()))
        parts.append(f"{location}: {detail.get('msg', 'is invalid')}")
    return "; ".join(parts) or "the request is invalid"


def build_resolver(
    settings: ApiSettings, clients: ApiClients, *, audit_logger: Logger | None = None
) -> APIGatewayRestResolver:
    """Every route of the API, bound to ``settings`` and ``clients``.

    ``audit_logger`` receives the audit records of group changes: the handler passes its
    own Powertools ``Logger``, so they land in the function's log with its other lines; by
    default a child logger of the service's.
    """
    app = APIGatewayRestResolver(enable_validation=True)
    audit_logger = audit_logger or Logger(child=True)

    @app.exception_handler(RequestError)  # type: ignore[untyped-decorator]
    def refused(e: RequestError) -> Response[str]:
        return _error(e.status, e.message)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def invalid_request(e: RequestValidationError) -> Response[str]:
        return _error(400, _validation_message(e))

    @app.exception_handler(TransientError)  # type: ignore[untyped-decorator]
    def unavailable(e: TransientError) -> Response[str]:
        logger.warning("503: %s", e)
        return _error(503, "a backing service is unavailable; retry later")

    # Last of the pipeline's errors: a terminal failure that is not the client's (a denied
    # or missing resource, a setting) is answered, logged, and never surfaces as a crash of
    # the function, which API Gateway would turn into a bare 502.
    @app.exception_handler(TerminalError)  # type: ignore[untyped-decorator]
    def failed(e: TerminalError) -> Response[str]:
        logger.error("500: %s", e)
        return _error(500, "the request could not be served; it was logged")

    def claims() -> dict[str, Any]:
        return dict(claims_of(app.current_event.raw_event))

    def require(value: str | None, what: str) -> str:
        if value is None:
            raise ConfigurationError(f"{what} is not configured for this function")
        return value

    @app.get(
        "/forecasts",
        summary="Forecasts of one SKU, at one or every location, for up to 366 days",
        security=_SECURITY,
        responses={200: {"description": "A page of forecasts"}, 400: {"description": "Bad input"}},
    )
    def get_forecasts(
        *,
        sku_id: Annotated[str, Query(pattern=ID_PATTERN)],
        from_: Annotated[str, Query(alias="from", pattern=DATE_PATTERN)],
        to: Annotated[str, Query(pattern=DATE_PATTERN)],
        location_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        next_token: Annotated[str | None, Query(max_length=1024)] = None,
    ) -> dict[str, Any]:
        query = ForecastQuery.parse(
            sku_id=sku_id, location_id=location_id, start=from_, end=to, limit=limit
        )
        page = query_forecasts(clients.get("dynamodb"), settings.forecast_table, query, next_token)
        return page.to_json()

    @app.post(
        "/orders",
        summary="Place a replenishment order (idempotent by the Idempotency-Key header)",
        security=_SECURITY,
        responses={
            201: {"description": "Order created"},
            200: {"description": "The order already created with this key and body"},
            400: {"description": "Bad input"},
            409: {"description": "Idempotency-Key reused with another body"},
        },
    )
    def post_order(
        order: Annotated[OrderRequest, Body()],
        idempotency_key: Annotated[
            str, Header(alias=IDEMPOTENCY_HEADER, pattern=IDEMPOTENCY_KEY_PATTERN)
        ],
    ) -> Response[str]:
        caller = claims()
        result = place_order(
            clients.get("dynamodb"),
            require(settings.orders_table, "ORDERS_TABLE"),
            order,
            idempotency_key=check_idempotency_key(idempotency_key),
            caller=str(caller.get("sub", "")),
            caller_name=str(caller.get("cognito:username", "")),
            now=datetime.now(UTC),
        )
        return _json(201 if result.created else 200, result.order)

    @app.get("/admin/status", summary="Pipeline status", security=_SECURITY)
    def admin_status() -> dict[str, Any]:
        return pipeline_status(
            s3=clients.get("s3"),
            dynamodb=clients.get("dynamodb"),
            raw_bucket=settings.raw_bucket,
            curated_bucket=settings.curated_bucket,
            forecast_table=settings.forecast_table,
        )

    @app.get("/users", summary="Users and their groups", security=_SECURITY)
    def get_users() -> dict[str, Any]:
        pool = require(settings.user_pool_id, "USER_POOL_ID")
        return {"users": list_users(clients.get("cognito-idp"), pool)}

    def _membership() -> tuple[Any, str, MembershipAudit]:
        pool = require(settings.user_pool_id, "USER_POOL_ID")
        audit = MembershipAudit(audit_logger, Requester.of(app.current_event.raw_event))
        return clients.get("cognito-idp"), pool, audit

    @app.put(
        "/users/<username>/groups/<group>",
        summary="Add a user to PlannerGroup or ViewerGroup (AdminGroup is never granted here)",
        security=_SECURITY,
        responses={
            200: {"description": "The user is a member"},
            400: {"description": "Bad username or group"},
            403: {"description": "AdminGroup is granted in the user pool, not through the API"},
            404: {"description": "No such user"},
        },
    )
    def add_to_group(
        username: Annotated[str, Path(pattern=USERNAME_PATTERN)],
        group: Annotated[str, Path()],
    ) -> dict[str, Any]:
        cognito, pool, audit = _membership()
        return users.add_to_group(cognito, pool, username, group, audit=audit)

    @app.delete(
        "/users/<username>/groups/<group>",
        summary="Remove a user from a group and sign them out everywhere",
        security=_SECURITY,
        responses={
            200: {"description": "The user is no member, and signed out"},
            400: {"description": "Bad username or group"},
            404: {"description": "No such user"},
            409: {"description": "The user is the last enabled admin"},
        },
    )
    def remove_from_group(
        username: Annotated[str, Path(pattern=USERNAME_PATTERN)],
        group: Annotated[str, Path()],
    ) -> dict[str, Any]:
        cognito, pool, audit = _membership()
        return users.remove_from_group(cognito, pool, username, group, audit=audit)

    return app


def openapi_json(app: APIGatewayRestResolver) -> str:
    """The OpenAPI document generated from the routes.

    API Gateway serves it at ``GET /openapi.json`` from the template, without invoking the
    function (:mod:`pipeline.api.openapi_document`); the OpenAPI models cost ~0.2 s to
    import, so the handler never imports them.
    """
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server

    return app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        servers=[Server(url=f"/{STAGE}")],
        security_schemes={
            "cognito": APIKey(
                name="Authorization",
                in_=APIKeyIn.header,  # type: ignore[call-arg]  # pydantic alias "in"
                description="A Cognito id token of the user pool (API Gateway Cognito authorizer).",
            )
        },
    )


def handle(
    app: APIGatewayRestResolver, event: dict[str, Any], context: LambdaContext | None
) -> dict[str, Any]:
    """Authorise by group, then route. The one path every request takes."""
    refusal = _refusal(event)
    if refusal is not None:
        return {
            "statusCode": refusal.status,
            "headers": {"Content-Type": JSON},
            "body": json.dumps({"message": refusal.message}),
            "isBase64Encoded": False,
        }
    response: dict[str, Any] = app.resolve(event, context)  # type: ignore[arg-type]
    return response


def _refusal(event: dict[str, Any]) -> RequestError | None:
    """What is refused before the resolver parses anything: a caller whose groups do not
    grant the route, then a body that is not text."""
    if not caller_may(event):
        return Forbidden("your groups do not allow this route")
    if not _body_is_text(event):
        return BadRequest("body: is not UTF-8 text")
    return None


def _body_is_text(event: dict[str, Any]) -> bool:
    """False for a binary body: the resolver would fail decoding it instead of answering 400."""
    body = event.get("body")
    if not body or not event.get("isBase64Encoded"):
        return True
    try:
        base64.b64decode(body).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    return True
