"""The authorisation matrix through the local gateway: every route x every kind of caller.

Exactly the permitted calls succeed; every token problem is a 401 from the gateway (the
handler never runs); a valid token without the right is a 403 from the API.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.local.gateway import LocalGateway
from pipeline.local.users import sign_in
from tests.support.api_stack import Api, create_user

if TYPE_CHECKING:
    from collections.abc import Iterator

TOKEN_PROBLEMS = [
    "no token",
    "expired token",
    "another key",
    "alg none",
    "another issuer",
    "access token",
]
GROUP_CALLERS = {
    "admin": {"forecasts", "orders", "status", "users", "add", "remove", "spec"},
    "planner": {"forecasts", "orders", "spec"},
    "viewer": {"forecasts", "spec"},
    "planview": {"forecasts", "orders", "spec"},  # PlannerGroup + ViewerGroup: the union
    "nogroup": {"spec"},
}
_keys = itertools.count()

# route name -> (method, path, body, success status)
ROUTES: dict[str, tuple[str, str, Any, int]] = {
    "forecasts": ("GET", "/forecasts?sku_id=S1&from=2025-01-01&to=2025-01-28", None, 200),
    "orders": (
        "POST",
        "/orders",
        {"sku_id": "S1", "location_id": "L1", "quantity": 5, "needed_by": "2099-01-01"},
        201,
    ),
    "status": ("GET", "/admin/status", None, 200),
    "users": ("GET", "/users", None, 200),
    "add": ("PUT", "/users/target/groups/ViewerGroup", None, 200),
    "remove": ("DELETE", "/users/target/groups/ViewerGroup", None, 200),
    "spec": ("GET", "/openapi.json", None, 200),
}


@pytest.fixture(scope="module")
def matrix_api(api: Api) -> Iterator[Api]:
    create_user(api.stack, "target")
    yield api


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("caller", [*GROUP_CALLERS, *TOKEN_PROBLEMS])
def test_given_a_caller_when_it_calls_a_route_then_only_its_rights_succeed(
    matrix_api: Api, caller: str, route: str
) -> None:
    method, path, body, success = ROUTES[route]
    headers = {"Idempotency-Key": f"matrix-{next(_keys)}"} if method == "POST" else None
    status, answer = matrix_api.call(method, path, caller=caller, body=body, headers=headers)
    if route == "spec":  # public: API Gateway does not even look at the token
        assert status == 200
        assert answer["openapi"].startswith("3.")
    elif caller in TOKEN_PROBLEMS:
        assert (status, answer) == (401, {"message": "Unauthorized"})
    elif route in GROUP_CALLERS[caller]:
        assert status == success, answer
    else:
        assert (status, answer) == (403, {"message": "your groups do not allow this route"})


@pytest.mark.parametrize("caller", list(GROUP_CALLERS))
def test_given_a_caller_when_it_grants_admin_group_then_403_and_only_admin_hears_why(
    matrix_api: Api, caller: str
) -> None:
    # Admin rights are never granted through the API, not even by an admin.
    message = (
        "AdminGroup cannot be granted through the API, only PlannerGroup or ViewerGroup;"
        " grant it in the user pool itself"
        if caller == "admin"
        else "your groups do not allow this route"
    )
    assert matrix_api.call("PUT", "/users/target/groups/AdminGroup", caller=caller) == (
        403,
        {"message": message},
    )


def test_given_the_only_admin_when_an_admin_removes_it_from_admin_group_then_409(
    matrix_api: Api,
) -> None:
    assert matrix_api.call("DELETE", "/users/admin/groups/AdminGroup") == (
        409,
        {
            "message": "'admin' is the last enabled member of AdminGroup; grant AdminGroup"
            " to another user in the user pool before removing it"
        },
    )


def test_given_an_unknown_route_when_called_then_403_missing_authentication_token(
    matrix_api: Api,
) -> None:
    assert matrix_api.call("GET", "/nowhere") == (
        403,
        {"message": "Missing Authentication Token"},
    )
    assert matrix_api.call("PATCH", "/forecasts") == (
        403,
        {"message": "Missing Authentication Token"},
    )


def test_given_a_bearer_prefix_when_called_then_the_token_is_accepted(matrix_api: Api) -> None:
    token = matrix_api.tokens["viewer"]
    status, _ = matrix_api.call(
        "GET", ROUTES["forecasts"][1], caller=None, headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200


def test_given_a_group_named_x_comma_admin_group_when_its_member_calls_then_no_admin_right(
    matrix_api: Api,
) -> None:
    # The gateway flattens the claim to "x,AdminGroup", as the REST authorizer does.
    cognito = matrix_api.stack.session().client("cognito-idp")
    pool = matrix_api.stack.ref("UserPool")
    cognito.create_group(GroupName="x,AdminGroup", UserPoolId=pool)
    create_user(matrix_api.stack, "comma-member", groups=["x,AdminGroup"])
    token = sign_in(matrix_api.stack, "comma-member").id_token
    for name in ("status", "users", "forecasts"):
        method, path, _, _ = ROUTES[name]
        assert matrix_api.call(method, path, caller=None, token=token) == (
            403,
            {"message": "your groups do not allow this route"},
        ), name


def test_given_the_spec_route_when_called_then_the_gateway_answers_without_a_function(
    matrix_api: Api,
) -> None:
    invoked: list[str] = []

    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        invoked.append(event["resource"])
        return {"statusCode": 204, "headers": {}, "body": ""}

    with LocalGateway(matrix_api.stack, handler) as gateway:
        with urllib.request.urlopen(f"{gateway.url}/openapi.json", timeout=30) as response:
            spec = json.loads(response.read())
            content_type = response.headers["Content-Type"]
        token = matrix_api.tokens["viewer"]
        request = urllib.request.Request(
            f"{gateway.url}{ROUTES['forecasts'][1]}", headers={"Authorization": str(token)}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 204  # the handler does serve the function's routes
    assert (spec["openapi"][:2], content_type) == ("3.", "application/json")
    assert "/forecasts" in spec["paths"]
    assert invoked == ["/forecasts"]
