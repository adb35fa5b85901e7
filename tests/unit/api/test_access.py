"""Group permissions: parsing every shape of the claim, and the route matrix."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from pipeline.api.access import (
    AMBIGUOUS,
    ClaimShape,
    allowed_routes,
    caller_groups,
    caller_may,
    is_allowed,
    parse_groups,
)

FORECASTS = ("GET", "/forecasts")
ORDERS = ("POST", "/orders")
ADMIN_ROUTES = {
    ("GET", "/admin/status"),
    ("GET", "/users"),
    ("PUT", "/users/{username}/groups/{group}"),
    ("DELETE", "/users/{username}/groups/{group}"),
}


@pytest.mark.parametrize(
    ("raw", "shape", "expected"),
    [
        (["AdminGroup", "ViewerGroup"], "rest", {"AdminGroup", "ViewerGroup"}),
        (["x,AdminGroup"], "rest", {"x,AdminGroup"}),
        (["AdminGroup", 7, ""], "rest", {"AdminGroup"}),
        ("[AdminGroup, PlannerGroup]", "rest", {"AdminGroup", "PlannerGroup"}),
        ("[x,AdminGroup]", "rest", {"x,AdminGroup"}),
        ("[x,AdminGroup, ViewerGroup]", "rest", {"x,AdminGroup", "ViewerGroup"}),
        ("[AdminGroup,, ViewerGroup]", "rest", {"AdminGroup,", "ViewerGroup"}),
        ("[ViewerGroup]", "rest", {"ViewerGroup"}),
        ("ViewerGroup", "rest", {"ViewerGroup"}),
        ("[AdminGroup PlannerGroup]", "http", {"AdminGroup", "PlannerGroup"}),
        ("[x,AdminGroup ViewerGroup]", "http", {"x,AdminGroup", "ViewerGroup"}),
        ("[x,AdminGroup]", "http", {"x,AdminGroup"}),
        ("x,AdminGroup", "http", {"x,AdminGroup"}),
        ("", "rest", set()),
        ("[]", "rest", set()),
        (None, "rest", set()),
        (42, "rest", set()),
    ],
)
def test_given_a_groups_claim_in_each_shape_when_parsed_then_whole_group_names(
    raw: object, shape: ClaimShape, expected: set[str]
) -> None:
    assert parse_groups(raw, shape) == frozenset(expected)


@pytest.mark.parametrize("raw", ["AdminGroup,PlannerGroup", "x,AdminGroup", "a,b,c"])
def test_given_a_plain_comma_separated_rest_claim_when_parsed_then_it_is_ambiguous(
    raw: str,
) -> None:
    # One group "x,AdminGroup" and the groups "x" and "AdminGroup" flatten to the same text.
    assert parse_groups(raw) is AMBIGUOUS


def _token(claims: dict[str, object]) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'k'})}.{part(claims)}.c2lnbmF0dXJl"


def _rest_event(
    route: tuple[str, str], groups_claim: str, token_groups: list[str], **token_overrides: str
) -> dict[str, object]:
    """A REST proxy event as API Gateway sends it: flattened claims plus the header."""
    token = _token({"sub": "u-1", "jti": "j-1", "cognito:groups": token_groups, **token_overrides})
    return {
        "httpMethod": route[0],
        "resource": route[1],
        "headers": {"Authorization": token},
        "multiValueHeaders": {"Authorization": [token]},
        "requestContext": {
            "authorizer": {"claims": {"sub": "u-1", "jti": "j-1", "cognito:groups": groups_claim}}
        },
    }


def test_given_a_group_named_with_a_comma_when_checked_then_it_does_not_grant_admin() -> None:
    event = _rest_event(("GET", "/admin/status"), "x,AdminGroup", ["x,AdminGroup"])
    assert caller_groups(event) == {"x,AdminGroup"}
    assert not caller_may(event)
    assert not caller_may({**event, "resource": "/forecasts"})


def test_given_two_groups_flattened_with_a_comma_when_checked_then_the_token_settles_it() -> None:
    event = _rest_event(
        ("POST", "/orders"), "ViewerGroup,PlannerGroup", ["ViewerGroup", "PlannerGroup"]
    )
    assert caller_groups(event) == {"ViewerGroup", "PlannerGroup"}
    assert caller_may(event)


@pytest.mark.parametrize(
    "tamper",
    [
        {"jti": "another-token"},
        {"sub": "another-user"},
        {"headers": None, "multiValueHeaders": None},
        {"multiValueHeaders": {"Authorization": ["a.b.c", "d.e.f"]}},
        {"multiValueHeaders": {"authorization": ["not a jwt"]}},
    ],
)
def test_given_an_ambiguous_claim_the_token_cannot_settle_when_checked_then_no_groups(
    tamper: dict[str, Any],
) -> None:
    token_fields = {k: str(v) for k, v in tamper.items() if k in {"jti", "sub"}}
    event = _rest_event(
        ("POST", "/orders"), "ViewerGroup,PlannerGroup", ["PlannerGroup"], **token_fields
    )
    event.update({k: v for k, v in tamper.items() if k not in token_fields})
    assert caller_groups(event) == frozenset()
    assert not caller_may(event)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ({"AdminGroup"}, {FORECASTS, ORDERS, *ADMIN_ROUTES}),
        ({"PlannerGroup"}, {FORECASTS, ORDERS}),
        ({"ViewerGroup"}, {FORECASTS}),
        ({"PlannerGroup", "ViewerGroup"}, {FORECASTS, ORDERS}),
        (set(), set()),
        ({"SomeOtherGroup"}, set()),
    ],
)
def test_given_groups_when_routes_are_listed_then_exactly_the_union_of_their_rights(
    groups: set[str], expected: set[tuple[str, str]]
) -> None:
    assert allowed_routes(frozenset(groups)) == expected


def test_given_a_route_nobody_was_granted_when_checked_then_even_admin_is_denied() -> None:
    assert not is_allowed(("GET", "/secret"), frozenset({"AdminGroup"}))
    assert not is_allowed(("get", "/forecasts"), frozenset({"AdminGroup"}))


def test_given_a_rest_event_with_string_groups_when_checked_then_the_route_decides() -> None:
    event: dict[str, Any] = {
        "httpMethod": "POST",
        "resource": "/orders",
        "requestContext": {
            "authorizer": {"claims": {"cognito:groups": "[ViewerGroup, PlannerGroup]"}}
        },
    }
    assert caller_may(event)
    event["requestContext"]["authorizer"]["claims"]["cognito:groups"] = "[ViewerGroup]"
    assert not caller_may(event)


def test_given_an_event_without_authorizer_when_checked_then_every_route_is_denied() -> None:
    # GET /openapi.json is API Gateway's own (a mock): at the function it is no route at all.
    assert not caller_may({"httpMethod": "GET", "resource": "/openapi.json"})
    assert not caller_may({"httpMethod": "GET", "resource": "/forecasts", "requestContext": None})
