"""The read/write API behind API Gateway: forecasts, orders, admin status and users.

The Lambda handler (``stream_consumers/get_forecast/app.py``) builds the resolver once with
:func:`build_resolver` and sends every event through :func:`handle`.
"""

from pipeline.api.access import (
    ADMIN_GROUP,
    GROUPS,
    PERMISSIONS,
    PLANNER_GROUP,
    VIEWER_GROUP,
    allowed_routes,
    caller_groups,
    is_allowed,
    parse_groups,
)
from pipeline.api.errors import BadRequest, Conflict, Forbidden, NotFound, RequestError
from pipeline.api.routes import ApiClients, build_resolver, handle, openapi_json

__all__ = [
    "ADMIN_GROUP",
    "GROUPS",
    "PERMISSIONS",
    "PLANNER_GROUP",
    "VIEWER_GROUP",
    "ApiClients",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "RequestError",
    "allowed_routes",
    "build_resolver",
    "caller_groups",
    "handle",
    "is_allowed",
    "openapi_json",
    "parse_groups",
]
