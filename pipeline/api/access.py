"""Who may call what: the one place where Cognito groups become permissions.

API Gateway's Cognito authorizer has already proved who the caller is; this module decides
what the caller may do, from ``requestContext.authorizer.claims["cognito:groups"]``. Routes
are keyed like API Gateway keys them (HTTP method and resource template), and a route that
is not in :data:`PERMISSIONS` is denied to everyone: a new route has to be granted here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

ADMIN_GROUP: Final = "AdminGroup"
PLANNER_GROUP: Final = "PlannerGroup"
VIEWER_GROUP: Final = "ViewerGroup"
GROUPS: Final = (ADMIN_GROUP, PLANNER_GROUP, VIEWER_GROUP)

RouteKey = tuple[str, str]

#: Routes anyone may call, without a token (API Gateway's ``Authorizer: NONE``).
PUBLIC_ROUTES: Final[frozenset[RouteKey]] = frozenset({("GET", "/openapi.json")})

#: The groups allowed on each route. AdminGroup may call everything.
PERMISSIONS: Final[Mapping[RouteKey, frozenset[str]]] = {
    ("GET", "/forecasts"): frozenset({ADMIN_GROUP, PLANNER_GROUP, VIEWER_GROUP}),
    ("POST", "/orders"): frozenset({ADMIN_GROUP, PLANNER_GROUP}),
    ("GET", "/admin/status"): frozenset({ADMIN_GROUP}),
    ("GET", "/users"): frozenset({ADMIN_GROUP}),
    ("PUT", "/users/{username}/groups/{group}"): frozenset({ADMIN_GROUP}),
    ("DELETE", "/users/{username}/groups/{group}"): frozenset({ADMIN_GROUP}),
}

_SEPARATORS = re.compile(r"[\s,]+")


def parse_groups(raw: object) -> frozenset[str]:
    """The caller's groups from the ``cognito:groups`` claim, whatever shape it arrives in.

    A JWT carries a JSON list; the REST API Cognito authorizer flattens claims to strings,
    as ``"AdminGroup,PlannerGroup"`` or ``"[AdminGroup PlannerGroup]"`` depending on the
    path, so all three shapes are accepted. Anything else means no groups.
    """
    if isinstance(raw, str):
        names: Iterable[object] = _SEPARATORS.split(raw.strip().strip("[]"))
    elif isinstance(raw, list | tuple):
        names = raw
    else:
        return frozenset()
    return frozenset(n.strip() for n in names if isinstance(n, str) and n.strip())


def claims_of(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """``requestContext.authorizer.claims`` of a REST proxy event (empty when absent)."""
    value: Any = event
    for key in ("requestContext", "authorizer", "claims"):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def route_key(event: Mapping[str, Any]) -> RouteKey:
    """``(httpMethod, resource)``: the route API Gateway matched for this request."""
    return str(event.get("httpMethod", "")).upper(), str(event.get("resource", ""))


def is_allowed(route: RouteKey, groups: frozenset[str]) -> bool:
    """True when the route is public or one of ``groups`` is granted it (the union)."""
    if route in PUBLIC_ROUTES:
        return True
    return bool(PERMISSIONS.get(route, frozenset()) & groups)


def allowed_routes(groups: frozenset[str]) -> frozenset[RouteKey]:
    """Every route the groups may call, public ones included."""
    return PUBLIC_ROUTES | {r for r, allowed in PERMISSIONS.items() if allowed & groups}


def caller_may(event: Mapping[str, Any]) -> bool:
    """Whether the caller of this REST proxy event may call the route it targets."""
    return is_allowed(route_key(event), parse_groups(claims_of(event).get("cognito:groups")))
