"""Who may call what: the one place where Cognito groups become permissions.

API Gateway's Cognito authorizer has already proved who the caller is; this module decides
what the caller may do, from ``requestContext.authorizer.claims["cognito:groups"]``. Routes
are keyed like API Gateway keys them (HTTP method and resource template), and a route that
is not in :data:`PERMISSIONS` is denied to everyone: a new route has to be granted here.
Every route of the function needs a token; the one public route, ``GET /openapi.json``, is
answered by API Gateway itself (a mock integration) and never reaches the function.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from typing import Any, Final, Literal

logger = logging.getLogger(__name__)

ADMIN_GROUP: Final = "AdminGroup"
PLANNER_GROUP: Final = "PlannerGroup"
VIEWER_GROUP: Final = "ViewerGroup"
GROUPS: Final = (ADMIN_GROUP, PLANNER_GROUP, VIEWER_GROUP)
#: The groups the ``/users`` routes may grant. AdminGroup is not among them: an admin token
#: that leaks (or an admin who errs) must not be able to make more admins, so admin rights
#: are granted only in the user pool itself (console, CLI), by whoever holds IAM rights on
#: it. The API may still take AdminGroup away, except from the last admin.
GRANTABLE_GROUPS: Final = (PLANNER_GROUP, VIEWER_GROUP)

RouteKey = tuple[str, str]

#: The groups allowed on each route. AdminGroup may call everything.
PERMISSIONS: Final[Mapping[RouteKey, frozenset[str]]] = {
    ("GET", "/forecasts"): frozenset({ADMIN_GROUP, PLANNER_GROUP, VIEWER_GROUP}),
    ("POST", "/orders"): frozenset({ADMIN_GROUP, PLANNER_GROUP}),
    ("GET", "/admin/status"): frozenset({ADMIN_GROUP}),
    ("GET", "/users"): frozenset({ADMIN_GROUP}),
    ("PUT", "/users/{username}/groups/{group}"): frozenset({ADMIN_GROUP}),
    ("DELETE", "/users/{username}/groups/{group}"): frozenset({ADMIN_GROUP}),
}

#: What :func:`parse_groups` answers for a claim that cannot be split into whole names.
AMBIGUOUS: Final = None

ClaimShape = Literal["rest", "http"]


def parse_groups(raw: object, shape: ClaimShape = "rest") -> frozenset[str] | None:
    """The caller's groups from a ``cognito:groups`` claim, as whole names.

    Cognito group names may hold commas and brackets but never whitespace. The JWT carries
    a JSON list, taken as it is. API Gateway flattens the list to a string, in the shape
    of the API type (``shape``):

    - REST API Cognito authorizer: ``"[A, B]"`` (split on ``", "``, which no name holds)
      or ``"A,B"``, which cannot tell the groups ``x`` and ``AdminGroup`` from one group
      named ``x,AdminGroup``: a plain string with a comma is :data:`AMBIGUOUS` (``None``),
      and :func:`caller_groups` reads the token instead. One group is ``"A"``;
    - HTTP API JWT authorizer: ``"[A B]"`` (split on whitespace).

    Anything else means no groups.
    """
    if isinstance(raw, list | tuple):
        return frozenset(n for n in raw if isinstance(n, str) and n)
    if not isinstance(raw, str):
        return frozenset()
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        names = inner.split() if shape == "http" else inner.split(", ")
        return frozenset(n.strip() for n in names if n.strip())
    if shape == "rest" and "," in text:
        return AMBIGUOUS
    return frozenset({text}) if text else frozenset()


def _bearer_claims(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The payload of the one ``Authorization`` token of the request, undecoded JSON types.

    The signature is not checked here: the Cognito authorizer verified this very header
    before invoking the function. Two ``Authorization`` headers could mean the authorizer
    and this code read different ones, so anything but exactly one value is ``None``.
    """
    values = [
        v
        for name, vs in (event.get("multiValueHeaders") or {}).items()
        if isinstance(name, str) and name.lower() == "authorization"
        for v in (vs if isinstance(vs, list) else [vs])
    ]
    if not values:
        values = [
            v
            for name, v in (event.get("headers") or {}).items()
            if isinstance(name, str) and name.lower() == "authorization"
        ]
    if len(values) != 1 or not isinstance(values[0], str):
        return None
    parts = values[0].removeprefix("Bearer ").strip().split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def caller_groups(event: Mapping[str, Any]) -> frozenset[str]:
    """The groups of the caller of a REST proxy event, as whole names.

    An ambiguous claim (``"A,B"``) is resolved from the JSON list in the request's token,
    which must be the token the claims came from (same ``jti`` and ``sub``); if it cannot
    be, the caller has no groups: a group is never granted on a guess.
    """
    claims = claims_of(event)
    groups = parse_groups(claims.get("cognito:groups"))
    if groups is not AMBIGUOUS:
        return groups
    token = _bearer_claims(event)
    if (
        token is None
        or not claims.get("jti")
        or str(token.get("jti")) != str(claims.get("jti"))
        or str(token.get("sub")) != str(claims.get("sub"))
        or not isinstance(token.get("cognito:groups"), list)
    ):
        logger.warning(
            "cognito:groups %r is ambiguous and the request's token does not settle it",
            claims.get("cognito:groups"),
        )
        return frozenset()
    return parse_groups(token["cognito:groups"]) or frozenset()


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
    """True when one of ``groups`` is granted the route (the union of their rights)."""
    return bool(PERMISSIONS.get(route, frozenset()) & groups)


def allowed_routes(groups: frozenset[str]) -> frozenset[RouteKey]:
    """Every route of the function the groups may call."""
    return frozenset(r for r, allowed in PERMISSIONS.items() if allowed & groups)


def caller_may(event: Mapping[str, Any]) -> bool:
    """Whether the caller of this REST proxy event may call the route it targets."""
    return is_allowed(route_key(event), caller_groups(event))
